"""Rounds are data: their instants, their reminder and escalation policy, and the rounds dmcflow ships."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from pydantic import BaseModel, Field, field_validator, model_validator

from domain.thai_time import BANGKOK, as_bangkok_input, bangkok, thai_date, thai_datetime

ROUND_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,39}$")


class RoundPolicy(BaseModel):
    """Reminders go to schools not yet confirmed/certified, at these offsets before their cutoff.

    The letter sets no reminders: their times are dmcflow's policy, per round."""

    reminders_before_cutoff: list[timedelta] = Field(
        default_factory=lambda: [timedelta(hours=4, minutes=30), timedelta(hours=1)],
        description="ISO 8601 durations before the cutoff; dmcflow's default (not the letter's, which sets no "
                    "reminders) is 4 h 30 min and 1 h, i.e. 12.00 and 15.30 น. for a 16.30 น. cutoff",
    )
    escalate_at_cutoff: bool = Field(True, description="email the area's district officers the late schools")
    late_grace: timedelta = Field(
        timedelta(days=30),
        description="how long a late school's workflow still accepts a deadline extension before it closes",
    )

    @field_validator("reminders_before_cutoff")
    @classmethod
    def _positive_sorted(cls, value: list[timedelta]) -> list[timedelta]:
        if any(v <= timedelta(0) for v in value):
            raise ValueError("reminder offsets must be positive durations before the cutoff")
        return sorted(set(value), reverse=True)


class Schedule(BaseModel):
    opens_at: datetime
    confirm_from: datetime
    cutoff_at: datetime

    @field_validator("opens_at", "confirm_from", "cutoff_at", mode="after")
    @classmethod
    def _bangkok_when_naive(cls, value: datetime) -> datetime:
        return as_bangkok_input(value)

    @model_validator(mode="after")
    def _ordered(self) -> "Schedule":
        if not (self.opens_at <= self.confirm_from < self.cutoff_at):
            raise ValueError("opens_at ≤ confirm_from < cutoff_at is required")
        return self

    def with_cutoff(self, cutoff_at: datetime) -> "Schedule":
        return Schedule(opens_at=self.opens_at, confirm_from=self.confirm_from, cutoff_at=cutoff_at)

    def reminder_instants(self, policy: RoundPolicy) -> list[datetime]:
        """Reminder instants that fall inside the open round, earliest first."""
        instants = [self.cutoff_at - off for off in policy.reminders_before_cutoff]
        return sorted(i for i in instants if i >= self.opens_at)

    def display(self) -> dict[str, str]:
        return {
            "opens_at": thai_datetime(self.opens_at),
            "confirm_from": thai_datetime(self.confirm_from),
            "cutoff_at": thai_datetime(self.cutoff_at),
        }


class RoundSpec(Schedule):
    id: str
    academic_year: int = Field(ge=2500, le=2700, description="Buddhist-Era academic year, e.g. 2566")
    final_exam_on: date | None = Field(
        None, description="R7: the date of the academic year's final exam (Thai calendar day); a student who left on "
                          "or before it may be transferred out. Not given: the round's opening day")
    policy: RoundPolicy = Field(default_factory=RoundPolicy)

    @model_validator(mode="after")
    def _exam_before_cutoff(self) -> "RoundSpec":
        if self.final_exam_on is not None and self.final_exam_on > self.cutoff_at.astimezone(BANGKOK).date():
            raise ValueError("final_exam_on must not be after the cutoff's day")
        return self

    @property
    def exam_date(self) -> date:
        """R7's boundary: the final exam's date, or the round's opening day when the round does not say (round
        3 opens when the year's final exams are over)."""
        return self.final_exam_on or self.opens_at.astimezone(BANGKOK).date()

    def display(self) -> dict[str, str]:
        return {**super().display(), "final_exam_on": thai_date(self.exam_date)}

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not ROUND_ID.match(value):
            raise ValueError("round id: letters, digits, '.', '_' or '-', at most 40 characters")
        return value

    @property
    def schedule(self) -> Schedule:
        return Schedule(opens_at=self.opens_at, confirm_from=self.confirm_from, cutoff_at=self.cutoff_at)


# The letter of 29 Mar 2567 (ศธ 04327/66616): 1 Mar 2567 00.00 to 30 Apr 2567 16.30 น.,
# confirmation and certification on 30 Apr from 08.30 น.
# It gives no final-exam date (R7), but says that on its own date, 29 Mar 2567, the roster must already hold only
# the students who sat the final exam at the school (ข้อ 2): every school's exam was over by then, so that date is
# the boundary dmcflow uses; `dmcflow rounds create --final-exam-on` sets a round's own.
ROUND_2566_3 = RoundSpec(
    id="2566-3",
    academic_year=2566,
    final_exam_on=date(2024, 3, 29),
    opens_at=bangkok(2024, 3, 1, 0, 0),
    confirm_from=bangkok(2024, 4, 30, 8, 30),
    cutoff_at=bangkok(2024, 4, 30, 16, 30),
)

SHIPPED_ROUNDS: dict[str, RoundSpec] = {ROUND_2566_3.id: ROUND_2566_3}
