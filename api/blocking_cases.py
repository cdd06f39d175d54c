"""A school's open cases named for its own staff: the kind, the reference, the student, who must act.

The school round's workflow knows cases by kind and reference only (no personal data in histories); the
refusal of a confirmation that open cases still block is named again here, from the database, before the
school's staff read it. The student's name comes from the school's own records only: its roster, or for a
claim on a student held elsewhere, the names the school itself typed when it asked to add them; never the
holding school's record (finding 3 of issue 15).
"""

from __future__ import annotations

from sqlmodel import Session

from db.models import DropoutRequest, DuplicateCase, Student
from domain.refusals import Refusal
from domain.school_round import NamedCase, blocking_cases_refusal

BLOCKING_CASES = "blocking_cases"


def _full_name(prefix: str | None, first: str | None, last: str | None) -> str | None:
    name = f"{prefix or ''}{first or ''} {last or ''}".strip()
    return name or None


def _own_student(session: Session, student_pk: int, school_code: str) -> str | None:
    s = session.get(Student, student_pk)
    return _full_name(s.prefix, s.first_name, s.last_name) if s is not None and s.school_code == school_code else None


def named_case(session: Session, kind: str, ref: str, school_code: str) -> tuple[NamedCase, str | None]:
    """The case as `school_code`'s staff read it, and its status (None when the case is not in the database)."""
    if kind == "dropout" and (req := session.get(DropoutRequest, ref)) is not None and req.school_code == school_code:
        waiting = "school_answer" if req.status == "waiting_school" else "district"
        return NamedCase(kind=kind, ref=ref, student=_own_student(session, req.student_pk, school_code),
                         waiting_on=waiting), req.status
    if kind == "duplicate" and (dup := session.get(DuplicateCase, ref)) is not None:
        if dup.kind == "obec" and school_code == dup.claimant_school:  # its claim: its own typed names only
            p = dup.pending or {}
            student = _full_name(p.get("prefix"), p.get("first_name"), p.get("last_name"))
        else:
            student = _own_student(session, dup.student_pk, school_code)
        if dup.status == "claimed":
            waiting = "holder_district"
        else:
            waiting = "district" if school_code in (dup.declarations or {}) else "school_declare"
        return NamedCase(kind=kind, ref=ref, student=student, waiting_on=waiting), dup.status
    return NamedCase(kind=kind, ref=ref), None


def name_blocking_refusal(session: Session, refused: Refusal, school_code: str) -> Refusal:
    """A `blocking_cases` refusal from the workflow, with each case named; any other refusal as it is."""
    cases = refused.details.get("cases") if refused.code == BLOCKING_CASES else None
    if not cases:
        return refused
    return blocking_cases_refusal([named_case(session, c["kind"], c["ref"], school_code)[0] for c in cases])
