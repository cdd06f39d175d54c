"""The staff's roster pages (issue 17, web/roster_pages/): the DMC export's import with its row-by-row report
and download, the student list (search, filters, pages, IDs masked), and the forms of the rules table, each
showing the rule's refusal beside the field it is about.

Over plain HTTP: the refusals, their fields, scope and masking. In a real browser (Debian's Chromium, the
harness of tests/web/test_pages.py): the staff's journey through the pages only, every page looked at
(tests/artifacts/web-roster-*.png at 1280 and 390 px) and axe-core clean.
"""

from __future__ import annotations

import base64
import csv
import io
import re
from datetime import timedelta
from urllib.parse import unquote

import pytest
from sqlmodel import select

from api.viewer import COOKIE, CSRF_FIELD
from db.engine import session_scope
from db.models import Student
from tests.stack import HEADER, READY_IDS, SCHOOL, SCHOOL_2, make_ready, running_stack
from tests.test_dashboard_browser import browser, require_browser
from tests.web import artifact, served
from tests.web.test_pages import looked_at, open_as, start_round, tab_to, web_session
from web.roster_pages.listing import mask_id

NEW_ID = "1449900000093"  # valid check digit, on no roster
OTHER_NEW_ID = "1449900000107"
TIMEOUT = 15_000


def roster_url(rid: str, school: str = SCHOOL) -> str:
    return f"/school/{school}/rounds/{rid}/roster"


def new_student(csrf: str, **changes) -> dict:
    form = {CSRF_FIELD: csrf, "kind": "add", "student": NEW_ID, "prefix": "เด็กหญิง", "first_name": "มะลิ",
            "last_name": "ใจดี", "grade": "ม.1", "classroom": "2", "sat_final_exam_here": "true"}
    return {k: v for k, v in {**form, **changes}.items() if v is not None}


def beside(html: str, field_id: str) -> str | None:
    """The code of the refusal shown beside a field: the field names it in aria-describedby (and is invalid)."""
    problem = f"{field_id}-problem"
    tag = re.search(rf'<(?:input|button|select)[^>]*id="{field_id}"[^>]*>', html)
    if tag is None or problem not in tag[0]:
        return None
    found = re.search(rf'id="{problem}"[^>]*data-code="(\w+)"', html)
    return found[1] if found else None


async def signed_in(stack, who: str = "staff") -> str:
    session_id, csrf = web_session(stack, who)
    stack.http.cookies.clear()
    stack.http.cookies.set(COOKIE, session_id)
    return csrf


async def a_round(stack) -> str:
    now = await stack.now()
    return await start_round(stack, now - timedelta(hours=2), now - timedelta(hours=1), now + timedelta(hours=8))


# --- pure -------------------------------------------------------------------------------------------

def test_the_list_shows_only_the_last_four_characters_of_an_id():
    assert mask_id("1449900000018") == ("•" * 9, "0018")
    assert mask_id("G123456789012") == ("•" * 9, "9012")


# --- HTTP ---------------------------------------------------------------------------------------------

