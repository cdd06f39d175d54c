"""The workbench on a phone (issue 17): at 390 px every page of every role reads without sideways scrolling, every
table stacks into one card per row whose cells are led by their column's name, forms take one column and the
buttons are big enough for a thumb; at 1280 px the tables stay tables. And a staff member does the main actions
with the keyboard alone: the skip link, then Tab and Enter, the focus visible at every stop.

In Debian's Chromium driven by Playwright, axe-core clean on every page (axe-playwright-python); screenshots
tests/artifacts/web-phone-*.png. The world is tests/api_world.py's (a started round, a duplicate case, an ID
correction and a dropout waiting for the district) with a few more students, so the tables have rows.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlmodel import select

from db.accounts import AccountRow, create_account
from db.engine import session_scope
from db.models import Student
from domain.ids import national_id_check_digit
from tests.stack import HEADER, SCHOOL
from tests.test_dashboard_browser import browser, require_browser
from tests.web import artifact, served
from tests.web.test_pages import open_as

PHONE, DESKTOP = 390, 1280
TIMEOUT = 15_000  # ms
THUMB_PX = 44  # 2.75rem: the smallest button a thumb hits without aiming (WCAG 2.5.5's 44 CSS px)


TEMPLATES = Path(__file__).parents[2] / "web" / "templates"


def test_every_tables_cells_name_their_column_for_the_phone():
    """A table stacks into labelled cards only if each of its body's cells names its column (data-label): a new
    table without them would show bare values on a phone."""
    missing = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        for body in re.findall(r"<tbody>(.*?)</tbody>", path.read_text(encoding="utf-8"), re.S):
            missing += [f"{path.relative_to(TEMPLATES)}: {cell[:70]}" for cell in re.findall(r"<t[dh]\b[^>]*>", body)
                        if "data-label=" not in cell]
    assert not missing, missing


def _nid(first12: str) -> str:
    return first12 + str(national_id_check_digit(first12))


MORE = [("ม.1", "1", "102", "เด็กหญิง", "กัลยาณีรัตน์", "ศรีสุวรรณวงศ์"), ("ม.1", "1", "103", "เด็กชาย", "ปิยะพงษ์", "ทองดี"),
        ("ม.3", "1", "301", "เด็กหญิง", "พรรณนิภา", "เจริญสุขสวัสดิ์"), ("ม.3", "1", "302", "เด็กชาย", "ธนกร", "ใจดี")]


@pytest.fixture(scope="module")
async def world(migrated_template, tmp_path_factory):
    from tests.api_world import fresh_db_url, populated_world

    async with populated_world(fresh_db_url(migrated_template, tmp_path_factory)) as w:
        csv = HEADER + "".join(f"{SCHOOL},โรงเรียน,{_nid(f'14499007{i:04d}')},{grade},{room},{no},ช,{prefix},{first},"
                               f"{last},01/01/2555,ใช่\n" for i, (grade, room, no, prefix, first, last) in enumerate(MORE))
        r = await w.stack.http.post(f"/rounds/{w.round_id}/students/import", headers=w.stack.auth("staff"),
                                    files={"file": ("more.csv", csv.encode(), "text/csv")})
        assert r.status_code == 200 and r.json()["applied"] == len(MORE), r.text
        with session_scope(w.stack.engine) as s:  # accounts with user names: the users page lists those
            for username, role, name in (("somsri.k", "staff", "สมศรี ใจงาม"), ("prasit.w", "director", "ประสิทธิ์ วงศ์ใหญ่")):
                create_account(s, w.settings, AccountRow(username, role, SCHOOL, name, f"{username}@school.example"),
                               w.now)
        yield w


def pages_of(w) -> dict[str, list[tuple[str, str, tuple[str, ...]]]]:
    """Each role's main pages: (name, path, the tables it must show)."""
    rid = quote(w.round_id, safe="")
    work = f"/school/{SCHOOL}/rounds/{rid}"
    with session_scope(w.stack.engine) as s:
        pk = s.exec(select(Student.id).where(Student.school_code == SCHOOL).order_by(Student.id)).first()
    return {
        "staff": [("staff-home", f"/?round={rid}", ()), ("staff-roster", f"{work}/roster", ("students",)),
                  ("staff-student", f"{work}/roster/students/{pk}", ()), ("staff-add", f"{work}/roster/new", ()),
                  ("staff-import", f"{work}/roster/import", ()),
                  ("staff-menu-322", f"{work}/end-of-year?class={quote('ม.1/1')}", ("menu-table",)),
                  ("staff-existence", f"{work}/existence", ("marks",)),
                  ("staff-existence-classes", f"{work}/existence?class=", ("classes",)),
                  ("staff-cases", f"{work}/cases", ("dropouts", "corrections")),
                  ("staff-dropout", f"{work}/cases/dropouts/{quote(w.dropout, safe='')}", ())],
        "director": [("director-home", f"/?round={rid}", ()), ("director-roster", f"{work}/roster", ("students",))],
        "district": [("district-home", "/", ()), ("district-queue", "/queue", ()),
                     ("district-id-correction", f"/queue/id-corrections/{quote(w.correction, safe='')}", ()),
                     ("district-dropout", f"/queue/rounds/{rid}/dropouts/{quote(w.dropout, safe='')}", ()),
                     ("district-duplicate", f"/queue/rounds/{rid}/duplicates/{quote(w.case_id, safe='')}", ()),
                     ("district-extensions", f"/queue/rounds/{rid}/extensions", ()),
                     ("district-users", "/users", ("users",))],
        "admin": [("admin-home", "/", ()), ("admin-rounds", "/admin/rounds", ()),
                  ("admin-round", f"/admin/rounds/{rid}", ()), ("admin-schools", "/admin/schools", ("schools",)),
                  ("admin-school", f"/admin/schools/{SCHOOL}", ("school-rounds",)), ("admin-users", "/users", ("users",))],
    }


