"""Activities of the school round: gate counts, projection and audit, roster batches, reminders.

Each is idempotent: a retry after a crash or a timeout finds its own earlier effect and stops there.
Database work is synchronous and runs on the worker's thread pool; mail is async.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio import activity
from temporalio.client import Client

from db.engine import session_scope
from db.existence import apply_existence_batch
from db.gate import gate_progress
from db.models import School, SchoolEmail
from db.projection import write_change, write_transition
from db.roster_changes import apply_batch
from dmcflow.lazy_start import signal_school
from dmcflow.settings import Settings
from domain.messages import ApplyRosterBatch, BatchOutcome, ReminderRequest, SchoolChange, Transition
from domain.refusals import Refusal, refusal
from domain.school_round import GateProgress
from mailer import outbox
from mailer.render import render
from workflows import activity_calls as calls
from workflows.refusal_errors import as_application_error
from workflows.school_round import SchoolRoundWorkflow

log = logging.getLogger(__name__)


def school_emails(session, school_code: str) -> list[str]:
    return list(session.exec(select(SchoolEmail.email).where(SchoolEmail.school_code == school_code)))


class SchoolRoundActivities:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    @activity.defn(name=calls.LOAD_GATE)
    def load_gate(self, round_id: str, school_code: str) -> GateProgress:
        with session_scope(self.engine) as session:
            return gate_progress(session, round_id, school_code)

    @activity.defn(name=calls.RECORD_TRANSITION)
    def record_transition(self, transition: Transition) -> None:
        with session_scope(self.engine) as session:
            write_transition(session, transition)

    @activity.defn(name=calls.RECORD_CHANGE)
    def record_school_change(self, change: SchoolChange) -> None:
        """An area-timed school's projection write: what changed, not its whole state (issue 18). Run as a local
        activity by a round's newer schools (workflows/school_round.py `_record`): its refusal is the update's."""
        try:
            with session_scope(self.engine) as session:
                write_change(session, change)
        except Refusal as r:
            raise as_application_error(r) from None

    @activity.defn(name=calls.APPLY_ROSTER_BATCH)
    def apply_roster_batch(self, batch: ApplyRosterBatch, round_id: str, school_code: str) -> BatchOutcome:
        at = activity.info().current_attempt_scheduled_time
        try:
            with session_scope(self.engine) as session:
                if batch.kind == "existence":  # R11 marks: part of the roster, applied the same way
                    applied = apply_existence_batch(session, batch.batch_id, batch.actor.user_id, at)
                else:
                    applied = apply_batch(session, batch.batch_id, batch.actor.user_id, at,
                                          self.settings.claim_limits())
                if applied.round_id != round_id or applied.school_code != school_code:
                    raise refusal("batch_mismatch", "ชุดข้อมูลไม่ใช่ของโรงเรียน/รอบนี้",
                                  "The batch belongs to another school or round", 422)
                report = applied.report
            # counted once the batch is committed: a read, outside the write (SQLite's one write lock is not
            # held while it counts, so other schools' batches wait less)
            with session_scope(self.engine) as session:
                gate = gate_progress(session, round_id, school_code)
        except Refusal as r:
            raise as_application_error(r) from None  # its status kept: a 422 stays a 422 for the caller
        return BatchOutcome(batch_id=batch.batch_id, applied=report["applied"], unchanged=report["unchanged"],
                            refused=report["refused"], gate=gate, cases=report.get("cases", []))

    @activity.defn(name=calls.SEND_SCHOOL_REMINDER)
    async def send_school_reminder(self, req: ReminderRequest) -> bool:
        key = f"reminder/{req.round_id}/{req.school_code}/{req.due_at.isoformat()}"
        await asyncio.to_thread(self._enqueue_reminder, key, req)
        return await outbox.deliver(self.engine, self.settings, key)

    def _enqueue_reminder(self, key: str, req: ReminderRequest) -> None:
        with session_scope(self.engine) as session:
            school = session.get(School, req.school_code)
            subject, body = render(
                "reminder.txt.j2", round_id=req.round_id, school_code=req.school_code,
                school_name=school.name if school else req.school_code, stage=req.stage.value,
                cutoff_at=req.cutoff_at, time_left=req.cutoff_at - req.due_at,
                link=f"{self.settings.public_url}/rounds/{req.round_id}/schools/{req.school_code}")
            outbox.enqueue(session, self.settings, key=key, kind="reminder", to=school_emails(session, req.school_code),
                           subject=subject, body=body)


class SchoolSignalActivities:
    """Side processes (a duplicate case, a dropout consultation) telling a school of its cases (issue 18)."""

    def __init__(self, engine: Engine, client: Client) -> None:
        self.engine = engine
        self.client = client

    @activity.defn(name=calls.TELL_SCHOOL)
    async def tell_school(self, round_id: str, school_code: str, signal: str, arg: Any) -> bool:
        """The signal to the school's workflow. A case that opens on an area-timed school with no workflow yet
        starts it (signal-with-start): its block must hold when it first acts. Any other news for a school that
        never started is dropped: a school told a case closed never knew of it, and its gate is counted afresh
        when it starts. False when not delivered."""
        starts = self.engine if signal == calls.signal_name(SchoolRoundWorkflow.case_opened) else None
        return await signal_school(self.client, starts, round_id, school_code, signal, arg)
