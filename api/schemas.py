"""Request and response bodies of the API."""

from __future__ import annotations

from datetime import datetime

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
    confirmed: Person | None
    certified: Person | None
    blocking_cases: list[BlockingCaseOut]
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
