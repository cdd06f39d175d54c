"""The workbench's shell and homes (issue 17): the staff confirms and the director certifies through pages only.

In a real browser (Debian's Chromium driven by Playwright, as tests/test_dashboard_browser.py): every page
at 1280 px and 390 px into tests/artifacts/web-*.png, axe-core clean on each (axe-playwright-python), the
confirmation reachable and operable with the keyboard alone. Over plain HTTP: CSRF on the forms, the English
switch, and pages that take the session only.

The browser is signed in by a web session opened in the database and handed over as its cookie, which is
what a login leaves behind (the password login, web/auth.py, has its own tests).
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from api.viewer import COOKIE, CSRF_FIELD, LANG_COOKIE
from db.directory import user_by_token
from db.engine import session_scope
from db.models import SchoolRound, utcnow
from db.web_sessions import SessionPolicy, open_session
from domain.thai_time import bangkok
from tests.stack import SCHOOL, add_round, make_ready, running_stack, unique_round
from tests.test_dashboard_browser import browser, require_browser
from tests.timing import bangkok_on_day, skip_to
from tests.web import artifact, served
from web import i18n
from web.i18n import MESSAGES, time_left

TIMEOUT = 15_000  # ms
WIDTHS = {"desktop": 1280, "phone": 390}


def web_session(stack, who: str) -> tuple[str, str]:
    """A live web session of the user (what a login opens): the cookie's value and the session's CSRF token."""
    with session_scope(stack.engine) as s:
        user = user_by_token(s, stack.tokens[who])
        row, session_id = open_session(s, user, utcnow(), SessionPolicy(timedelta(hours=1), timedelta(hours=8)))
        return session_id, row.csrf_secret


async def start_round(stack, opens_at: datetime, confirm_from: datetime, cutoff: datetime) -> str:
    rid = unique_round()
    add_round(stack.engine, rid, opens_at, confirm_from, cutoff)
    await stack.start_round(rid)
    await make_ready(stack, rid, SCHOOL)
    return rid


# --- pure: the words of the home -------------------------------------------------------------------

def test_time_left_reads_in_words_up_to_the_cutoff_in_bangkok_time():
    cutoff = bangkok(2024, 4, 30, 16, 30)
    assert time_left(cutoff - timedelta(hours=3, minutes=20), cutoff, "th") == "เหลือ 3 ชั่วโมง 20 นาที ก่อนปิดระบบ 16.30 น."
    assert time_left(cutoff - timedelta(hours=3, minutes=20), cutoff, "en") == \
        "3 hours 20 minutes left before the system closes at 16:30"
    assert time_left(cutoff - timedelta(days=1, minutes=1), cutoff, "th") == "เหลือ 1 วัน 1 นาที ก่อนปิดระบบ 16.30 น."
    assert time_left(cutoff, cutoff, "th") == "ปิดระบบแล้ว"


def phrase_keys(source: str) -> list[str]:
    """The keys of a catalogue module's `PHRASES` literal as written, a repeated one as often as it is written
    (the dict itself would keep only the last)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.AnnAssign | ast.Assign) and isinstance(node.value, ast.Dict) and any(
                isinstance(target, ast.Name) and target.id == "PHRASES"
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])):
            return [key.value for key in node.value.keys if isinstance(key, ast.Constant)]
    return []


def test_every_phrase_has_thai_and_english():
    """Every module of the catalogue (web/i18n/), read from its source: each phrase has both languages, each key
    stands once in all of them (a second one would silently replace the first), and `MESSAGES` is exactly them."""
    modules = sorted((Path(i18n.__file__).parent).glob("[!_]*.py"))
    written = {path.stem: phrase_keys(path.read_text(encoding="utf-8")) for path in modules}
    assert all(written.values()) and len(written) >= 8, written.keys()
    keys = [key for group in written.values() for key in group]
    twice = {key: [m for m, group in written.items() if key in group] for key, n in Counter(keys).items() if n > 1}
    assert not twice, twice
    assert set(keys) == set(MESSAGES) and len(keys) == len(MESSAGES)
    missing = [key for key, (th, en) in MESSAGES.items() if not th.strip() or not en.strip()]
    assert not missing, missing
    # the check itself sees a key written twice, in one literal or in two modules
    assert phrase_keys('PHRASES: dict = {"a": ("ก", "a"), "a": ("ข", "b")}') == ["a", "a"]


# --- HTTP: sessions only, CSRF, the English switch ------------------------------------------------

