"""The school-round projection: written by the workflow's activity, read by the API and the dashboard."""

from __future__ import annotations

from sqlalchemy import and_, case, update
from sqlmodel import Session, select

from db.models import AuditEvent, SchoolRound, utcnow
from domain.messages import AuditEntry, SchoolChange, Transition
from domain.school_round import SchoolRoundState, Stage


def write_transition(session: Session, t: Transition) -> None:
    """Move the school's row to version `t.version`, unless a newer version is already there.

    Two of a workflow's projections can be in flight at once (an update's and the main loop's, both retried
    after an outage), so the version test and the write are one conditional UPDATE: a read-then-write would
    let the older one, having read before the newer one committed, overwrite it.
    """
    s = t.state
    fields = dict(area=s.area, stage=t.stage.value, opens_at=s.schedule.opens_at,
                  confirm_from=s.schedule.confirm_from, cutoff_at=s.schedule.cutoff_at,
                  confirmed_by=s.confirmed.by if s.confirmed else None,
                  confirmed_at=s.confirmed.at if s.confirmed else None,
                  confirmed_counts=s.confirmed.counts.model_dump() if s.confirmed and s.confirmed.counts else None,
                  certified_by=s.certified.by if s.certified else None,
                  certified_at=s.certified.at if s.certified else None,
                  gate=s.gate.model_dump(), blocking=[c.model_dump() for c in s.blocking],
                  version=t.version, updated_at=utcnow())
    this_school = (SchoolRound.round_id == s.round_id, SchoolRound.school_code == s.school_code)
    stage = fields["stage"]
    if s.certified is None:
        # `late` written by the area's batch (issue 18; it leaves the version alone) stays: a write the school
        # computed before its cutoff and that lands after it cannot reopen it. Only a moved cutoff (an
        # extension) or a certification accepted before the cutoff writes another stage over it.
        stage = case((and_(SchoolRound.stage == Stage.late.value, SchoolRound.cutoff_at == s.schedule.cutoff_at),
                      Stage.late.value), else_=t.stage.value)
    moved = session.execute(
        update(SchoolRound).where(*this_school, SchoolRound.version <= t.version).values(
            # a moved deadline may make the school late again, later
            escalated_at=case((SchoolRound.cutoff_at == s.schedule.cutoff_at, SchoolRound.escalated_at)),
            **(fields | {"stage": stage}))
        .execution_options(synchronize_session=False)).rowcount
    if not moved and session.exec(select(SchoolRound.version).where(*this_school)).first() is None:
        session.add(SchoolRound(round_id=s.round_id, school_code=s.school_code, **fields))
    # else an older projection retried late: the newer row stays; its audit event is still written
    write_audit(session, t.audit)


def write_change(session: Session, c: SchoolChange) -> None:
    """An area-timed school's write (issue 18): its stage and version, and only the columns `c.fields` names.

    The same conditional UPDATE on version as `write_transition`: a retried older write never overwrites a newer
    one. The school writes one change at a time (under its lock), so a newer write never lacks a field an older
    one still has to land. The row is there before the school's workflow starts (dmcflow/lazy_start.py)."""
    values: dict = dict(version=c.version, updated_at=utcnow())
    if "confirmed" in c.fields:
        d = c.confirmed
        values |= dict(confirmed_by=d.by if d else None, confirmed_at=d.at if d else None,
                       confirmed_counts=d.counts.model_dump() if d and d.counts else None)
    if "certified" in c.fields:
        values |= dict(certified_by=c.certified.by if c.certified else None,
                       certified_at=c.certified.at if c.certified else None)
    cutoff = SchoolRound.cutoff_at
    if "cutoff_at" in c.fields:
        cutoff = c.cutoff_at
        # a moved deadline may make the school late again, later: its escalation is due again
        values |= dict(cutoff_at=c.cutoff_at,
                       escalated_at=case((SchoolRound.cutoff_at == c.cutoff_at, SchoolRound.escalated_at)))
    if "gate" in c.fields:
        values["gate"] = c.gate.model_dump()
    if "blocking" in c.fields:
        values["blocking"] = [b.model_dump() for b in c.blocking or []]
    # as in write_transition: `late` set by the area's batch stays unless the cutoff moved or the school certified
    values["stage"] = c.stage.value if c.stage is Stage.certified else case(
        (and_(SchoolRound.stage == Stage.late.value, SchoolRound.cutoff_at == cutoff), Stage.late.value),
        else_=c.stage.value)
    session.execute(update(SchoolRound).where(
        SchoolRound.round_id == c.round_id, SchoolRound.school_code == c.school_code, SchoolRound.version <= c.version,
    ).values(**values).execution_options(synchronize_session=False))
    write_audit(session, c.audit)  # an older write retried late still leaves its audit event


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
