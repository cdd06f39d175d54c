"""R10 gate progress of one school in one round, counted by the database."""

from __future__ import annotations

from sqlalchemy import and_, case, func, select
from sqlmodel import Session

from db.models import EndOfYearRecord, Student
from domain.school_round import GateProgress

ACTIVE = "studying"


def _gate_query(round_id: str):
    r = EndOfYearRecord
    repeat = r.result == "repeat"
    graduated = r.result == "graduated"
    return (
        select(
            Student.school_code,
            func.count(Student.id),
            func.count(r.result),
            func.sum(case((repeat, 1), else_=0)),
            func.sum(case((and_(repeat, r.reasons.is_not(None)), 1), else_=0)),
            func.sum(case((graduated, 1), else_=0)),
            func.sum(case((and_(graduated, r.destination.is_not(None)), 1), else_=0)),
        )
        .select_from(Student)
        .outerjoin(r, and_(r.student_pk == Student.id, r.round_id == round_id))
        .where(Student.status == ACTIVE)
        .group_by(Student.school_code)
    )


def _progress(row) -> GateProgress:
    _, students, results, repeaters, reasons, graduates, destinations = row
    return GateProgress(students=students or 0, results=results or 0, repeaters=repeaters or 0,
                        repeat_reasons=reasons or 0, graduates=graduates or 0, destinations=destinations or 0)


def gate_progress(session: Session, round_id: str, school_code: str) -> GateProgress:
    row = session.exec(_gate_query(round_id).where(Student.school_code == school_code)).first()
    return _progress(row) if row else GateProgress()


def gate_progress_many(session: Session, round_id: str, school_codes: list[str]) -> dict[str, GateProgress]:
    """One query for a page of schools (starting a round); schools without students get an empty gate."""
    rows = session.exec(_gate_query(round_id).where(Student.school_code.in_(school_codes))).all()
    found = {row[0]: _progress(row) for row in rows}
    return {code: found.get(code, GateProgress()) for code in school_codes}