# what a page shows at a width: sideways overflow, every table's display, its cells without a visible label, the
# buttons smaller than a thumb, the form controls that do not fit the width
MEASURE = """() => {
  const main = document.querySelector('main');
  const tables = [...main.querySelectorAll('table')];
  const unlabelled = [];
  for (const table of tables) {
    for (const row of table.querySelectorAll('tbody tr')) {
      for (const cell of row.children) {
        const label = cell.getAttribute('data-label');
        const shown = getComputedStyle(cell, '::before').content;
        if (!label || !shown.includes(label)) {
          const text = cell.textContent.trim().slice(0, 40);
          unlabelled.push(`${table.id} row ${row.sectionRowIndex + 1}: "${text}" shows ${shown}`);
        }
      }
    }
  }
  const seen = (e) => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden';
  const buttons = [...main.querySelectorAll('button, .button-link')].filter(seen);
  return {
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    tables: tables.map(t => ({id: t.id, display: getComputedStyle(t).display, rows: t.querySelectorAll('tbody tr').length,
                              header: t.tHead ? t.tHead.getBoundingClientRect().height : -1,
                              labelShown: t.querySelector('tbody [data-label]') ?
                                getComputedStyle(t.querySelector('tbody [data-label]'), '::before').content : 'none'})),
    unlabelled,
    small: buttons.filter(b => b.getBoundingClientRect().height < %d).map(b => `${b.id || b.textContent.trim()}`),
    wide: [...main.querySelectorAll('input, select, textarea, button')].filter(seen)
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5).map(e => e.id || e.name),
  };
}""" % THUMB_PX


