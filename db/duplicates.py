"""Duplicate cases in the database: opening one (idempotently) and applying its outcome to the rosters."""

from __future__ import annotations

import hashlib
from datetime import date, datetime

from sqlmodel import Session, select

from db.engine import get_for_update
from db.models import AuditEvent, DuplicateCase, School, Student
from domain.duplicates import DuplicateCaseInput

ACTIVE = "studying"


def case_id(round_id: str, kind: str, student_pk: int, counterpart: str) -> str:
    # From database keys only: the same duplicate found twice (a re-import) is the same case.
    return "dup-" + hashlib.sha256(f"{round_id}|{kind}|{student_pk}|{counterpart}".encode()).hexdigest()[:16]


def _areas(session: Session, schools: list[str]) -> list[str]:
    return sorted({session.get(School, s).area for s in schools})


def open_obec_case(session: Session, round_id: str, holder: Student, claimant_school: str,
                   pending: dict) -> tuple[DuplicateCase, DuplicateCaseInput]:
    cid = case_id(round_id, "obec", holder.id, claimant_school)
    row = session.get(DuplicateCase, cid)
    if row is None:
        row = DuplicateCase(id=cid, round_id=round_id, kind="obec", student_pk=holder.id, student_id=holder.student_id,
                            holder_school=holder.school_code, claimant_school=claimant_school,
                            pending={k: v.isoformat() if isinstance(v, date) else v for k, v in pending.items()})
        session.add(row)
    parties = [holder.school_code, claimant_school]
    return row, DuplicateCaseInput(case_id=cid, round_id=round_id, kind="obec", parties=parties,
                                   areas=_areas(session, parties))


def open_affiliation_case(session: Session, round_id: str, student: Student,
                          agency: str) -> tuple[DuplicateCase, DuplicateCaseInput]:
    cid = case_id(round_id, "affiliation", student.id, agency)
    row = session.get(DuplicateCase, cid)
    if row is None:
        row = DuplicateCase(id=cid, round_id=round_id, kind="affiliation", student_pk=student.id,
                            student_id=student.student_id, holder_school=student.school_code, agency=agency)
        session.add(row)
    return row, DuplicateCaseInput(case_id=cid, round_id=round_id, kind="affiliation",
                                   parties=[student.school_code], areas=_areas(session, [student.school_code]))


def record_declarations(session: Session, cid: str, declarations: dict, decision: dict | None) -> None:
    """Add the case's declarations and decision to its row. Both only ever grow (each school declares once, the
    district decides once), so an older write retried after a newer one adds nothing and takes nothing away."""
    row = get_for_update(session, DuplicateCase, cid)
    row.declarations = {**row.declarations, **declarations}
    row.decision = decision or row.decision
    session.add(row)


def _leave(session: Session, student: Student, case: DuplicateCase, at: datetime) -> None:
    before = {"status": student.status}
    student.status = "transferred_out"
    session.add(student)
    session.add(AuditEvent(key=f"{case.id}/leave/{student.id}", at=at, actor="system", action="duplicate_removed",
                           round_id=case.round_id, school_code=student.school_code, before=before,
                           after={"status": student.status, "case": case.id}))


def apply_outcome(session: Session, cid: str, outcome: str, at: datetime) -> DuplicateCase:
    """Idempotent: a resolved case is left as it is."""
    case = session.get(DuplicateCase, cid)
    if case.status == "resolved":
        return case
    holder = session.get(Student, case.student_pk)
    if outcome != case.holder_school and holder is not None and holder.status == ACTIVE:
        _leave(session, holder, case, at)
    if case.kind == "obec" and outcome == case.claimant_school and case.pending:
        fields = dict(case.pending)
        if fields.get("birth_date"):
            fields["birth_date"] = date.fromisoformat(fields["birth_date"])
        existing = session.exec(select(Student).where(Student.school_code == case.claimant_school,
                                                      Student.student_id == case.student_id)).first()
        student = existing or Student(school_code=case.claimant_school, **fields)
        student.status = ACTIVE
        session.add(student)
        session.add(AuditEvent(key=f"{case.id}/add", at=at, actor="system", action="duplicate_added",
                               round_id=case.round_id, school_code=case.claimant_school, before=None,
                               after={"student_id": case.student_id, "case": case.id}))
    case.status, case.outcome, case.resolved_at, case.pending = "resolved", outcome, at, None
    session.add(case)
    return case
