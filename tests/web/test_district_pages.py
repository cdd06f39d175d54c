"""The district officer's work queue (issue 17): the queue, oldest first; an ID correction that came by email, a
dropout consultation and a duplicate case decided through pages only; a school's deadline extended.

The world: the intake running for real (tests/intake/env.py: signed mail through its SMTP listener), a round open
for corrections with the demo roster, and the schools' side of each case made through the API (a dropout request,
a claim on another school's student and the schools' declarations: those are the schools' pages, not these).
Over plain HTTP: scope (another area sees nothing and finds no item), CSRF, and each refusal beside its field.
"""

from __future__ import annotations

import re
import struct
import zlib
from datetime import timedelta

import pytest
from sqlmodel import select

from api.viewer import COOKIE, CSRF_FIELD
from db.engine import session_scope
from db.models import DropoutRequest, DuplicateCase, IdCorrection, SchoolRound, Student
from domain.thai_time import to_bangkok
from tests.intake.messages import PDF, block, build, letter, nid
from tests.stack import READY_IDS, SCHOOL, SCHOOL_2
from tests.test_dashboard_browser import browser, require_browser
from tests.timing import eventually
from tests.web import served
from tests.web.test_pages import looked_at, open_as, tab_to, web_session

OLD, NEW = "1449900000018", nid("144990900011")
DROPOUT_PUPIL = "1449900000026"
CLAIM = {"student": READY_IDS[SCHOOL_2], "prefix": "เด็กชาย", "first_name": "ชนิดา", "last_name": "พลอยงาม",
         "grade": "ม.1", "sat_final_exam_here": True}


def png(width: int = 120, height: int = 80) -> bytes:
    """A real (decodable) PNG: a scanned page, as far as the page's <img> is concerned."""
    raw = b"".join(b"\x00" + bytes((40, 90, 160)) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) \
        + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


async def seed_the_schools_side(env) -> dict:
    """What the schools send: an ID correction by signed mail, a dropout request, a claim on SCHOOL_2's student."""
    stack, rid = env.stack, env.rid
    await env.send(build(letter(block(old=OLD, new=NEW)), message_id="<queue@mail.example>",
                         attachments=(("หลักฐาน.pdf", "application/pdf", PDF), ("บัตรประชาชน.png", "image/png", png()))))

    def pending():
        with session_scope(stack.engine) as s:
            row = s.exec(select(IdCorrection).where(IdCorrection.status == "pending")).first()
            return row.id if row else None

    correction = await eventually(pending)
    r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/dropouts", headers=stack.auth("staff"),
                              data={"student": DROPOUT_PUPIL, "reason": "low_income",
                                    "details": "ไม่มาเรียนตั้งแต่ ก.พ. ครอบครัวย้ายไปทำงานต่างจังหวัด"},
                              files={"evidence": ("บันทึก.pdf", PDF, "application/pdf")})
    assert r.status_code == 201, r.text
    dropout = r.json()["id"]
    r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/students", headers=stack.auth("staff"), json=CLAIM)
    assert r.status_code == 409 and r.json()["code"] == "active_elsewhere", r.text
    case = r.json()["message_en"].split("duplicate case ")[1].split(" ")[0]
    return {"correction": correction, "dropout": dropout, "case": case}


async def schools_declare(env, case: str) -> None:
    """Both schools say the student is theirs: the case goes to the district."""
    for who in ("staff", "staff2"):
        r = await env.stack.http.post(f"/rounds/{env.rid}/duplicates/{case}/resolution", headers=env.stack.auth(who),
                                      data={"action": "present"}, files={"evidence": ("e.pdf", PDF, "application/pdf")})
        assert r.status_code == 200, r.text


def signed_in(stack, who: str) -> str:
    session_id, csrf = web_session(stack, who)
    stack.http.cookies.clear()
    stack.http.cookies.set(COOKIE, session_id)
    return csrf


# --- HTTP: scope, CSRF, refusals beside their fields ------------------------------------------------------------

