"""DropoutConsultationWorkflow (R8) with stub activities under time skipping (tests/workflows/stub_worker.py)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy

from domain.dropouts import DecideDropout, DropoutCalendar, DropoutInput, OpenDropout, WithdrawDropout
from domain.school_round import Actor
from domain.working_days import working_deadline
from tests.timing import eventually
from tests.workflows.stub_worker import Calls, stub, stub_worker
from workflows import activity_calls as calls
from workflows.dropout_consultation import DropoutConsultationWorkflow

AREA, SCHOOL = "สพม.ทดสอบ", "1044449001"
OFFICER = Actor(user_id="u-officer", role="district", area=AREA)
STAFF = Actor(user_id="u-staff", role="staff", school_code=SCHOOL)
SETTLED = {"approve": "approved", "reject": "rejected", "withdraw": "withdrawn", "expire": "expired"}


def activities(log: Calls, cutoff_at: datetime, held_until: datetime | None = None):
    return [
        stub(log, calls.OPEN_DROPOUT),
        stub(log, calls.DROPOUT_CALENDAR, DropoutCalendar(cutoff_at=cutoff_at)),
        stub(log, calls.NOTIFY_DROPOUT),
        stub(log, calls.POST_DROPOUT_MESSAGE),
        stub(log, calls.SETTLE_DROPOUT, lambda ref, action, *rest: SETTLED[action]),
        stub(log, calls.HOLD_DROPOUT_PAST_CUTOFF, held_until),
        stub(log, calls.TELL_SCHOOL, True),  # the school's block (signal-with-start: issue 18)
    ]


def told(log: Calls) -> list[str]:
    return [args[1] for args in log.of(calls.NOTIFY_DROPOUT)]


async def start(env, queue: str):
    rid = f"DO-{uuid.uuid4().hex[:6].upper()}"
    inp = DropoutInput(request_id=rid, round_id="r", school_code=SCHOOL, area=AREA, reason="moved")
    return await env.client.start_workflow(DropoutConsultationWorkflow.run, inp, id=f"fast-{rid}", task_queue=queue)


async def until_open(log: Calls) -> None:
    """The calendar is the run's second activity; a decision before it is refused as 'still opening'."""
    await eventually(lambda: log.of(calls.DROPOUT_CALENDAR) and log.of(calls.NOTIFY_DROPOUT))


async def test_the_district_approves_and_the_school_is_told_once(time_env):
    log = Calls()
    cutoff = (await time_env.get_current_time()) + timedelta(days=20)
    async with stub_worker(time_env, [DropoutConsultationWorkflow], activities(log, cutoff)) as queue:
        handle = await start(time_env, queue)
        await until_open(log)
        state = await handle.execute_update(DropoutConsultationWorkflow.decide,
                                            DecideDropout(message_id=7, approve=True, actor=OFFICER, area=AREA))
        assert state.status == "approved" and state.thread[-1].kind == "approve"
        assert await handle.result() == "approved"
    assert told(log) == ["requested", "approved"]


async def test_the_school_withdraws_its_own_request_and_nobody_else_can(time_env):
    log = Calls()
    cutoff = (await time_env.get_current_time()) + timedelta(days=20)
    async with stub_worker(time_env, [DropoutConsultationWorkflow], activities(log, cutoff)) as queue:
        handle = await start(time_env, queue)
        await until_open(log)
        other = Actor(user_id="u-other", role="staff", school_code="1044449002")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(DropoutConsultationWorkflow.withdraw, WithdrawDropout(message_id=1, actor=other))
        assert refused.value.cause.type == "forbidden"
        state = await handle.execute_update(DropoutConsultationWorkflow.withdraw, WithdrawDropout(message_id=2, actor=STAFF))
        assert state.status == "withdrawn"
        assert await handle.result() == "withdrawn"
    assert [args[1] for args in log.of(calls.SETTLE_DROPOUT)] == ["withdraw"]


