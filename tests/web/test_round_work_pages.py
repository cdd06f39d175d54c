"""The staff's round work through pages (issue 17): R10's menus 3.2.2 → 3.2.2.1 → 3.2.2.2 a class at a time, R11's
existence record by record, then the confirmation on the home.

The pages send what the API's routes do (api/routers/roster.py, api/routers/existence.py), so the workflow's
rules answer them: the order of the menus, an exception without its note, each shown beside what caused it.
The round is seeded with the API as tests/web/test_pages.py does; the journey itself is pages only.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from sqlmodel import select

from api.viewer import COOKIE, CSRF_FIELD
from db.engine import session_scope
from db.models import EndOfYearRecord, ExistenceMark, SchoolRound
from domain.ids import national_id_check_digit
from tests.stack import HEADER, SCHOOL, SCHOOL_2, add_round, running_stack, unique_round
from tests.test_dashboard_browser import browser, require_browser
from tests.timing import bangkok_on_day, skip_to
from tests.web import served
from tests.web.test_pages import looked_at, open_as, tab_to, web_session


def _nid(first12: str) -> str:
    return first12 + str(national_id_check_digit(first12))


PUPILS = {  # name: (id, grade, room, number)
    "สมชาย": (_nid("144990070001"), "ม.1", "1", "101"),
    "สมหญิง": (_nid("144990070002"), "ม.1", "1", "102"),
    "มานะ": (_nid("144990070003"), "ม.3", "1", "301"),
}


async def seeded_round(stack, confirm_from, cutoff) -> str:
    """A started round whose school has three students and nothing of R10 or R11 recorded yet."""
    rid = unique_round()
    now = await stack.now()
    add_round(stack.engine, rid, now - timedelta(minutes=1), confirm_from, cutoff)
    await stack.start_round(rid)
    csv = HEADER + "".join(f"{SCHOOL},โรงเรียน,{sid},{grade},{room},{no},ช,เด็กชาย,{name},ทดสอบ,01/01/2555,ใช่\n"
                           for name, (sid, grade, room, no) in PUPILS.items())
    r = await stack.http.post(f"/rounds/{rid}/students/import", headers=stack.auth("staff"),
                              files={"file": ("r.csv", csv.encode(), "text/csv")})
    assert r.status_code == 200 and r.json()["applied"] == 3, r.text
    return rid


def work(rid: str, tail: str) -> str:
    return f"/school/{SCHOOL}/rounds/{quote(rid)}/{tail}"


# --- HTTP: the rules' refusals beside their field, scope, CSRF, a bad form is not a 500 --------------------

async def test_a_later_menu_before_3_2_2_is_complete_is_refused_beside_the_save_button(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = await seeded_round(stack, now + timedelta(hours=1), now + timedelta(hours=8))
        session_id, csrf = web_session(stack, "staff")
        stack.http.cookies.set(COOKIE, session_id)
        a, b = PUPILS["สมชาย"][0], PUPILS["สมหญิง"][0]
        # 3.2.2 for ม.1/1 with one row the rules refuse: graduated is not for ม.1; the other row is saved
        r = await stack.http.post(work(rid, "end-of-year"), data={
            CSRF_FIELD: csrf, "step": "3.2.2", "class": "ม.1/1", "student": [a, b],
            "result-0": "promoted", "result-1": "graduated"})
        assert r.status_code == 422, r.text[:300]
        assert 'data-code="not_graduating_grade"' in r.text and 'id="row-1-problem"' in r.text
        assert re.search(r'id="result-1"[^>]*aria-describedby="row-1-problem"', r.text)
        r = await stack.http.post(work(rid, "end-of-year"), data={
            CSRF_FIELD: csrf, "step": "3.2.2", "class": "ม.1/1", "student": [a, b],
            "result-0": "promoted", "result-1": "repeat"})
        assert r.status_code == 303 and "saved=2" in r.headers["location"], r.text[:300]
        # 3.2.2.1 while ม.3's result is missing: the letter's order, in Thai, beside the button
        r = await stack.http.post(work(rid, "end-of-year"), data={
            CSRF_FIELD: csrf, "step": "3.2.2.1", "class": "ม.1/1", "student": [b], "reasons-0": "attendance"})
        assert r.status_code == 409 and 'data-code="step_order"' in r.text, r.text[:300]
        assert "ต้องบันทึกเมนู 3.2.2 ให้ครบทุกคนก่อนเมนู 3.2.2.1" in r.text
        assert re.search(r'id="save"[^>]*aria-describedby="menu-lead save-problem"', r.text)
        assert 'value="attendance" checked' in r.text  # what was sent is kept
        # a made-up result is the form's refusal, not a server error
        r = await stack.http.post(work(rid, "end-of-year"), data={
            CSRF_FIELD: csrf, "step": "3.2.2", "class": "ม.1/1", "student": [a], "result-0": "nonsense"})
        assert r.status_code == 422 and 'data-code="invalid_request"' in r.text
        with session_scope(engine) as s:
            results = {rec.result for rec in s.exec(select(EndOfYearRecord).where(EndOfYearRecord.round_id == rid))}
        assert results == {"promoted", "repeat"}


async def test_round_work_pages_are_the_own_schools_staffs_and_need_the_forms_token(time_env, engine, settings):

    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = await seeded_round(stack, now + timedelta(hours=1), now + timedelta(hours=8))
        a = PUPILS["สมชาย"][0]
        for who, status in (("director", 403), ("other_staff", 403), ("district", 403)):
            stack.http.cookies.set(COOKIE, web_session(stack, who)[0])
            for tail in ("end-of-year", "existence"):
                r = await stack.http.get(work(rid, tail))
                assert r.status_code == status and 'data-code="forbidden"' in r.text, (who, tail, r.text[:200])
                assert "สมชาย" not in r.text
        session_id, csrf = web_session(stack, "other_staff")
        stack.http.cookies.set(COOKIE, session_id)
        r = await stack.http.post(work(rid, "existence/present"), data={CSRF_FIELD: csrf, "who": "everyone"})
        assert r.status_code == 403 and 'data-code="forbidden"' in r.text
        session_id, csrf = web_session(stack, "staff")
        stack.http.cookies.set(COOKIE, session_id)
        r = await stack.http.post(work(rid, "existence/present"), data={"who": "everyone"})  # no token
        assert r.status_code == 403 and 'data-code="csrf_failed"' in r.text
        r = await stack.http.post(work(rid, "existence/exception"), data={
            CSRF_FIELD: csrf, "student": a, "kind": "transferred_out", "note": ""})
        assert r.status_code == 422 and 'data-code="exception_note_required"' in r.text
        assert re.search(r'id="exc-note"[^>]*aria-describedby="exc-note-hint note-problem"', r.text)
        r = await stack.http.post(work(rid, "existence/exception"), data={
            CSRF_FIELD: csrf, "student": a, "kind": "no-such-kind"})
        assert r.status_code == 422 and 'data-code="invalid_request"' in r.text
        with session_scope(engine) as s:
            assert s.exec(select(ExistenceMark).where(ExistenceMark.round_id == rid)).first() is None


# --- the browser: the staff's day, pages only -------------------------------------------------------

@pytest.mark.slow  # a browser against uvicorn
async def test_staff_records_the_three_menus_and_existence_then_confirms_through_pages(time_env, engine, settings):
    require_browser()
    from playwright.async_api import expect


    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        confirm_from, cutoff = bangkok_on_day(now, 8, 30), bangkok_on_day(now, 16, 30)
        rid = await seeded_round(stack, confirm_from, cutoff)
        home = f"/?round={quote(rid)}"

        async with served(stack) as base, browser() as b:
            page, problems = await open_as(b, base, stack, "staff", home)
            await expect(page.locator('[data-task="menu_322"] .coming')).to_have_count(0)
            await page.click('[data-task="menu_322"] > .task-line a')
            # 3.2.2, ม.1/1: promoted is proposed for everyone; one exception changed, the class saved
            await expect(page.locator("#class")).to_have_value("ม.1/1")
            await expect(page.locator("#result-0")).to_have_value("promoted")
            await expect(page.locator("#result-1")).to_have_value("promoted")
            await looked_at(page, "work-menu-322")
            await page.select_option("#result-1", "repeat")
            await page.click("#save")
            await expect(page.locator("#saved")).to_have_text("บันทึกแล้ว 2 คน")

            # 3.2.2.1 before ม.3 has its result: refused, in Thai, beside the button
            await page.click('.steps a:text("3.2.2.1")')
            await expect(page.locator("#menu-table tbody tr")).to_have_count(1)
            await page.check('input[name="reasons-0"][value="attendance"]')
            await page.click("#save")
            await expect(page.locator("#save-problem")).to_contain_text("ต้องบันทึกเมนู 3.2.2 ให้ครบทุกคนก่อนเมนู 3.2.2.1")
            await looked_at(page, "work-menu-refused")

            # 3.2.2 for ม.3/1: graduated is proposed; saved by keyboard
            await page.click('.steps a:text("3.2.2")')
            await page.select_option("#class", "ม.3/1")
            await page.click("#choose-class button")
            await expect(page.locator("#result-0")).to_have_value("graduated")
            await tab_to(page, "#save")
            async with page.expect_navigation():
                await page.keyboard.press("Enter")
            await expect(page.locator("#saved")).to_have_text("บันทึกแล้ว 1 คน")

            # 3.2.2.1 and 3.2.2.2 now go through
            await page.goto(base + work(rid, "end-of-year?step=3.2.2.1&class=" + quote("ม.1/1")))
            await page.check('input[name="reasons-0"][value="attendance"]')
            await page.click("#save")
            await expect(page.locator("#saved")).to_have_text("บันทึกแล้ว 1 คน")
            await looked_at(page, "work-menu-3221")
            await page.click('.steps a:text("3.2.2.2")')
            await page.select_option("#class", "ม.3/1")
            await page.click("#choose-class button")
            await page.select_option("#destination-0", "vocational")
            await page.click("#save")
            await expect(page.locator("#saved")).to_have_text("บันทึกแล้ว 1 คน")
            await looked_at(page, "work-menu-3222")

            # R11: an exception needs its note; one by one; then everyone left
            await page.click(".next a >> nth=0")
            await expect(page.locator('#counts [data-count="unmarked"]')).to_have_text("3")
            await expect(page.locator("#marks tbody tr")).to_have_count(2)  # a class at a time: ม.1/1 first
            await looked_at(page, "work-existence")
            await page.select_option("#class", "")  # every class: the classes with what is left in each
            await page.click("#choose-class button")
            await expect(page.locator("#classes tbody tr")).to_have_count(2)
            await expect(page.locator('#classes tr[data-class="ม.1/1"]')).to_have_attribute("data-unmarked", "2")
            await page.select_option("#exc-student", PUPILS["มานะ"][0])
            await page.select_option("#exc-kind", "transferred_out")
            await page.click("#exception-save")
            await expect(page.locator("#note-problem")).to_contain_text("ต้องระบุหมายเหตุ")
            await expect(page.locator("#exc-note")).to_have_attribute("aria-invalid", "true")
            await looked_at(page, "work-existence-refused")
            await page.fill("#exc-note", "ย้ายไปโรงเรียนในกรุงเทพฯ 1 พ.ค.")
            await page.click("#exception-save")
            await expect(page.locator("#done")).to_have_text("บันทึกข้อยกเว้นแล้ว")
            await page.click('#classes a:text("ม.1 ห้อง 1")')  # a class's own list: one student at a time
            row = page.locator(f'tr[data-student="{PUPILS["สมชาย"][0]}"]')
            await row.locator("button").click()
            await expect(page.locator(f'tr[data-student="{PUPILS["สมชาย"][0]}"]')).to_have_attribute("data-mark",
                                                                                                    "present")
            await expect(page.locator('#counts [data-count="unmarked"]')).to_have_text("1")
            await page.click("#everyone")
            await expect(page.locator('#counts [data-count="unmarked"]')).to_have_text("0")
            await expect(page.locator('#counts [data-count="exceptions"]')).to_have_text("1")
            await expect(page.locator("#complete")).to_be_visible()
            await looked_at(page, "work-existence-complete")

            # the home: every item of R10 and R11 done; the window opens and the staff confirms
            await skip_to(stack, confirm_from)
            await page.goto(home)
            for task in ("menu_322", "menu_3221", "menu_3222", "existence"):
                await expect(page.locator(f'[data-task="{task}"]')).to_have_attribute("data-done", "yes")
            await expect(page.locator('#confirm-summary [data-count="exceptions"]')).to_have_text("1")
            await page.click("#confirm-button")
            await expect(page.locator("#stage")).to_have_text("ยืนยันข้อมูลแล้ว")
            # a refused form answers its refusal's status (422: the note) with the page that says why
            assert [p for p in problems if "status of 422" not in p] == [], problems
        with session_scope(engine) as s:
            assert s.get(SchoolRound, (rid, SCHOOL)).confirmed_by is not None


# --- the school's cases: dropouts, duplicates, ID corrections (web/case_pages.py) -----------------------------

@pytest.fixture(scope="module")
async def world(migrated_template, tmp_path_factory):
    """A dropout request of SCHOOL with evidence, SCHOOL's claim on SCHOOL_2's student opened as a case and
    declared present by SCHOOL, an ID correction of SCHOOL pending (tests/api_world.py)."""
    from tests.api_world import fresh_db_url, populated_world

    async with populated_world(fresh_db_url(migrated_template, tmp_path_factory)) as w:
        yield w


def cases(w) -> str:
    return f"/school/{SCHOOL}/rounds/{quote(w.round_id)}/cases"


def as_user(w, who: str) -> str:
    session_id, csrf = web_session(w.stack, who)
    w.stack.http.cookies.set(COOKIE, session_id)
    return csrf


async def test_the_cases_page_lists_the_schools_requests_and_shows_a_claimant_nothing_of_the_holder(world):
    as_user(world, "staff")
    r = await world.stack.http.get(cases(world))
    assert r.status_code == 200, r.text[:300]
    assert f'data-ref="{world.dropout}"' in r.text and f'data-ref="{world.correction}"' in r.text
    assert f'data-case="{world.case_id}"' in r.text  # SCHOOL's own claim, declared present
    assert "โรงเรียนแจ้งแล้วว่านักเรียนอยู่ที่โรงเรียนนี้" in r.text
    assert SCHOOL_2 not in r.text and "บ้านทดลองศึกษา" not in r.text  # issue 15: nothing of the holder
    assert f"รหัสโรงเรียน: {SCHOOL}" in r.text  # the template to copy into the email
    assert "ไม่มีเรื่องนักเรียนซ้ำซ้อน" not in r.text
    for who in ("director", "other_staff", "district"):  # the school's own staff only
        as_user(world, who)
        r = await world.stack.http.get(cases(world))
        assert r.status_code == 403 and world.dropout not in r.text, (who, r.text[:200])
    as_user(world, "staff2")  # the holder school, same area: its own page is about its own school
    r = await world.stack.http.get(f"/school/{SCHOOL_2}/rounds/{quote(world.round_id)}/cases")
    assert r.status_code == 200 and f'data-case="{world.case_id}"' in r.text
    assert world.dropout not in r.text and world.correction not in r.text


async def test_a_dropout_request_its_thread_and_its_withdrawal_through_the_pages(world):
    from tests.api_world import DROPOUT_PDF, DROPOUT_PUPIL

    csrf = as_user(world, "staff")
    url = cases(world)
    r = await world.stack.http.post(url + "/dropouts", data={CSRF_FIELD: csrf, "student": DROPOUT_PUPIL,
                                                             "reason": "not-a-reason", "details": "ไม่มาเรียน"})
    assert r.status_code == 422 and 'id="d-reason-problem"' in r.text and "dropout_reason_unknown" in r.text
    r = await world.stack.http.post(url + "/dropouts", data={CSRF_FIELD: csrf, "student": DROPOUT_PUPIL,
                                                             "reason": "low_income", "details": "ไม่มาเรียน"})
    assert r.status_code == 409 and 'id="d-student-problem"' in r.text and "dropout_already_requested" in r.text
    thread = f"{url}/dropouts/{world.dropout}"
    r = await world.stack.http.get(thread)
    assert r.status_code == 200 and "ไม่มาเรียนตั้งแต่ ก.พ." in r.text
    r = await world.stack.http.get(f"{thread}/evidence/{world.dropout_evidence}")
    assert r.status_code == 200 and r.content == DROPOUT_PDF
    r = await world.stack.http.post(thread + "/comments", data={CSRF_FIELD: csrf, "text": "แนบบันทึกเยี่ยมบ้านเพิ่ม"},
                                    files={"evidence": ("เยี่ยมบ้าน.pdf", b"%PDF-1.4\n% visit 2\n%%EOF\n",
                                                        "application/pdf")})
    assert r.status_code == 303, r.text[:300]
    r = await world.stack.http.get(r.headers["location"])
    assert "แนบบันทึกเยี่ยมบ้านเพิ่ม" in r.text and r.text.count("/evidence/") == 2
    r = await world.stack.http.post(thread + "/withdrawal", data={CSRF_FIELD: csrf, "reason": "  "})
    assert r.status_code == 422 and 'id="reason-problem"' in r.text and "ต้องระบุเหตุผลที่ถอนคำขอ" in r.text
    as_user(world, "staff2")  # another school of the same area: the request is not admitted to exist
    r = await world.stack.http.get(f"/school/{SCHOOL_2}/rounds/{quote(world.round_id)}/cases/dropouts/{world.dropout}")
    assert r.status_code == 404
    csrf = as_user(world, "staff")
    r = await world.stack.http.post(thread + "/withdrawal", data={CSRF_FIELD: csrf, "reason": "นักเรียนกลับมาเรียนแล้ว"})
    assert r.status_code == 303
    r = await world.stack.http.get(r.headers["location"])
    assert 'data-status="withdrawn"' in r.text and 'id="reply-form"' not in r.text


async def test_the_holder_school_declares_a_duplicate_through_the_page(world):
    csrf = as_user(world, "staff2")
    url = f"/school/{SCHOOL_2}/rounds/{quote(world.round_id)}/cases/duplicates/{world.case_id}"
    r = await world.stack.http.post(url, data={CSRF_FIELD: csrf})  # neither present nor absent chosen
    assert r.status_code == 422 and 'data-code="action_invalid"' in r.text and 'aria-describedby="case-1-problem"' in r.text
    r = await world.stack.http.post(url, data={CSRF_FIELD: csrf, "action": "absent"})
    assert r.status_code == 303, r.text[:300]
    r = await world.stack.http.get(r.headers["location"])
    assert "ยุติแล้ว นักเรียนไม่อยู่ที่โรงเรียนนี้" in r.text  # SCHOOL declared present: the case is settled
    as_user(world, "staff")
    r = await world.stack.http.get(cases(world))
    assert "ยุติแล้ว นักเรียนอยู่ที่โรงเรียนนี้" in r.text and SCHOOL_2 not in r.text


@pytest.mark.slow  # a browser against uvicorn
async def test_the_cases_pages_look_right_at_both_widths(world):
    require_browser()
    from playwright.async_api import expect

    async with served(world.stack) as base, browser() as b:
        page, problems = await open_as(b, base, world.stack, "staff", cases(world))
        await expect(page.locator("#dropouts")).to_be_visible()
        await looked_at(page, "work-cases")
        await page.click(f'#dropouts a:text("{world.dropout}")')
        await expect(page.locator("#thread li").first).to_be_visible()
        await looked_at(page, "work-dropout")
        assert problems == [], problems
