"""The English dashboard shows Bangkok time, whatever zone the officer's browser is set to (issue 16): the
round's deadlines are Bangkok's, and an officer abroad or on a misconfigured laptop must read the same hour.

A real browser (Debian's Chromium through Playwright, as tests/test_dashboard_browser.py) set to New York,
twelve hours from Bangkok, so a time in the browser's zone cannot pass for Bangkok's.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from domain.thai_time import english_datetime
from tests.stack import SCHOOL, add_round, make_ready, running_stack, unique_round
from tests.test_dashboard_browser import TIMEOUT, browser, require_browser
from tests.timing import bangkok_on_day
from tests.web import served

pytestmark = pytest.mark.slow
ENGLISH_TIME = re.compile(r"^\d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d \(Bangkok\)$")


def around(now: datetime) -> set[str]:
    """The page's clock is the server's: allow the minutes a loaded machine takes between two reads."""
    return {english_datetime(now + timedelta(minutes=m)) for m in range(-2, 4)}


async def test_english_dashboard_shows_bangkok_time_in_a_new_york_browser(time_env, engine, settings):
    require_browser()
    from playwright.async_api import expect

    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = unique_round()
        add_round(engine, rid, now - timedelta(minutes=1), bangkok_on_day(now, 8, 30), bangkok_on_day(now, 16, 30))
        await stack.start_round(rid)
        await make_ready(stack, rid, SCHOOL)
        r = await stack.http.get(f"/rounds/{rid}/schools/{SCHOOL}/timeline", headers=stack.auth("district"))
        assert r.status_code == 200, r.text
        expected = [english_datetime(datetime.fromisoformat(line["at"]["iso"])) for line in r.json()["lines"]]

        async with served(stack) as base, browser() as b:
            context = await b.new_context(base_url=base, locale="en-US", timezone_id="America/New_York")
            page = await context.new_page()
            await page.goto(f"/dashboard?round={rid}")
            await page.fill("#token", stack.tokens["district"])
            await page.click("#login")
            await page.wait_for_selector("#app")
            assert await page.evaluate("() => Intl.DateTimeFormat().resolvedOptions().timeZone") == "America/New_York"
            await page.click("#lang-toggle")
            await expect(page.locator("#funnel-h")).to_have_text("Schools by stage")

            as_of = await page.locator("#as-of").text_content()
            assert ENGLISH_TIME.match(as_of), as_of
            assert as_of in around(await stack.now()), as_of

            # the school's timeline: each line at the Bangkok time the server recorded
            await page.click(f'button[data-open-timeline="{SCHOOL}"]')
            await expect(page.locator("#timeline")).to_have_attribute("data-loaded", SCHOOL, timeout=TIMEOUT)
            await expect(page.locator("#timeline-list li .when")).to_have_text(expected)
            await context.close()
