"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright, against a whole
stack served by uvicorn. Screenshots go to tests/artifacts/ (or $DMCFLOW_TEST_ARTIFACTS).

Chromium comes from apt (scripts/test.sh installs it); Playwright's own browser download is never
used. Without /usr/bin/chromium these tests skip, except under CI, where that is a failure.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from db.directory import upsert_school
from db.engine import session_scope
from db.models import Student
from tests.db_backends import in_ci
from tests.stack import AREA, OTHER_AREA, SCHOOL, SCHOOL_2, add_round, make_ready, running_stack, unique_round
from tests.timing import bangkok_on_day, skip_to
from tests.web import artifact, served

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("DMCFLOW_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]
IDLE_SCHOOL, IDLE_NAME = "1044449003", "โรงเรียนนาดูนประชาสรรพ์"
TIMEOUT = 15_000  # ms: the live feed polls every second; a loaded CI machine gets room


def require_browser():
    problem = None
    if not Path(CHROMIUM).exists():
        problem = f"{CHROMIUM} is missing: apt-get install chromium (scripts/test.sh does it as root)"
    else:
        try:
            import playwright.async_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is missing: pip install -e '.[test]'"
    if problem:
        if in_ci():
            pytest.fail(f"CI is set but {problem}", pytrace=False)
        pytest.skip(problem)


@asynccontextmanager
async def browser() -> AsyncIterator:
    require_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            await b.close()


async def open_page(b, base: str, token: str, path: str):
    """A fresh browser context logs in through the form, as an officer does, and lands on `path`."""
    context = await b.new_context(base_url=base, locale="th-TH", viewport={"width": 1360, "height": 1000})
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text} {msg.location}")
            if msg.type == "error" else None)
    await page.goto(path)
    await page.fill("#token", token)
    await page.click("#login")
    await page.wait_for_selector("#app")
    return page, problems


async def seed_idle_school(engine) -> None:
    """A third school of the area with two students and no end-of-year record yet."""
    with session_scope(engine) as s:
        upsert_school(s, IDLE_SCHOOL, IDLE_NAME, AREA, ["dmc003@school.example"])
        s.flush()
        for n, sid in enumerate(["1449903000017", "1449903000025"], start=1):
            s.add(Student(school_code=IDLE_SCHOOL, student_id=sid, student_no=str(n), first_name="ทดสอบ",
                          last_name="ระบบ", grade="ม.1"))


