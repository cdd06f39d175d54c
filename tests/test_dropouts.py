"""R8 dropout consultations through the API under time skipping: every path, the clock and the gate."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlmodel import select
from temporalio.service import RPCError, RPCStatusCode

from db.directory import create_user
from db.engine import session_scope
from db.models import DropoutMessage, DropoutRequest, Student
from domain.rounds import RoundPolicy
from domain.thai_time import BANGKOK
from tests.db_backends import BOTH_BACKENDS
from tests.stack import (
    AREA,
    HEADER,
    READY_IDS,
    SCHOOL,
    add_round,
    keep_history,
    make_ready,
    running_stack,
    unique_round,
)
from tests.timing import eventually, skip_to
from workflows.ids import dropout_id

pytestmark = pytest.mark.parametrize("backend", BOTH_BACKENDS, indirect=True)

PUPIL = READY_IDS[SCHOOL]
ADMIN_MAIL = "admin@sesao26.example"
DISTRICT_MAIL = "officer@sesao26.example"
SCHOOL_MAIL = "dmc@tuayang.ac.th"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def next_friday_10(now: datetime) -> datetime:
    local = now.astimezone(BANGKOK) + timedelta(days=3)
    local += timedelta(days=(4 - local.weekday()) % 7)
    return local.replace(hour=10, minute=0, second=0, microsecond=0)


def with_holidays(settings, tmp_path, days: list[date]):
    path = tmp_path / "holidays.csv"
    path.write_text("date,name\n" + "".join(f"{d.isoformat()},วันหยุดทดสอบ\n" for d in days), encoding="utf-8")
    return settings.model_copy(update={"holiday_files": [path]})


async def open_round(stack, engine, *, cutoff: datetime, confirm_from: datetime | None = None,
                     policy: RoundPolicy | None = None) -> str:
    now = await stack.now()
    rid = unique_round()
    add_round(engine, rid, now - timedelta(minutes=1), confirm_from or cutoff - (cutoff - now) / 2, cutoff, policy)
    await stack.start_round(rid)
    await make_ready(stack, rid, SCHOOL)
    return rid


async def request(stack, rid, who="staff", **form):
    data = {"student": PUPIL, "reason": "low_income", "details": "ครอบครัวย้ายไปทำงานต่างจังหวัด ไม่มาเรียนตั้งแต่ ก.พ."}
    data.update(form)
    return await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/dropouts", headers=stack.auth(who), data=data,
                                 files={"evidence": ("บันทึกการติดตาม.pdf", PDF, "application/pdf")})


async def comment(stack, rid, request_id, who, text):
    return await stack.http.post(f"/rounds/{rid}/dropouts/{request_id}/comments", headers=stack.auth(who),
                                 data={"text": text})


async def decide(stack, rid, request_id, who, approve: bool, reason: str):
    return await stack.http.post(f"/rounds/{rid}/dropouts/{request_id}/decision", headers=stack.auth(who),
                                 json={"approve": approve, "reason": reason})


def student_status(engine) -> tuple[str, str | None]:
    with session_scope(engine) as s:
        st = s.exec(select(Student).where(Student.school_code == SCHOOL, Student.student_id == PUPIL)).one()
        return st.status, st.status_reason


def mails(smtp, request_id: str, to: str | None = None) -> list:
    return [m for m in smtp.messages if request_id in m["Subject"] and (to is None or to in m["To"])]


async def blocking(stack, rid) -> list[dict]:
    return (await stack.http.get(f"/rounds/{rid}/schools/{SCHOOL}", headers=stack.auth("staff"))).json()["blocking_cases"]


async def test_approval_records_the_student_as_dropped_out_and_tells_the_school(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = await open_round(stack, engine, cutoff=now + timedelta(days=3))
        r = await request(stack, rid)
        assert r.status_code == 201, r.text
        req = r.json()
        assert req["status"] == "waiting_district" and req["reason_th"] == "ฐานะยากจน"
        assert req["student_name"] == "เด็กชายทดสอบ ระบบ" and req["thread"][0]["kind"] == "request"
        rid_ = req["id"]

        # the district is told; the school's confirmation names the open request
        await eventually(lambda: mails(smtp, rid_, DISTRICT_MAIL))
        [mail] = mails(smtp, rid_, DISTRICT_MAIL)
        assert "ฐานะยากจน" in mail.get_content() and "เด็กชายทดสอบ ระบบ" in mail.get_content()
        cases = await blocking(stack, rid)
        assert [c["ref"] for c in cases] == [rid_] and "เด็กชายทดสอบ ระบบ" in cases[0]["title_th"]

        # the same student cannot be asked for twice; the roster's status route still refuses a dropout
        again = await request(stack, rid)
        assert again.status_code == 409 and again.json()["code"] == "dropout_already_requested"
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/students/status", headers=stack.auth("staff"),
                                  json={"student": PUPIL, "status": "dropped_out"})
        assert r.status_code == 409 and r.json()["code"] == "r8_dropout_needs_consultation"

        r = await decide(stack, rid, rid_, "district", True, "ตรวจสอบกับผู้ปกครองแล้ว")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "approved" and r.json()["thread"][-1]["kind"] == "approve"
        assert student_status(engine) == ("dropped_out", "low_income")
        # an old export does not bring the student back
        csv = HEADER + f"{SCHOOL},โรงเรียน,{PUPIL},ม.1,1,1,ช,เด็กชาย,ทดสอบ,ระบบ,01/01/2555,ใช่\n"
        r = await stack.http.post(f"/rounds/{rid}/students/import", headers=stack.auth("staff"),
                                  files={"file": ("r.csv", csv.encode(), "text/csv")})
        assert r.status_code == 200 and r.json()["applied"] == 0, r.text
        assert [i["code"] for i in r.json()["issues"]] == ["r8_dropped_out"]
        assert student_status(engine) == ("dropped_out", "low_income")

        await eventually(lambda: mails(smtp, rid_, SCHOOL_MAIL))
        [told] = [m for m in mails(smtp, rid_, SCHOOL_MAIL) if "ผลการปรึกษา" in m["Subject"]]
        assert "ตรวจสอบกับผู้ปกครองแล้ว" in told.get_content()
        audit = (await stack.http.get(f"/rounds/{rid}/schools/{SCHOOL}/audit", headers=stack.auth("district"))).json()
        actions = [a["action"] for a in audit]
        assert {"dropout_requested", "student_dropped_out", "dropout_approved"} <= set(actions)
        assert await stack.client.get_workflow_handle(dropout_id(rid_)).result() == "approved"
        assert await blocking(stack, rid) == []

        # settled: no more decisions or comments
        r = await decide(stack, rid, rid_, "district", False, "เปลี่ยนใจ")
        assert r.status_code == 409 and r.json()["code"] == "dropout_closed"
        await keep_history(stack, dropout_id(rid_), "dropout_approved")
        await keep_history(stack, dropout_id(rid_), "v8-dropout_answered_when_open")  # issue 19: update-with-start


async def test_rejection_keeps_the_student_and_frees_the_confirmation(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = await open_round(stack, engine, cutoff=now + timedelta(hours=10), confirm_from=now + timedelta(hours=1))
        rid_ = (await request(stack, rid)).json()["id"]
        await skip_to(stack, now + timedelta(hours=1, minutes=1))
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 409 and r.json()["code"] == "blocking_cases" and rid_ in r.json()["message_th"]

        r = await decide(stack, rid, rid_, "district", False, "นักเรียนยังมาเรียนตามปกติ")
        assert r.status_code == 200 and r.json()["status"] == "rejected"
        assert student_status(engine) == ("studying", None)
        await eventually(lambda: [m for m in mails(smtp, rid_, SCHOOL_MAIL) if "ไม่อนุมัติ" in m["Subject"]])

        async def confirmed() -> bool:
            r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/confirmation", headers=stack.auth("staff"))
            return r.status_code == 200

        for _ in range(100):  # the close signal reaches the school's workflow just after the decision
            if await confirmed():
                break
        else:
            raise AssertionError("confirmation still blocked after the rejection")


async def test_question_and_answer_both_sides_see_the_thread(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = await open_round(stack, engine, cutoff=now + timedelta(days=3))
        rid_ = (await request(stack, rid)).json()["id"]

        r = await comment(stack, rid, rid_, "district", "ขอสำเนาบันทึกการเยี่ยมบ้านครั้งล่าสุด")
        assert r.status_code == 200 and r.json()["status"] == "waiting_school", r.text
        await eventually(lambda: [m for m in mails(smtp, rid_, SCHOOL_MAIL) if "สอบถาม" in m["Subject"]])
        asked = [m for m in mails(smtp, rid_, SCHOOL_MAIL) if "สอบถาม" in m["Subject"]][0]
        assert "ขอสำเนาบันทึกการเยี่ยมบ้านครั้งล่าสุด" in asked.get_content()

        r = await stack.http.post(f"/rounds/{rid}/dropouts/{rid_}/comments", headers=stack.auth("director"),
                                  data={"text": "แนบบันทึกการเยี่ยมบ้าน 12 ก.พ."},
                                  files={"evidence": ("เยี่ยมบ้าน.pdf", PDF, "application/pdf")})
        assert r.status_code == 200 and r.json()["status"] == "waiting_district", r.text
        await eventually(lambda: [m for m in mails(smtp, rid_, DISTRICT_MAIL) if "ตอบ" in m["Subject"]])

        for who in ("staff", "district", "admin"):
            view = (await stack.http.get(f"/rounds/{rid}/dropouts/{rid_}", headers=stack.auth(who))).json()
            assert [e["kind"] for e in view["thread"]] == ["request", "question", "answer"], who
            assert view["thread"][1]["author_name"] == "เขต" and view["thread"][2]["evidence"]
        sha = view["thread"][2]["evidence"]
        r = await stack.http.get(f"/rounds/{rid}/dropouts/{rid_}/evidence/{sha}", headers=stack.auth("district"))
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
        assert r.headers["content-disposition"].startswith("attachment")

        # outsiders see nothing and cannot speak
        for who in ("other_district", "other_staff"):
            r = await stack.http.get(f"/rounds/{rid}/dropouts/{rid_}", headers=stack.auth(who))
            assert r.status_code == 404 and r.json()["code"] == "not_found"
            r = await comment(stack, rid, rid_, who, "แทรก")
            assert r.status_code == 404
            assert (await stack.http.get(f"/rounds/{rid}/dropouts", headers=stack.auth(who))).json() == []
        r = await comment(stack, rid, rid_, "admin", "ผู้ดูแลระบบ")
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        with session_scope(engine) as s:  # the refused entry left nothing behind
            texts = [m.text for m in s.exec(select(DropoutMessage).where(DropoutMessage.request_id == rid_))]
        assert "ผู้ดูแลระบบ" not in texts and len(texts) == 3

        r = await stack.http.get(f"/rounds/{rid}/dropouts?status=waiting_district&area={AREA}",
                                 headers=stack.auth("district"))
        assert [d["id"] for d in r.json()] == [rid_]
        assert (await stack.http.get(f"/rounds/{rid}/dropouts?status=closed", headers=stack.auth("district"))).json() == []
        await keep_history(stack, dropout_id(rid_), "dropout_question_answer")


async def test_reminders_and_escalation_count_working_days_across_a_weekend_and_holidays(
        time_env, engine, settings, smtp, tmp_path):
    now = await time_env.get_current_time()
    friday = next_friday_10(now)
    monday_off, thursday_off = (friday + timedelta(days=3)).date(), (friday + timedelta(days=6)).date()
    settings = with_holidays(settings, tmp_path, [monday_off, thursday_off])
    async with running_stack(time_env, engine, settings) as stack:
        with session_scope(engine) as s:
            create_user(s, role="admin", display_name="ผู้ดูแลเขต", area=AREA, email=ADMIN_MAIL)
        rid = await open_round(stack, engine, cutoff=friday + timedelta(days=21, hours=6, minutes=30))
        await skip_to(stack, friday)
        rid_ = (await request(stack, rid)).json()["id"]
        await eventually(lambda: mails(smtp, rid_, DISTRICT_MAIL))

        def reminders(to):
            return [m for m in mails(smtp, rid_, to) if "แจ้งเตือน" in m["Subject"]]

        # Fri 10.00 → Sat, Sun, the Monday holiday don't count → Tue, Wed 10.00
        wednesday = friday + timedelta(days=5)
        await skip_to(stack, wednesday - timedelta(minutes=1))
        assert reminders(DISTRICT_MAIL) == []
        await skip_to(stack, wednesday + timedelta(minutes=1))
        await eventually(lambda: reminders(DISTRICT_MAIL))

        # the district asks on Wed 11.00 → Thursday is a holiday → Fri, Mon 11.00
        await skip_to(stack, wednesday + timedelta(hours=1))
        assert (await comment(stack, rid, rid_, "district", "ขอข้อมูลเพิ่มเติม")).status_code == 200
        next_monday = friday + timedelta(days=10, hours=1)
        await skip_to(stack, next_monday - timedelta(minutes=1))
        assert reminders(SCHOOL_MAIL) == []
        # and the request, undecided, reaches five working days on Tue 10.00: Fri .58, Tue, Wed, Fri, Mon, Tue
        assert [m for m in smtp.messages if ADMIN_MAIL in m["To"]] == []
        await skip_to(stack, next_monday + timedelta(minutes=1))
        await eventually(lambda: reminders(SCHOOL_MAIL))
        tuesday = friday + timedelta(days=11)
        await skip_to(stack, tuesday - timedelta(minutes=1))
        assert [m for m in smtp.messages if ADMIN_MAIL in m["To"]] == []
        await skip_to(stack, tuesday + timedelta(minutes=1))
        await eventually(lambda: [m for m in smtp.messages if ADMIN_MAIL in m["To"]])
        [escalation] = [m for m in smtp.messages if ADMIN_MAIL in m["To"]]
        assert "5 วันทำการ" in escalation["Subject"] and rid_ in escalation["Subject"]

        # each went out once, however long the request waits after
        await skip_to(stack, tuesday + timedelta(days=6))
        assert len(reminders(DISTRICT_MAIL)) == 1 and len(reminders(SCHOOL_MAIL)) == 1
        assert len([m for m in smtp.messages if ADMIN_MAIL in m["To"]]) == 1
        await keep_history(stack, dropout_id(rid_), "dropout_reminded_escalated")


async def test_an_open_request_expires_at_the_cutoff_and_follows_an_extension(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        cutoff = now + timedelta(hours=6)
        rid = await open_round(stack, engine, cutoff=cutoff)
        rid_ = (await request(stack, rid)).json()["id"]
        new_cutoff = (cutoff + timedelta(days=1)).astimezone(BANGKOK)
        r = await stack.http.post(f"/rounds/{rid}/deadline-extensions", headers=stack.auth("district"), json={
            "school_code": SCHOOL, "cutoff_at": new_cutoff.isoformat(), "reason": "ไฟฟ้าดับทั้งอำเภอ"})
        assert r.status_code == 200, r.text

        await skip_to(stack, cutoff + timedelta(minutes=5))  # the old cutoff: still open
        view = (await stack.http.get(f"/rounds/{rid}/dropouts/{rid_}", headers=stack.auth("staff"))).json()
        assert view["status"] == "waiting_district"
        await skip_to(stack, new_cutoff + timedelta(minutes=1))
        handle = stack.client.get_workflow_handle(dropout_id(rid_))
        assert await handle.result() == "expired"
        view = (await stack.http.get(f"/rounds/{rid}/dropouts/{rid_}", headers=stack.auth("staff"))).json()
        assert view["status"] == "expired" and view["thread"][-1]["kind"] == "expired"
        assert student_status(engine) == ("studying", None)
        await eventually(lambda: [m for m in mails(smtp, rid_, SCHOOL_MAIL) if "หมดเวลา" in m["Subject"]])
        r = await decide(stack, rid, rid_, "district", True, "ช้าไป")
        assert r.status_code == 409 and r.json()["code"] == "dropout_closed"
        await keep_history(stack, dropout_id(rid_), "dropout_expired")


async def test_requests_are_refused_with_their_reason(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = await open_round(stack, engine, cutoff=now + timedelta(days=3))
        cases = [
            (dict(reason="bored"), "staff", 422, "dropout_reason_unknown"),
            (dict(details="   "), "staff", 422, "details_required"),
            (dict(student="1449900000026"), "staff", 404, "not_found"),
            (dict(student="12345"), "staff", 422, None),
            ({}, "director", 403, "forbidden"),
            ({}, "district", 403, "forbidden"),
            ({}, "other_staff", 403, "forbidden"),
        ]
        for form, who, status, code in cases:
            r = await request(stack, rid, who, **form)
            assert r.status_code == status, (form, who, r.text)
            body = r.json()
            assert body["message_th"] and body["message_en"] and (code is None or body["code"] == code)
        with session_scope(engine) as s:
            assert s.exec(select(DropoutRequest)).all() == []  # nothing half-made

        rid_ = (await request(stack, rid)).json()["id"]
        for who, status in (("staff", 403), ("admin", 403), ("other_district", 404)):
            r = await decide(stack, rid, rid_, who, True, "อนุมัติ")
            assert r.status_code == status, (who, r.text)
        r = await stack.http.post(f"/rounds/{rid}/dropouts/{rid_}/decision", headers=stack.auth("district"),
                                  json={"approve": True, "reason": "  "})
        assert r.status_code == 422 and r.json()["code"] == "reason_required"
        assert student_status(engine) == ("studying", None)


async def test_a_request_temporal_does_not_take_leaves_nothing_behind(time_env, engine, settings, monkeypatch):
    """Issue 19: the staged request goes when its workflow cannot open it; the school's next try is not refused as
    a request already made."""
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = await open_round(stack, engine, cutoff=now + timedelta(days=3))

        async def unavailable(*args, **kwargs):
            raise RPCError("Temporal is unavailable", RPCStatusCode.UNAVAILABLE, b"")

        monkeypatch.setattr(time_env.client, "execute_update_with_start_workflow", unavailable)
        r = await request(stack, rid)
        assert r.status_code == 503 and r.json()["code"] == "temporal_unavailable", r.text
        with session_scope(engine) as s:
            assert s.exec(select(DropoutRequest).where(DropoutRequest.round_id == rid)).all() == []
            assert s.exec(select(DropoutMessage)).all() == []
        monkeypatch.undo()
        r = await request(stack, rid)
        assert r.status_code == 201 and r.json()["status"] == "waiting_district", r.text  # open when answered


async def test_no_request_once_the_school_has_confirmed(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = await open_round(stack, engine, cutoff=now + timedelta(hours=10), confirm_from=now + timedelta(hours=1))
        await skip_to(stack, now + timedelta(hours=1, minutes=1))
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 200, r.text
        r = await request(stack, rid)
        assert r.status_code == 409 and r.json()["code"] == "roster_frozen"


# --- issue 16: a school is never made late by someone else ---------------------------------------------

async def withdraw(stack, rid, request_id, who, reason):
    return await stack.http.post(f"/rounds/{rid}/dropouts/{request_id}/withdrawal", headers=stack.auth(who),
                                 json={"reason": reason})


async def test_the_school_withdraws_its_own_request_and_may_confirm(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        rid = await open_round(stack, engine, cutoff=now + timedelta(hours=10), confirm_from=now + timedelta(hours=1))
        rid_ = (await request(stack, rid)).json()["id"]
        await skip_to(stack, now + timedelta(hours=1, minutes=1))
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 409 and r.json()["code"] == "blocking_cases"

        # only the requesting school's staff, with a reason
        for who, status in (("director", 403), ("district", 403), ("other_staff", 404)):
            assert (await withdraw(stack, rid, rid_, who, "ไม่ใช่เรา")).status_code == status, who
        r = await withdraw(stack, rid, rid_, "staff", "  ")
        assert r.status_code == 422 and r.json()["code"] == "reason_required"
        r = await withdraw(stack, rid, rid_, "staff", "นักเรียนกลับมาเรียนแล้ว")
        assert r.status_code == 200, r.text
        view = r.json()
        assert view["status"] == "withdrawn" and view["status_th"] == "โรงเรียนถอนคำขอ"
        assert view["thread"][-1]["kind"] == "withdrawn" and view["thread"][-1]["text"] == "นักเรียนกลับมาเรียนแล้ว"
        assert view["decided_by"] is None and view["closed_at"]
        assert student_status(engine) == ("studying", None)
        assert await stack.client.get_workflow_handle(dropout_id(rid_)).result() == "withdrawn"

        # the school's block is gone: it confirms; the trail and the district say so
        await eventually(lambda: not blocking_sync(engine, rid))
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 200, r.text
        audit = (await stack.http.get(f"/rounds/{rid}/schools/{SCHOOL}/audit", headers=stack.auth("district"))).json()
        [entry] = [a for a in audit if a["action"] == "dropout_withdrawn"]
        assert entry["actor_name"] and entry["after"]["status"] == "withdrawn"
        await eventually(lambda: [m for m in mails(smtp, rid_, DISTRICT_MAIL) if "ถอนคำขอ" in m["Subject"]])
        told = [m for m in mails(smtp, rid_, DISTRICT_MAIL) if "ถอนคำขอ" in m["Subject"]][0]
        assert "นักเรียนกลับมาเรียนแล้ว" in told.get_content()
        listed = (await stack.http.get(f"/rounds/{rid}/dropouts?status=closed", headers=stack.auth("district"))).json()
        assert [d["id"] for d in listed] == [rid_]

        # settled: neither a second withdrawal nor a decision
        assert (await withdraw(stack, rid, rid_, "staff", "อีกครั้ง")).json()["code"] == "dropout_closed"
        assert (await decide(stack, rid, rid_, "district", True, "ช้าไป")).json()["code"] == "dropout_closed"
        await keep_history(stack, dropout_id(rid_), "v6-dropout_withdrawn")


def blocking_sync(engine, rid) -> list:
    from db.models import SchoolRound

    with session_scope(engine) as s:
        return s.get(SchoolRound, (rid, SCHOOL)).blocking


async def test_the_round_view_and_dashboard_warn_six_hours_before_the_cutoff_and_not_earlier(
        time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        now = await stack.now()
        cutoff = now + timedelta(hours=10)
        rid = await open_round(stack, engine, cutoff=cutoff, confirm_from=now + timedelta(hours=1))
        rid_ = (await request(stack, rid)).json()["id"]
        await eventually(lambda: blocking_sync(engine, rid))

        async def warnings() -> tuple[list, list, dict | None]:
            view = (await stack.http.get(f"/rounds/{rid}/schools/{SCHOOL}", headers=stack.auth("staff"))).json()
            board = (await stack.http.get(f"/rounds/{rid}/areas/{AREA}/dashboard",
                                          headers=stack.auth("district"))).json()
            [row] = [s for s in board["schools"] if s["school_code"] == SCHOOL]
            return view["warnings"], [w["school_code"] for w in board["warnings"]], row["warning"]

        await skip_to(stack, cutoff - timedelta(hours=6, minutes=1))
        assert await warnings() == ([], [], None)
        await skip_to(stack, cutoff - timedelta(hours=5, minutes=59))
        view_warnings, board_schools, row_warning = await warnings()
        [w] = view_warnings
        assert w["code"] == "blocking_near_cutoff" and "ออกกลางคัน 1" in w["th"] and "1 dropout" in w["en"]
        assert board_schools == [SCHOOL] and row_warning["code"] == "blocking_near_cutoff"

        # once the block is gone, so is the warning
        assert (await withdraw(stack, rid, rid_, "staff", "นักเรียนกลับมาเรียนแล้ว")).status_code == 200
        await eventually(lambda: not blocking_sync(engine, rid))
        assert await warnings() == ([], [], None)


# --- issue 16: a request the school excused under R11 is decided after the cutoff, and applied then ----------

async def excuse_and_confirm(stack, rid, request_id) -> None:
    """The school marks the requested student as a dropout-request exception (R11) and confirms without waiting."""
    url = f"/rounds/{rid}/schools/{SCHOOL}"
    r = await stack.http.post(f"{url}/existence/exceptions", headers=stack.auth("staff"),
                              json={"student": PUPIL, "kind": "dropout_request"})
    assert r.status_code == 200 and r.json()["gate"]["excused_cases"] == [request_id], r.text
    for _ in range(100):  # the request's open signal reaches the school's workflow in its own time
        r = await stack.http.post(f"{url}/confirmation", headers=stack.auth("staff"))
        if r.status_code == 200:
            return
    raise AssertionError(f"the school could not confirm: {r.text}")


def audit_of(engine, rid, action: str) -> list:
    from db.models import AuditEvent

    with session_scope(engine) as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.round_id == rid, AuditEvent.action == action)))


async def held_request(stack, engine, *, certify: bool = False, policy: RoundPolicy | None = None):
    now = await stack.now()
    cutoff = now + timedelta(hours=10)
    rid = await open_round(stack, engine, cutoff=cutoff, confirm_from=now + timedelta(hours=1), policy=policy)
    rid_ = (await request(stack, rid)).json()["id"]
    await skip_to(stack, now + timedelta(hours=1, minutes=1))
    await excuse_and_confirm(stack, rid, rid_)
    if certify:
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/certification", headers=stack.auth("director"))
        assert r.status_code == 200, r.text
    await skip_to(stack, cutoff + timedelta(minutes=5))

    def settled_or_held() -> bool:
        with session_scope(engine) as s:
            closed = s.get(DropoutRequest, rid_).status not in ("waiting_district", "waiting_school")
        return closed or bool(audit_of(engine, rid, "dropout_held_past_cutoff"))

    await eventually(settled_or_held)  # the workflow has acted on the cutoff, one way or the other
    view = (await stack.http.get(f"/rounds/{rid}/dropouts/{rid_}", headers=stack.auth("district"))).json()
    assert view["status"] == "waiting_district"  # not expired: the district still decides
    return rid, rid_, cutoff


async def test_an_excused_request_stays_open_past_the_cutoff_and_its_approval_is_applied_after_it(
        time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        rid, rid_, cutoff = await held_request(stack, engine)
        [held] = audit_of(engine, rid, "dropout_held_past_cutoff")
        assert held.after["after_cutoff"] is True
        assert datetime.fromisoformat(held.after["until"]) == cutoff + RoundPolicy().late_grace
        await eventually(lambda: [m for m in mails(smtp, rid_, DISTRICT_MAIL) if "หลังกำหนดของรอบ" in m["Subject"]])

        r = await decide(stack, rid, rid_, "district", True, "ตรวจสอบกับผู้ปกครองแล้ว")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "approved"
        assert student_status(engine) == ("dropped_out", "low_income")  # though the school's roster is closed
        [settled] = audit_of(engine, rid, "dropout_approved")
        assert settled.after["after_cutoff"] is True and "หลังกำหนดของรอบ" in settled.reason
        assert "after the round's cutoff" in settled.reason
        [dropped] = audit_of(engine, rid, "student_dropped_out")
        assert dropped.after["after_cutoff"] is True and dropped.at > cutoff
        await eventually(lambda: [m for m in mails(smtp, rid_, SCHOOL_MAIL) if "ผลการปรึกษา" in m["Subject"]])
        [told] = [m for m in mails(smtp, rid_, SCHOOL_MAIL) if "ผลการปรึกษา" in m["Subject"]]
        assert "ไม่ถือว่าโรงเรียนส่งล่าช้า" in told.get_content()
        assert await stack.client.get_workflow_handle(dropout_id(rid_)).result() == "approved"
        await keep_history(stack, dropout_id(rid_), "v6-dropout_decided_after_cutoff")


async def test_an_approval_after_the_school_certified_waits_for_the_next_round_and_both_are_told(
        time_env, engine, settings, smtp):
    from db.deferred_changes import apply_deferred
    from db.models import DeferredRosterChange, Round

    async with running_stack(time_env, engine, settings) as stack:
        rid, rid_, _ = await held_request(stack, engine, certify=True)
        r = await decide(stack, rid, rid_, "district", True, "ตรวจสอบกับผู้ปกครองแล้ว")
        assert r.status_code == 200 and r.json()["status"] == "approved", r.text
        assert student_status(engine) == ("studying", None)  # the certified roster stays as certified
        with session_scope(engine) as s:
            change = s.get(DeferredRosterChange, f"dropout/{rid_}")
            assert (change.kind, change.status, change.change["reason"]) == ("dropout", "pending", "low_income")
        [settled] = audit_of(engine, rid, "dropout_approved")
        assert settled.after["after_cutoff"] is True and settled.after["deferred"] is True
        for to in (SCHOOL_MAIL, DISTRICT_MAIL):
            await eventually(lambda to=to: [m for m in smtp.messages if to in m["To"] and "รอบถัดไป" in m["Subject"]
                                            and rid_ in m.get_content()])

        nxt = unique_round()
        now = await stack.now()
        add_round(engine, nxt, now, now + timedelta(days=1), now + timedelta(days=2))
        with session_scope(engine) as s:
            assert apply_deferred(s, s.get(Round, nxt), [SCHOOL], now) == 1
        assert student_status(engine) == ("dropped_out", "low_income")


async def test_an_excused_request_left_undecided_expires_when_the_rounds_late_grace_ends(
        time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        rid, rid_, cutoff = await held_request(stack, engine, policy=RoundPolicy(late_grace=timedelta(days=2)))
        until = cutoff + timedelta(days=2)
        await skip_to(stack, until - timedelta(minutes=1))
        view = (await stack.http.get(f"/rounds/{rid}/dropouts/{rid_}", headers=stack.auth("staff"))).json()
        assert view["status"] == "waiting_district"
        await skip_to(stack, until + timedelta(minutes=1))
        assert await stack.client.get_workflow_handle(dropout_id(rid_)).result() == "expired"
        assert student_status(engine) == ("studying", None)
        r = await decide(stack, rid, rid_, "district", True, "ช้าไป")
        assert r.status_code == 409 and r.json()["code"] == "dropout_closed"