async def test_a_silent_district_is_reminded_then_escalated_then_the_request_expires_at_the_cutoff(time_env):
    log = Calls()
    opened = await time_env.get_current_time()
    cutoff = opened + timedelta(days=14)
    async with stub_worker(time_env, [DropoutConsultationWorkflow], activities(log, cutoff)) as queue:
        handle = await start(time_env, queue)
        assert await handle.result() == "expired"  # time skips to each instant of the working-day clock
    assert told(log) == ["requested", "remind_district", "escalate", "expired"]
    settle = log.of(calls.SETTLE_DROPOUT)
    assert [a[1] for a in settle] == ["expire"] and datetime.fromisoformat(str(settle[0][3])) >= cutoff
    assert working_deadline(opened, 5, []) < cutoff  # the escalation came before the cutoff, on working days


async def test_a_request_excused_under_r11_is_held_open_for_the_district_past_the_cutoff(time_env):
    log = Calls()
    now = await time_env.get_current_time()
    cutoff, held = now + timedelta(hours=3), now + timedelta(days=2)
    async with stub_worker(time_env, [DropoutConsultationWorkflow], activities(log, cutoff, held)) as queue:
        handle = await start(time_env, queue)
        await time_env.sleep(timedelta(hours=4))  # past the school's cutoff
        state = await handle.execute_update(DropoutConsultationWorkflow.decide,
                                            DecideDropout(message_id=9, approve=True, actor=OFFICER, area=AREA))
        assert state.status == "approved"  # decided after the cutoff: applied, the audit trail says so
        assert await handle.result() == "approved"
    assert told(log) == ["requested", "held", "approved"]


# --- issue 19: the API opens a request with update-with-start and the workflow answers once it is open ----------

async def open_by_update(env, queue: str, actor: Actor = STAFF):
    """As api/routers/dropouts.py does: the start and the `open_request` update in one call."""
    rid = f"DO-{uuid.uuid4().hex[:6].upper()}"
    inp = DropoutInput(request_id=rid, round_id="r", school_code=SCHOOL, area=AREA, reason="moved")
    start = WithStartWorkflowOperation(DropoutConsultationWorkflow.run, inp, id=f"fast-{rid}", task_queue=queue,
                                       id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
    try:
        return await env.client.execute_update_with_start_workflow(
            DropoutConsultationWorkflow.open_request, OpenDropout(actor=actor), start_workflow_operation=start), start
    except WorkflowUpdateFailedError as exc:
        return exc, start


async def test_a_request_opened_by_the_api_answers_once_the_school_is_blocked(time_env):
    log = Calls()
    cutoff = (await time_env.get_current_time()) + timedelta(days=20)
    async with stub_worker(time_env, [DropoutConsultationWorkflow], activities(log, cutoff)) as queue:
        state, start = await open_by_update(time_env, queue)
        assert state.status == "waiting_district"
        # by the answer the request is open and the school's confirmation held back: no polling in the API
        assert log.names()[:3] == [calls.OPEN_DROPOUT, calls.DROPOUT_CALENDAR, calls.TELL_SCHOOL]
        assert log.of(calls.TELL_SCHOOL)[0][2] == "case_opened"
        handle = await start.workflow_handle()
        await until_open(log)
        state = await handle.execute_update(DropoutConsultationWorkflow.decide,
                                            DecideDropout(message_id=7, approve=False, actor=OFFICER, area=AREA))
        assert await handle.result() == "rejected"
    assert told(log) == ["requested", "rejected"]


async def test_the_answer_of_another_schools_staff_is_refused_and_the_request_still_opens(time_env):
    """The API checked the scope before staging the request; the update's validator checks it again where the answer
    is given. The start is durable: the workflow opens what was staged whatever the update's fate."""
    log = Calls()
    cutoff = (await time_env.get_current_time()) + timedelta(days=20)
    other = Actor(user_id="u-other", role="staff", school_code="1044449002")
    async with stub_worker(time_env, [DropoutConsultationWorkflow], activities(log, cutoff)) as queue:
        refused, start = await open_by_update(time_env, queue, other)
        assert isinstance(refused, WorkflowUpdateFailedError) and refused.cause.type == "out_of_scope"
        await until_open(log)
    assert log.names()[:3] == [calls.OPEN_DROPOUT, calls.DROPOUT_CALENDAR, calls.TELL_SCHOOL]