async def test_a_form_post_without_the_sessions_csrf_token_is_refused(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = await start_round(stack, now - timedelta(hours=2), now - timedelta(hours=1), now + timedelta(hours=8))
        session_id, csrf = web_session(stack, "staff")
        stack.http.cookies.set(COOKIE, session_id)
        url = f"/school/{SCHOOL}/rounds/{rid}/confirm"
        for data in ({}, {CSRF_FIELD: "not-the-token"}, {CSRF_FIELD: web_session(stack, "director")[1]}):
            r = await stack.http.post(url, data=data)
            assert r.status_code == 403 and 'data-code="csrf_failed"' in r.text, r.text[:300]
            assert "แบบฟอร์มนี้ไม่ได้ส่งมาจากหน้าของระบบ" in r.text
        with session_scope(engine) as s:
            assert s.get(SchoolRound, (rid, SCHOOL)).confirmed_at is None  # nothing was confirmed
        r = await stack.http.post(url, data={CSRF_FIELD: csrf})  # the page's own form: confirmed
        assert r.status_code == 303 and r.headers["location"] == f"/?round={rid}", r.text[:300]
        with session_scope(engine) as s:
            assert s.get(SchoolRound, (rid, SCHOOL)).confirmed_by is not None


async def test_pages_take_the_web_session_only_and_send_others_to_the_login_page(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        r = await stack.http.get("/?round=x", headers=stack.auth("staff"))  # a bearer token is for machines
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/%3Fround%3Dx"
        stack.http.cookies.set(COOKIE, "a-made-up-session-id")
        r = await stack.http.get("/")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        assert f'{COOKIE}=""' in r.headers.get("set-cookie", "")  # the browser forgets it


async def test_the_english_switch_keeps_the_page_and_is_remembered(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = await start_round(stack, now - timedelta(hours=2), now - timedelta(hours=1), now + timedelta(hours=8))
        stack.http.cookies.set(COOKIE, web_session(stack, "staff")[0])
        r = await stack.http.get(f"/?round={rid}")
        assert r.status_code == 200 and '<html lang="th">' in r.text and "ยืนยันข้อมูล" in r.text
        assert f'href="/?round={rid}&amp;lang=en"' in r.text  # the same page, in English
        r = await stack.http.get(f"/?round={rid}&lang=en")
        assert r.status_code == 200 and '<html lang="en">' in r.text
        assert "What is left to do, in order" in r.text and ">Confirm</button>" in r.text
        assert "ยืนยันข้อมูล" not in r.text
        assert f"{LANG_COOKIE}=en" in r.headers["set-cookie"]
        stack.http.cookies.set(LANG_COOKIE, "en")
        r = await stack.http.get(f"/?round={rid}")  # remembered on the next page
        assert '<html lang="en">' in r.text and f'href="/?round={rid}&amp;lang=th"' in r.text


# --- the browser: each role's page, looked at, measured with axe, at both widths -------------------

async def open_as(b, base: str, stack, who: str, path: str):
    page, problems = await new_page(b, base, web_session(stack, who)[0])
    await page.goto(path)
    return page, problems


async def new_page(b, base: str, session_id: str | None = None):
    """A page in a browser context of its own (Thai, a time zone far from Bangkok's), signed in when given a session
    id; answers it and the list of problems (script errors, failed loads) it reports."""
    context = await b.new_context(base_url=base, locale="th-TH", timezone_id="America/New_York",
                                  viewport={"width": WIDTHS["desktop"], "height": 900})
    if session_id:
        await context.add_cookies([{"name": COOKIE, "value": session_id, "url": base}])
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    # a refused decision answers its refusal's status (409) with the page that says why: not a problem of the page
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" and "status of 409" not in msg.text else None)
    return page, problems


async def looked_at(page, name: str) -> None:
    """Screenshots at desktop and phone width, and no axe-core violation at either."""
    from axe_playwright_python.async_playwright import Axe

    for label, width in WIDTHS.items():
        await page.set_viewport_size({"width": width, "height": 900})
        await page.screenshot(path=str(artifact(f"web-{name}-{label}.png")), full_page=True)
        results = await Axe().run(page)
        assert results.violations_count == 0, f"{name} at {width} px:\n{results.generate_report()}"
        overflow = await page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} scrolls sideways at {width} px"
    await page.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})


