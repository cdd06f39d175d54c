"""What crosses a workflow boundary (inputs, updates, signals, activity calls). Pydantic models, no PII:
students are referred to by batch ids and counts only, people by opaque user ids."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from domain.duplicates import DuplicateCaseInput
from domain.end_of_year import Step
from domain.school_round import Actor, BlockingCase, GateProgress, SchoolRoundState, Stage


class SchoolRoundInput(BaseModel):
    state: SchoolRoundState
    version: int = 0
    continued: bool = False  # True after continue-as-new: state is already loaded
    projected: bool = False  # True when the starter already wrote the gate and the projection row
    # the stage that row shows: a first run after a boundary (the worker was down) projects its own stage
    projected_stage: Stage | None = None


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


__all__ = ["Actor", "BlockingCase"]