async def test_an_admission_refused_by_a_rule_shows_the_reason_beside_the_field_it_is_about(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid = await a_round(stack)
        csrf = await signed_in(stack)
        url = roster_url(rid) + "/new"
        r = await stack.http.post(url, data=new_student(csrf, student="1449900000094"))  # a wrong check digit
        assert r.status_code == 422 and beside(r.text, "new-student") == "national_id_check_digit", r.text[-3000:]
        assert 'value="มะลิ"' in r.text  # what the clerk typed is kept
        r = await stack.http.post(url, data=new_student(csrf, sat_final_exam_here=None))  # R2/R6
        assert r.status_code == 422 and beside(r.text, "new-sat_final_exam_here") == "r6_no_final_exam"
        assert "สอบปลายภาคปีการศึกษา" in r.text
        r = await stack.http.post(url, data=new_student(csrf, entry_academic_year="2567"))  # R5: next year's applicant
        assert beside(r.text, "new-entry_academic_year") == "r5_applicant", r.text[-3000:]
        await make_ready(stack, rid, SCHOOL_2)
        r = await stack.http.post(url, data=new_student(csrf, student=READY_IDS[SCHOOL_2]))  # another school's pupil (R3)
        assert beside(r.text, "new-student") == "active_elsewhere" and "โรงเรียนบ้านทดลองศึกษา" not in r.text
        r = await stack.http.post(url, data=new_student("not-the-token"))
        assert r.status_code == 403 and 'data-code="csrf_failed"' in r.text
        with session_scope(engine) as s:
            assert s.exec(select(Student).where(Student.student_id == NEW_ID)).first() is None  # nothing was added
        r = await stack.http.post(url, data=new_student(csrf))
        assert r.status_code == 303 and r.headers["location"] == roster_url(rid) + "?notice=added", r.text[-2000:]
        r = await stack.http.post(url, data=new_student(csrf, kind="transfer_in", student=OTHER_NEW_ID,
                                                        from_school="โรงเรียนเดิม"))
        assert r.status_code == 303 and r.headers["location"].endswith("notice=transferred_in")
        with session_scope(engine) as s:
            added = s.exec(select(Student).where(Student.student_id == NEW_ID)).one()
            assert (added.school_code, added.first_name, added.grade) == (SCHOOL, "มะลิ", "ม.1")
            assert s.exec(select(Student).where(Student.student_id == OTHER_NEW_ID)).one().status == "studying"


async def test_the_student_forms_refuse_beside_the_field_then_apply(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid = await a_round(stack)
        csrf = await signed_in(stack)
        assert (await stack.http.post(roster_url(rid) + "/new", data=new_student(csrf, grade="ป.6"))).status_code == 303
        with session_scope(engine) as s:
            pk = s.exec(select(Student).where(Student.student_id == NEW_ID)).one().id
        student = f"{roster_url(rid)}/students/{pk}"
        edit = {CSRF_FIELD: csrf, "prefix": "เด็กหญิง", "first_name": "มะลิ", "last_name": "ใจดี", "grade": "ม.1",
                "classroom": "2", "student_no": "", "reason": ""}
        r = await stack.http.post(student + "/edit", data=edit)  # R9: up a grade only as a correction, with its reason
        assert r.status_code == 422 and beside(r.text, "edit-grade") == "grade_up_needs_reason", r.text[-3000:]
        r = await stack.http.post(student + "/edit", data={**edit, "reason": "บันทึกชั้นไว้ผิด"})
        assert r.status_code == 303 and r.headers["location"] == student + "?notice=edited"
        r = await stack.http.post(student + "/transfer-out", data={CSRF_FIELD: csrf, "left_on": "", "to_school": ""})
        assert beside(r.text, "transfer_out-left_on") == "r7_sat_final_exam", r.text[-3000:]  # R7: the day they left
        later = (await stack.now() + timedelta(days=3)).date().isoformat()
        r = await stack.http.post(student + "/transfer-out", data={CSRF_FIELD: csrf, "left_on": later})
        assert beside(r.text, "transfer_out-left_on") == "left_on_in_future"
        r = await stack.http.post(student + "/status", data={CSRF_FIELD: csrf, "note": "  "})
        assert beside(r.text, "status-note") == "status_note_required"
        r = await stack.http.post(student + "/status", data={CSRF_FIELD: csrf, "note": "มรณบัตรเลขที่ 123/2567"})
        assert r.status_code == 303
        with session_scope(engine) as s:
            row = s.get(Student, pk)
            assert (row.grade, row.status) == ("ม.1", "deceased")
        r = await stack.http.get(student + "?notice=deceased")
        assert 'id="student-status">เสียชีวิต' in r.text and NEW_ID in r.text  # the student's own page: the whole ID


async def test_the_list_masks_ids_searches_by_post_and_keeps_to_the_users_scope(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid = await a_round(stack)
        sid = READY_IDS[SCHOOL]
        csrf = await signed_in(stack)
        r = await stack.http.get(roster_url(rid))
        assert r.status_code == 200 and "ทดสอบ ระบบ" in r.text and sid not in r.text and sid[-4:] in r.text
        assert 'id="go-import"' in r.text
        for q in (sid[-4:], "ทดสอบ", sid):  # the last digits, a name, the whole ID: a POST, never in a URL
            r = await stack.http.post(roster_url(rid) + "/search", data={CSRF_FIELD: csrf, "q": q})
            assert r.status_code == 200 and "ทดสอบ ระบบ" in r.text and "พบ 1 คน" in r.text, q
        r = await stack.http.post(roster_url(rid) + "/search", data={CSRF_FIELD: csrf, "q": "ไม่มีชื่อนี้"})
        assert 'id="no-students"' in r.text
        r = await stack.http.get(roster_url(rid) + "?grade=ม.2")
        assert 'id="no-students"' in r.text
        r = await stack.http.get(roster_url(rid) + "?grade=ม.1&status=studying")
        assert "ทดสอบ ระบบ" in r.text
        r = await stack.http.get("/roster")  # the menu's link: the school's newest round
        assert r.status_code == 303 and r.headers["location"] == roster_url(rid)

        await signed_in(stack, "director")  # the director reads, changes nothing
        r = await stack.http.get(roster_url(rid))
        assert r.status_code == 200 and "ทดสอบ ระบบ" in r.text and 'id="go-import"' not in r.text
        await signed_in(stack, "district")  # the area's officer reads
        assert (await stack.http.get(roster_url(rid))).status_code == 200
        await make_ready(stack, rid, SCHOOL_2)
        await signed_in(stack, "staff2")  # another school's staff: refused, nothing of the roster
        r = await stack.http.get(roster_url(rid))
        assert r.status_code == 403 and "ทดสอบ ระบบ" not in r.text and 'data-code="forbidden"' in r.text
        with session_scope(engine) as s:
            pk = s.exec(select(Student).where(Student.student_id == READY_IDS[SCHOOL_2])).one().id
        await signed_in(stack, "staff")  # another school's student through this school's address: not there
        r = await stack.http.get(f"{roster_url(rid)}/students/{pk}")
        assert r.status_code == 404 and READY_IDS[SCHOOL_2] not in r.text


async def test_an_import_reports_each_refused_row_and_its_download_is_inert(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid = await a_round(stack)
        csrf = await signed_in(stack)
        export = HEADER + (f"{SCHOOL},โรงเรียน,{NEW_ID},ม.2,1,2,ญ,เด็กหญิง,มะลิ,ใจดี,01/02/2554,ใช่\n"
                           f"{SCHOOL},โรงเรียน,=HYPERLINK(1),ม.2,1,3,ช,เด็กชาย,ผิด,รูปแบบ,01/02/2554,ใช่\n")
        r = await stack.http.post(roster_url(rid) + "/import", data={CSRF_FIELD: csrf},
                                  files={"file": ("dmc.csv", export.encode(), "text/csv")})
        assert r.status_code == 200, r.text[-2000:]
        counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', r.text))
        assert counts == {"total": "2", "applied": "1", "unchanged": "0", "refused": "1"}, counts
        cell = r"<t[dh][^>]*>([^<]*)</t[dh]>"  # the report's row: its number, column, value (each with its label)
        row = re.search(rf'<tr data-code="(\w+)">{cell}{cell}\s*{cell}', r.text)
        assert row and row[2] == "3" and row[3] == "เลขประจำตัวประชาชน" and row[4] == "=HYPERLINK(1)", r.text[-3000:]
        link = re.search(r'href="data:text/csv;charset=utf-8;base64,([^"]+)" download="import-report.csv"', r.text)
        rows = list(csv.reader(io.StringIO(base64.b64decode(unquote(link[1])).decode("utf-8-sig"))))
        assert rows[0][0].startswith("แถว") and rows[1][:3] == ["3", "เลขประจำตัวประชาชน", "'=HYPERLINK(1)"]
        assert rows[1][4]  # the rule's reason in Thai
        with session_scope(engine) as s:
            assert s.exec(select(Student).where(Student.student_id == NEW_ID)).one().grade == "ม.2"
        r = await stack.http.post(roster_url(rid) + "/import", data={CSRF_FIELD: csrf},
                                  files={"file": ("dmc.pdf", b"%PDF-1.4", "application/pdf")})
        assert 'id="import-problem"' in r.text and 'aria-describedby="import-file-hint import-problem"' in r.text


# --- the browser: the staff's day with the roster, through the pages only ----------------------------------

@pytest.mark.slow  # a browser against uvicorn
async def test_staff_imports_finds_adds_and_changes_students_through_the_pages(time_env, engine, settings, tmp_path):
    require_browser()
    from playwright.async_api import expect

    async with running_stack(time_env, engine, settings) as stack:
        rid = await a_round(stack)
        export = tmp_path / "dmc-export.csv"
        export.write_text(HEADER + "".join(
            f"{SCHOOL},โรงเรียน,{pid},ม.{1 + n % 3},{1 + n % 2},{n + 10},ช,เด็กชาย,นักเรียน{n},ทดลอง,01/02/2554,ใช่\n"
            for n, pid in enumerate(("1449900000115", "1449900000123", "1449900000131")))
            + f"{SCHOOL},โรงเรียน,1234,ม.1,1,99,ญ,เด็กหญิง,เลขผิด,ทดลอง,01/02/2554,ใช่\n", encoding="utf-8")

        async with served(stack) as base, browser() as b:
            page, problems = await open_as(b, base, stack, "staff", f"/?round={rid}")
            page.set_default_timeout(TIMEOUT)
            await page.click('[data-task="roster"] a')  # the home's item leads to the roster
            await expect(page.locator("h1")).to_contain_text("ทะเบียนนักเรียน")
            await expect(page.locator("#count")).to_contain_text("พบ 1 คน")
            await expect(page.locator('nav a[href="/roster"]')).to_be_visible()

            await page.click("#go-import")
            await looked_at(page, "roster-import")
            await page.set_input_files("#import-file", str(export))
            async with page.expect_navigation():
                await page.click("#import-button")
            await expect(page.locator('[data-count="applied"]')).to_have_text("3")
            await expect(page.locator('[data-count="refused"]')).to_have_text("1")
            await expect(page.locator("#issues tbody tr")).to_have_count(1)
            await expect(page.locator("#issues tbody tr td").last).to_contain_text("เลขประจำตัวประชาชน")
            async with page.expect_download() as download:
                await page.click("#report-download")
            saved = artifact("web-roster-import-report.csv")
            await (await download.value).save_as(saved)
            assert "1234" in saved.read_text(encoding="utf-8-sig")
            await looked_at(page, "roster-import-report")

            await page.click("text=กลับไปที่ทะเบียนนักเรียน")
            await expect(page.locator("#count")).to_contain_text("พบ 4 คน")
            await expect(page.locator("#students")).not_to_contain_text("1449900000115")  # masked
            await expect(page.locator("#students")).to_contain_text("0115")
            await looked_at(page, "roster-list")

            # keyboard only: the search box, a name, Enter
            await tab_to(page, "#q")
            await page.keyboard.type("นักเรียน1")
            async with page.expect_navigation():
                await page.keyboard.press("Enter")
            await expect(page.locator("#count")).to_contain_text("พบ 1 คน")
            await page.select_option("#grade", "ม.2")
            async with page.expect_navigation():
                await page.click("#search-button")
            await expect(page.locator("#students tbody tr")).to_have_count(1)

            # add a student who did not sit the final exam here: refused beside the box, then added
            await page.goto(roster_url(rid) + "/new")
            await page.fill("#new-student", "1-4499-00000-09-3")
            await page.fill("#new-first_name", "มะลิ")
            await page.fill("#new-last_name", "ใจดี")
            await page.fill("#new-grade", "ม.1")
            async with page.expect_navigation():
                await page.click("#new-button")
            problem = page.locator("#new-sat_final_exam_here-problem")
            await expect(problem).to_have_attribute("data-code", "r6_no_final_exam")
            await expect(page.locator("#new-sat_final_exam_here")).to_have_attribute(
                "aria-describedby", "new-sat_final_exam_here-problem")
            await looked_at(page, "roster-add-refused")
            await page.check("#new-sat_final_exam_here")
            async with page.expect_navigation():
                await page.click("#new-button")
            await expect(page.locator("#notice")).to_have_text("เพิ่มนักเรียนแล้ว")

            # the student's own page: the whole ID; a transfer out without the day they left is refused (R7)
            await page.click("text=มะลิ ใจดี")
            await expect(page.locator("#student-id")).to_have_text(NEW_ID)
            await looked_at(page, "roster-student")
            async with page.expect_navigation():
                await page.click("#transfer_out-button")
            await expect(page.locator("#transfer_out-left_on-problem")).to_have_attribute("data-code", "r7_sat_final_exam")
            await expect(page.locator("#transfer_out-left_on-problem")).to_contain_text("ย้ายออกไม่ได้")
            await looked_at(page, "roster-transfer-out-refused")
            exam_day = (await stack.now() - timedelta(days=1)).date().isoformat()
            await page.fill("#transfer_out-left_on", exam_day)
            async with page.expect_navigation():
                await page.click("#transfer_out-button")
            await expect(page.locator("#student-status")).to_have_text("ย้ายออก")
            await page.goto(roster_url(rid) + "?lang=en")
            await expect(page.locator("h1")).to_contain_text("The students")
            await looked_at(page, "roster-list-en")
            # a refused form answers its refusal's status (422) with the page that says why: not a problem of the page
            assert [p for p in problems if "status of 422" not in p] == [], problems
