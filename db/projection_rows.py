"""A row of the school-round projection (`school_rounds`) as the domain's objects: one place, so that the API's
views, the routers' rule checks and the pages read a school's schedule, decisions and stage the same way."""

from __future__ import annotations

from datetime import datetime

from db.models import SchoolRound
from domain.rounds import Schedule
from domain.school_round import BlockingCase, Decision, GateProgress, SchoolRoundState, Stage, stage_at


def schedule_of(row: SchoolRound) -> Schedule:
    return Schedule(opens_at=row.opens_at, confirm_from=row.confirm_from, cutoff_at=row.cutoff_at)


def decisions_of(row: SchoolRound) -> tuple[Decision | None, Decision | None]:
    """The staff's confirmation and the director's certification, as recorded."""
    confirmed = Decision(by=row.confirmed_by, at=row.confirmed_at) if row.confirmed_at else None
    certified = Decision(by=row.certified_by, at=row.certified_at) if row.certified_at else None
    return confirmed, certified


def stage_of(row: SchoolRound, now: datetime) -> Stage:
    """The stage at `now`: time moves it without any write (`stage_at`)."""
    return stage_at(now, schedule_of(row), *decisions_of(row))


def state_of(row: SchoolRound) -> SchoolRoundState:
    """What the rules check a school's request against (the policy is the round's default)."""
    confirmed, certified = decisions_of(row)
    return SchoolRoundState(round_id=row.round_id, school_code=row.school_code, area=row.area,
                            schedule=schedule_of(row), confirmed=confirmed, certified=certified,
                            gate=GateProgress.model_validate(row.gate),
                            blocking=[BlockingCase.model_validate(c) for c in row.blocking])
