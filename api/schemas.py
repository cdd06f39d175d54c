"""Request and response bodies of the API."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, EmailStr, Field, field_validator

from domain.rounds import RoundPolicy
from domain.thai_time import as_bangkok_input


class SchoolIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    area: str = Field(min_length=1, max_length=120, examples=["สพม.มหาสารคาม"])
    emails: list[EmailStr] = Field(default_factory=list, max_length=20)


class SchoolOut(BaseModel):
    code: str
    name: str
    area: str
    emails: list[str]


class RoundIn(BaseModel):
    id: str = Field(examples=["2566-3"])
    academic_year: int = Field(examples=[2566])
    opens_at: datetime = Field(description="Thai local time when no offset is given", examples=["2024-03-01T00:00:00"])
    confirm_from: datetime = Field(examples=["2024-04-30T08:30:00"])
    cutoff_at: datetime = Field(examples=["2024-04-30T16:30:00"])
    final_exam_on: date | None = Field(
        None, examples=["2024-03-29"], description="R7: the date of the year's final exam (CE date); a student who "
                                                    "left on or before it may be transferred out. Default: the "
                                                    "opening day")
    policy: RoundPolicy | None = None


class Instant(BaseModel):
    iso: datetime
    th: str


class RoundOut(BaseModel):
    id: str
    academic_year: int
    opens_at: Instant
    confirm_from: Instant
    cutoff_at: Instant
    final_exam_on: date | None = Field(None, description="R7: the final exam's date this round uses")
    policy: RoundPolicy
    reminders: list[Instant]
    started_at: Instant | None
    schools: int
    schools_started: int


class StartedOut(BaseModel):
    round_id: str
    operation_id: str
    schools: int


class ExtensionIn(BaseModel):
    cutoff_at: datetime = Field(description="new cutoff; Thai local time when no offset is given")
    reason: str = Field(min_length=1, max_length=1000)
    area: str | None = Field(None, description="extend every school of this area")
    school_code: str | None = Field(None, description="extend this one school")

    @field_validator("cutoff_at", mode="after")
    @classmethod
    def _bangkok(cls, value: datetime) -> datetime:  # a BE date that does not exist is refused here, as 422
        return as_bangkok_input(value)


class ExtensionOut(BaseModel):
    round_id: str
    scope: str
    cutoff_at: Instant
    operation_id: str | None = Field(None, description="the fan-out that moves every affected school")
    school: dict | None = None


class Person(BaseModel):
    by: str
    by_name: str | None
    at: Instant


class BlockingCaseOut(BaseModel):
    """An open side process that keeps the school from confirming, named for the people who must act."""

    kind: str  # duplicate | dropout | id_correction
    ref: str
    title_th: str
    title_en: str
    status: str | None = None
    # False: a dropout request whose student the school marked as an exception (R11); it waits for the district
    # without holding the school's confirmation back
    blocks_confirmation: bool = True


class ExistenceCountsOut(BaseModel):
    """R11 "every record": how many active students are confirmed present, given an exception, or unmarked."""

    students: int
    present: int
    exceptions: int
    unmarked: int
    exception_kinds: dict[str, int] = Field(default_factory=dict)
    complete: bool
    summary_th: str
    summary_en: str


class ConfirmedOut(Person):
    existence: ExistenceCountsOut | None = Field(
        None, description="the counts the staff's confirmation confirmed (R11); None for one made before marks existed")


class ExistenceMarkOut(BaseModel):
    student: str = Field(description="เลขประจำตัวประชาชน (national ID) or G-code")
    student_no: str
    name: str
    grade: str
    classroom: str
    mark: str | None = Field(description="present | exception; None: not marked yet")
    mark_th: str
    exception_kind: str | None = None
    exception_kind_th: str | None = None
    case_ref: str | None = None
    note: str | None = None
    marked: Person | None = None


class ExistenceListOut(BaseModel):
    round_id: str
    school_code: str
    counts: ExistenceCountsOut
    marks: list[ExistenceMarkOut]


class WarningOut(BaseModel):
    code: str = Field(description="blocking_near_cutoff: open cases still block confirmation close to the cutoff")
    th: str
    en: str


class SchoolRoundOut(BaseModel):
    round_id: str
    school_code: str
    school_name: str
    area: str
    stage: str
    stage_th: str
    opens_at: Instant
    confirm_from: Instant
    cutoff_at: Instant
    seconds_to_cutoff: int
    gate: dict
    existence: ExistenceCountsOut
    confirmed: ConfirmedOut | None
    certified: Person | None
    blocking_cases: list[BlockingCaseOut]
    warnings: list[WarningOut] = Field(default_factory=list, description="e.g. open cases still blocking within "
                                                                          "hours of the cutoff (dmcflow's choice)")
    workflow_id: str


class BatchReport(BaseModel):
    total_rows: int = 0
    applied: int = 0
    unchanged: int = 0
    refused: int = 0
    issues: list[dict] = Field(default_factory=list)
    gate: dict | None = None


class AuditOut(BaseModel):
    at: Instant
    actor: str
    actor_name: str | None = None
    action: str
    before: dict | None
    after: dict | None
    reason: str | None


# --- R8 dropout consultations (api/routers/dropouts.py) ---------------------------------------------------------

class ThreadEntryOut(BaseModel):
    id: int
    kind: str
    side: str
    author: str | None
    author_name: str | None
    text: str
    evidence: str | None
    at: Instant


class DropoutOut(BaseModel):
    id: str
    round_id: str
    school_code: str
    school_name: str
    area: str
    student_id: str
    student_name: str
    grade: str
    reason: str
    reason_th: str
    reason_en: str
    status: str
    status_th: str
    requested_by: str
    requested_at: Instant
    decided_by: str | None
    decided_at: Instant | None
    closed_at: Instant | None
    cutoff_at: Instant | None
    thread: list[ThreadEntryOut] = Field(default_factory=list)


class WithdrawalIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, description="why the school takes its request back")


class DropoutDecisionIn(BaseModel):
    approve: bool
    reason: str = Field(min_length=1, max_length=2000, description="told to the school, whatever the decision")


# --- R3 duplicates (api/routers/duplicates.py) ------------------------------------------------------------------

class DuplicateCaseOut(BaseModel):
    id: str
    kind: str
    status: str
    student_id: str
    student_name: str  # empty for the claimant's side: the holder's record of the student is not theirs
    holder_school: str | None  # None for the claimant's side: which school has the student is not theirs to know
    claimant_school: str | None
    agency: str | None
    declarations: dict
    decision: dict | None
    outcome: str | None
    opened_at: dict
    resolved_at: dict | None


class AffiliationReport(BaseModel):
    agency: str
    rows: int
    matches: int
    cases: list[str]
    issues: list[dict]
