"""The school-round projection: written by the workflow's activity, read by the API and the dashboard."""

from __future__ import annotations

from sqlmodel import Session, select

from db.models import AuditEvent, SchoolRound, utcnow
from domain.messages import AuditEntry, Transition
from domain.school_round import SchoolRoundState, Stage


def write_transition(session: Session, t: Transition) -> None:
    s = t.state
    row = session.get(SchoolRound, (s.round_id, s.school_code))
    if row is None:
        row = SchoolRound(round_id=s.round_id, school_code=s.school_code, area=s.area, stage=t.stage.value,
                          opens_at=s.schedule.opens_at, confirm_from=s.schedule.confirm_from,
                          cutoff_at=s.schedule.cutoff_at)
    elif row.version > t.version:
        write_audit(session, t.audit)  # an older projection retried late: keep the newer row
        return
    if row.cutoff_at != s.schedule.cutoff_at:
        row.escalated_at = None  # a moved deadline may make the school late again, later
    row.area = s.area
    row.stage = t.stage.value
    row.opens_at, row.confirm_from, row.cutoff_at = s.schedule.opens_at, s.schedule.confirm_from, s.schedule.cutoff_at
    row.confirmed_by = s.confirmed.by if s.confirmed else None
    row.confirmed_at = s.confirmed.at if s.confirmed else None
    row.certified_by = s.certified.by if s.certified else None
    row.certified_at = s.certified.at if s.certified else None
    row.gate = s.gate.model_dump()
    row.blocking = [c.model_dump() for c in s.blocking]
    row.version = t.version
    row.updated_at = utcnow()
    session.add(row)
    write_audit(session, t.audit)


def insert_initial(session: Session, states: list[SchoolRoundState], stages: list[Stage]) -> None:
    """Projection rows for schools whose workflows are being started (version 0: any workflow write wins)."""
    if not states:
        return
    existing = set(session.exec(select(SchoolRound.school_code).where(
        SchoolRound.round_id == states[0].round_id,
        SchoolRound.school_code.in_([s.school_code for s in states]))))
    for s, stage in zip(states, stages, strict=True):
        if s.school_code in existing:
            continue
        session.add(SchoolRound(round_id=s.round_id, school_code=s.school_code, area=s.area, stage=stage.value,
                                opens_at=s.schedule.opens_at, confirm_from=s.schedule.confirm_from,
                                cutoff_at=s.schedule.cutoff_at, gate=s.gate.model_dump(), blocking=[], version=0))


def write_audit(session: Session, entry: AuditEntry | None) -> None:
    if entry is None:
        return
    if session.exec(AuditEvent.__table__.select().where(AuditEvent.key == entry.key)).first() is not None:
        return  # the activity was retried after it had committed
    session.add(AuditEvent(**entry.model_dump()))
