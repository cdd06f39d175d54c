"""The confirmation gate of one school in one round, counted by the database: R10's menus and R11's marks."""

from __future__ import annotations

from sqlalchemy import and_, bindparam, case, func, select
from sqlmodel import Session

from db.existence import exception_kinds_many, excused_cases_many
from db.models import EndOfYearRecord, ExistenceMark, Student
from domain.existence import Mark
from domain.school_round import GateProgress

ACTIVE = "studying"


def _gate_query():
    """Built once, run with the round and the schools as parameters: each roster batch counts its school's gate,
    and building the statement cost more than running it."""
    r, m, round_id = EndOfYearRecord, ExistenceMark, bindparam("round_id")
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
            func.sum(case((m.mark == Mark.present.value, 1), else_=0)),
            func.sum(case((m.mark == Mark.exception.value, 1), else_=0)),
        )
        .select_from(Student)
        .outerjoin(r, and_(r.student_pk == Student.id, r.round_id == round_id))
        .outerjoin(m, and_(m.student_pk == Student.id, m.round_id == round_id))
        .where(Student.status == ACTIVE, Student.school_code.in_(bindparam("school_codes", expanding=True)))
        .group_by(Student.school_code)
    )


_GATE = _gate_query()


def _progress(row, kinds: dict[str, int], excused: list[str]) -> GateProgress:
    _, students, results, repeaters, reasons, graduates, destinations, present, exceptions = row
    return GateProgress(students=students or 0, results=results or 0, repeaters=repeaters or 0,
                        repeat_reasons=reasons or 0, graduates=graduates or 0, destinations=destinations or 0,
                        present=present or 0, exceptions=exceptions or 0, exception_kinds=kinds,
                        excused_cases=excused)


def gate_progress(session: Session, round_id: str, school_code: str) -> GateProgress:
    return gate_progress_many(session, round_id, [school_code])[school_code]


def gate_progress_many(session: Session, round_id: str, school_codes: list[str]) -> dict[str, GateProgress]:
    """A few queries for a page of schools (starting a round); schools without students get an empty gate."""
    rows = session.execute(_GATE, {"round_id": round_id, "school_codes": list(school_codes)}).all()
    kinds = exception_kinds_many(session, round_id, school_codes)
    excused = excused_cases_many(session, round_id, school_codes)
    found = {row[0]: _progress(row, kinds.get(row[0], {}), excused.get(row[0], [])) for row in rows}
    return {code: found.get(code, GateProgress()) for code in school_codes}