async def at_phone(page, name: str, tables: tuple[str, ...]) -> None:
    """At 390 px: nothing wider than the screen, each table in labelled cards, thumb-sized buttons, axe clean, a
    screenshot; at 1280 px the same tables are tables, their header row in sight and no card labels."""
    from axe_playwright_python.async_playwright import Axe

    await page.set_viewport_size({"width": PHONE, "height": 844})
    seen = await page.evaluate(MEASURE)
    await page.screenshot(path=str(artifact(f"web-phone-{name}.png")), full_page=True)
    assert seen["overflow"] <= 0, f"{name} scrolls sideways by {seen['overflow']} px at {PHONE} px"
    assert not seen["wide"], f"{name}: form controls wider than the screen: {seen['wide']}"
    shown = {t["id"]: t for t in seen["tables"]}
    for wanted in tables:
        assert wanted in shown and shown[wanted]["rows"] > 0, f"{name}: table #{wanted} with rows expected: {shown}"
    for t in seen["tables"]:
        assert t["display"] == "block" and t["header"] <= 1, f"{name}: #{t['id']} is not stacked at {PHONE} px: {t}"
    assert not seen["unlabelled"], f"{name}: cells without their column's name at {PHONE} px: {seen['unlabelled']}"
    assert not seen["small"], f"{name}: buttons under {THUMB_PX} px tall: {seen['small']}"
    results = await Axe().run(page)
    assert results.violations_count == 0, f"{name} at {PHONE} px:\n{results.generate_report()}"
    if seen["tables"]:  # stacked, still a table to a screen reader: its column headers, cells without the labels
        roles = await accessibility_roles(page)
        assert {"table", "columnheader", "row"} <= {role for role, _ in roles}, f"{name}: {roles[:20]}"
        labels = {t["labelShown"].split('"')[1].rstrip(": ") for t in seen["tables"] if t["labelShown"] != "none"}
        assert not [n for role, n in roles if role in ("cell", "rowheader") and any(n.startswith(lb) for lb in labels)], \
            f"{name}: a cell's label is read out as part of its content"

    await page.set_viewport_size({"width": DESKTOP, "height": 900})
    wide = await page.evaluate(MEASURE)
    assert wide["overflow"] <= 0, f"{name} scrolls sideways at {DESKTOP} px"
    for t in wide["tables"]:
        assert t["display"] == "table" and t["header"] > 1 and t["labelShown"] == "none", \
            f"{name}: #{t['id']} should be a plain table at {DESKTOP} px: {t}"


async def accessibility_roles(page) -> list[tuple[str, str]]:
    """(role, name) of every node of the page's accessibility tree, as Chromium gives it to a screen reader."""
    cdp = await page.context.new_cdp_session(page)
    tree = await cdp.send("Accessibility.getFullAXTree")
    await cdp.detach()
    return [(n["role"]["value"], n.get("name", {}).get("value", "")) for n in tree["nodes"] if not n.get("ignored")]


@pytest.mark.slow  # a browser against uvicorn
async def test_every_roles_pages_read_at_phone_width_with_tables_as_labelled_cards(world):
    require_browser()
    from playwright.async_api import expect

    async with served(world.stack) as base, browser() as b:
        for role, pages in pages_of(world).items():
            page, problems = await open_as(b, base, world.stack, role, "/")
            for name, path, tables in pages:
                response = await page.goto(path)
                assert response.status == 200, (name, path, response.status)
                await at_phone(page, name, tables)
            if role == "staff":  # the import's row-by-row report is a table too
                await page.goto(pages[4][1])
                await page.set_input_files("#import-file", files=[{
                    "name": "roster.csv", "mimeType": "text/csv",
                    "buffer": (HEADER + f"{SCHOOL},โรงเรียน,1234,ม.1,1,9,ช,เด็กชาย,ทดสอบ,ผิดรูปแบบ,01/01/2555,ใช่\n").encode()}])
                async with page.expect_navigation():
                    await page.click("#import-button")
                await expect(page.locator("#issues tbody tr").first).to_be_visible(timeout=TIMEOUT)
                await at_phone(page, "staff-import-report", ("issues",))
            await page.context.close()
            # a refused form answers its refusal's status (422) with the page that says why: not a problem here
            assert [p for p in problems if "status of 422" not in p] == [], (role, problems)


