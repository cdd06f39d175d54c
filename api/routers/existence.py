"""R11 "ทุกรายการ": school staff confirm each student's existence, and the exceptions, before the school confirms.

Marks are part of the roster: each change is staged as a roster batch and applied by the school's workflow,
which refuses it while the roster is frozen (confirmed, certified, closed) and counts the gate again, so the
workflow's view of "every record" stays true. Students are named in request bodies, never in paths.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlmodel import select

from api.deps import EngineDep, SessionDep, TemporalDep, UserDep, require_role, school_in_scope
from api.errors import ERROR_RESPONSES
from api.roster_batches import apply_batch
from api.schemas import BatchReport, ExistenceListOut, ExistenceMarkOut, Person
from api.views import existence_counts_out, instant
from db.engine import session_scope
from db.existence import list_marks
from db.gate import gate_progress
from db.models import Round, User
from domain.existence import (
    EXCEPTION_TH, MARK_TH, ClearMarksIn, ExceptionKind, Mark, MarkExceptionIn, MarkPresentIn, check_present_selection,
)
from domain.refusals import Refusal, not_found

router = APIRouter(prefix="/rounds/{round_id}/schools/{school_code}/existence", tags=["existence (R11)"],
                   responses=ERROR_RESPONSES)

UNMARKED_TH = "ยังไม่ได้ยืนยัน"


async def _staff_of(engine, user, school_code: str) -> None:
    require_role(user, "staff", what_th="ยืนยันการมีตัวตนของนักเรียน (เฉพาะเจ้าหน้าที่โรงเรียน)",
                 what_en="confirm students' existence (school staff only)")

    def scope() -> None:
        with session_scope(engine) as session:
            school_in_scope(session, user, school_code)

    await asyncio.to_thread(scope)


async def _apply(engine, client, user, round_id: str, school_code: str, payload: dict, total: int) -> BatchReport:
    outcome, detail = await apply_batch(engine, client, user, round_id, school_code, "existence", payload)
    return BatchReport(total_rows=total, applied=outcome.applied, unchanged=outcome.unchanged,
                       refused=outcome.refused, issues=detail.get("issues", []), gate=outcome.gate.summary())


@router.post("/present", operation_id="mark_students_present", response_model=BatchReport,
             summary="R11: confirm students present: everyone, one class, or a list (staff of the school)")
async def mark_students_present(round_id: str, school_code: str, body: MarkPresentIn, user: UserDep,
                                engine: EngineDep, client: TemporalDep) -> BatchReport:
    """Everyone or a class marks the students who have no mark yet (an exception already recorded stays); a list
    marks exactly those students present, which also turns an exception back into present."""
    await _staff_of(engine, user, school_code)
    check_present_selection(body)
    return await _apply(engine, client, user, round_id, school_code, {"op": "present", **body.model_dump()},
                        len(body.students))


@router.post("/exceptions", operation_id="mark_student_exception", response_model=BatchReport,
             summary="R11: record one student as an exception (transferred out, dropout request, duplicate case)")
async def mark_student_exception(round_id: str, school_code: str, body: MarkExceptionIn, user: UserDep,
                                 engine: EngineDep, client: TemporalDep) -> BatchReport:
    """A dropout-request exception stops that request from blocking the school's confirmation: the student stays
    on the roster until the district decides."""
    await _staff_of(engine, user, school_code)
    report = await _apply(engine, client, user, round_id, school_code,
                          {"op": "exception", **body.model_dump(mode="json")}, 1)
    if report.refused:
        issue = report.issues[0]
        raise Refusal.from_dict(issue)
    return report


@router.post("/cleared", operation_id="clear_existence_marks", response_model=BatchReport,
             summary="R11: clear the marks of listed students (staff of the school), e.g. a mark made by mistake")
async def clear_existence_marks(round_id: str, school_code: str, body: ClearMarksIn, user: UserDep,
                                engine: EngineDep, client: TemporalDep) -> BatchReport:
    await _staff_of(engine, user, school_code)
    return await _apply(engine, client, user, round_id, school_code, {"op": "clear", **body.model_dump()},
                        len(body.students))


@router.get("", operation_id="list_existence_marks", response_model=ExistenceListOut,
            summary="R11: every active student with its existence mark, and the counts (school, district, admin)")
def list_existence_marks(
    round_id: str, school_code: str, user: UserDep, session: SessionDep,
    grade: Annotated[str | None, Query(max_length=4)] = None,
    classroom: Annotated[str | None, Query(max_length=10)] = None,
    mark: Annotated[Literal["present", "exception", "unmarked"] | None, Query()] = None,
) -> ExistenceListOut:
    school_in_scope(session, user, school_code)
    if session.get(Round, round_id) is None:
        raise not_found("รอบ", "round", round_id)
    rows = list_marks(session, round_id, school_code, grade=grade, classroom=classroom)
    if mark is not None:
        rows = [(s, m) for s, m in rows if (m.mark if m else "unmarked") == mark]
    names = dict(session.exec(select(User.id, User.display_name).where(
        User.id.in_({m.marked_by for _, m in rows if m}))).all())
    marks = []
    for s, m in rows:
        kind = ExceptionKind(m.exception_kind) if m and m.exception_kind else None
        marks.append(ExistenceMarkOut(
            student=s.student_id, student_no=s.student_no, name=f"{s.prefix}{s.first_name} {s.last_name}".strip(),
            grade=s.grade, classroom=s.classroom, mark=m.mark if m else None,
            mark_th=MARK_TH[Mark(m.mark)] if m else UNMARKED_TH,
            exception_kind=kind.value if kind else None, exception_kind_th=EXCEPTION_TH[kind] if kind else None,
            case_ref=m.case_ref if m else None, note=m.note if m else None,
            marked=Person(by=m.marked_by, by_name=names.get(m.marked_by), at=instant(m.marked_at)) if m else None))
    counts = gate_progress(session, round_id, school_code).existence
    return ExistenceListOut(round_id=round_id, school_code=school_code, counts=existence_counts_out(counts),
                            marks=marks)
