"""A school's workflow in an area-timed round starts on its first event (issue 18).

Starting a round inserts its schools' projection rows and starts one workflow per area; a school's own workflow
starts only when something needs it: a decision or a roster change (update-with-start), or a case that blocks it
(signal-with-start). Every call first tries the running workflow, as a bare update would, and builds the start input
only when there is none, so the common case costs exactly one update. Two first events at once start one workflow
(the conflict policy USE_EXISTING); a school whose round ended (certified, or closed after the late grace) is never
started again (the reuse policy REJECT_DUPLICATE).

A round started before issue 18 (`rounds.school_queue` NULL) started every school at once: a school without a
workflow there has not been reached by the start yet, and is answered `round_not_started` as before.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from db.deferred_changes import apply_deferred
from db.engine import get_for_update, session_scope
from db.gate import gate_progress, gate_progress_many
from db.models import DeferredRosterChange, Round, School, SchoolRound, utcnow
from db.projection_rows import state_of
from domain.messages import SchoolRoundInput
from domain.refusals import Refusal, refusal
from domain.rounds import RoundPolicy, Schedule
from domain.school_round import Stage, stage_at
from workflows import search_attributes as sa
from workflows.ids import school_round_id
from workflows.school_round import SchoolRoundWorkflow


def round_not_started(round_id: str) -> Refusal:
    return refusal("round_not_started", f"ยังไม่ได้เริ่มรอบ {round_id} ของโรงเรียนนี้",
                   f"Round {round_id} has not been started for this school", 409)


def round_finished() -> Refusal:
    return refusal("round_finished", "รอบของโรงเรียนนี้สิ้นสุดแล้ว (รับรองแล้วหรือปิดระบบแล้ว)",
                   "This school's round has ended (certified or closed)", 409)


# --- the projection rows ---------------------------------------------------------------------------------------

def _insert(session: Session):
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(SchoolRound)


def ensure_school_rows(session: Session, rnd: Round, schools: list[tuple[str, str]], now: datetime) -> list[str]:
    """The projection rows of these (code, area) schools in a started round, inserted unless there; answers the
    codes this call inserted. One INSERT for a page of schools; a concurrent inserter of the same school (the
    start's page and a first event) waits on the key and inserts nothing. Changes deferred from an earlier round
    (issue 16) are applied by whoever inserted the row, before the round's first gate is counted."""
    if not schools:
        return []
    codes = [code for code, _ in schools]
    existing = set(session.exec(select(SchoolRound.school_code).where(
        SchoolRound.round_id == rnd.id, SchoolRound.school_code.in_(codes))))
    todo = [(code, area) for code, area in schools if code not in existing]
    if not todo:
        return []
    schedule = Schedule(opens_at=rnd.opens_at, confirm_from=rnd.confirm_from, cutoff_at=rnd.cutoff_at)
    stage = stage_at(now, schedule, None, None).value
    gates = gate_progress_many(session, rnd.id, [code for code, _ in todo])
    stamp = utcnow()
    rows = [dict(round_id=rnd.id, school_code=code, area=area, stage=stage, opens_at=rnd.opens_at,
                 confirm_from=rnd.confirm_from, cutoff_at=rnd.cutoff_at, gate=gates[code].model_dump(), blocking=[],
                 version=0, updated_at=stamp) for code, area in todo]
    # executemany with RETURNING: SQLAlchemy sends it as a few multi-row INSERTs (within the drivers' parameter limits)
    inserted = [code for (code,) in session.execute(
        _insert(session).on_conflict_do_nothing().returning(SchoolRound.school_code), rows)]
    deferred = set(session.exec(select(DeferredRosterChange.school_code).where(
        DeferredRosterChange.status == "pending", DeferredRosterChange.school_code.in_(inserted))))
    if deferred and apply_deferred(session, rnd, sorted(deferred), now):
        # the roster moved: count these schools' gates again (rare: outcomes decided after an earlier certification)
        for code, gate in gate_progress_many(session, rnd.id, sorted(deferred)).items():
            session.get(SchoolRound, (rnd.id, code)).gate = gate.model_dump()
    return inserted


def _start_input(session: Session, round_id: str, school_code: str) -> tuple[SchoolRoundInput, str] | None:
    """The input that starts this school's workflow, and the task queue it runs on; None when the round did not
    start area-timed. The projection row is the school's state until its workflow exists."""
    # the row locked first: a workflow started meanwhile by another first event writes its projection after this
    # transaction, never before it (the gate counted here is then never newer than the one it writes)
    row = get_for_update(session, SchoolRound, (round_id, school_code))
    rnd = session.get(Round, round_id)
    if rnd is None or rnd.started_at is None or rnd.school_queue is None:
        return None
    school = session.get(School, school_code)
    if school is None:
        return None
    if row is None:  # a first event before the start's page reached the school
        ensure_school_rows(session, rnd, [(school.code, school.area)], datetime.now(timezone.utc))
        row = session.get(SchoolRound, (round_id, school_code))
    if row.certified_at is not None:
        raise round_finished()  # its workflow ended with the certification (the test server says "not found")
    gate = gate_progress(session, round_id, school_code)
    if gate.model_dump() != row.gate:
        row.gate = gate.model_dump()  # the roster moved without the school (a case's outcome): the projection too
    state = state_of(row, RoundPolicy.model_validate(rnd.policy))
    return SchoolRoundInput(state=state, version=row.version, projected=True, projected_stage=Stage(row.stage),
                            area_timed=True, local_records=True), rnd.school_queue


def start_input(engine: Engine, round_id: str, school_code: str) -> tuple[SchoolRoundInput, str] | None:
    with session_scope(engine) as session:
        return _start_input(session, round_id, school_code)


def _start_options(inp: SchoolRoundInput, task_queue: str) -> dict[str, Any]:
    s = inp.state
    return dict(
        id=school_round_id(s.round_id, s.school_code), task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes([
            SearchAttributePair(sa.ROUND, s.round_id), SearchAttributePair(sa.AREA, s.area),
            SearchAttributePair(sa.STAGE, (inp.projected_stage or Stage.open).value)]))


def _not_running(exc: RPCError) -> bool:
    """No workflow to take the call: never started (NOT_FOUND), or its run has ended ("already completed"; the
    time-skipping test server answers NOT_FOUND "update ... not found" there, and the start with REJECT_DUPLICATE
    then says it ended)."""
    return exc.status == RPCStatusCode.NOT_FOUND or "already completed" in exc.message


# --- updates and signals -------------------------------------------------------------------------------------

async def update_school(client: Client, engine: Engine | None, round_id: str, school_code: str, update, arg: Any,
                        result_type: type | None = None):
    """The school's update; when it has no workflow yet and its round is area-timed, the update that starts it.
    Raises WorkflowUpdateFailedError (a refusal) as execute_update does, `round_not_started` / `round_finished`."""
    handle = client.get_workflow_handle(school_round_id(round_id, school_code))
    try:
        return await handle.execute_update(update, arg, result_type=result_type)
    except RPCError as exc:
        if not _not_running(exc):
            raise
        if "already completed" in exc.message:
            raise round_finished() from None
    found = await asyncio.to_thread(start_input, engine, round_id, school_code) if engine is not None else None
    if found is None:
        raise round_not_started(round_id)
    inp, task_queue = found
    start = WithStartWorkflowOperation(SchoolRoundWorkflow.run, inp, **_start_options(inp, task_queue))
    try:
        return await client.execute_update_with_start_workflow(update, arg, start_workflow_operation=start,
                                                               result_type=result_type)
    except WorkflowAlreadyStartedError:
        raise round_finished() from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.ALREADY_EXISTS:  # the time-skipping server's way of saying the same
            raise round_finished() from None
        raise


async def signal_school(client: Client, engine: Engine | None, round_id: str, school_code: str, signal: str,
                        arg: Any) -> bool:
    """Tell the school (a case opened or closed, its roster changed); when it has no workflow yet and its round is
    area-timed, the signal that starts it. False when the school's round has ended or never started here."""
    handle = client.get_workflow_handle(school_round_id(round_id, school_code))
    try:
        await handle.signal(signal, arg)
        return True
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    found = await asyncio.to_thread(start_input, engine, round_id, school_code) if engine is not None else None
    if found is None:
        return False
    inp, task_queue = found
    try:
        await client.start_workflow(SchoolRoundWorkflow.run, inp, start_signal=signal, start_signal_args=[arg],
                                    **_start_options(inp, task_queue))
        return True
    except (WorkflowAlreadyStartedError, RPCError):
        return False  # ended meanwhile (certified, or closed): nothing left to tell

