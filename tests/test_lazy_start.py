"""Issue 18: an area-timed round starts with its schools' projection rows only; a school's workflow starts on its
first decision or roster change (update-with-start), and answers that very call."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlmodel import select
from temporalio.service import RPCError, RPCStatusCode

from db.engine import session_scope
from db.models import EndOfYearRecord, ExistenceMark, Round, School, SchoolRound, Student, utcnow
from dmcflow import round_ops
from tests.db_backends import BOTH_BACKENDS
from tests.stack import (
    HEADER, OTHER_SCHOOL, READY_IDS, SCHOOL, SCHOOL_2, keep_history, make_ready, running_stack, tomorrows_round,
)
from tests.timing import eventually, skip_to
from workflows.ids import dropout_id, school_round_id

pytestmark = pytest.mark.parametrize("backend", BOTH_BACKENDS, indirect=True)  # the INSERT .. ON CONFLICT of both


def ready_in_database(engine, round_id: str, school: str) -> None:
    """One promoted student with 3.2.2 and R11's mark, written straight to the database: a school that meets every
    gate without ever having sent anything to its workflow (it has none)."""
    with session_scope(engine) as s:
        student = Student(school_code=school, student_id=READY_IDS[school], first_name="ทดสอบ", last_name="ระบบ",
                          grade="ม.1", updated_at=utcnow())
        s.add(student)
        s.flush()
        s.add(EndOfYearRecord(round_id=round_id, student_pk=student.id, result="promoted", years_studied=1,
                              updated_by="seed", updated_at=utcnow()))
        s.add(ExistenceMark(round_id=round_id, student_pk=student.id, mark="present", marked_by="seed",
                            marked_at=utcnow()))


async def workflow_exists(stack, round_id: str, school: str) -> bool:
    try:
        await stack.client.get_workflow_handle(school_round_id(round_id, school)).describe()
        return True
    except RPCError as exc:
        assert exc.status == RPCStatusCode.NOT_FOUND, exc
        return False


async def test_every_school_answers_right_after_the_start_with_no_school_workflow(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, now, confirm_from, cutoff = await tomorrows_round(stack)  # waits for the start's operation to finish
        for school, who in ((SCHOOL, "staff"), (SCHOOL_2, "staff2"), (OTHER_SCHOOL, "other_staff")):
            r = await stack.http.get(f"/rounds/{rid}/schools/{school}", headers=stack.auth(who))
            assert r.status_code == 200, r.text
            assert r.json()["stage"] == "open" and r.json()["cutoff_at"]["iso"]
            assert not await workflow_exists(stack, rid, school)
        r = await stack.http.get(f"/rounds/{rid}", headers=stack.auth("admin"))
        assert r.json()["schools_started"] == 3
        progress = (await stack.http.get(f"/rounds/{rid}/operations/round-start/{rid}", headers=stack.auth("admin")))
        assert progress.status_code == 200 and progress.json()["finished"] and progress.json()["done"] == 3


async def test_a_first_decision_starts_the_school_and_is_answered_from_the_update(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, now, confirm_from, cutoff = await tomorrows_round(stack, start=False)
        ready_in_database(engine, rid, SCHOOL)
        await stack.start_round(rid)
        await skip_to(stack, confirm_from + timedelta(minutes=5))
        url = f"/rounds/{rid}/schools/{SCHOOL}"
        assert not await workflow_exists(stack, rid, SCHOOL)

        r = await stack.http.post(f"{url}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["stage"] == "confirmed" and body["confirmed"]["by_name"] == "ครูธุรการ"
        assert body["confirmed"]["existence"]["present"] == 1 and body["gate"]["complete"]
        assert await workflow_exists(stack, rid, SCHOOL)

        # the next decision goes to the running workflow; the answer comes from the update: the projection is read
        # once, for the scope and the view before it, never again after the update
        reads = []

        def count(conn, cursor, statement, *args):
            if "school_rounds" in statement and statement.lstrip().upper().startswith("SELECT"):
                reads.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            r = await stack.http.post(f"{url}/certification", headers=stack.auth("director"))
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert r.status_code == 200, r.text
        assert r.json()["stage"] == "certified" and r.json()["certified"]["by_name"] == "ผอ.โรงเรียน"
        assert r.json()["confirmed"]["by_name"] == "ครูธุรการ"  # as the view before the update named it
        assert len(reads) == 1, reads
        # and what it answered is what the projection now shows
        shown = (await stack.http.get(url, headers=stack.auth("director"))).json()
        assert {k: shown[k] for k in ("stage", "confirmed", "certified", "cutoff_at")} == \
               {k: r.json()[k] for k in ("stage", "confirmed", "certified", "cutoff_at")}


async def test_two_first_decisions_at_once_start_one_workflow(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, now, confirm_from, cutoff = await tomorrows_round(stack)
        ready_in_database(engine, rid, SCHOOL)
        await skip_to(stack, confirm_from + timedelta(minutes=5))
        url = f"/rounds/{rid}/schools/{SCHOOL}/confirmation"
        answers = await asyncio.gather(*(stack.http.post(url, headers=stack.auth("staff")) for _ in range(2)))
        codes = sorted(a.status_code for a in answers)
        # one workflow took both: the second is refused by it, not accepted by a workflow of its own
        assert codes == [200, 409], [a.text for a in answers]
        refused = next(a for a in answers if a.status_code == 409).json()
        assert refused["code"] == "already_confirmed" and refused["message_th"] == "ยืนยันข้อมูลไปแล้ว"
        history = await stack.client.get_workflow_handle(school_round_id(rid, SCHOOL)).fetch_history()
        assert sum(e.HasField("workflow_execution_started_event_attributes") for e in history.events) == 1
        audit = (await stack.http.get(f"/rounds/{rid}/schools/{SCHOOL}/audit", headers=stack.auth("staff"))).json()
        assert [e["action"] for e in audit] == ["confirm"]


async def test_a_refused_first_decision_is_the_validators_thai_refusal(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, now, confirm_from, cutoff = await tomorrows_round(stack)
        await skip_to(stack, confirm_from + timedelta(minutes=5))
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 409
        assert r.json()["code"] == "roster_empty"
        assert r.json()["message_th"] == "ยังไม่มีนักเรียนในทะเบียน ยืนยันไม่ได้"
        # a director's certification before any confirmation: the same rule as ever
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL_2}/certification", headers=stack.auth("director2"))
        assert r.status_code == 409 and r.json()["code"] == "not_confirmed" and r.json()["message_th"]


async def test_a_roster_import_right_after_the_start_is_applied_not_refused(time_env, engine, settings):
    """The issue's race: an import sent right after start_round's 202, before the start's page reached the school,
    answered 200 with every row refused `round_not_started`. Here the round is marked started and the start's
    pages have not run at all: the import starts the school itself."""
    async with running_stack(time_env, engine, settings) as stack:
        rid, now, confirm_from, cutoff = await tomorrows_round(stack, start=False)
        await asyncio.to_thread(round_ops._mark_started, engine, rid, settings.task_queue)  # the 202's moment
        csv = HEADER + f"{SCHOOL},โรงเรียน,{READY_IDS[SCHOOL]},ม.1,1,1,ช,เด็กชาย,ทดสอบ,ระบบ,01/01/2555,ใช่\n"
        r = await stack.http.post(f"/rounds/{rid}/students/import", headers=stack.auth("staff"),
                                  files={"file": ("r.csv", csv.encode(), "text/csv")})
        assert r.status_code == 200 and r.json()["applied"] == 1 and r.json()["refused"] == 0, r.text
        assert r.json()["gate"]["students"] == 1
        # then the start's pages run: the school's row is left as its workflow wrote it, the others are inserted
        await stack.start_round(rid)
        with session_scope(engine) as s:
            rows = {row.school_code: row for row in s.exec(select(SchoolRound).where(SchoolRound.round_id == rid))}
        assert set(rows) == {SCHOOL, SCHOOL_2, OTHER_SCHOOL}
        assert rows[SCHOOL].gate["students"] == 1 and rows[SCHOOL].version >= 1
        shown = (await stack.http.get(f"/rounds/{rid}/schools/{SCHOOL}", headers=stack.auth("staff"))).json()
        assert shown["gate"]["students"] == 1


async def test_a_round_started_before_lazy_starts_still_waits_for_its_start(time_env, engine, settings):
    """A round started eagerly (before issue 18: no school queue) whose start has not reached a school: 409, as
    before, never a workflow started out of its kind."""
    async with running_stack(time_env, engine, settings) as stack:
        rid, now, confirm_from, cutoff = await tomorrows_round(stack, start=False)
        with session_scope(engine) as s:
            rnd = s.get(Round, rid)
            rnd.started_at = utcnow()
            s.add(rnd)
            school = s.get(School, SCHOOL)
            s.add(SchoolRound(round_id=rid, school_code=SCHOOL, area=school.area, stage="open",
                              opens_at=rnd.opens_at, confirm_from=rnd.confirm_from, cutoff_at=rnd.cutoff_at,
                              gate={}, blocking=[], version=0))
        await skip_to(stack, confirm_from + timedelta(minutes=5))
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 409 and r.json()["code"] == "round_not_started", r.text
        assert not await workflow_exists(stack, rid, SCHOOL)


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def blocking_of(engine, round_id: str, school: str) -> list:
    with session_scope(engine) as s:
        return s.get(SchoolRound, (round_id, school)).blocking


async def test_a_case_on_a_school_that_never_acted_starts_it_blocked(time_env, engine, settings, smtp):
    """A duplicate case's holder that has sent nothing yet (no workflow) is blocked all the same: the case starts
    its workflow with the block; when the case resolves, the block goes."""
    async with running_stack(time_env, engine, settings) as stack:
        rid, now, confirm_from, cutoff = await tomorrows_round(stack, start=False)
        ready_in_database(engine, rid, SCHOOL_2)  # SCHOOL_2 holds the student; it never acts before the case
        await stack.start_round(rid)
        await make_ready(stack, rid, SCHOOL)
        claim = {"student": READY_IDS[SCHOOL_2], "prefix": "เด็กชาย", "first_name": "ชนิดา", "last_name": "พลอยงาม",
                 "grade": "ม.1", "sat_final_exam_here": True}
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/students", headers=stack.auth("staff"), json=claim)
        assert r.status_code == 409 and r.json()["code"] == "active_elsewhere", r.text
        case_id = r.json()["message_en"].split("duplicate case ")[1].split(" ")[0]
        r = await stack.http.post(f"/rounds/{rid}/duplicates/{case_id}/resolution", headers=stack.auth("district"),
                                  data={"action": "open"})
        assert r.status_code == 200, r.text
        await eventually(lambda: [c for c in blocking_of(engine, rid, SCHOOL_2) if c["ref"] == case_id])
        assert await workflow_exists(stack, rid, SCHOOL_2)
        await skip_to(stack, confirm_from + timedelta(minutes=5))
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL_2}/confirmation", headers=stack.auth("staff2"))
        assert r.status_code == 409 and r.json()["code"] == "blocking_cases" and case_id in r.json()["message_th"]

        for who, action in (("staff", "present"), ("staff2", "absent")):
            files = {"evidence": ("หลักฐาน.pdf", PDF, "application/pdf")} if action == "present" else None
            r = await stack.http.post(f"/rounds/{rid}/duplicates/{case_id}/resolution", headers=stack.auth(who),
                                      data={"action": action}, files=files)
            assert r.status_code == 200, r.text
        await eventually(lambda: not blocking_of(engine, rid, SCHOOL_2))
        await keep_history(stack, f"duplicate/{case_id}", "v7-duplicate_case_holder_started_by_case")
        await keep_history(stack, school_round_id(rid, SCHOOL_2), "v7-school_round_started_by_case")


async def test_a_dropout_request_starts_its_school_blocked(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        rid, now, confirm_from, cutoff = await tomorrows_round(stack, start=False)
        ready_in_database(engine, rid, SCHOOL)
        await stack.start_round(rid)
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/dropouts", headers=stack.auth("staff"),
                                  data={"student": READY_IDS[SCHOOL], "reason": "low_income",
                                        "details": "ครอบครัวย้ายไปทำงานต่างจังหวัด"},
                                  files={"evidence": ("บันทึก.pdf", PDF, "application/pdf")})
        assert r.status_code == 201, r.text
        request_id = r.json()["id"]
        assert await workflow_exists(stack, rid, SCHOOL)
        await eventually(lambda: blocking_of(engine, rid, SCHOOL))
        await skip_to(stack, confirm_from + timedelta(minutes=5))
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 409 and r.json()["code"] == "blocking_cases", r.text
        r = await stack.http.post(f"/rounds/{rid}/dropouts/{request_id}/withdrawal", headers=stack.auth("staff"),
                                  json={"reason": "นักเรียนกลับมาเรียนแล้ว"})
        assert r.status_code == 200, r.text
        await eventually(lambda: not blocking_of(engine, rid, SCHOOL))
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 200, r.text
        await keep_history(stack, dropout_id(request_id), "v7-dropout_school_started_by_request")
