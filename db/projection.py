"""The school-round projection: written by the workflow's activity, read by the API and the dashboard."""

from __future__ import annotations

from sqlmodel import Session

from db.models import AuditEvent, SchoolRound, utcnow
from domain.messages import AuditEntry, Transition


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


def write_audit(session: Session, entry: AuditEntry | None) -> None:
    if entry is None:
        return
    if session.exec(AuditEvent.__table__.select().where(AuditEvent.key == entry.key)).first() is not None:
        return  # the activity was retried after it had committed
    session.add(AuditEvent(**entry.model_dump()))
