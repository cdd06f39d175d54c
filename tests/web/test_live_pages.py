"""Live pages (issue 17): an open page follows a change made elsewhere, within seconds, without a reload.

The staff's home while another clerk confirms in a second browser and the director certifies through the
API; the district's queue (and the officer's home) while an ID correction arrives by mail and a school asks
for a dropout. In a real browser (Debian's Chromium, as the other workbench tests): the same page stays
open (a mark set on `window` survives), the change is told in the polite live region, axe-core stays
clean. Over HTTP: a feed is the page's own school's or area's only, refused in Thai otherwise, and its
events carry a digest only, the one the page was rendered with.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import delete, func, select, update

from api.viewer import COOKIE, CSRF_FIELD
from db.engine import session_scope
from db.models import Round, School, SchoolRound
from tests.intake.messages import PDF, block, build, letter
from tests.stack import AREA, HEADER, SCHOOL, SCHOOL_2, running_stack
from tests.test_dashboard_browser import browser, require_browser
from tests.web import served
from tests.web.test_district_pages import DROPOUT_PUPIL, NEW, OLD
from tests.web.test_pages import looked_at, open_as, start_round, web_session
from tests.web.test_roster_pages import NEW_ID
from web import import_progress

TIMEOUT = 15_000  # ms: the feed polls every second; a loaded machine gets room
KEPT = "() => window.stillThisPage === true"


async def same_page_kept(page) -> None:
    await page.evaluate("() => { window.stillThisPage = true; }")  # gone if the page were loaded again


@pytest.mark.slow  # a browser against uvicorn
async def test_the_staff_home_follows_a_confirmation_and_a_certification_made_elsewhere(time_env, engine, settings):
    require_browser()
    from playwright.async_api import expect

    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = await start_round(stack, now - timedelta(hours=2), now - timedelta(hours=1), now + timedelta(hours=8))
        home = f"/?round={quote(rid)}"

        async with served(stack) as base, browser() as b:
            page, problems = await open_as(b, base, stack, "staff", home)
            await expect(page.locator("#stage")).to_have_text("ช่วงยืนยันข้อมูล")
            await expect(page.locator("#live")).to_have_attribute("data-live-state", "live", timeout=TIMEOUT)
            await same_page_kept(page)
            director, director_problems = await open_as(b, base, stack, "director", home)
            await expect(director.locator("#certify-waiting")).to_be_visible()
            await same_page_kept(director)

            # another clerk of the school confirms on another computer (a second browser context)
            other, other_problems = await open_as(b, base, stack, "staff", home)
            async with other.expect_navigation():
                await other.click("#confirm-button")
            await expect(other.locator("#stage")).to_have_text("ยืนยันข้อมูลแล้ว")

            # the open home follows: the stage, who confirmed, the form that is left; told politely
            await expect(page.locator("#stage")).to_have_text("ยืนยันข้อมูลแล้ว", timeout=TIMEOUT)
            await expect(page.locator("#confirmed-by")).to_contain_text("ครูธุรการ")
            await expect(page.locator("#withdraw-button")).to_be_visible()
            news = page.locator("#live-news")
            await expect(news).to_have_attribute("role", "status")
            await expect(news).to_contain_text(re.compile(r"^ข้อมูลในหน้านี้เปลี่ยนแล้ว เมื่อ \d\d\.\d\d น\.: "
                                                          r"สถานะ ยืนยันข้อมูลแล้ว$"))
            # and so does the director's: the button to certify is there now
            await expect(director.locator("#certify-button")).to_be_visible(timeout=TIMEOUT)

            # the director certifies through the API: the staff's home says so, still the same page
            r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/certification", headers=stack.auth("director"))
            assert r.status_code == 200, r.text
            await expect(page.locator("#stage")).to_have_text("ผู้อำนวยการรับรองแล้ว", timeout=TIMEOUT)
            await expect(page.locator("#certified-by")).to_contain_text("ผอ.โรงเรียน")
            await expect(news).to_contain_text("สถานะ ผู้อำนวยการรับรองแล้ว")
            await expect(director.locator("#certified-note")).to_be_visible(timeout=TIMEOUT)
            assert await page.evaluate(KEPT) and await director.evaluate(KEPT)
            await looked_at(page, "live-staff-home-certified")
            assert problems == [] and director_problems == [] and other_problems == [], \
                (problems, director_problems, other_problems)


@pytest.mark.slow  # a browser against uvicorn, and the intake's SMTP listener
async def test_the_district_queue_shows_a_correction_and_a_dropout_that_arrive_while_it_is_open(intake_env):
    require_browser()
    from playwright.async_api import expect

    stack, rid = intake_env.stack, intake_env.rid
    async with served(stack) as base, browser() as b:
        page, problems = await open_as(b, base, stack, "district", f"/queue?round={quote(rid)}")
        await expect(page.locator("#queue-empty")).to_be_visible()
        await expect(page.locator("#live")).to_have_attribute("data-live-state", "live", timeout=TIMEOUT)
        await same_page_kept(page)
        officer_home = await page.context.new_page()  # the officer's home counts the same work
        await officer_home.goto("/")
        await expect(officer_home.locator('[data-queue="id_corrections"] .count')).to_have_text("0")
        await same_page_kept(officer_home)

        # a school mails an ID correction: the intake files it, the open queue lists it
        await intake_env.send(build(letter(block(old=OLD, new=NEW)), message_id="<live-queue@mail.example>",
                                    attachments=(("หลักฐาน.pdf", "application/pdf", PDF),)))
        correction = page.locator('#queue-items [data-kind="id_correction"]')
        await expect(correction).to_have_count(1, timeout=TIMEOUT)
        await expect(correction).to_have_attribute("data-ref", re.compile(r"\S+"))
        await expect(page.locator('#queue-counts [data-kind="id_correction"] .count')).to_have_text("1")
        await expect(page.locator("#live-news")).to_contain_text("งานรอดำเนินการ 1 รายการ")
        await expect(officer_home.locator('[data-queue="id_corrections"] .count')).to_have_text("1", timeout=TIMEOUT)

        # a school asks for a dropout (its own page's path, the API): it joins the queue, oldest first
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/dropouts", headers=stack.auth("staff"),
                                  data={"student": DROPOUT_PUPIL, "reason": "low_income",
                                        "details": "ไม่มาเรียนตั้งแต่ ก.พ. ครอบครัวย้ายไปทำงานต่างจังหวัด"},
                                  files={"evidence": ("บันทึก.pdf", PDF, "application/pdf")})
        assert r.status_code == 201, r.text
        items = page.locator("#queue-items > li")
        await expect(items).to_have_count(2, timeout=TIMEOUT)
        await expect(items.nth(1)).to_have_attribute("data-ref", r.json()["id"])
        await expect(page.locator("#live-news")).to_contain_text("งานรอดำเนินการ 2 รายการ")
        await expect(officer_home.locator('[data-queue="dropouts"] .count')).to_have_text("1", timeout=TIMEOUT)
        assert await page.evaluate(KEPT) and await officer_home.evaluate(KEPT)
        await looked_at(page, "live-district-queue")
        assert problems == [], problems


async def test_a_feed_is_the_pages_own_school_or_area_only(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = await start_round(stack, now - timedelta(hours=2), now - timedelta(hours=1), now + timedelta(hours=8))
        staff_session = web_session(stack, "staff")[0]

        def as_user(who: str) -> None:
            stack.http.cookies.clear()
            stack.http.cookies.set(COOKIE, web_session(stack, who)[0])

        as_user("staff")  # a school's staff: another school's feed, or its area's queue, is refused in Thai
        r = await stack.http.get(f"/live/schools/{SCHOOL_2}/rounds/{rid}")
        assert r.status_code == 403 and 'data-code="forbidden"' in r.text and "ไม่มีสิทธิ์เข้าถึงโรงเรียนนี้" in r.text
        assert r.headers["content-type"].startswith("text/html")
        r = await stack.http.get(f"/live/areas/{quote(AREA)}/rounds/{rid}/queue")
        assert r.status_code == 403 and "ไม่มีสิทธิ์ติดตามงานของเขตพื้นที่" in r.text
        r = await stack.http.get(f"/live/schools/1099999999/rounds/{rid}")
        assert r.status_code == 404 and "ไม่พบโรงเรียน 1099999999" in r.text
        as_user("director2")
        assert (await stack.http.get(f"/live/schools/{SCHOOL}/rounds/{rid}")).status_code == 403
        as_user("other_district")  # an officer: the own area's queue only
        r = await stack.http.get(f"/live/areas/{quote(AREA)}/rounds/{rid}/queue")
        assert r.status_code == 403 and "ไม่มีสิทธิ์ดูข้อมูลของเขตพื้นที่อื่น" in r.text
        assert (await stack.http.get(f"/live/schools/{SCHOOL}/rounds/{rid}")).status_code == 403
        stack.http.cookies.clear()  # no session: the login page, never a stream
        r = await stack.http.get(f"/live/schools/{SCHOOL}/rounds/{rid}")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")

        # the school's own feed: events that carry the digest the page was rendered with, nothing else
        async with served(stack) as base, httpx.AsyncClient(base_url=base, timeout=20,
                                                            cookies={COOKIE: staff_session}) as web:
            home = await web.get(f"/?round={quote(rid)}")
            feed = re.search(r'data-live-feed="([^"]+)"', home.text).group(1)
            version = re.search(r'data-live-version="([^"]+)"', home.text).group(1)
            assert feed == f"/live/schools/{SCHOOL}/rounds/{quote(rid)}"
            async with web.stream("GET", feed) as events:
                assert events.status_code == 200 and events.headers["content-type"].startswith("text/event-stream")
                lines = []
                async for line in events.aiter_lines():
                    lines.append(line)
                    if line.startswith("data: "):
                        break
            assert lines[-2:] == ["event: change", f"data: {version}"], lines
            assert re.fullmatch(r"[0-9a-f]{16}", version)


async def test_a_rounds_progress_part_reads_the_projection_only(time_env, engine, settings):
    """The part the admin's round page polls: counts of the projection, whatever the fan-out's own state."""
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = await start_round(stack, now - timedelta(hours=2), now - timedelta(hours=1), now + timedelta(hours=8))
        with session_scope(engine) as s:
            schools = s.scalar(select(func.count()).select_from(School))
        stack.http.cookies.set(COOKIE, web_session(stack, "admin")[0])
        part = f"/admin/rounds/{quote(rid)}/progress"
        r = await stack.http.get(part)
        assert r.status_code == 200 and r.text.lstrip().startswith('<div id="progress" data-finished="yes"'), r.text
        assert f"เริ่มงานของโรงเรียนแล้ว {schools} จาก {schools} โรงเรียน" in r.text and "<html" not in r.text

        # a start half-way (the rows appear page by page): the part says so, though the fan-out has finished
        with session_scope(engine) as s:
            s.execute(delete(SchoolRound).where(SchoolRound.round_id == rid, SchoolRound.school_code == SCHOOL_2))
        r = await stack.http.get(part)
        assert 'data-finished="no"' in r.text and f'<progress max="{schools}" value="{schools - 1}"' in r.text
        assert f"เริ่มงานของโรงเรียนแล้ว {schools - 1} จาก {schools} โรงเรียน" in r.text

        # a whole-round extension: the schools whose cutoff reached the round's new one; a certified school is done
        with session_scope(engine) as s:
            s.get(Round, rid).cutoff_at = now + timedelta(days=1)
            started = s.scalar(select(func.count()).select_from(SchoolRound).where(SchoolRound.round_id == rid))
            s.get(SchoolRound, (rid, SCHOOL)).certified_at = now
        r = await stack.http.get(part, params={"operation": f"round-extend/{rid}/abc"})
        assert 'data-finished="no"' in r.text and f"ขยายเวลาแล้ว 1 จาก {started} โรงเรียน" in r.text, r.text
        with session_scope(engine) as s:
            s.execute(update(SchoolRound).where(SchoolRound.round_id == rid).values(cutoff_at=now + timedelta(days=1)))
        r = await stack.http.get(part, params={"operation": f"round-extend/{rid}/abc"})
        assert 'data-finished="yes"' in r.text and f"ขยายเวลาแล้ว {started} จาก {started} โรงเรียน" in r.text

        stack.http.cookies.set(COOKIE, web_session(stack, "district")[0])  # administrators only
        r = await stack.http.get(part)
        assert r.status_code == 403 and 'data-code="forbidden"' in r.text


@pytest.mark.slow  # a browser against uvicorn
async def test_a_long_import_shows_its_progress_as_it_goes_then_its_report(time_env, engine, settings, monkeypatch):
    require_browser()
    from playwright.async_api import expect

    monkeypatch.setattr(import_progress, "STREAM_AFTER_SECONDS", 0)  # every import is long enough to show it
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = await start_round(stack, now - timedelta(hours=2), now - timedelta(hours=1), now + timedelta(hours=8))
        export = (HEADER + f"{SCHOOL},โรงเรียน,{NEW_ID},ม.2,1,2,ญ,เด็กหญิง,มะลิ,ใจดี,01/02/2554,ใช่\n"
                  f"{SCHOOL},โรงเรียน,=HYPERLINK(1),ม.2,1,3,ช,เด็กชาย,ผิด,รูปแบบ,01/02/2554,ใช่\n").encode()
        url = f"/school/{SCHOOL}/rounds/{quote(rid)}/roster/import"
        session_id, csrf = web_session(stack, "staff")
        async with served(stack) as base:
            # over HTTP: the page up to its progress comes first, the report only once the rows are applied
            async with httpx.AsyncClient(base_url=base, timeout=30, cookies={COOKIE: session_id}) as web:
                async with web.stream("POST", url, data={CSRF_FIELD: csrf},
                                      files={"file": ("dmc.csv", export, "text/csv")}) as answer:
                    assert answer.status_code == 200 and answer.headers["x-accel-buffering"] == "no"
                    seen, chunks = "", answer.aiter_text()
                    async for chunk in chunks:
                        seen += chunk
                        if 'data-step="read"' in seen:
                            break
                    assert 'id="import-steps" role="log"' in seen and 'id="report"' not in seen
                    assert "อ่านไฟล์แล้ว 2 แถว ของ 1 โรงเรียน" in seen
                    async for chunk in chunks:
                        seen += chunk
            steps = re.findall(r'data-step="(\w+)">([^<]+)<', seen)
            assert steps == [("read", "อ่านไฟล์แล้ว 2 แถว ของ 1 โรงเรียน กำลังตรวจตามกฎและบันทึกทีละแถว…"),
                             ("school", "บันทึกแล้ว 1 จาก 1 โรงเรียน"),
                             ("done", "นำเข้าเสร็จแล้ว ผลการนำเข้าอยู่ด้านล่าง")], steps
            assert seen.index('data-step="done"') < seen.index('id="report"') and seen.rstrip().endswith("</html>")
            assert dict(re.findall(r'data-count="(\w+)">(\d+)<', seen)) == \
                {"total": "2", "applied": "1", "unchanged": "0", "refused": "1"}

            # a file refused as a whole is answered at once, as before: the reason beside the field, no progress
            async with httpx.AsyncClient(base_url=base, timeout=30, cookies={COOKIE: session_id}) as web:
                r = await web.post(url, data={CSRF_FIELD: csrf}, files={"file": ("dmc.pdf", b"%PDF-1.4", "application/pdf")})
            assert 'aria-describedby="import-file-hint import-problem"' in r.text and "import-steps" not in r.text

            # in the browser: the streamed page is one page, its report focused, axe-clean
            async with browser() as b:
                page, problems = await open_as(b, base, stack, "staff", url)
                await page.set_input_files("#import-file", {"name": "dmc.csv", "mimeType": "text/csv", "buffer": export})
                async with page.expect_navigation():
                    await page.click("#import-button")
                await expect(page.locator("#import-steps .step")).to_have_count(3)
                await expect(page.locator("#report-h")).to_be_focused()
                await expect(page.locator('#report-counts [data-count="unchanged"]')).to_have_text("1")
                await looked_at(page, "live-roster-import-progress")
                assert problems == [], problems
