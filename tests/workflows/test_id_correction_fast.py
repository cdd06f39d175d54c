"""IdCorrectionWorkflow (R4) with stub activities under time skipping (tests/workflows/stub_worker.py)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from domain.id_corrections import DecideIdCorrection, IdCorrectionInput
from domain.school_round import Actor
from tests.workflows.stub_worker import Calls, stub, stub_worker
from workflows import activity_calls as calls
from workflows.id_correction import IdCorrectionWorkflow

AREA = "สพม.ทดสอบ"
OFFICER = Actor(user_id="u-officer", role="district", area=AREA)


def activities(log: Calls, cutoffs: list[datetime]):
    """The school's cutoff as the database would answer it: each call takes the next one (an extension)."""
    return [
        stub(log, calls.APPLY_ID_CORRECTION, "approved"),
        stub(log, calls.SETTLE_ID_CORRECTION, lambda ref, status, *rest: status),
        stub(log, calls.NOTIFY_ID_CORRECTION),
        stub(log, calls.ID_CORRECTION_CUTOFF, lambda ref: cutoffs.pop(0) if len(cutoffs) > 1 else cutoffs[0]),
    ]


async def start(env, queue: str, cutoff_at: datetime):
    ref = f"IDC-{uuid.uuid4().hex[:8].upper()}"
    inp = IdCorrectionInput(ref=ref, round_id="r", school_code="1044449001", area=AREA, cutoff_at=cutoff_at)
    return await env.client.start_workflow(IdCorrectionWorkflow.run, inp, id=f"fast-idc-{ref}", task_queue=queue)


async def test_an_approval_changes_the_id_once_and_tells_the_school(time_env):
    log = Calls()
    cutoff = (await time_env.get_current_time()) + timedelta(hours=4)
    async with stub_worker(time_env, [IdCorrectionWorkflow], activities(log, [cutoff])) as queue:
        handle = await start(time_env, queue, cutoff)
        state = await handle.execute_update(IdCorrectionWorkflow.decide,
                                            DecideIdCorrection(approve=True, actor=OFFICER, area=AREA))
        assert state.status == "approved" and state.decided_by == "u-officer"
        assert await handle.result() == "approved"
    assert log.names() == [calls.APPLY_ID_CORRECTION, calls.NOTIFY_ID_CORRECTION]


@pytest.mark.parametrize("decision, code", [
    (DecideIdCorrection(approve=True, actor=Actor(user_id="u-x", role="district", area="สพป.อื่น"), area="สพป.อื่น"),
     "forbidden"),
    (DecideIdCorrection(approve=False, reason="  ", actor=OFFICER, area=AREA), "reason_required"),
    (DecideIdCorrection(approve=True, actor=Actor(user_id="u-s", role="staff", school_code="1044449001"), area=AREA),
     "forbidden"),
])
async def test_a_refused_decision_says_why_and_changes_nothing(time_env, decision, code):
    log = Calls()
    cutoff = (await time_env.get_current_time()) + timedelta(hours=4)
    async with stub_worker(time_env, [IdCorrectionWorkflow], activities(log, [cutoff])) as queue:
        handle = await start(time_env, queue, cutoff)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(IdCorrectionWorkflow.decide, decision)
        assert refused.value.cause.type == code and refused.value.cause.details[0]["message_th"]
        assert (await handle.query(IdCorrectionWorkflow.status)).status == "pending"
        await handle.terminate()
    assert log.names() == []


async def test_an_extension_of_the_school_keeps_its_request_decidable(time_env):
    log = Calls()
    now = await time_env.get_current_time()
    cutoff, extended = now + timedelta(hours=2), now + timedelta(hours=5)
    async with stub_worker(time_env, [IdCorrectionWorkflow], activities(log, [extended])) as queue:
        handle = await start(time_env, queue, cutoff)
        await time_env.sleep(timedelta(hours=3))  # past the cutoff it was sent with, before the extended one
        assert (await handle.query(IdCorrectionWorkflow.status)).status == "pending"
        state = await handle.execute_update(IdCorrectionWorkflow.decide,
                                            DecideIdCorrection(approve=False, reason="ไม่ตรงทะเบียนราษฎร์",
                                                               actor=OFFICER, area=AREA))
        assert state.status == "rejected"  # R4 follows the school's current cutoff
        assert await handle.result() == "rejected"


async def test_undecided_it_expires_at_the_schools_current_cutoff(time_env):
    log = Calls()
    now = await time_env.get_current_time()
    cutoff, extended = now + timedelta(hours=2), now + timedelta(hours=5)
    async with stub_worker(time_env, [IdCorrectionWorkflow], activities(log, [extended])) as queue:
        handle = await start(time_env, queue, cutoff)
        assert await handle.result() == "expired"
    [settled] = log.of(calls.SETTLE_ID_CORRECTION)
    assert settled[1] == "expired" and datetime.fromisoformat(str(settled[3])) >= extended
    assert log.names()[-1] == calls.NOTIFY_ID_CORRECTION  # the school is told, after the expiry is recorded
