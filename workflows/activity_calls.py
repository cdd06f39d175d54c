"""How workflows call activities: by name, with explicit timeouts and retry policies.

Workflows import no activity code (the sandbox would pull in the database and SMTP clients); the
names below are the contract that `activities/` registers. Workflows call them through the typed helpers at
the end, so that a call's arguments are checked; each keeps the argument order and options of the histories.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain.dropouts import DropoutCalendar
    from domain.intake_messages import InboundBatch, InboundOutcome
    from domain.messages import (
        ApplyRosterBatch, AreaCutoffStatus, AreaCutoffStep, AreaInstant, AreaSchedule, BatchOutcome, FanoutPage,
        FanoutPageResult, ReminderRequest, SchoolChange, Transition,
    )
    from domain.school_round import BlockingCase, GateProgress

LOAD_GATE = "load_gate"
RECORD_TRANSITION = "record_transition"
APPLY_ROSTER_BATCH = "apply_roster_batch"
SEND_SCHOOL_REMINDER = "send_school_reminder"
FANOUT_PAGE = "fanout_page"
RECORD_CHANGE = "record_school_change"
TELL_SCHOOL = "tell_school"
AREA_CUTOFF_STEP = "area_cutoff_step"
AREA_SCHEDULE = "area_schedule"
AREA_REMINDERS = "area_reminders"
AREA_LATE = "area_late"
AREA_DELIVER = "area_deliver"
NOTIFY_DUPLICATE = "notify_duplicate"
RESOLVE_DUPLICATE = "resolve_duplicate"
RECORD_DUPLICATE_DECLARATIONS = "record_duplicate_declarations"
OPEN_DUPLICATE_CASE = "open_duplicate_case"
DUPLICATE_CUTOFFS = "duplicate_cutoffs"
HAND_DUPLICATE_TO_DISTRICT = "hand_duplicate_to_district"
PROCESS_INBOUND = "process_inbound"
APPLY_ID_CORRECTION = "apply_id_correction"
SETTLE_ID_CORRECTION = "settle_id_correction"
NOTIFY_ID_CORRECTION = "notify_id_correction"
ID_CORRECTION_CUTOFF = "id_correction_cutoff"
DELIVER_MAIL = "deliver_mail"
PROCESS_INBOUND_BATCH = "process_inbound_batch"
DELIVER_MAILS = "deliver_mails"
EXPIRE_ID_CORRECTIONS = "expire_id_corrections"
OPEN_DROPOUT = "open_dropout"
DROPOUT_CALENDAR = "dropout_calendar"
POST_DROPOUT_MESSAGE = "post_dropout_message"
SETTLE_DROPOUT = "settle_dropout"
HOLD_DROPOUT_PAST_CUTOFF = "hold_dropout_past_cutoff"
NOTIFY_DROPOUT = "notify_dropout"

# Refusals are answers, not faults: retrying them changes nothing.
_NON_RETRYABLE = ["Refusal"]

DATABASE = {
    "start_to_close_timeout": timedelta(seconds=60),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=500), backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30), non_retryable_error_types=_NON_RETRYABLE,
    ),
}

# A decision's projection write run inside the update's own workflow task (issue 18: no activity task, no second
# workflow task). The update's caller waits on it, so it is bounded: a database that stays down ends the decision
# with a clear refusal (workflows/school_round.py) instead of an update that never answers. Bounded by attempts
# (about 6 s of backoff, at most 6 x 5 s): temporalio 1.35 kept retrying a failing local activity past its
# schedule_to_close_timeout. All retries stay in the worker (below the SDK's one-minute local retry threshold).
DATABASE_LOCAL = {
    "start_to_close_timeout": timedelta(seconds=5),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=200), backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=5), maximum_attempts=6, non_retryable_error_types=_NON_RETRYABLE,
    ),
}

# Mail keeps trying while the SMTP server is down (for up to a day); the outbox makes retries safe.
MAIL = {
    "start_to_close_timeout": timedelta(seconds=60),
    "schedule_to_close_timeout": timedelta(days=1),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=2), backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=5), non_retryable_error_types=_NON_RETRYABLE,
    ),
}

# A page of a round-wide operation talks to Temporal for up to 500 schools.
FANOUT = {
    "start_to_close_timeout": timedelta(minutes=5),
    "heartbeat_timeout": timedelta(seconds=60),
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)),
}


def signal_name(signal: Callable[..., Any]) -> str:
    """The name a workflow's signal method is sent by (its `@workflow.signal(name=...)`, else the method's): callers
    name the method, so a rename is caught, where a string must cross (an activity's argument, signal-with-start)."""
    return workflow._SignalDefinition.must_name_from_fn_or_str(signal)


# --- the calls, typed ------------------------------------------------------------------------------------------

async def load_gate(round_id: str, school_code: str) -> GateProgress:
    return await workflow.execute_activity(LOAD_GATE, args=[round_id, school_code], result_type=GateProgress,
                                           **DATABASE)


async def record_transition(transition: Transition) -> None:
    await workflow.execute_activity(RECORD_TRANSITION, transition, **DATABASE)


async def record_school_change(change: SchoolChange) -> None:
    await workflow.execute_activity(RECORD_CHANGE, change, **DATABASE)


async def record_school_change_locally(change: SchoolChange) -> None:
    """The same write as a local activity, inside the calling update's workflow task (a decision, issue 18)."""
    await workflow.execute_local_activity(RECORD_CHANGE, change, **DATABASE_LOCAL)


async def apply_roster_batch(batch: ApplyRosterBatch, round_id: str, school_code: str) -> BatchOutcome:
    return await workflow.execute_activity(APPLY_ROSTER_BATCH, args=[batch, round_id, school_code],
                                           result_type=BatchOutcome, **DATABASE)


async def send_school_reminder(request: ReminderRequest) -> bool:
    return await workflow.execute_activity(SEND_SCHOOL_REMINDER, request, result_type=bool, **MAIL)


async def tell_school(round_id: str, school_code: str, signal: Callable[..., Any], arg: BlockingCase | str) -> bool:
    """`signal` is the school workflow's signal method; the activity gets its name (dmcflow/lazy_start.py)."""
    return await workflow.execute_activity(TELL_SCHOOL, args=[round_id, school_code, signal_name(signal), arg],
                                           result_type=bool, **DATABASE)


async def fanout_page(page: FanoutPage) -> FanoutPageResult:
    return await workflow.execute_activity(FANOUT_PAGE, page, result_type=FanoutPageResult, **FANOUT)


async def area_cutoff_step(step: AreaCutoffStep) -> AreaCutoffStatus:
    return await workflow.execute_activity(AREA_CUTOFF_STEP, step, result_type=AreaCutoffStatus, **MAIL)


async def area_schedule(instant: AreaInstant) -> AreaSchedule:
    return await workflow.execute_activity(AREA_SCHEDULE, instant, result_type=AreaSchedule, **DATABASE)


async def area_reminders(instant: AreaInstant) -> AreaSchedule:
    return await workflow.execute_activity(AREA_REMINDERS, instant, result_type=AreaSchedule, **DATABASE)


async def area_late(instant: AreaInstant) -> AreaSchedule:
    return await workflow.execute_activity(AREA_LATE, instant, result_type=AreaSchedule, **DATABASE)


async def area_deliver(keys: list[str]) -> int:
    return await workflow.execute_activity(AREA_DELIVER, keys, result_type=int, **MAIL)


async def notify_duplicate(case_id: str, event: str) -> None:
    await workflow.execute_activity(NOTIFY_DUPLICATE, args=[case_id, event], **MAIL)


async def resolve_duplicate(case_id: str, outcome: str, at: datetime) -> None:
    await workflow.execute_activity(RESOLVE_DUPLICATE, args=[case_id, outcome, at], **DATABASE)


async def record_duplicate_declarations(case_id: str, declarations: dict, decision: dict | None) -> None:
    await workflow.execute_activity(RECORD_DUPLICATE_DECLARATIONS, args=[case_id, declarations, decision], **DATABASE)


async def open_duplicate_case(case_id: str, by: str, at: datetime) -> None:
    await workflow.execute_activity(OPEN_DUPLICATE_CASE, args=[case_id, by, at], **DATABASE)


async def duplicate_cutoffs(case_id: str) -> list[datetime]:
    return await workflow.execute_activity(DUPLICATE_CUTOFFS, case_id, result_type=list[datetime], **DATABASE)


async def hand_duplicate_to_district(case_id: str, at: datetime) -> None:
    await workflow.execute_activity(HAND_DUPLICATE_TO_DISTRICT, args=[case_id, at], **MAIL)


async def process_inbound(sha256: str) -> InboundOutcome:
    return await workflow.execute_activity(PROCESS_INBOUND, sha256, result_type=InboundOutcome, **DATABASE)


async def process_inbound_batch(shas: list[str], strict: bool) -> InboundBatch:
    return await workflow.execute_activity(PROCESS_INBOUND_BATCH, args=[shas, strict], result_type=InboundBatch,
                                           **DATABASE)


async def expire_id_corrections(now: datetime) -> datetime | None:
    return await workflow.execute_activity(EXPIRE_ID_CORRECTIONS, now, result_type=datetime | None, **DATABASE)


async def deliver_mail(key: str) -> bool:
    return await workflow.execute_activity(DELIVER_MAIL, key, result_type=bool, **MAIL)


def start_deliver_mails(keys: list[str]) -> workflow.ActivityHandle[int]:
    """Started, not awaited: the intake cancels it between two attempts when it continues as new."""
    return workflow.start_activity(DELIVER_MAILS, keys, result_type=int,
                                   cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                                   **MAIL)


async def apply_id_correction(ref: str, actor: str, at: datetime) -> str:
    return await workflow.execute_activity(APPLY_ID_CORRECTION, args=[ref, actor, at], result_type=str, **DATABASE)


async def settle_id_correction(ref: str, status: str, by: str | None, at: datetime, reason: str | None) -> str:
    return await workflow.execute_activity(SETTLE_ID_CORRECTION, args=[ref, status, by, at, reason], result_type=str,
                                           **DATABASE)


async def id_correction_cutoff(ref: str) -> datetime:
    return await workflow.execute_activity(ID_CORRECTION_CUTOFF, ref, result_type=datetime, **DATABASE)


async def notify_id_correction(ref: str) -> None:
    await workflow.execute_activity(NOTIFY_ID_CORRECTION, ref, **MAIL)


async def open_dropout(request_id: str) -> None:
    await workflow.execute_activity(OPEN_DROPOUT, request_id, **DATABASE)


async def dropout_calendar(request_id: str) -> DropoutCalendar:
    return await workflow.execute_activity(DROPOUT_CALENDAR, request_id, result_type=DropoutCalendar, **DATABASE)


async def post_dropout_message(request_id: str, message_id: int, kind: str, status: str, at: datetime) -> None:
    await workflow.execute_activity(POST_DROPOUT_MESSAGE, args=[request_id, message_id, kind, status, at], **DATABASE)


async def settle_dropout(request_id: str, outcome: str, by: str | None, at: datetime, message_id: int | None) -> str:
    return await workflow.execute_activity(SETTLE_DROPOUT, args=[request_id, outcome, by, at, message_id],
                                           result_type=str, **DATABASE)


async def hold_dropout_past_cutoff(request_id: str, at: datetime) -> datetime | None:
    return await workflow.execute_activity(HOLD_DROPOUT_PAST_CUTOFF, args=[request_id, at],
                                           result_type=datetime | None, **DATABASE)


async def notify_dropout(request_id: str, event: str, ref: str) -> None:
    await workflow.execute_activity(NOTIFY_DROPOUT, args=[request_id, event, ref], **MAIL)
