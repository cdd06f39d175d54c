"""Finding 4 of issue 15: a district officer of another area decided a duplicate case and moved a student out
of a school outside their area. Now only the district of the holder school's area decides: another area's
officer is refused at the API's door and, straight through Temporal, by the case's workflow, with the case
and both rosters unchanged.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from sqlmodel import select
from temporalio.client import WorkflowUpdateFailedError

from api.workflow_updates import refusal_from_update_failure
from db.engine import session_scope
from db.models import DuplicateCase, SchoolRound, Student, User
from domain.duplicates import DecideIn
from domain.school_round import Actor
from tests.stack import AREA, OTHER_AREA, OTHER_SCHOOL, SCHOOL_2, add_round, make_ready, running_stack, unique_round
from tests.timing import eventually
from workflows.duplicate_case import DuplicateCaseWorkflow
from workflows.ids import duplicate_case_id

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
SHARED_ID = "1449910000096"  # SCHOOL_2's student (area AREA); OTHER_SCHOOL (area OTHER_AREA) claims the child
CLAIM = {"student": SHARED_ID, "prefix": "เด็กชาย", "first_name": "ชนิดา", "last_name": "พลอยงาม", "grade": "ม.1",
         "sat_final_exam_here": True}


def district_actor(engine, area: str) -> Actor:
    """The area's officer as the API sends them to a workflow (`api.deps.actor_of`): id, role and area."""
    with session_scope(engine) as s:
        u = s.exec(select(User).where(User.role == "district", User.area == area)).one()
        return Actor(user_id=u.id, role=u.role, school_code=u.school_code, area=u.area)


def rosters(engine, rid: str) -> dict:
    """Where the child is on the rosters, and each school's head count as its round shows it."""
    with session_scope(engine) as s:
        rows = s.exec(select(Student.school_code, Student.status).where(Student.student_id == SHARED_ID)).all()
        gates = {code: s.get(SchoolRound, (rid, code)).gate["students"] for code in (SCHOOL_2, OTHER_SCHOOL)}
    return {"rows": sorted(rows), "gates": gates}


def case_row(engine, rid: str) -> dict:
    with session_scope(engine) as s:
        case = s.exec(select(DuplicateCase).where(DuplicateCase.round_id == rid)).one()
        return {"id": case.id, "holder": case.holder_school, "status": case.status, "decision": case.decision,
                "outcome": case.outcome}


async def resolution(stack, rid, case_id, who, action, **form):
    files = {"evidence": ("หลักฐาน.pdf", PDF, "application/pdf")} if action == "present" else None
    return await stack.http.post(f"/rounds/{rid}/duplicates/{case_id}/resolution", headers=stack.auth(who),
                                 data={"action": action, **form}, files=files)


async def both_schools_claim_the_child(stack, engine) -> tuple[str, str]:
    """A case across two areas that only a district can settle: (round, case id)."""
    now = await stack.now()
    rid = unique_round()
    add_round(engine, rid, now - timedelta(minutes=1), now + timedelta(hours=2), now + timedelta(hours=8))
    await stack.start_round(rid)
    await make_ready(stack, rid, SCHOOL_2)  # the child is SCHOOL_2's
    await make_ready(stack, rid, OTHER_SCHOOL)
    r = await stack.http.post(f"/rounds/{rid}/schools/{OTHER_SCHOOL}/students", headers=stack.auth("other_staff"),
                              json=CLAIM)
    assert 400 <= r.status_code < 500, r.text  # refused as active elsewhere: a case is opened instead
    case_id = case_row(engine, rid)["id"]
    handle = stack.client.get_workflow_handle(duplicate_case_id(case_id))
    state = await eventually_async(lambda: handle.query(DuplicateCaseWorkflow.status))
    if getattr(state, "awaiting_district", False):  # a claim first waits for the holder's district to open it
        await handle.execute_update("open_case", {"actor": district_actor(engine, AREA).model_dump()})  # finding 3's step
    assert (await resolution(stack, rid, case_id, "staff2", "present")).status_code == 200
    assert (await resolution(stack, rid, case_id, "other_staff", "present")).status_code == 200
    assert (await handle.query(DuplicateCaseWorkflow.status)).needs_district()
    return rid, case_id


async def eventually_async(query, timeout: float = 15.0):
    """The case's workflow answers once its first task ran (it is started by the school's workflow)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await query()
        except Exception:  # noqa: BLE001  not started yet
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_another_areas_district_cannot_decide_through_the_api(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        rid, case_id = await both_schools_claim_the_child(stack, engine)
        before = (case_row(engine, rid), rosters(engine, rid))
        assert before[0]["holder"] == SCHOOL_2 and before[0]["decision"] is None

        # the claimant's district sees the case (its school is a party) but may not move the holder's student
        r = await resolution(stack, rid, case_id, "other_district", "decide", keep_school=OTHER_SCHOOL,
                             note="โรงเรียนในเขตเรายืนยัน")
        assert r.status_code == 403 and r.json()["code"] == "out_of_scope", r.text
        assert r.json()["message_th"] and r.json()["message_en"]
        assert (case_row(engine, rid), rosters(engine, rid)) == before

        # the holder's district decides
        r = await resolution(stack, rid, case_id, "district", "decide", keep_school=SCHOOL_2, note="มีหลักฐานการสอบ")
        assert r.status_code == 200 and r.json()["outcome"] == SCHOOL_2, r.text
        await eventually(lambda: case_row(engine, rid)["status"] == "resolved")
        assert rosters(engine, rid)["rows"] == before[1]["rows"]


async def test_another_areas_district_cannot_decide_through_temporal(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        rid, case_id = await both_schools_claim_the_child(stack, engine)
        before = (case_row(engine, rid), rosters(engine, rid))
        handle = stack.client.get_workflow_handle(duplicate_case_id(case_id))
        other = district_actor(engine, OTHER_AREA)
        for actor in (other,  # exactly what the API would send for the claimant's district
                      Actor(user_id=other.user_id, role="district", area="สพป.ที่ไม่เกี่ยวข้อง"),  # a third area
                      Actor(user_id=other.user_id, role="district")):  # an actor as sent before scopes existed
            with pytest.raises(WorkflowUpdateFailedError) as exc:
                await handle.execute_update(DuplicateCaseWorkflow.decide,
                                            DecideIn(keep_school=OTHER_SCHOOL, actor=actor, reason="ย้ายมาแล้ว"))
            assert refusal_from_update_failure(exc.value).code == "out_of_scope"
        state = await handle.query(DuplicateCaseWorkflow.status)
        assert state.decision is None and not state.resolved
        assert (case_row(engine, rid), rosters(engine, rid)) == before

        holder_district = district_actor(engine, AREA)
        state = await handle.execute_update(DuplicateCaseWorkflow.decide,
                                            DecideIn(keep_school=SCHOOL_2, actor=holder_district, reason="มีหลักฐาน"))
        assert state.decision.keep_school == SCHOOL_2 and state.decision.by == holder_district.user_id
        await eventually(lambda: case_row(engine, rid)["outcome"] == SCHOOL_2)