async def test_officer_follows_the_area_live(time_env, engine, settings):
    require_browser()
    from playwright.async_api import expect

    async with running_stack(time_env, engine, settings) as stack:
        await seed_idle_school(engine)
        now = await stack.now()
        rid = unique_round()
        confirm_from, cutoff = bangkok_on_day(now, 8, 30), bangkok_on_day(now, 16, 30)
        add_round(engine, rid, now - timedelta(minutes=1), confirm_from, cutoff)
        await stack.start_round(rid)
        await make_ready(stack, rid, SCHOOL)
        await make_ready(stack, rid, SCHOOL_2)
        await skip_to(stack, confirm_from)  # the day itself: 8 hours left
        for path, who in (("confirmation", "staff2"), ("certification", "director2")):
            r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL_2}/{path}", headers=stack.auth(who))
            assert r.status_code == 200, r.text

        async with served(stack) as base, browser() as b:
            page, problems = await open_page(b, base, stack.tokens["district"], f"/dashboard?round={rid}")
            funnel = page.locator("#funnel-list")

            # the funnel shows the right counts, and the chart draws them
            expected = {"not_open": "0", "open": "1", "step_3_2_2": "0", "step_3_2_2_1": "0", "step_3_2_2_2": "1",
                        "confirmed": "0", "certified": "1", "late": "0"}
            for bucket, count in expected.items():
                await expect(funnel.locator(f'li[data-bucket="{bucket}"] .count')).to_have_text(count)
            await expect(page.locator("#funnel-chart rect.bar")).to_have_count(8)
            await expect(page.locator("#total")).to_have_text("3")
            await expect(page.locator("#area-name")).to_have_text(AREA)

            # at risk: the school that has not started, with its reason in one line
            risks = page.locator("#risk-list li")
            await expect(risks).to_have_count(1)
            await expect(risks.first).to_have_attribute("data-school", IDLE_SCHOOL)
            await expect(risks.first).to_contain_text(IDLE_NAME)
            await expect(risks.first.locator(".reason")).to_contain_text("ยังไม่เริ่มบันทึกข้อมูลสิ้นปี (เมนู 3.2.2) 2 รายการ")
            await expect(page.locator("#live-status")).to_have_attribute("data-state", "live", timeout=TIMEOUT)
            await page.screenshot(path=str(artifact("dashboard-area.png")), full_page=True)

            # the list filters and sorts
            rows = page.locator("#school-table tbody tr")
            await expect(rows).to_have_count(3)
            await page.fill("#filter-text", "นาดูน")
            await expect(rows).to_have_count(1)
            await expect(rows.first).to_have_attribute("data-school", IDLE_SCHOOL)
            await page.fill("#filter-text", "")
            await page.select_option("#filter-bucket", "certified")
            await expect(rows).to_have_count(1)
            await expect(rows.first).to_have_attribute("data-school", SCHOOL_2)
            await page.select_option("#filter-bucket", "")
            await page.check("#filter-risk")
            await expect(rows).to_have_count(1)
            await expect(rows.first).to_have_attribute("data-school", IDLE_SCHOOL)
            await page.uncheck("#filter-risk")
            await page.click('th[data-sort="code"]')
            await page.click('th[data-sort="code"]')  # descending
            await expect(rows.first).to_have_attribute("data-school", IDLE_SCHOOL)
            await expect(page.locator('th[data-sort="code"]')).to_have_attribute("aria-sort", "descending")
            await page.screenshot(path=str(artifact("dashboard-filtered.png")), full_page=True)

            # live: a confirmation made through the API reaches the open page without a reload
            marker = await page.evaluate("() => { window.__notReloaded = true; return true; }")
            r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/confirmation", headers=stack.auth("staff"))
            assert r.status_code == 200, r.text
            await expect(funnel.locator('li[data-bucket="confirmed"] .count')).to_have_text("1", timeout=TIMEOUT)
            await expect(funnel.locator('li[data-bucket="step_3_2_2_2"] .count')).to_have_text("0")
            await expect(page.locator(f'#school-table tr[data-school="{SCHOOL}"]')).to_have_attribute(
                "data-bucket", "confirmed")
            assert marker and await page.evaluate("() => window.__notReloaded === true")
            await page.screenshot(path=str(artifact("dashboard-live-update.png")), full_page=True)

            # a school's timeline, in Thai dates, with who did what
            await page.click(f'button[data-open-timeline="{SCHOOL_2}"]')
            timeline = page.locator("#timeline-list li")
            await expect(page.locator("#timeline")).to_have_attribute("data-loaded", SCHOOL_2, timeout=TIMEOUT)
            await expect(timeline.filter(has_text="ผู้อำนวยการรับรองข้อมูล (ข้อ 12)")).to_contain_text("ผอ. 2")
            # (an area-timed school's one timer: its close after the late grace, issue 18)
            await expect(timeline.filter(has_text="ตั้งเวลา: ปิดงานของรอบ").first).to_contain_text(
                re.compile(r"\d+ [ก-๙.]+ 25\d\d \d\d\.\d\d น\. ตั้งเวลา"))
            await expect(page.locator("#evidence-link")).to_have_attribute(
                "href", f"/rounds/{rid}/schools/{SCHOOL_2}/evidence-pack")
            await page.screenshot(path=str(artifact("dashboard-timeline.png")), full_page=True)
            await page.click("#timeline-close")

            # English on a toggle, remembered
            await page.click("#lang-toggle")
            await expect(page.locator("#funnel-h")).to_have_text("Schools by stage")
            await expect(risks.first.locator(".reason")).to_contain_text("No end-of-year record yet (menu 3.2.2)")
            await page.screenshot(path=str(artifact("dashboard-english.png")), full_page=True)
            await page.reload()
            await expect(page.locator("#funnel-h")).to_have_text("Schools by stage")

            # the report downloads with the page's session
            async with page.expect_download() as download:
                await page.click("#report-csv")
            saved = artifact("area-report.csv")
            await (await download.value).save_as(saved)
            assert saved.read_bytes().startswith(b"\xef\xbb\xbf") and "School code" in saved.read_text("utf-8-sig")
            assert problems == [], problems


async def test_administrator_sees_every_area(time_env, engine, settings):
    require_browser()
    from playwright.async_api import expect

    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = unique_round()
        add_round(engine, rid, now - timedelta(minutes=1), bangkok_on_day(now, 8, 30), bangkok_on_day(now, 16, 30))
        await stack.start_round(rid)
        async with served(stack) as base, browser() as b:
            page, problems = await open_page(b, base, stack.tokens["admin"], f"/dashboard?round={rid}")
            rows = page.locator("#area-table tbody tr")
            await expect(rows).to_have_count(2)
            await expect(page.locator("#total")).to_have_text("3")
            await expect(page.locator(f'#area-table tr[data-area="{OTHER_AREA}"] td').nth(1)).to_have_text("1")
            await page.screenshot(path=str(artifact("dashboard-round-overview.png")), full_page=True)
            await page.click(f'#area-table tr[data-area="{AREA}"] a')
            await expect(page.locator("#area-name")).to_have_text(AREA)
            await expect(page.locator("#total")).to_have_text("2")

            # logging out (the form carries the session's CSRF token) ends the session: the page asks to log in
            session = next(c for c in await page.context.cookies() if c["name"] == "dmcflow_session")
            assert session["httpOnly"] and session["sameSite"] == "Lax" and session["value"] != stack.tokens["admin"]
            await page.click('form[action="/dashboard/logout"] button')
            await expect(page.locator("#token")).to_be_visible()
            # the old session id, put back into the browser, opens nothing any more
            await page.context.add_cookies([{**session, "expires": -1}])
            await page.goto(f"/dashboard?round={rid}")
            await expect(page.locator("#token")).to_be_visible()
            assert await page.locator("#app").count() == 0
            assert problems == [], problems
