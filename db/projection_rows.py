"""A row of the school-round projection (`school_rounds`) as the domain's objects: one place, so that the API's
views, the routers' rule checks and the pages read a school's schedule, decisions and stage the same way."""

from __future__ import annotations

from datetime import datetime

from db.models import SchoolRound
from domain.existence import ExistenceCounts
from domain.rounds import RoundPolicy, Schedule
from domain.school_round import BlockingCase, Decision, GateProgress, SchoolRoundState, Stage, stage_at


def schedule_of(row: SchoolRound) -> Schedule:
    return Schedule(opens_at=row.opens_at, confirm_from=row.confirm_from, cutoff_at=row.cutoff_at)


def gate_of(row: SchoolRound) -> GateProgress:
    """The school's gate as last projected (also from a selected row of these columns: db/monitoring.py)."""
    return GateProgress.model_validate(row.gate or {})


def blocking_of(row: SchoolRound) -> list[BlockingCase]:
    """The open cases that hold the school's confirmation back, as last projected."""
    return [BlockingCase.model_validate(c) for c in row.blocking or []]


def decisions_of(row: SchoolRound) -> tuple[Decision | None, Decision | None]:
    """The staff's confirmation (with the R11 counts it confirmed) and the director's certification, as recorded."""
    counts = ExistenceCounts.model_validate(row.confirmed_counts) if row.confirmed_counts else None
    confirmed = Decision(by=row.confirmed_by, at=row.confirmed_at, counts=counts) if row.confirmed_at else None
    certified = Decision(by=row.certified_by, at=row.certified_at) if row.certified_at else None
    return confirmed, certified


def stage_of(row: SchoolRound, now: datetime) -> Stage:
    """The stage at `now`: time moves it without any write (`stage_at`)."""
    return stage_at(now, schedule_of(row), *decisions_of(row))


def state_of(row: SchoolRound, policy: RoundPolicy | None = None) -> SchoolRoundState:
    """What the rules check a school's request against, and what starts a school's workflow from its row (with the
    round's policy; the default when not given)."""
    confirmed, certified = decisions_of(row)
    return SchoolRoundState(round_id=row.round_id, school_code=row.school_code, area=row.area,
                            schedule=schedule_of(row), policy=policy or RoundPolicy(), gate=gate_of(row),
                            confirmed=confirmed, certified=certified, blocking=blocking_of(row))
