"""District monitoring through the API, under Temporal's time-skipping test server: what an officer sees."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import re
import zipfile
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import httpx
from openpyxl import load_workbook

from api.dashboard_views import AreaDashboardOut, RoundOverviewOut
from db.directory import upsert_school
from db.engine import session_scope
from db.models import AuditEvent, DropoutRequest, IdCorrection, InboundMessage, Round, SchoolRound, Student
from domain.rounds import RoundPolicy
from domain.thai_time import thai_datetime
from tests.stack import AREA, OTHER_AREA, SCHOOL, SCHOOL_2, add_round, make_ready, running_stack, unique_round
from tests.test_api_access import assert_refusal
from tests.timing import bangkok_on_day, skip_to
from tests.web import served
from workflows.ids import school_round_id

A = quote(AREA)


def funnel(body: dict) -> dict[str, int]:
    return {step["bucket"]: step["count"] for step in body["funnel"]}


def row(body: dict, school: str) -> dict:
    return next(s for s in body["schools"] if s["school_code"] == school)


async def a_round(stack) -> tuple[str, object, object]:
    """Opens now; confirmation tomorrow 08.30, cutoff tomorrow 16.30 (Bangkok), started."""
    now = await stack.now()
    rid = unique_round()
    confirm_from, cutoff = bangkok_on_day(now, 8, 30), bangkok_on_day(now, 16, 30)
    add_round(stack.engine, rid, now - timedelta(minutes=1), confirm_from, cutoff)
    await stack.start_round(rid)
    return rid, confirm_from, cutoff


def decided_cases(engine, rid: str) -> None:
    """An approved ID correction and a rejected dropout at SCHOOL."""
    with session_scope(engine) as s:
        s.add(InboundMessage(sha256="b" * 64, via="smtp", received_at=engine_now(), size=1, raw=b"x"))
        student = Student(school_code=SCHOOL, student_id="1449900000042", first_name="ศุภชัย", last_name="แสนสุข",
                          grade="ม.3", status="studying")
        s.add(student)
        s.flush()
        s.add(IdCorrection(id="IDC-DONE0001", message_sha="b" * 64, block=1, round_id=rid, school_code=SCHOOL, area=AREA,
                           old_id="G256644000017", new_id="1449900000042", student_name="ด.ช.ศุภชัย แสนสุข",
                           status="approved", decided_by=None, decided_at=engine_now()))
        s.add(DropoutRequest(id="dro-done-1", round_id=rid, school_code=SCHOOL, area=AREA, student_pk=student.id,
                             reason="moved_home", status="rejected", requested_by="u-x", requested_at=engine_now(),
                             decided_at=engine_now()))


def open_cases(engine, rid: str) -> None:
    """One pending ID correction and one dropout consultation waiting for the district, at SCHOOL."""
    with session_scope(engine) as s:
        s.add(InboundMessage(sha256="a" * 64, via="smtp", received_at=engine_now(), size=1, raw=b"x"))
        student = Student(school_code=SCHOOL, student_id="1449900000034", first_name="ณัฐธิดา", last_name="วงศ์ใหญ่",
                          grade="ม.2", status="transferred_out")
        s.add(student)
        s.flush()
        s.add(IdCorrection(id="IDC-OPEN0001", message_sha="a" * 64, block=1, round_id=rid, school_code=SCHOOL, area=AREA,
                           status="pending"))
        s.add(DropoutRequest(id="dro-open-1", round_id=rid, school_code=SCHOOL, area=AREA, student_pk=student.id,
                             reason="moved_home", status="waiting_district", requested_by="u-x",
                             requested_at=engine_now()))


def engine_now() -> datetime:
    return datetime.now(timezone.utc)


async def test_an_area_followed_from_opening_to_the_cutoff(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, confirm_from, cutoff = await a_round(stack)
        url = f"/rounds/{rid}/areas/{A}/dashboard"
        district = stack.auth("district")

        r = await stack.http.get(url, headers=district)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["area"] == AREA and body["total"] == 2
        assert [s["school_code"] for s in body["schools"]] == [SCHOOL, SCHOOL_2]
        assert funnel(body) == {"not_open": 0, "open": 2, "step_3_2_2": 0, "step_3_2_2_1": 0, "step_3_2_2_2": 0,
                                "confirmed": 0, "certified": 0, "late": 0}
        assert body["at_risk"] == []  # more than half of the round is left
        assert row(body, SCHOOL)["cutoff_at"]["th"].endswith("16.30 น.")

        await make_ready(stack, rid, SCHOOL)
        open_cases(engine, rid)
        body = (await stack.http.get(url, headers=district)).json()
        assert funnel(body)["step_3_2_2_2"] == 1 and funnel(body)["open"] == 1
        AreaDashboardOut.model_validate(body)  # the answer has the documented shape
        school = row(body, SCHOOL)
        assert school["gate"]["steps"] == {"3.2.2": True, "3.2.2.1": True, "3.2.2.2": True}
        assert (school["open_id_corrections"], school["open_dropouts"], school["open_duplicates"]) == (1, 1, 0)
        assert body["open_cases"] == {"id_corrections": 1, "dropouts": 1, "duplicates": 0}

        # the morning of the day: the school with an empty roster is at risk, the ready one is not
        await skip_to(stack, confirm_from)
        body = (await stack.http.get(url, headers=district)).json()
        assert [(s["school_code"], s["risk"]["code"]) for s in body["at_risk"]] == [(SCHOOL_2, "roster_empty")]
        risk = body["at_risk"][0]["risk"]  # the clock runs on between the skip and the request: 8 h, or a hair under
        assert risk["th"] in ("ยังไม่มีนักเรียนในทะเบียน เหลือเวลา 8 ชั่วโมง",
                              "ยังไม่มีนักเรียนในทะเบียน เหลือเวลา 7 ชั่วโมง 59 นาที"), risk
        assert risk["en"] in ("No student on the roster yet; 8 h left", "No student on the roster yet; 7 h 59 min left")
        assert row(body, SCHOOL)["risk"] is None and row(body, SCHOOL)["stage"] == "confirmation_window"

        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 200, r.text
        body = (await stack.http.get(url, headers=district)).json()
        assert funnel(body)["confirmed"] == 1 and funnel(body)["step_3_2_2_2"] == 0
        assert row(body, SCHOOL)["confirmed"]["by_name"] == "ครูธุรการ"
        assert row(body, SCHOOL)["confirmed"]["at"]["th"].endswith("08.30 น.")

        # the last hour without the director's certification
        await skip_to(stack, cutoff - timedelta(minutes=45))
        body = (await stack.http.get(url, headers=district)).json()
        risks = {s["school_code"]: s["risk"]["code"] for s in body["at_risk"]}
        assert risks == {SCHOOL: "not_certified", SCHOOL_2: "roster_empty"}
        assert 45 * 60 - 10 <= row(body, SCHOOL)["seconds_left"] <= 45 * 60

        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/certification", headers=stack.auth("director"))
        assert r.status_code == 200, r.text
        await skip_to(stack, cutoff + timedelta(minutes=1))
        body = (await stack.http.get(url, headers=district)).json()
        assert funnel(body)["certified"] == 1 and funnel(body)["late"] == 1 and body["at_risk"] == []
        assert row(body, SCHOOL_2)["stage"] == "late" and row(body, SCHOOL_2)["stage_th"] == "ไม่ทันกำหนด"

        # the ministry's view of the round: every area, the same figures
        r = await stack.http.get(f"/rounds/{rid}/overview", headers=stack.auth("admin"))
        assert r.status_code == 200, r.text
        overview = r.json()
        RoundOverviewOut.model_validate(overview)
        areas = {a["area"]: a for a in overview["areas"]}
        assert set(areas) == {AREA, OTHER_AREA}
        assert areas[AREA]["funnel"]["certified"] == 1 and areas[AREA]["funnel"]["late"] == 1
        assert areas[AREA]["open_cases"] == {"id_corrections": 1, "dropouts": 1, "duplicates": 0}
        assert areas[OTHER_AREA]["total"] == 1 and areas[OTHER_AREA]["funnel"]["late"] == 1
        assert overview["total"] == 3 and funnel(overview)["late"] == 2 and overview["at_risk"] == 0


async def test_who_may_watch_what(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, _, _ = await a_round(stack)
        url = f"/rounds/{rid}/areas/{A}/dashboard"
        assert_refusal(await stack.http.get(url), 401, "unauthenticated")
        assert_refusal(await stack.http.get(url, headers=stack.auth("other_district")), 403, "forbidden")
        assert_refusal(await stack.http.get(url, headers=stack.auth("staff")), 403, "forbidden")
        assert_refusal(await stack.http.get(url, headers=stack.auth("director")), 403, "forbidden")
        assert (await stack.http.get(url, headers=stack.auth("admin"))).status_code == 200
        assert_refusal(await stack.http.get(f"/rounds/{rid}/areas/{quote('สพม.ไม่มีจริง')}/dashboard",
                                            headers=stack.auth("district")), 404, "not_found")
        assert_refusal(await stack.http.get(f"/rounds/nope/areas/{A}/dashboard", headers=stack.auth("district")), 404,
                       "not_found")
        assert_refusal(await stack.http.get(f"/rounds/{rid}/overview", headers=stack.auth("district")), 403, "forbidden")
        assert_refusal(await stack.http.get("/rounds/nope/overview", headers=stack.auth("admin")), 404, "not_found")
        report = f"/rounds/{rid}/areas/{A}/report"
        assert_refusal(await stack.http.get(report, headers=stack.auth("other_district")), 403, "forbidden")
        assert_refusal(await stack.http.get(f"{report}?format=pdf", headers=stack.auth("district")), 422,
                       "invalid_request")
        pack = f"/rounds/{rid}/schools/{SCHOOL}/evidence-pack"
        assert_refusal(await stack.http.get(pack, headers=stack.auth("staff2")), 403, "forbidden")
        assert_refusal(await stack.http.get(pack, headers=stack.auth("other_district")), 403, "forbidden")
        assert_refusal(await stack.http.get(f"/rounds/{rid}/schools/9999999999/evidence-pack",
                                            headers=stack.auth("admin")), 404, "not_found")
        assert_refusal(await stack.http.get(f"/rounds/{rid}/schools/{SCHOOL}/timeline", headers=stack.auth("staff2")),
                       403, "forbidden")

        # a school whose workflow Temporal does not know (past retention, say): its audit trail alone
        late_comer = "1044449009"
        with session_scope(engine) as s:
            upsert_school(s, late_comer, "โรงเรียนมาทีหลัง", AREA, [])
            s.flush()
            spec = s.get(Round, rid)
            s.add(SchoolRound(round_id=rid, school_code=late_comer, area=AREA, stage="open", opens_at=spec.opens_at,
                              confirm_from=spec.confirm_from, cutoff_at=spec.cutoff_at, gate={"students": 3},
                              blocking=[], version=1))
            s.add(AuditEvent(key="t/1", at=spec.opens_at, actor="system", action="extend_deadline",
                             round_id=rid, school_code=late_comer, after={"cutoff_at": spec.cutoff_at.isoformat()}))
        r = await stack.http.get(f"/rounds/{rid}/schools/{late_comer}/timeline", headers=stack.auth("district"))
        assert r.status_code == 200, r.text
        assert r.json()["history_available"] is False and [x["code"] for x in r.json()["lines"]] == ["extend_deadline"]
        body = (await stack.http.get(f"/rounds/{rid}/areas/{A}/dashboard", headers=stack.auth("district"))).json()
        assert body["total"] == 3 and row(body, late_comer)["gate"]["students"] == 3


NATIONAL_IDS = ("1449900000018", "1-4499-00000-01-8")


async def test_timeline_reports_and_evidence_pack(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, confirm_from, cutoff = await a_round(stack)
        await make_ready(stack, rid, SCHOOL)
        await skip_to(stack, confirm_from + timedelta(minutes=5))
        for path, who in (("confirmation", "staff"), ("certification", "director")):
            r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/{path}", headers=stack.auth(who))
            assert r.status_code == 200, r.text
        decided_cases(engine, rid)
        await stack.client.get_workflow_handle(school_round_id(rid, SCHOOL)).result()  # certified: its history is whole

        # the timeline: audit trail and workflow history, oldest first, Thai dates, no student
        r = await stack.http.get(f"/rounds/{rid}/schools/{SCHOOL}/timeline", headers=stack.auth("district"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["history_available"] is True and body["school_name"] == "โรงเรียนตัวอย่างวิทยา"
        lines = body["lines"]
        assert [x["at"]["iso"] for x in lines] == sorted(x["at"]["iso"] for x in lines)
        texts = [x["th"] for x in lines]
        assert texts[0] == "เริ่มติดตามรอบของโรงเรียน"
        # an area-timed school keeps one timer, its close after the late grace; the certification ended it
        close_at = cutoff + RoundPolicy().late_grace
        assert f"ตั้งเวลา: ปิดงานของรอบ (พ้นระยะขยายเวลา) {thai_datetime(close_at)}" in texts
        assert f"ยกเลิกเวลาที่ตั้งไว้: ปิดงานของรอบ (พ้นระยะขยายเวลา) {thai_datetime(close_at)}" in texts
        assert "นำเข้าทะเบียนนักเรียน 1 รายการ" in texts and "บันทึกผลสิ้นปี เมนู 3.2.2 1 รายการ" in texts
        decisions = [(x["code"], x["actor_name"], x["source"]) for x in lines if x["code"] in ("confirm", "certify")]
        assert decisions == [("confirm", "ครูธุรการ", "audit"), ("certify", "ผอ.โรงเรียน", "audit")]
        assert not any(x["code"].startswith("update_") for x in lines)  # each accepted update shows once, as its audit line
        confirm_line = next(x for x in lines if x["code"] == "confirm")
        assert confirm_line["at"]["th"].endswith("08.35 น.") and confirm_line["en"] == "Staff confirmed the roster (R11)"
        assert not any(n in r.text for n in NATIONAL_IDS)
        assert (await stack.http.get(f"/rounds/{rid}/schools/{SCHOOL}/timeline", headers=stack.auth("staff"))
                ).status_code == 200  # a school sees its own

        # the area's report: CSV for Excel (BOM), Thai headers and dates, who confirmed and certified when
        r = await stack.http.get(f"/rounds/{rid}/areas/{A}/report", headers=stack.auth("district"))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        disposition = r.headers["content-disposition"]
        assert disposition.startswith(f'attachment; filename="area-report-{rid}-') and "filename*=UTF-8''" in disposition
        assert r.content.startswith(b"\xef\xbb\xbf")
        table = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
        header, rows = table[0], {t[0]: dict(zip(table[0], t, strict=True)) for t in table[1:]}
        assert header[:5] == ["รหัสโรงเรียน", "ชื่อโรงเรียน", "เขตพื้นที่", "สถานะ", "ความคืบหน้า"]
        mine = rows[SCHOOL]
        assert mine["สถานะ"] == "ผู้อำนวยการรับรองแล้ว" and mine["ยืนยันโดย"] == "ครูธุรการ"
        assert mine["ยืนยันเมื่อ"].endswith("08.35 น.") and mine["รับรองโดย"] == "ผอ.โรงเรียน"
        assert mine["กำหนดส่ง"].endswith("16.30 น.") and " 25" in mine["กำหนดส่ง"]  # Buddhist-Era year
        assert rows[SCHOOL_2]["ความเสี่ยง"].startswith("ยังไม่มีนักเรียนในทะเบียน")
        r = await stack.http.get(f"/rounds/{rid}/areas/{A}/report?format=xlsx&lang=en", headers=stack.auth("admin"))
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
        sheet = load_workbook(io.BytesIO(r.content), read_only=True).active
        values = [list(v) for v in sheet.iter_rows(values_only=True)]
        assert values[0][:3] == ["School code", "School", "Area"]
        assert values[1][0] == SCHOOL and values[1][3] == "Certified" and values[1][15] == "ครูธุรการ"

        # the school's evidence pack: its own staff may download it
        r = await stack.http.get(f"/rounds/{rid}/schools/{SCHOOL}/evidence-pack", headers=stack.auth("staff"))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/zip"
        assert r.headers["content-disposition"] == f'attachment; filename="evidence-{rid}-{SCHOOL}.zip"'
        pack = zipfile.ZipFile(io.BytesIO(r.content))
        folder = f"evidence-{rid}-{SCHOOL}/"
        names = sorted(n.removeprefix(folder) for n in pack.namelist())
        assert names == ["SHA256SUMS.txt", "audit-trail.csv", "dropouts.csv", "duplicates.csv", "existence-marks.csv",
                         "id-corrections.csv",
                         "summary.html", "timeline.csv"]
        files = {n: pack.read(folder + n) for n in names}
        summary = files["summary.html"].decode()
        assert "โรงเรียนตัวอย่างวิทยา" in summary and "ผู้อำนวยการรับรองแล้ว" in summary and "ครูธุรการ" in summary
        audit = list(csv.DictReader(io.StringIO(files["audit-trail.csv"].decode("utf-8-sig"))))
        codes = [a["รหัสการดำเนินการ"] for a in audit]
        assert [c for c in codes if c in ("confirm", "certify")] == ["confirm", "certify"]
        assert next(a for a in audit if a["รหัสการดำเนินการ"] == "certify")["ผู้ดำเนินการ"] == "ผอ.โรงเรียน"
        corrections = list(csv.DictReader(io.StringIO(files["id-corrections.csv"].decode("utf-8-sig"))))
        assert [(c["เลขอ้างอิง"], c["สถานะ"], c["เลขประจำตัวประชาชนใหม่"]) for c in corrections] == [
            ("IDC-DONE0001", "อนุมัติ", "1449900000042")]
        dropouts = list(csv.DictReader(io.StringIO(files["dropouts.csv"].decode("utf-8-sig"))))
        # the dropout reason in the ministry's Thai words, the national ID under its own name (issue 16)
        assert [(d["เลขคำขอ"], d["สถานะ"], d["สาเหตุ"]) for d in dropouts] == [("dro-done-1", "ไม่อนุมัติ", "ย้ายที่อยู่")]
        assert dropouts[0]["เลขประจำตัวประชาชน/รหัส G"] == "1449900000042"
        timeline_rows = list(csv.DictReader(io.StringIO(files["timeline.csv"].decode("utf-8-sig"))))
        assert len(timeline_rows) == len(lines)
        sums = dict(reversed(line.split("  ")) for line in files["SHA256SUMS.txt"].decode().splitlines())
        assert all(sums[n] == hashlib.sha256(files[n]).hexdigest() for n in names if n != "SHA256SUMS.txt")
        assert (await stack.http.get(f"/rounds/{rid}/schools/{SCHOOL}/evidence-pack",
                                     headers=stack.auth("district"))).status_code == 200


async def test_the_page_logs_in_once_and_the_feed_pushes_a_confirmation(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, confirm_from, _ = await a_round(stack)
        await make_ready(stack, rid, SCHOOL)
        await skip_to(stack, confirm_from)
        async with served(stack) as base, httpx.AsyncClient(base_url=base, timeout=20) as web:
            page = await web.get(f"/dashboard?round={rid}")
            assert page.status_code == 200 and 'action="/dashboard/login"' in page.text  # the login form
            bad = await web.post("/dashboard/login", data={"token": "nope"})
            assert bad.status_code == 401 and "โทเค็นไม่ถูกต้อง" in bad.text
            staff = await web.post("/dashboard/login", data={"token": stack.tokens["staff"]})
            assert staff.status_code == 403 and "เฉพาะเจ้าหน้าที่เขตและผู้ดูแลระบบ" in staff.text
            r = await web.post("/dashboard/login", data={"token": stack.tokens["district"],
                                                          "next": f"/dashboard?round={rid}"})
            assert r.status_code == 303 and r.headers["location"] == f"/dashboard?round={rid}"
            cookie = r.headers["set-cookie"]  # a web session's id (tests/trust/test_finding_8_*), not the token
            assert "dmcflow_session=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
            assert stack.tokens["district"] not in cookie
            evil = await web.post("/dashboard/login", data={"token": stack.tokens["district"], "next": "https://evil.example/"})
            assert evil.headers["location"] == "/dashboard"

            page = await web.get(f"/dashboard?round={rid}")
            assert page.status_code == 200 and page.headers["content-security-policy"].startswith("default-src 'self'")
            assert 'id="initial-data"' in page.text and AREA in page.text
            js = await web.get("/dashboard/static/dashboard.js")
            assert js.status_code == 200 and "EventSource" in js.text
            # the cookie serves reads only: a decision still needs the bearer token
            assert_refusal(await web.post(f"/rounds/{rid}/schools/{SCHOOL}/confirmation"), 401, "unauthenticated")
            other = await web.get(f"/dashboard?round={rid}&area={quote(OTHER_AREA)}")
            assert other.status_code == 403 and "ไม่มีสิทธิ์" in other.text and 'data-code="forbidden"' in other.text
            unknown = await web.get(f"/dashboard?round={rid}&area={quote('สพม.ไม่มีจริง')}")
            assert unknown.status_code == 404 and 'data-code="not_found"' in unknown.text
            assert (await web.get("/dashboard?round=nope")).status_code == 404

            events = []

            async def listen() -> None:
                async with web.stream("GET", f"/rounds/{rid}/areas/{A}/events") as feed:
                    assert feed.headers["content-type"].startswith("text/event-stream")
                    async for line in feed.aiter_lines():
                        if line.startswith("data: "):
                            events.append(json.loads(line[6:]))

            listener = asyncio.create_task(listen())
            try:
                for _ in range(200):
                    if events:
                        break
                    await asyncio.sleep(0.05)
                assert events and row(events[0], SCHOOL)["bucket"] == "step_3_2_2_2"
                r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/confirmation", headers=stack.auth("staff"))
                assert r.status_code == 200, r.text
                for _ in range(100):  # within seconds, without asking again
                    if row(events[-1], SCHOOL)["bucket"] == "confirmed":
                        break
                    await asyncio.sleep(0.1)
                assert row(events[-1], SCHOOL)["bucket"] == "confirmed" and funnel(events[-1])["confirmed"] == 1
            finally:
                listener.cancel()
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)[1]  # the page's logout form
            assert (await web.post("/dashboard/logout", data={"csrf_token": csrf})).status_code == 303
            assert 'action="/dashboard/login"' in (await web.get("/dashboard")).text
