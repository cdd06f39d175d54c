"""The whole day of a round, through pages only (issue 17): one browser journey of every role, in the day's order.

The administrator creates and starts the round and uploads the users file; each new user sets a password through
the link mailed to them and logs in. The school's clerk imports the DMC export, records 3.2.2, 3.2.2.1 and
3.2.2.2, asks the district about a dropout, meets a duplicate (a student active at another school: refused beside
the ID, a claim opened), confirms the students' existence (R11), is refused the confirmation while the claim waits
(the reason in Thai beside the button), declares the student present and confirms. The district officer decides
the ID correction the school mailed, the dropout and the duplicate case, and extends the school's deadline; the
director certifies.

Pages only: the test body sends no API request. The world around the pages is set up by fixtures (the database,
Temporal under time skipping, the worker, the intake's SMTP listener), the ID correction arrives as signed mail
through that listener, and the password links are read from the mail catcher, as a user reads their inbox. Time
moves by time skipping. Every page visited is looked at: screenshots at 1280 and 390 px into
tests/artifacts/web-day-*.png, axe-core clean at both widths.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import select

from db import accounts
from db.directory import user_by_token
from db.engine import session_scope
from db.models import DropoutRequest, DuplicateCase, IdCorrection, SchoolRound, Student, User, utcnow
from domain.thai_time import to_bangkok
from tests.intake.env import ROSTER, intake_listening, send_to_intake
from tests.intake.messages import PDF, block, build, letter, nid
from tests.stack import AREA, SCHOOL, SCHOOL_2, running_stack, unique_round
from tests.test_dashboard_browser import browser, require_browser
from tests.timing import eventually, skip_to
from tests.web import ARTIFACTS, served
from tests.web.test_admin_pages import TIMEOUT, round_form
from tests.web.test_district_pages import decide, png
from tests.web.test_pages import looked_at, new_page, open_as

PASSWORD = "ข้าวเหนียวมะม่วง-2567"
ADMIN = "admin.central"
OLD, NEW = "1449900000018", nid("144990900011")  # ปวีณา of ม.1/1 in the DMC export, and her right ID
DROPOUT_PUPIL = "1449900000026"  # ศุภชัย of ม.2/2
HELD_ELSEWHERE = ("1449910000096", "เด็กชาย", "ชนิดา", "พลอยงาม")  # on SCHOOL_2's roster
USERS_CSV = ("username,role,school_or_area,name,email\n"
             f"clerk.tuayang,staff,{SCHOOL},นางสาวใจดี มีสุข,clerk@tuayang.ac.th\n"
             f"director.tuayang,director,{SCHOOL},นายสมศักดิ์ ตั้งใจ,director@tuayang.ac.th\n"
             f"officer.mk,district,{AREA},นางวิไล ใฝ่ดี,officer@sesao26.go.th\n"
             "clerk.nowhere,staff,9999999999,ไม่มีโรงเรียนนี้,nowhere@example.org\n")
LINK = re.compile(r"/password/set\?token=([\w-]+)")
REFUSED = "the server responded with a status of 4"  # a refused form answers its status with the page saying why


@pytest.fixture
async def day(time_env, engine, settings, smtp):
    """The stack (three schools, two areas, Temporal under time skipping, the worker), the intake listening for
    the schools' mail, and an administrator who logs in with a password."""
    async with running_stack(time_env, engine, settings) as stack, intake_listening(stack) as (_, port):
        with session_scope(engine) as s:
            admin = user_by_token(s, stack.tokens["admin"])
            admin.username = ADMIN
            accounts.set_password(s, admin, PASSWORD, utcnow())
        yield stack, port, smtp


def mailed_link(smtp, address: str) -> str | None:
    """The password link in the newest mail to this address, as its owner reads it in their inbox."""
    for message in reversed(smtp.messages):
        if message["X-Envelope-To"] == address:
            found = LINK.search(message.get_body(("plain",)).get_content())
            if found:
                return found[0]
    return None