async def focus_visible(page) -> str:
    """The focused element's id (or text), after checking that it is drawn with a visible focus ring."""
    found = await page.evaluate("""() => {
      const e = document.activeElement, s = getComputedStyle(e);
      return {who: e.id || e.getAttribute('href') || e.textContent.trim().slice(0, 40), tag: e.tagName,
              ring: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2, matches: e.matches(':focus-visible'),
              inView: e.getBoundingClientRect().bottom > 0 && e.getBoundingClientRect().top < window.innerHeight};
    }""")
    if found["tag"] not in ("BODY", "MAIN"):
        assert found["matches"] and found["ring"], f"the focus on {found['who']} is not visible: {found}"
        assert found["inView"], f"the focused {found['who']} is out of sight"
    return found["who"]


async def tab_to(page, selector: str, limit: int = 60) -> None:
    """Tab alone until the focus is on `selector`, the focus visible at every stop on the way."""
    for _ in range(limit):
        await page.keyboard.press("Tab")
        await focus_visible(page)
        if await page.evaluate("(s) => document.activeElement === document.querySelector(s)", selector):
            return
    raise AssertionError(f"{selector} cannot be reached with Tab")


async def press_enter(page) -> None:
    async with page.expect_navigation():
        await page.keyboard.press("Enter")


@pytest.mark.slow  # a browser against uvicorn
async def test_a_staff_member_does_the_main_actions_with_the_keyboard_alone(world):
    require_browser()
    from playwright.async_api import expect

    home = f"/?round={quote(world.round_id, safe='')}"
    async with served(world.stack) as base, browser() as b:
        page, problems = await open_as(b, base, world.stack, "staff", home)
        # the first Tab is the skip link, shown when focused; Enter puts the focus on the page's content
        await page.keyboard.press("Tab")
        assert await focus_visible(page) == "#main"
        await expect(page.locator(".skip")).to_be_in_viewport()
        await page.keyboard.press("Enter")
        assert await page.evaluate("() => document.activeElement.id") == "main"

        # R11 from the home's list: one student present, then everyone left, each by Tab and Enter
        await tab_to(page, '[data-task="existence"] a')
        await press_enter(page)
        await expect(page.locator("#marks")).to_be_visible()
        unmarked = page.locator('#marks tr[data-mark="unmarked"] button')
        first = await unmarked.first.get_attribute("value")
        await tab_to(page, f'#marks button[value="{first}"]')
        await press_enter(page)
        await expect(page.locator(f'#marks tr[data-student="{first}"]')).to_have_attribute("data-mark", "present")
        await tab_to(page, "#everyone")
        await press_enter(page)
        await expect(page.locator('#counts [data-count="unmarked"]')).to_have_text("0")

        # R10 3.2.2: the link at the page's end, a result changed with the arrow keys, the class saved with Enter
        await tab_to(page, '.next a[href$="/end-of-year"]')
        await press_enter(page)
        await tab_to(page, "#result-1")
        await page.keyboard.press("ArrowDown")  # promoted → repeats
        await expect(page.locator("#result-1")).to_have_value("repeat")
        await tab_to(page, "#save")
        await press_enter(page)
        await expect(page.locator("#saved")).to_be_visible()
        await expect(page.locator("#result-1")).to_have_value("repeat")

        # the confirmation on the home: reached and sent by keyboard; before its window the page says why
        await page.goto(home)
        await tab_to(page, "#confirm-button")
        await press_enter(page)
        await expect(page.locator("#confirm-problem")).to_have_attribute("data-code", "window_not_open")
        await page.screenshot(path=str(artifact("web-phone-keyboard-confirm-refused.png")))
        assert [p for p in problems if "status of 409" not in p] == [], problems
