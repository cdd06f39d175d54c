"""Outcomes decided after a school certified its roster (issue 16): the certified roster stays as certified.

An approved ID correction, a duplicate case's outcome or an approved dropout request (R8, decided after the school
certified with the request marked as an R11 exception) that reaches a certified school is recorded here instead
of changing the roster, and the start of the school's next round applies it (`apply_deferred`, called where the
round's start counts the schools' gates, so the new round begins from the certified roster plus what was
decided after it). The school and the district are told at once by mail (activities/deferred_notices.py).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session, select

from db.models import AuditEvent, DeferredRosterChange, IdCorrection, Round, SchoolRound, Student

ACTIVE = "studying"


def roster_is_certified(session: Session, round_id: str | None, school_code: str | None) -> bool:
    """The school certified its roster in this round and no later round of it has started: an outcome then waits
    for the next round's start. Locks the school's row, so a certification being written is waited for."""
    if not round_id or not school_code:
        return False
    # a row lock on PostgreSQL (SQLite ignores it, and has one writer at a time anyway); not get_for_update, whose
    # SQLite BEGIN must come first in the transaction and could come only once (a case has two schools)
    row = session.get(SchoolRound, (round_id, school_code), with_for_update=True)
    if row is None or row.certified_at is None:
        return False
    later = session.exec(select(SchoolRound.round_id).where(SchoolRound.school_code == school_code,
                                                            SchoolRound.opens_at > row.opens_at)).first()
    return later is None


def defer(session: Session, *, key: str, round_id: str, school_code: str, area: str, kind: str, source: str,
          student_pk: int | None, change: dict, at: datetime, actor: str = "system") -> DeferredRosterChange:
    """Idempotent by key: a retried activity records it once."""
    row = session.get(DeferredRosterChange, key)
    if row is None:
        row = DeferredRosterChange(key=key, round_id=round_id, school_code=school_code, area=area, kind=kind,
                                   source=source, student_pk=student_pk, change=change, decided_at=at)
        session.add(row)
        session.add(AuditEvent(key=f"deferred/{key}", at=at, actor=actor, action="roster_change_deferred",
                               round_id=round_id, school_code=school_code, area=area,
                               after={"kind": kind, "source": source}, reason="decided after certification: "
                               "applied at the start of the next round"))
    return row


def pending_for(session: Session, source: str) -> list[DeferredRosterChange]:
    return list(session.exec(select(DeferredRosterChange).where(DeferredRosterChange.source == source)
                             .order_by(DeferredRosterChange.key)))


def apply_deferred(session: Session, rnd: Round, school_codes: list[str], at: datetime) -> int:
    """At the start of `rnd`: apply the changes of these schools deferred in an earlier round, each with the
    rules checked again (the new ID still free, the student still as the decision found them). Answers how
    many were applied; one that no longer fits is marked failed with its reason, never forced."""
    earlier = select(Round.id).where(Round.opens_at < rnd.opens_at)
    rows = session.exec(select(DeferredRosterChange).where(
        DeferredRosterChange.status == "pending", DeferredRosterChange.school_code.in_(school_codes),
        DeferredRosterChange.round_id.in_(earlier)).order_by(DeferredRosterChange.decided_at,
                                                             DeferredRosterChange.key)).all()
    applied = 0
    for row in rows:
        problem = _APPLY[row.kind](session, row, at)
        row.status, row.note = ("failed", problem) if problem else ("applied", None)
        row.applied_round_id, row.applied_at = rnd.id, at
        session.add(row)
        if problem is None:
            applied += 1
            session.add(AuditEvent(key=f"deferred/{row.key}/applied", at=at, actor="system",
                                   action=f"{row.kind}_applied", round_id=rnd.id, school_code=row.school_code,
                                   area=row.area, after={"source": row.source, "decided_in": row.round_id},
                                   reason="decided after the school certified; applied at this round's start"))
    return applied


def _id_correction(session: Session, row: DeferredRosterChange, at: datetime) -> str | None:
    request = session.get(IdCorrection, row.source)
    student = session.get(Student, row.student_pk) if row.student_pk else None
    new_id = row.change["new_id"]
    taken = session.exec(select(Student.id).where(Student.student_id == new_id, Student.id != row.student_pk)).first()
    if student is None or student.student_id != row.change["old_id"] or taken:
        problem = "new_id_taken" if taken else "student_changed"
        if request is not None and request.status == "deferred":
            request.status, request.refusal_code = "failed", problem
            request.refusal_th = ("เลขใหม่นี้เป็นของนักเรียนคนอื่นแล้ว" if taken else
                                  "ข้อมูลนักเรียนเปลี่ยนไประหว่างรอเริ่มรอบถัดไป")
            request.refusal_en = ("The new ID belongs to another student now" if taken else
                                  "The student's record changed before the next round started")
            session.add(request)
        return problem
    session.add(AuditEvent(key=f"idc/{row.source}", at=at, actor=request.decided_by if request else "system",
                           action="id_correction", round_id=row.round_id, school_code=row.school_code, area=row.area,
                           before={"student_id": student.student_id},
                           after={"student_id": new_id, "ref": row.source, "deferred": True}))
    student.student_id, student.updated_at = new_id, at
    session.add(student)
    if request is not None and request.status == "deferred":
        request.status = "approved"
        session.add(request)
    return None


def _duplicate_leave(session: Session, row: DeferredRosterChange, at: datetime) -> str | None:
    student = session.get(Student, row.student_pk) if row.student_pk else None
    if student is None or student.status != ACTIVE:
        return None  # already gone (transferred out, dropped out): nothing left to take away
    before = {"status": student.status}
    student.status, student.updated_at = "transferred_out", at
    session.add(student)
    session.add(AuditEvent(key=f"{row.source}/leave/{student.id}", at=at, actor="system", action="duplicate_removed",
                           round_id=row.round_id, school_code=student.school_code, before=before,
                           after={"status": student.status, "case": row.source, "deferred": True}))
    return None


def _duplicate_add(session: Session, row: DeferredRosterChange, at: datetime) -> str | None:
    """The district's decision, as db.duplicates.apply_outcome applies it (the holder's side may be deferred too)."""
    fields = dict(row.change)
    if fields.get("birth_date"):
        fields["birth_date"] = date.fromisoformat(fields["birth_date"])
    existing = session.exec(select(Student).where(Student.school_code == row.school_code,
                                                  Student.student_id == fields["student_id"])).first()
    student = existing or Student(school_code=row.school_code, **fields)
    student.status, student.updated_at = ACTIVE, at
    session.add(student)
    session.add(AuditEvent(key=f"{row.source}/add", at=at, actor="system", action="duplicate_added",
                           round_id=row.round_id, school_code=row.school_code, before=None,
                           after={"student_id": fields["student_id"], "case": row.source, "deferred": True}))
    return None


def _dropout(session: Session, row: DeferredRosterChange, at: datetime) -> str | None:
    """The district's approval of a dropout request (db.dropouts.settle), if the student is still on the school's roster."""
    student = session.get(Student, row.student_pk) if row.student_pk else None
    if student is None or student.status != ACTIVE or student.school_code != row.school_code:
        return "student_not_active"  # left the roster meanwhile (a transfer, a duplicate case): nothing to drop out
    before = {"status": student.status}
    student.status, student.status_reason, student.updated_at = "dropped_out", row.change["reason"], at
    session.add(student)
    session.add(AuditEvent(key=f"{row.source}/student", at=at, actor="system", action="student_dropped_out",
                           round_id=row.round_id, school_code=row.school_code, area=row.area, before=before,
                           after={"status": "dropped_out", "reason": row.change["reason"], "request": row.source,
                                  "deferred": True}))
    return None


_APPLY = {"id_correction": _id_correction, "duplicate_leave": _duplicate_leave, "duplicate_add": _duplicate_add,
          "dropout": _dropout}
