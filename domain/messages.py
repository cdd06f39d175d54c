"""What crosses a workflow boundary (inputs, updates, signals, activity calls). Pydantic models, no PII:
students are referred to by batch ids and counts only, people by opaque user ids."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from domain.duplicates import DuplicateCaseInput
from domain.end_of_year import Step
from domain.school_round import Actor, BlockingCase, Decision, GateProgress, SchoolRoundState, Stage


class SchoolRoundInput(BaseModel):
    state: SchoolRoundState
    version: int = 0
    continued: bool = False  # True after continue-as-new: state is already loaded
    projected: bool = False  # True when the starter already wrote the gate and the projection row
    # the stage that row shows: a first run after a boundary (the worker was down) projects its own stage
    projected_stage: Stage | None = None
    # issue 18: True = the round's time is its area's (AreaRoundWorkflow sends the reminders and moves the school to
    # `late`); the school's workflow waits for events, with one timer (closing after the late grace). False, as in
    # every history stored before it, = the school keeps its own timers.
    area_timed: bool = False
    # issue 18: True = a staff or district decision's projection write is a local activity inside its update's
    # workflow task (workflows/school_round.py `_record`; a certification's stays a regular activity). False, as
    # in every history stored before it (the v7 area-timed ones), = a regular activity, as those were recorded.
    local_records: bool = False


class SchoolRoundResult(BaseModel):
    stage: Stage
    confirmed_by: str | None = None
    certified_by: str | None = None


class ExtendDeadline(BaseModel):
    cutoff_at: datetime
    reason: str = Field(min_length=1, max_length=1000)
    actor: Actor
    scope: str = Field("school", description="school | area:<name> | round, for the audit trail")


class ApplyRosterBatch(BaseModel):
    batch_id: str
    kind: Literal["import", "end_of_year", "student", "existence", "removal"]
    step: Step | None = None
    actor: Actor


class BatchOutcome(BaseModel):
    batch_id: str
    applied: int = 0
    unchanged: int = 0
    refused: int = 0
    gate: GateProgress
    cases: list[DuplicateCaseInput] = Field(default_factory=list)  # duplicates found: their workflows to start


class AuditEntry(BaseModel):
    key: str
    at: datetime
    actor: str
    action: str
    round_id: str | None = None
    school_code: str | None = None
    area: str | None = None
    before: dict | None = None
    after: dict | None = None
    reason: str | None = None


class Transition(BaseModel):
    """One change of a school round: the projection to write and, for decisions, the audit event."""

    state: SchoolRoundState
    stage: Stage
    version: int
    audit: AuditEntry | None = None


class ReminderRequest(BaseModel):
    round_id: str
    school_code: str
    stage: Stage
    cutoff_at: datetime
    due_at: datetime


class FanoutInput(BaseModel):
    """A round-wide operation done page by page, so no workflow has thousands of children."""

    round_id: str
    operation: Literal["start", "extend"]
    area: str | None = None
    extension: ExtendDeadline | None = None
    page_size: int = 500
    after: str | None = None  # resume point after continue-as-new
    done: int = 0
    skipped: int = 0


class FanoutPage(BaseModel):
    round_id: str
    operation: Literal["start", "extend"]
    area: str | None = None
    extension: ExtendDeadline | None = None
    after: str | None = None
    limit: int = 500


class FanoutPageResult(BaseModel):
    done: int
    skipped: int
    last: str | None  # the last school code of the page; None when the page was empty


class AreaCutoffInput(BaseModel):
    round_id: str
    area: str


class AreaCutoffStep(BaseModel):
    round_id: str
    area: str
    now: datetime


class AreaCutoffStatus(BaseModel):
    escalated: int = 0  # schools listed in the email just sent
    next_cutoff: datetime | None = None  # the next cutoff of a school still open, None when none is


class AreaRoundInput(BaseModel):
    """AreaRoundWorkflow's input; after continue-as-new it carries how far the reminders have gone."""
    round_id: str
    area: str
    reminded_through: datetime | None = None  # reminder instants up to this one have been handled


class AreaInstant(BaseModel):
    """An area's batch step at `at` (the workflow's clock): reminders due in (`since`, `at`], or cutoffs due by `at`."""
    round_id: str
    area: str
    at: datetime
    since: datetime | None = None


class AreaSchedule(BaseModel):
    """What the area's schools still await, from the projection: the workflow sleeps until the earliest."""
    next_reminder: datetime | None = None
    next_cutoff: datetime | None = None  # the earliest cutoff of a school not yet moved to `late`
    close_at: datetime | None = None  # the last uncertified school's cutoff + late grace; None: all certified
    reminded: int = 0  # schools reminded by this step
    late: int = 0  # schools moved to `late` by this step (listed in its escalation)
    mail: list[str] = Field(default_factory=list)  # outbox keys this step enqueued, to deliver


class DeadlineMoved(BaseModel):
    """Signal to the area from an area-timed school after its extension was projected."""
    school_code: str
    cutoff_at: datetime



class SchoolChange(BaseModel):
    """One projection write of an area-timed school (issue 18): what changed, not the whole state.

    `fields` names the columns this write carries (a withdrawal: ["confirmed"] with `confirmed` None); the stage and
    the version always go. Safe only because an area-timed school writes its projection under its lock, one write
    after the other: an older write never lands after a newer one's fields."""
    round_id: str
    school_code: str
    version: int
    stage: Stage
    fields: list[Literal["confirmed", "certified", "cutoff_at", "gate", "blocking"]] = Field(default_factory=list)
    confirmed: Decision | None = None
    certified: Decision | None = None
    cutoff_at: datetime | None = None
    gate: GateProgress | None = None
    blocking: list[BlockingCase] | None = None
    audit: AuditEntry | None = None


class SchoolDecided(BaseModel):
    """An area-timed school's answer to a decision (confirm, withdraw, certify, extend): enough for the API's reply
    without reading the projection again."""
    stage: Stage
    version: int
    cutoff_at: datetime
    confirmed: Decision | None = None
    certified: Decision | None = None


__all__ = ["Actor", "BlockingCase"]