async def test_the_queue_is_the_areas_oldest_first_and_another_area_finds_none_of_it(intake_env):
    stack, rid = intake_env.stack, intake_env.rid
    seeded = await seed_the_schools_side(intake_env)
    signed_in(stack, "district")
    r = await stack.http.get(f"/queue?round={rid}")
    assert r.status_code == 200, r.text[:300]
    kinds = re.findall(r'<li data-kind="(\w+)" data-ref="([^"]+)"', r.text)
    assert kinds == [("id_correction", seeded["correction"]), ("dropout", seeded["dropout"]),
                     ("duplicate", seeded["case"])], kinds  # in the order they began to wait
    assert re.search(r'data-kind="id_correction"><span class="count">1<', r.text)
    assert 'href="/queue/rounds/' in r.text and f'href="/dashboard?round={rid}"' in r.text

    signed_in(stack, "other_district")
    r = await stack.http.get(f"/queue?round={rid}")
    assert r.status_code == 200 and "data-ref=" not in r.text and seeded["correction"] not in r.text
    for path in (f"/queue/id-corrections/{seeded['correction']}", f"/queue/rounds/{rid}/dropouts/{seeded['dropout']}",
                 f"/queue/rounds/{rid}/duplicates/{seeded['case']}"):
        r = await stack.http.get(path)
        assert r.status_code == 404 and 'data-code="not_found"' in r.text, (path, r.text[:300])
        assert OLD not in r.text and DROPOUT_PUPIL not in r.text
    signed_in(stack, "staff")
    r = await stack.http.get("/queue")
    assert r.status_code == 403 and 'data-code="forbidden"' in r.text


async def test_each_refusal_is_shown_beside_the_field_it_is_about(intake_env):
    stack, rid = intake_env.stack, intake_env.rid
    seeded = await seed_the_schools_side(intake_env)
    csrf = signed_in(stack, "district")
    url = f"/queue/id-corrections/{seeded['correction']}/decision"
    r = await stack.http.post(url, data={"approve": "no", "reason": ""})  # no CSRF token: nothing happens
    assert r.status_code == 403 and 'data-code="csrf_failed"' in r.text
    r = await stack.http.post(url, data={"approve": "no", "reason": "", CSRF_FIELD: csrf})
    assert r.status_code == 422 and 'id="reason-problem"' in r.text and 'data-code="reason_required"' in r.text
    assert re.search(r'<textarea id="reason"[^>]*aria-describedby="reason-problem" aria-invalid="true"', r.text)
    with session_scope(stack.engine) as s:
        assert s.get(IdCorrection, seeded["correction"]).status == "pending"

    r = await stack.http.post(f"/queue/rounds/{rid}/dropouts/{seeded['dropout']}/decision",
                              data={"approve": "yes", "reason": "  ", CSRF_FIELD: csrf})
    assert r.status_code == 422 and 'data-code="reason_required"' in r.text and 'id="reason-problem"' in r.text

    r = await stack.http.post(f"/queue/rounds/{rid}/duplicates/{seeded['case']}/resolution",
                              data={"action": "dismiss", "note": "", CSRF_FIELD: csrf})
    assert r.status_code == 422 and 'data-code="reason_required"' in r.text and 'id="note-problem"' in r.text

    # "only later": a cutoff before the school's current one is refused beside the date
    earlier = to_bangkok(intake_env.cutoff - timedelta(hours=1))
    r = await stack.http.post(f"/queue/rounds/{rid}/extensions", data={
        "target": SCHOOL, "date": earlier.strftime("%Y-%m-%d"), "time": earlier.strftime("%H:%M"),
        "reason": "ไฟฟ้าดับ", CSRF_FIELD: csrf})
    assert r.status_code == 422 and 'data-code="extension_not_later"' in r.text, r.text[:500]
    assert re.search(r'<input id="date"[^>]*aria-describedby="cutoff-hint cutoff-problem" aria-invalid="true"', r.text)
    r = await stack.http.post(f"/queue/rounds/{rid}/extensions", data={
        "target": SCHOOL, "date": "2567-13-40", "time": "16:30", "reason": "x", CSRF_FIELD: csrf})
    assert r.status_code == 422 and 'data-code="cutoff_invalid"' in r.text  # a made-up date: words, not a 500
    with session_scope(stack.engine) as s:
        assert s.get(SchoolRound, (rid, SCHOOL)).cutoff_at == intake_env.cutoff


# --- the browser: the district's day ----------------------------------------------------------------------------

async def decide(page, choice: str, reason: str, settled: str, field: str = "#reason") -> None:
    """Choose, give the reason, send: the item's page then shows its new state."""
    from playwright.async_api import expect

    await page.check(choice)
    await page.fill(field, reason)
    async with page.expect_navigation():
        await page.click("#decide-button")
    await expect(page.locator("#status")).to_have_attribute("data-status", settled)


