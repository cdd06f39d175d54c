"""The administrator's pages (issue 17): rounds (create, start and watch its progress, extend the whole round),
areas and schools (list, search, a school's page, add and edit), through pages only.

In the browser (Debian's Chromium, Playwright): every page at 1280 px and 390 px into
tests/artifacts/web-admin-*.png, axe-core clean. Over plain HTTP: each rule's refusal is shown beside the
field it is about, the pages are the administrator's alone, and a form without the session's CSRF token
changes nothing.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlmodel import func, select

from api.viewer import COOKIE, CSRF_FIELD
from db.engine import session_scope
from db.models import Round, School, SchoolEmail, SchoolRound
from domain.thai_time import to_bangkok
from tests.stack import SCHOOL, running_stack, unique_round
from tests.test_dashboard_browser import browser, require_browser
from tests.web import served
from tests.web.test_pages import looked_at, open_as, tab_to, web_session

TIMEOUT = 20_000  # ms: a fan-out runs its pages on the worker while the page watches


def local(instant: datetime) -> str:
    """What a datetime-local field holds: Bangkok wall time to the minute."""
    return to_bangkok(instant).strftime("%Y-%m-%dT%H:%M")


def round_form(rid: str, now: datetime, **changes) -> dict:
    return {"id": rid, "academic_year": "2567", "opens_at": local(now - timedelta(minutes=5)),
            "confirm_from": local(now + timedelta(hours=1)), "cutoff_at": local(now + timedelta(hours=8)),
            "final_exam_on": "", "reminders": "4:30, 1:00", "escalate": "on", "late_grace_days": "30", **changes}


def signed_in(stack, who: str) -> str:
    session_id, csrf = web_session(stack, who)
    stack.http.cookies.set(COOKIE, session_id)
    return csrf


def field_refusal(html: str, field_id: str, code: str) -> None:
    """The refusal is on the page, with `code`, and the field names it in its aria-describedby."""
    tag = re.search(rf'<(?:input|textarea|select|button)[^>]*id="{field_id}"[^>]*>', html)
    assert tag, f"no field {field_id}"
    described = re.search(r'aria-describedby="([^"]*)"', tag[0])
    assert described, f"{field_id} names no refusal: {tag[0]}"
    problem_id = next(i for i in described[1].split() if i.endswith("-problem"))
    assert re.search(rf'<p class="problem" id="{problem_id}" role="alert" lang="th" data-code="{code}">', html), \
        html[html.find('class="problem"') - 200:][:600]


# --- HTTP: refusals beside their fields, the administrator's alone, CSRF --------------------------------

async def test_a_rounds_broken_rule_is_shown_beside_the_field_it_is_about_and_nothing_is_created(
        time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        csrf = signed_in(stack, "admin")
        rid = unique_round()
        cases = [  # the field changed, the field the refusal stands beside, its code
            ({"cutoff_at": local(now - timedelta(hours=1))}, "rf-cutoff_at", "round_invalid"),  # closes before it opens
            ({"final_exam_on": to_bangkok(now + timedelta(days=3)).date().isoformat()}, "rf-final_exam_on",
             "round_invalid"),  # R7's exam after the cutoff
            ({"id": "no spaces/or slashes"}, "rf-id", "round_invalid"),
            ({"academic_year": "20"}, "rf-academic_year", "round_invalid"),
            ({"reminders": "soon"}, "rf-reminders", "form_invalid"),
            ({"opens_at": "not a time"}, "rf-opens_at", "form_invalid"),
        ]
        for change, field_id, code in cases:
            r = await stack.http.post("/admin/rounds", data={CSRF_FIELD: csrf, **round_form(rid, now, **change)})
            assert r.status_code == 422, (change, r.status_code, r.text[:300])
            field_refusal(r.text, field_id, code)
            assert "<small lang=\"en\">" in r.text  # English beside the Thai
        with session_scope(engine) as s:
            assert s.get(Round, rid) is None
        r = await stack.http.post("/admin/rounds", data={CSRF_FIELD: csrf, **round_form(rid, now)})
        assert r.status_code == 303 and r.headers["location"] == f"/admin/rounds/{rid}"
        r = await stack.http.get(f"/admin/rounds/{rid}?lang=en")  # the English switch
        assert r.status_code == 200 and f"<h1>Round {rid}</h1>" in r.text and ">Start the round</button>" in r.text
        r = await stack.http.post("/admin/rounds", data={CSRF_FIELD: csrf, **round_form(rid, now)})
        assert r.status_code == 409
        field_refusal(r.text, "rf-id", "round_exists")


async def test_a_schools_broken_rule_is_shown_beside_its_field(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        csrf = signed_in(stack, "admin")
        base = {CSRF_FIELD: csrf, "code": "1044449055", "name": "โรงเรียนทดสอบ", "area": "สพม.มหาสารคาม", "emails": ""}
        r = await stack.http.post("/admin/schools", data={**base, "code": "12345"})
        assert r.status_code == 422
        field_refusal(r.text, "sf-code", "school_code_format")
        r = await stack.http.post("/admin/schools", data={**base, "emails": "not-an-address"})
        assert r.status_code == 422
        field_refusal(r.text, "sf-emails", "form_invalid")
        # editing: the refusal comes back on the school's own page, the typed values kept
        r = await stack.http.post("/admin/schools", data={**base, "code": SCHOOL, "editing": "1", "name": "",
                                                          "emails": "dmc@tuayang.ac.th"})
        assert r.status_code == 422 and 'id="edit-school"' in r.text
        field_refusal(r.text, "sf-name", "form_invalid")
        with session_scope(engine) as s:
            assert s.get(School, "1044449055") is None
            assert s.get(School, SCHOOL).name == "โรงเรียนตัวอย่างวิทยา"
        r = await stack.http.get("/admin/schools/12")  # a made-up code in the address: said, not a 500
        assert r.status_code == 422 and 'data-code="school_code_format"' in r.text
        r = await stack.http.get("/admin/schools/1099999999")
        assert r.status_code == 404 and 'data-code="not_found"' in r.text


async def test_the_admin_pages_are_the_administrators_alone_and_forms_need_the_sessions_csrf_token(
        time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = unique_round()
        for who in ("district", "staff", "director"):
            csrf = signed_in(stack, who)
            for path in ("/admin/rounds", "/admin/schools", f"/admin/schools/{SCHOOL}"):
                r = await stack.http.get(path)
                assert r.status_code == 403 and 'data-code="forbidden"' in r.text, (who, path)
            r = await stack.http.post("/admin/rounds", data={CSRF_FIELD: csrf, **round_form(rid, now)})
            assert r.status_code == 403 and 'data-code="forbidden"' in r.text
        signed_in(stack, "admin")
        for data in ({}, {CSRF_FIELD: "not-the-token"}):
            r = await stack.http.post("/admin/rounds", data={**data, **round_form(rid, now)})
            assert r.status_code == 403 and 'data-code="csrf_failed"' in r.text
            r = await stack.http.post("/admin/schools", data={**data, "code": "1044449056", "name": "x", "area": "y"})
            assert r.status_code == 403 and 'data-code="csrf_failed"' in r.text
        with session_scope(engine) as s:
            assert s.get(Round, rid) is None and s.get(School, "1044449056") is None


# --- the browser: the administrator's day ---------------------------------------------------------------

@pytest.mark.slow  # a browser against uvicorn, and two fan-outs on the worker
async def test_admin_creates_starts_watches_and_extends_a_round_and_edits_a_school_through_the_pages(
        time_env, engine, settings):
    require_browser()
    from playwright.async_api import expect

    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = unique_round()
        form = round_form(rid, now)
        with session_scope(engine) as s:
            schools = s.exec(select(func.count()).select_from(School)).one()

        async with served(stack) as base, browser() as b:
            # the rounds page from the menu; the letter's fields, typed by keyboard
            page, problems = await open_as(b, base, stack, "admin", "/")
            await page.click('nav a[href="/admin/rounds"]')
            await expect(page.locator('nav a[aria-current="page"]')).to_have_attribute("href", "/admin/rounds")
            await looked_at(page, "admin-rounds")
            await tab_to(page, "#rf-id")
            await page.keyboard.type(rid)
            await page.keyboard.press("Tab")
            await page.keyboard.type("2567")
            for name in ("opens_at", "confirm_from", "cutoff_at"):
                await page.fill(f"#rf-{name}", form[name])
            await tab_to(page, "#create")
            async with page.expect_navigation():
                await page.keyboard.press("Enter")

            # the new round: its schedule in Thai, not started; start it
            await expect(page.locator("h1")).to_have_text(f"รอบ {rid}")
            await expect(page.locator("#round-started")).to_have_text("ยังไม่เริ่ม")
            await expect(page.locator("#round-cutoff")).to_have_text(re.compile(r"^\d+ \S+ \d{4} \d\d\.\d\d น\.$"))
            await looked_at(page, "admin-round-new")
            await page.click("#start-button")

            # the start's progress, updating itself until every school has its work
            await expect(page.locator("#progress")).to_have_attribute("data-finished", "yes", timeout=TIMEOUT)
            await expect(page.locator("#progress-state")).to_have_text("เสร็จแล้ว")
            await expect(page.locator("#progress-count")).to_have_text(
                f"เริ่มงานของโรงเรียนแล้ว {schools} จาก {schools} โรงเรียน")
            await expect(page.locator("#progress-projection")).to_have_text(
                f"มีงานของโรงเรียนแล้ว {schools} จาก {schools} โรงเรียน")
            await looked_at(page, "admin-round-started")

            # extending: earlier than the current cutoff is refused beside the field; later moves every school
            await page.fill("#extend-cutoff", local(now + timedelta(hours=4)))
            await page.fill("#extend-reason", "ระบบของสำนักงานขัดข้อง")
            await page.click("#extend-button")
            problem = page.locator("#cutoff_at-problem")
            await expect(problem).to_have_attribute("data-code", "extension_not_later")
            await expect(problem).to_contain_text("การขยายเวลาต้องเลื่อนกำหนดส่งให้ช้ากว่าเดิม")
            await expect(page.locator("#extend-cutoff")).to_have_attribute("aria-describedby", "cutoff_at-problem")
            await looked_at(page, "admin-round-extend-refused")
            new_cutoff = now + timedelta(days=1, hours=8)
            await page.fill("#extend-cutoff", local(new_cutoff))
            await page.click("#extend-button")
            await expect(page.locator("#notice")).to_have_text("ส่งคำสั่งขยายเวลาแล้ว ดูความคืบหน้าด้านล่าง")
            await expect(page.locator("#progress")).to_have_attribute("data-finished", "yes", timeout=TIMEOUT)
            await expect(page.locator("#progress-state")).to_have_text("เสร็จแล้ว")
            await looked_at(page, "admin-round-extended")

            # areas and schools: search, a school's page with its round, edit its emails
            await page.click('nav a[href="/admin/schools"]')
            await expect(page.locator('#areas [data-area="สพม.มหาสารคาม"]')).to_contain_text("โรงเรียน")
            await page.fill("#q", "ตัวอย่าง")
            await page.click("#search button")
            await expect(page.locator("#schools tbody tr")).to_have_count(1)
            await looked_at(page, "admin-schools")
            await page.click(f'#schools a[href="/admin/schools/{SCHOOL}"]')
            await expect(page.locator(f'#school-rounds [data-round="{rid}"]')).to_contain_text("เปิดปรับปรุงข้อมูล")
            await expect(page.locator("#emails")).to_contain_text("dmc@tuayang.ac.th")
            await looked_at(page, "admin-school")
            await page.fill("#sf-emails", "dmc@tuayang.ac.th\nregister@tuayang.ac.th")
            await page.click("#save-school")
            await expect(page.locator("#notice")).to_have_text("บันทึกข้อมูลโรงเรียนแล้ว")
            await expect(page.locator("#emails")).to_contain_text("register@tuayang.ac.th")
            await looked_at(page, "admin-school-saved")
            # the refused extension answers its refusal's status (422) with the page that says why: not a problem
            assert [p for p in problems if "status of 422" not in p] == [], problems

        with session_scope(engine) as s:
            assert s.get(Round, rid).cutoff_at == new_cutoff.replace(second=0, microsecond=0)
            cutoffs = set(s.exec(select(SchoolRound.cutoff_at).where(SchoolRound.round_id == rid)))
            assert cutoffs == {new_cutoff.replace(second=0, microsecond=0)}
            assert set(s.exec(select(SchoolEmail.email).where(SchoolEmail.school_code == SCHOOL))) == \
                {"dmc@tuayang.ac.th", "register@tuayang.ac.th"}