@pytest.mark.slow  # a browser against uvicorn, a round's start on the worker, the intake
async def test_the_whole_day_of_a_round_through_the_pages(day):
    require_browser()
    from playwright.async_api import expect

    stack, intake_port, smtp = day
    now = await stack.now()
    rid = unique_round()
    form = round_form(rid, now, academic_year="2566")  # the letter's year, the export's
    confirm_from = to_bangkok(now + timedelta(hours=1)).replace(second=0, microsecond=0)  # what the form holds
    cutoff = to_bangkok(now + timedelta(hours=8)).replace(second=0, microsecond=0)
    steps = iter(range(1, 100))
    for stale in ARTIFACTS.glob("web-day-*.png"):  # an earlier run's pages, numbered differently
        stale.unlink()

    async def look(page, what: str) -> None:
        await looked_at(page, f"day-{next(steps):02d}-{what}")

    async def log_in_from_mail(b, base: str, address: str, username: str, who: str):
        """The new user opens the mailed link, sets a password, and logs in with it: their home."""
        link = await eventually(lambda: mailed_link(smtp, address))
        page, problems = await new_page(b, base)
        await page.goto(link)
        await expect(page.locator("#username")).to_have_value(username)
        await look(page, f"{who}-set-password")
        await page.fill("#password", PASSWORD)
        await page.fill("#password_repeat", PASSWORD)
        async with page.expect_navigation():
            await page.click("#set-password")
        await expect(page.locator("#notice")).to_be_visible()
        await page.fill("#username", username)
        await page.fill("#password", PASSWORD)
        await look(page, f"{who}-login")
        async with page.expect_navigation():
            await page.click("#login")
        await expect(page).to_have_url(base + "/")
        return page, problems

    async with served(stack) as base, browser() as b:
        # --- the administrator: a round created and started, the users file uploaded -----------------------------
        admin, admin_problems = await new_page(b, base)
        await admin.goto("/login")
        await admin.fill("#username", ADMIN)
        await admin.fill("#password", PASSWORD)
        await look(admin, "admin-login")
        async with admin.expect_navigation():
            await admin.click("#login")
        await look(admin, "admin-home")
        await admin.click('nav a[href="/admin/rounds"]')
        for name in ("id", "academic_year", "opens_at", "confirm_from", "cutoff_at"):
            await admin.fill(f"#rf-{name}", form[name])
        await look(admin, "admin-rounds")
        async with admin.expect_navigation():
            await admin.click("#create")
        await expect(admin.locator("#round-started")).to_have_text("ยังไม่เริ่ม")
        await look(admin, "admin-round-new")
        await admin.click("#start-button")
        await expect(admin.locator("#progress")).to_have_attribute("data-finished", "yes", timeout=TIMEOUT)
        await expect(admin.locator("#progress-state")).to_have_text("เสร็จแล้ว")
        await look(admin, "admin-round-started")

        await admin.click('nav a[href="/users"]')
        await look(admin, "admin-users")
        await admin.click("#import-link")
        await look(admin, "admin-users-import")
        await admin.set_input_files("#users-file", files=[{"name": "users.csv", "mimeType": "text/csv",
                                                           "buffer": ("\ufeff" + USERS_CSV).encode()}])
        async with admin.expect_navigation():
            await admin.click("#users-import-button")
        await expect(admin.locator('#report-counts [data-count="created"]')).to_have_text("3")
        refused_row = admin.locator('#import-lines tr[data-line="5"]')
        await expect(refused_row).to_have_attribute("data-outcome", "refused")
        await expect(refused_row).to_contain_text("ผู้ใช้ระดับโรงเรียนต้องระบุรหัสโรงเรียนที่มีอยู่")  # beside its row
        await expect(refused_row).to_contain_text("A staff or director user needs an existing school code")
        await look(admin, "admin-users-imported")
        assert [p for p in admin_problems if REFUSED not in p] == [], admin_problems

        # --- the school's clerk: the link from the mail, the DMC export, the three menus ------------------------
        staff, staff_problems = await log_in_from_mail(b, base, "clerk@tuayang.ac.th", "clerk.tuayang", "staff")
        await expect(staff.locator("#stage")).to_have_text("เปิดปรับปรุงข้อมูล")
        await look(staff, "staff-home")
        await staff.click('[data-task="profile"] a')  # R1, the first item of the list
        for field, value in (("phone", "043-777-123"), ("address", "99 ถ.นครสวรรค์ ต.ตลาด อ.เมือง จ.มหาสารคาม"),
                             ("director_name", "นายสมศักดิ์ ตั้งใจ")):
            await staff.fill(f"#profile-{field}", value)
        await look(staff, "staff-profile")
        async with staff.expect_navigation():
            await staff.click("#profile-button")
        await expect(staff.locator("#saved")).to_be_visible()
        await staff.goto("/")
        await expect(staff.locator('[data-task="profile"]')).to_have_attribute("data-done", "yes")
        await staff.click('[data-task="roster"] a')
        await look(staff, "staff-roster-empty")
        await staff.click("#go-import")
        await staff.set_input_files("#import-file", str(ROSTER))
        await look(staff, "staff-import")
        async with staff.expect_navigation():
            await staff.click("#import-button")
        await expect(staff.locator('#report-counts [data-count="applied"]')).to_have_text("7")
        # the other school's rows and the pupils who did not sit the exam here (R2): refused, each beside its row
        await expect(staff.locator('#issues tr[data-code="other_school"]')).to_have_count(7)
        await expect(staff.locator("#issues")).to_contain_text("นำเข้าได้เฉพาะนักเรียนของโรงเรียนตนเอง")
        await expect(staff.locator('#issues tr[data-code="r2_no_final_exam"]')).to_have_count(2)
        await look(staff, "staff-import-report")

        # the school mails the district an ID correction (R4): it comes through the intake, as mail does
        await send_to_intake(intake_port, build(letter(block(old=OLD, new=NEW)), message_id="<day@tuayang.ac.th>",
                                                attachments=(("หลักฐาน.pdf", "application/pdf", PDF),
                                                             ("บัตรประชาชน.png", "image/png", png()))))

        # 3.2.2 a class at a time: what the page proposes, one ม.2 pupil repeating
        await staff.goto("/")
        await staff.click('[data-task="menu_322"] > .task-line a')
        classes = await staff.locator("#class option").evaluate_all("(options) => options.map(o => o.value)")
        assert classes == ["ม.1/1", "ม.2/2", "ม.3/3", "ม.4/1", "ม.5/2", "ม.6/3"], classes
        for n, cls in enumerate(classes):
            await staff.select_option("#class", cls)
            async with staff.expect_navigation():
                await staff.click("#choose-class button")
            if cls == "ม.2/2":
                await staff.select_option("#result-1", "repeat")  # ภูมิพัฒน์ (G-code) repeats ม.2
            if n == 0:
                await look(staff, "staff-menu-322")
            async with staff.expect_navigation():
                await staff.click("#save")
            await expect(staff.locator("#saved")).to_be_visible()
        await staff.click('.steps a:text("3.2.2.1")')
        await staff.select_option("#class", "ม.2/2")
        async with staff.expect_navigation():
            await staff.click("#choose-class button")
        await expect(staff.locator("#menu-table tbody tr")).to_have_count(1)
        await staff.check('input[name="reasons-0"][value="attendance"]')
        await look(staff, "staff-menu-3221")
        async with staff.expect_navigation():
            await staff.click("#save")
        await expect(staff.locator("#saved")).to_have_text("บันทึกแล้ว 1 คน")
        await staff.click('.steps a:text("3.2.2.2")')
        for n, (cls, destination) in enumerate((("ม.3/3", "vocational"), ("ม.6/3", "higher_education"))):
            await staff.select_option("#class", cls)
            async with staff.expect_navigation():
                await staff.click("#choose-class button")
            await staff.select_option("#destination-0", destination)
            if n == 0:
                await look(staff, "staff-menu-3222")
            async with staff.expect_navigation():
                await staff.click("#save")
            await expect(staff.locator("#saved")).to_have_text("บันทึกแล้ว 1 คน")

        # --- another school's clerk imports the same export: the student the clerk will meet is theirs ----------
        holder, holder_problems = await open_as(b, base, stack, "staff2", "/roster")
        await holder.click("#go-import")
        await holder.set_input_files("#import-file", str(ROSTER))
        async with holder.expect_navigation():
            await holder.click("#import-button")
        await expect(holder.locator('#report-counts [data-count="applied"]')).to_have_text("7")
        await look(holder, "holder-import-report")

        # --- the clerk: a dropout request, a duplicate, the existence of every student ------------------------------
        await staff.goto("/")
        await staff.click('[data-task="cases"] > .task-line a')
        await staff.select_option("#d-student", DROPOUT_PUPIL)
        await staff.select_option("#d-reason", "low_income")
        await staff.fill("#d-details", "ไม่มาเรียนตั้งแต่ ก.พ. ครอบครัวย้ายไปทำงานต่างจังหวัด")
        await staff.set_input_files("#d-evidence", files=[{"name": "บันทึกเยี่ยมบ้าน.pdf", "mimeType": "application/pdf",
                                                          "buffer": PDF}])
        await look(staff, "staff-cases")
        async with staff.expect_navigation():
            await staff.click("#dropout-send")
        await expect(staff.locator("#dropouts tbody tr")).to_contain_text("รอเขตพื้นที่พิจารณา")
        await look(staff, "staff-dropout-requested")

        await staff.goto("/roster")
        await staff.click("#go-add")
        sid, prefix, first, last = HELD_ELSEWHERE
        for field, value in (("student", sid), ("prefix", prefix), ("first_name", first), ("last_name", last),
                             ("grade", "ม.1"), ("classroom", "1")):
            await staff.fill(f"#new-{field}", value)
        await staff.check("#new-sat_final_exam_here")
        async with staff.expect_navigation():
            await staff.click("#new-button")
        problem = staff.locator("#new-student-problem")  # refused beside the ID that caused it, a case opened
        await expect(problem).to_have_attribute("data-code", "active_elsewhere")
        await expect(problem).to_contain_text("มีอยู่ในทะเบียนของโรงเรียนอื่น")
        await expect(staff.locator("#new-student")).to_have_attribute("aria-invalid", "true")
        await look(staff, "staff-add-refused")
        case_id = re.search(r"duplicate case (\S+)", await problem.inner_text())[1]

        await staff.goto("/")
        await staff.click('[data-task="existence"] a')
        await staff.select_option("#class", "")  # every class
        async with staff.expect_navigation():
            await staff.click("#choose-class button")
        await staff.select_option("#exc-student", DROPOUT_PUPIL)
        await staff.select_option("#exc-kind", "dropout_request")
        async with staff.expect_navigation():
            await staff.click("#exception-save")
        await expect(staff.locator("#done")).to_be_visible()
        async with staff.expect_navigation():
            await staff.click("#everyone")
        await expect(staff.locator('#counts [data-count="unmarked"]')).to_have_text("0")
        await expect(staff.locator("#complete")).to_be_visible()
        await look(staff, "staff-existence")

        # the window opens; the confirmation is refused while the school's own claim waits: said beside the button
        await skip_to(stack, confirm_from + timedelta(minutes=1))
        await staff.goto("/")
        await expect(staff.locator("#stage")).to_have_text("ช่วงยืนยันข้อมูล")
        async with staff.expect_navigation():
            await staff.click("#confirm-button")
        problem = staff.locator("#confirm-problem")
        await expect(problem).to_have_attribute("data-code", "blocking_cases")
        await expect(problem).to_contain_text(f"เรื่องนักเรียนซ้ำซ้อน {case_id}")
        await expect(staff.locator("#confirm-button")).to_have_attribute("aria-describedby",
                                                                         re.compile(r"\bconfirm-problem\b"))
        await look(staff, "staff-confirm-refused")

        # the clerk says the student is at this school, with evidence: the claim no longer holds the school back
        await staff.click('[data-task="cases"] > .task-line a')
        await eventually(lambda: corrections_waiting(stack.engine))  # the intake has read the school's mail
        await staff.reload()
        await expect(staff.locator('#corrections tr[data-status="pending"]')).to_have_count(1)  # read-only here
        claim = staff.locator(f'article[data-case="{case_id}"]')
        await claim.locator('input[value="present"]').check()
        await claim.locator('input[type="file"]').set_input_files(files=[{
            "name": "ใบมาเรียน.pdf", "mimeType": "application/pdf", "buffer": PDF}])
        await look(staff, "staff-cases-open")
        async with staff.expect_navigation():
            await claim.locator('button[type="submit"]').click()
        await expect(staff.locator("#notice")).to_be_visible()
        await staff.goto("/")
        async with staff.expect_navigation():
            await staff.click("#confirm-button")
        await expect(staff.locator("#stage")).to_have_text("ยืนยันข้อมูลแล้ว")
        await look(staff, "staff-confirmed")

        # --- the district officer: the mailed ID correction, the dropout, the duplicate, a deadline --------------------
        officer, officer_problems = await log_in_from_mail(b, base, "officer@sesao26.go.th", "officer.mk", "district")
        await look(officer, "district-home")
        await officer.click("#open-queue")
        await expect(officer.locator("#queue-items > li")).to_have_count(3)
        await look(officer, "district-queue")
        await officer.click('#queue-items [data-kind="id_correction"] a')
        await expect(officer.locator("#mail-text")).to_contain_text(NEW)
        await expect(officer.locator("#roster-row")).to_contain_text(OLD)
        await look(officer, "district-id-correction")
        await decide(officer, "#approve-yes", "ตรวจสำเนาบัตรประชาชนแล้ว", "approved")

        await officer.goto("/queue")
        await officer.click('#queue-items [data-kind="dropout"] a')
        await expect(officer.locator("#thread > li")).to_have_count(1)
        await look(officer, "district-dropout")
        await decide(officer, "#approve-yes", "ตรวจสอบแล้ว ครอบครัวย้ายถิ่นจริง", "approved")

        await officer.goto("/queue")
        await officer.click('#queue-items [data-kind="duplicate"] a')
        await expect(officer.locator("#status")).to_have_attribute("data-status", "claimed")
        await look(officer, "district-duplicate-claim")
        async with officer.expect_navigation():
            await officer.click("#open-button")
        await expect(officer.locator("#status")).to_have_attribute("data-status", "open")

        # the holder school says the student is theirs too, with evidence: the district decides between the two
        await holder.goto("/")
        await holder.click('[data-task="cases"] > .task-line a')
        held = holder.locator(f'article[data-case="{case_id}"]')
        await held.locator('input[value="present"]').check()
        await held.locator('input[type="file"]').set_input_files(files=[{
            "name": "ทะเบียนเรียน.pdf", "mimeType": "application/pdf", "buffer": PDF}])
        await look(holder, "holder-duplicate")
        async with holder.expect_navigation():
            await held.locator('button[type="submit"]').click()
        await expect(holder.locator("#notice")).to_be_visible()

        await officer.reload()
        await expect(officer.locator("#declarations > li")).to_have_count(2)
        await look(officer, "district-duplicate")
        await decide(officer, f"#keep-{SCHOOL_2}", "มีหลักฐานการเรียนต่อเนื่องที่โรงเรียนเดิม", "resolved", field="#note")

        await officer.goto("/queue")
        await expect(officer.locator("#queue-empty")).to_be_visible()
        await officer.click("#extensions-link")
        later = to_bangkok(cutoff + timedelta(days=1))
        await officer.select_option("#target", SCHOOL)
        await officer.fill("#date", later.strftime("%Y-%m-%d"))
        await officer.fill("#time", "16:30")
        await officer.fill("#reason", "ไฟฟ้าดับทั้งตำบล")
        await look(officer, "district-extensions")
        async with officer.expect_navigation():
            await officer.click("#extend-button")
        await expect(officer.locator("#notice")).to_be_visible()
        await look(officer, "district-extended")

        # --- the director certifies what the clerk confirmed ---------------------------------------------------------
        director, director_problems = await log_in_from_mail(b, base, "director@tuayang.ac.th", "director.tuayang",
                                                             "director")
        await expect(director.locator("#certify-summary")).to_contain_text("นางสาวใจดี มีสุข")  # who confirmed
        # what the clerk confirmed (the dropout an exception), and that the district's decisions changed it since
        await expect(director.locator("#as-confirmed")).to_have_text(
            "นักเรียน 7 คน มีตัวตนอยู่จริง 6 คน ข้อยกเว้น 1 คน")
        await expect(director.locator("#changed-since")).to_contain_text("เขตพื้นที่ได้ตัดสินเรื่องที่ค้าง")
        await expect(director.locator("#time-left")).to_contain_text("1 วัน")  # the extended deadline
        await look(director, "director-home")
        async with director.expect_navigation():
            await director.click("#certify-button")
        await expect(director.locator("#stage")).to_have_text("ผู้อำนวยการรับรองแล้ว")
        await look(director, "director-certified")

        for problems in (staff_problems, holder_problems, officer_problems, director_problems):
            assert [p for p in problems if REFUSED not in p] == [], problems

    with session_scope(stack.engine) as s:
        row = s.get(SchoolRound, (rid, SCHOOL))
        director_id = s.exec(select(User.id).where(User.username == "director.tuayang")).one()
        assert row.certified_by == director_id and row.confirmed_at is not None
        assert to_bangkok(row.cutoff_at).date() == later.date()
        assert s.exec(select(IdCorrection.status)).all() == ["approved"]
        assert s.exec(select(Student.status).where(Student.student_id == NEW)).one() == "studying"
        assert s.exec(select(DropoutRequest.status)).all() == ["approved"]
        assert s.exec(select(DuplicateCase.outcome).where(DuplicateCase.id == case_id)).one() == SCHOOL_2


def corrections_waiting(engine) -> bool:
    with session_scope(engine) as s:
        return s.exec(select(IdCorrection).where(IdCorrection.status == "pending")).first() is not None