@pytest.mark.slow  # a browser against uvicorn
async def test_the_district_decides_a_mailed_id_correction_a_dropout_and_a_duplicate_and_extends_a_deadline(
        intake_env):
    require_browser()
    from playwright.async_api import expect

    stack, rid = intake_env.stack, intake_env.rid
    seeded = await seed_the_schools_side(intake_env)
    async with served(stack) as base, browser() as b:
        page, problems = await open_as(b, base, stack, "district", "/queue")
        await expect(page.locator('#queue-counts [data-kind="id_correction"] .count')).to_have_text("1")
        await expect(page.locator('#queue-counts [data-kind="dropout"] .count')).to_have_text("1")
        await expect(page.locator('#queue-counts [data-kind="duplicate"] .count')).to_have_text("1")
        await expect(page.locator("#queue-items > li").first).to_have_attribute("data-kind", "id_correction")
        await expect(page.locator('nav a[href="/queue"]')).to_have_attribute("aria-current", "page")
        await looked_at(page, "district-queue")

        # the ID correction: the mail as text, the evidence, the roster row; approved by keyboard
        await page.click('#queue-items [data-kind="id_correction"] a')
        await expect(page.locator("#mail-text")).to_contain_text("เลขประจำตัวประชาชนใหม่")
        await expect(page.locator("#roster-row")).to_contain_text(OLD)
        await expect(page.locator("#evidence a")).to_have_count(2)  # the PDF a link, the image shown inline too
        image = page.locator("#evidence img")
        await expect(image).to_have_count(1)
        assert await image.evaluate("(img) => img.complete && img.naturalWidth") == 120
        await looked_at(page, "district-id-correction")
        await page.click("#decide-button")  # nothing chosen: the browser asks for a decision first
        await expect(page.locator("#status")).to_have_attribute("data-status", "pending")
        await page.check("#approve-no")
        async with page.expect_navigation():
            await page.click("#decide-button")  # rejected without a reason: refused beside the field
        await expect(page.locator("#reason-problem")).to_contain_text("เหตุผล")
        await expect(page.locator("#reason")).to_have_attribute("aria-describedby", "reason-problem")
        await looked_at(page, "district-id-correction-refused")
        await page.check("#approve-yes")
        await tab_to(page, "#decide-button")
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
        await expect(page.locator("#status")).to_have_attribute("data-status", "approved")

        # the dropout: ask the school, then decide with a reason
        await page.goto("/queue")
        await page.click('#queue-items [data-kind="dropout"] a')
        await expect(page.locator("#thread > li")).to_have_count(1)
        await page.fill("#text", "ขอสำเนาบันทึกการเยี่ยมบ้านเพิ่มเติม")
        async with page.expect_navigation():
            await page.click("#ask-button")
        await expect(page.locator("#thread > li")).to_have_count(2)
        await expect(page.locator("#status")).to_have_attribute("data-status", "waiting_school")
        await looked_at(page, "district-dropout")
        await decide(page, "#approve-yes", "ตรวจสอบแล้ว ครอบครัวย้ายถิ่นจริง", "approved")

        # the duplicate: the claim is opened; both schools declare; the district decides
        await page.goto("/queue")
        await page.click('#queue-items [data-kind="duplicate"] a')
        await expect(page.locator("#status")).to_have_attribute("data-status", "claimed")
        await looked_at(page, "district-duplicate-claim")
        async with page.expect_navigation():
            await page.click("#open-button")
        await expect(page.locator("#status")).to_have_attribute("data-status", "open")
        await schools_declare(intake_env, seeded["case"])
        await page.reload()
        await expect(page.locator("#declarations > li")).to_have_count(2)
        await looked_at(page, "district-duplicate")
        await decide(page, f"#keep-{SCHOOL_2}", "มีหลักฐานการเรียนต่อเนื่องที่โรงเรียนเดิม", "resolved", field="#note")

        # the deadline: one school, later than its cutoff, Bangkok time
        await page.goto("/queue")
        await page.click("#extensions-link")
        later = to_bangkok(intake_env.cutoff + timedelta(days=1))
        await page.select_option("#target", SCHOOL)
        await page.fill("#date", later.strftime("%Y-%m-%d"))
        await page.fill("#time", "16:30")
        await page.fill("#reason", "ไฟฟ้าดับทั้งตำบล")
        await looked_at(page, "district-extensions")
        async with page.expect_navigation():
            await page.click("#extend-button")
        await expect(page.locator("#notice")).to_be_visible()
        # the one refused decision answers its refusal's status (422) with the page that says why
        assert problems == ["console error: Failed to load resource: the server responded with a status of 422 "
                            "(Unprocessable Entity)"], problems

    with session_scope(stack.engine) as s:
        assert s.get(IdCorrection, seeded["correction"]).status == "approved"
        assert s.get(DropoutRequest, seeded["dropout"]).status == "approved"
        assert s.get(DuplicateCase, seeded["case"]).outcome == SCHOOL_2
        assert to_bangkok(s.get(SchoolRound, (rid, SCHOOL)).cutoff_at).date() == later.date()
        assert s.exec(select(Student).where(Student.student_id == NEW)).first() is not None