async def tab_to(page, selector: str, limit: int = 40) -> None:
    """Moves the focus with Tab alone until it is on `selector`."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await page.evaluate("(s) => document.activeElement === document.querySelector(s)", selector):
            return
    raise AssertionError(f"{selector} cannot be reached with Tab")


@pytest.mark.slow  # a browser against uvicorn
async def test_staff_confirms_and_the_director_certifies_through_the_pages(time_env, engine, settings):
    require_browser()
    from playwright.async_api import expect

    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        confirm_from, cutoff = bangkok_on_day(now, 8, 30), bangkok_on_day(now, 16, 30)
        rid = await start_round(stack, now - timedelta(minutes=1), confirm_from, cutoff)
        home = f"/?round={quote(rid)}"

        async with served(stack) as base, browser() as b:
            # the staff's home: the stage, the time left, what is left to do, in the letter's order
            page, problems = await open_as(b, base, stack, "staff", home)
            await expect(page.locator("#stage")).to_have_text("เปิดปรับปรุงข้อมูล")
            await expect(page.locator("#time-left")).to_have_text(re.compile(r"^เหลือ (\d+ วัน )?(\d+ ชั่วโมง )?(\d+ นาที )?"
                                                                            r"ก่อนปิดระบบ 16\.30 น\.$"))
            tasks = page.locator("#tasks > li")
            assert await tasks.evaluate_all("(items) => items.map(i => i.dataset.task)") == \
                ["profile", "roster", "menu_322", "existence", "cases"]
            await expect(page.locator('[data-task="roster"]')).to_contain_text("นักเรียน 1 คน")
            await expect(page.locator('[data-task="menu_322"]')).to_have_attribute("data-done", "yes")
            await expect(page.locator('[data-task="existence"]')).to_contain_text("มีตัวตนจริง 1 คน")
            await expect(page.locator('[data-task="profile"]')).to_contain_text("ยังขาด: โทรศัพท์, ที่อยู่, ชื่อผู้อำนวยการ")
            for task in ("profile", "roster", "menu_322", "existence", "cases"):
                await expect(page.locator(f'[data-task="{task}"] a').first).to_have_attribute("href", re.compile("^/"))
            await expect(page.locator("#confirm-summary")).to_contain_text("โรงเรียนตัวอย่างวิทยา")
            await looked_at(page, "staff-home")

            # keyboard only: Tab to the confirmation, Enter; too early, and the page says why in Thai
            await tab_to(page, "#confirm-button")
            async with page.expect_navigation():
                await page.keyboard.press("Enter")
            problem = page.locator("#confirm-problem")
            await expect(problem).to_have_attribute("data-code", "window_not_open")
            await expect(problem).to_contain_text("ยังไม่ถึงเวลายืนยัน/รับรองข้อมูล เริ่มได้")
            await expect(page.locator("#confirm-button")).to_have_attribute("aria-describedby",
                                                                            re.compile(r"\bconfirm-problem\b"))
            await looked_at(page, "staff-refused")

            # the window opens: the same form confirms, and the home says who confirmed and when
            await skip_to(stack, confirm_from)
            await page.goto(home)
            await expect(page.locator("#stage")).to_have_text("ช่วงยืนยันข้อมูล")
            await tab_to(page, "#confirm-button")
            async with page.expect_navigation():
                await page.keyboard.press("Enter")
            await expect(page.locator("#stage")).to_have_text("ยืนยันข้อมูลแล้ว")
            await expect(page.locator("#confirmed-by")).to_contain_text(re.compile(r"ครูธุรการ เมื่อ .* 08\.\d\d น\."))
            await expect(page.locator("#withdraw-form")).to_be_visible()
            await expect(page.locator('[data-task="existence"]')).to_have_attribute("data-done", "yes")
            await looked_at(page, "staff-confirmed")
            assert problems == [], problems

            # the director: the summary the staff confirmed, one button, certified
            page, problems = await open_as(b, base, stack, "director", home)
            await expect(page.locator("#certify-summary")).to_contain_text("ครูธุรการ")
            await expect(page.locator('#certify-summary [data-count="students"]')).to_have_text("1")
            await expect(page.locator("#as-confirmed")).to_have_text("นักเรียน 1 คน มีตัวตนอยู่จริง 1 คน ข้อยกเว้น 0 คน")
            await expect(page.locator("#changed-since")).to_have_count(0)  # nothing decided since the confirmation
            await expect(page.locator("form")).to_have_count(2)  # certify, and log out: nothing else to change
            await looked_at(page, "director-home")
            await page.click("#certify-button")
            await expect(page.locator("#stage")).to_have_text("ผู้อำนวยการรับรองแล้ว")
            await expect(page.locator("#certified-by")).to_contain_text("ผอ.โรงเรียน")
            await looked_at(page, "director-certified")
            assert problems == [], problems
        with session_scope(engine) as s:
            assert s.get(SchoolRound, (rid, SCHOOL)).certified_by is not None


@pytest.mark.slow  # a browser against uvicorn
async def test_officers_home_counts_the_work_waiting_and_links_the_dashboard(time_env, engine, settings):
    require_browser()
    from playwright.async_api import expect

    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        confirm_from, cutoff = bangkok_on_day(now, 8, 30), bangkok_on_day(now, 16, 30)
        rid = await start_round(stack, now - timedelta(minutes=1), confirm_from, cutoff)
        await skip_to(stack, cutoff + timedelta(minutes=1))  # every school of the area missed the cutoff

        async with served(stack) as base, browser() as b:
            page, problems = await open_as(b, base, stack, "district", "/")
            await expect(page.locator(".scope")).to_contain_text(f"สพม.มหาสารคาม · รอบ {rid}")
            await expect(page.locator('[data-queue="late_schools"] .count')).to_have_text("2")
            await expect(page.locator('[data-queue="id_corrections"] .count')).to_have_text("0")
            await expect(page.locator("#open-dashboard")).to_have_attribute("href", f"/dashboard?round={rid}")
            await expect(page.locator('nav a[href="/dashboard"]')).to_be_visible()
            await expect(page.locator('nav a[aria-current="page"]')).to_have_attribute("href", "/")
            await looked_at(page, "district-home")
            assert problems == [], problems
