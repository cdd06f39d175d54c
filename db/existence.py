"""R11 existence marks in the database: applying a staged batch of marks, counting them for the gate, listing them.

Marks are written only by the school's workflow (a roster batch of kind "existence", `apply_existence_batch`),
so they are serialised with the confirmation and frozen with the roster. Every write is idempotent: a retried
activity finds its batch applied and stops there.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import and_, bindparam
from sqlmodel import Session, select

from db.models import AuditEvent, DropoutRequest, DuplicateCase, ExistenceMark, RosterBatch, Student
from domain.dropouts import OPEN_STATUSES
from domain.existence import ExceptionKind, Mark, check_exception
from domain.ids import normalise_student_id
from domain.refusals import Refusal, refusal

ACTIVE = "studying"


# --- counts for the gate (db.gate) --------------------------------------------------------------------------

# Built once, run with the round and the schools as parameters (every roster batch counts its school's gate)
_EXCEPTION_KINDS = (
    select(Student.school_code, ExistenceMark.exception_kind, Student.id)
    .join(ExistenceMark, and_(ExistenceMark.student_pk == Student.id, ExistenceMark.round_id == bindparam("round_id")))
    .where(Student.school_code.in_(bindparam("school_codes", expanding=True)), Student.status == ACTIVE,
           ExistenceMark.mark == Mark.exception.value))
_EXCUSED = (
    select(DropoutRequest.school_code, DropoutRequest.id)
    .join(Student, Student.id == DropoutRequest.student_pk)
    .join(ExistenceMark, and_(ExistenceMark.student_pk == DropoutRequest.student_pk,
                              ExistenceMark.round_id == DropoutRequest.round_id))
    .where(DropoutRequest.round_id == bindparam("round_id"),
           DropoutRequest.school_code.in_(bindparam("school_codes", expanding=True)),
           DropoutRequest.status.in_(OPEN_STATUSES), Student.status == ACTIVE,
           Student.school_code == DropoutRequest.school_code,
           ExistenceMark.mark == Mark.exception.value,
           ExistenceMark.exception_kind == ExceptionKind.dropout_request.value))


def exception_kinds_many(session: Session, round_id: str, school_codes: list[str]) -> dict[str, dict[str, int]]:
    rows = session.execute(_EXCEPTION_KINDS, {"round_id": round_id, "school_codes": list(school_codes)}).all()
    kinds: dict[str, dict[str, int]] = defaultdict(dict)
    for school, kind, _ in rows:
        kinds[school][kind] = kinds[school].get(kind, 0) + 1
    return kinds


def excused_cases_many(session: Session, round_id: str, school_codes: list[str]) -> dict[str, list[str]]:
    """Open dropout requests whose student the school marked as a dropout-request exception (R11, R8)."""
    rows = session.execute(_EXCUSED, {"round_id": round_id, "school_codes": list(school_codes)}).all()
    found: dict[str, list[str]] = defaultdict(list)
    for school, ref in rows:
        found[school].append(ref)
    return {school: sorted(refs) for school, refs in found.items()}


# --- applying a batch ---------------------------------------------------------------------------------------

def _issue(index: int, value: str, r: Refusal) -> dict:
    return {"row": index, "column": "student", "value": value, "code": r.code, "message_th": r.message_th,
            "message_en": r.message_en, "status": r.status}


def _active(session: Session, school_code: str) -> dict[str, Student]:
    return {s.student_id: s for s in session.exec(
        select(Student).where(Student.school_code == school_code, Student.status == ACTIVE))}


def _marks(session: Session, round_id: str, pks: list[int]) -> dict[int, ExistenceMark]:
    if not pks:
        return {}
    return {m.student_pk: m for m in session.exec(
        select(ExistenceMark).where(ExistenceMark.round_id == round_id, ExistenceMark.student_pk.in_(pks)))}


def _lookup(students: dict[str, Student], raw: str) -> Student:
    student = students.get(normalise_student_id(raw))
    if student is None:
        raise refusal("student_not_on_roster", "ไม่พบนักเรียนคนนี้ในทะเบียนของโรงเรียน (เฉพาะนักเรียนที่ยังเรียนอยู่)",
                      "This student is not an active student on the school's roster", 422)
    return student


def open_case_of(session: Session, round_id: str, student: Student, kind: ExceptionKind) -> str | None:
    """The open case of the school's that an exception of this kind stands on, if any."""
    if kind is ExceptionKind.dropout_request:
        row = session.exec(select(DropoutRequest.id).where(
            DropoutRequest.round_id == round_id, DropoutRequest.student_pk == student.id,
            DropoutRequest.school_code == student.school_code,
            DropoutRequest.status.in_(OPEN_STATUSES))).first()
        return row
    if kind is ExceptionKind.duplicate_case:
        # "open" only: a claim still private to the holder's district is not the school's to cite (issue 15)
        return session.exec(select(DuplicateCase.id).where(
            DuplicateCase.round_id == round_id, DuplicateCase.student_pk == student.id,
            DuplicateCase.status == "open")).first()
    return None


def _present(session: Session, batch: RosterBatch, actor: str, at: datetime) -> dict:
    p = batch.payload
    students = _active(session, batch.school_code)
    issues: list[dict] = []
    if p.get("students"):
        chosen: dict[int, Student] = {}
        for index, raw in enumerate(p["students"]):
            try:
                s = _lookup(students, raw)
            except Refusal as r:
                issues.append(_issue(index + 1, raw, r))
                continue
            chosen[s.id] = s
        overwrite, scope = True, {"students": len(p["students"])}
    else:
        chosen = {s.id: s for s in students.values()
                  if p.get("grade") is None or (s.grade == p["grade"] and p.get("classroom") in (None, s.classroom))}
        overwrite = False  # everyone / a class: an exception already recorded stays as it is
        scope = {"all": True} if p.get("all") else {"grade": p.get("grade"), "classroom": p.get("classroom")}
    marks = _marks(session, batch.round_id, list(chosen))
    applied = unchanged = 0
    for pk in chosen:
        mark = marks.get(pk)
        if mark is not None and (mark.mark == Mark.present.value or not overwrite):
            unchanged += 1
            continue
        mark = mark or ExistenceMark(round_id=batch.round_id, student_pk=pk, mark=Mark.present.value,
                                     marked_by=actor, marked_at=at)
        mark.mark, mark.exception_kind, mark.case_ref, mark.note = Mark.present.value, None, None, None
        mark.marked_by, mark.marked_at = actor, at
        session.add(mark)
        applied += 1
    session.add(AuditEvent(key=f"{batch.id}/0", at=at, actor=actor, action="existence_present",
                           round_id=batch.round_id, school_code=batch.school_code,
                           after={**scope, "marked": applied, "unchanged": unchanged, "refused": len(issues)}))
    return {"applied": applied, "unchanged": unchanged, "refused": len(issues), "issues": issues}


def _exception(session: Session, batch: RosterBatch, actor: str, at: datetime) -> dict:
    p = batch.payload
    try:
        student = _lookup(_active(session, batch.school_code), p["student"])
        kind = ExceptionKind(p["kind"])
        case_ref = open_case_of(session, batch.round_id, student, kind)
        check_exception(kind, p.get("note"), case_ref is not None)
    except Refusal as r:
        return {"applied": 0, "unchanged": 0, "refused": 1, "issues": [_issue(1, "", r)]}
    mark = session.get(ExistenceMark, (batch.round_id, student.id))
    before = {"mark": mark.mark, "kind": mark.exception_kind} if mark else None
    after = {"mark": Mark.exception.value, "kind": kind.value}
    if before == after and mark.note == p.get("note") and mark.case_ref == case_ref:
        return {"applied": 0, "unchanged": 1, "refused": 0, "issues": []}
    mark = mark or ExistenceMark(round_id=batch.round_id, student_pk=student.id, mark=Mark.exception.value,
                                 marked_by=actor, marked_at=at)
    mark.mark, mark.exception_kind, mark.case_ref, mark.note = Mark.exception.value, kind.value, case_ref, p.get("note")
    mark.marked_by, mark.marked_at = actor, at
    session.add(mark)
    session.add(AuditEvent(key=f"{batch.id}/0", at=at, actor=actor, action="existence_exception",
                           round_id=batch.round_id, school_code=batch.school_code, before=before,
                           after={"student": student.student_id, **after, "case": case_ref}, reason=p.get("note")))
    return {"applied": 1, "unchanged": 0, "refused": 0, "issues": []}


def _clear(session: Session, batch: RosterBatch, actor: str, at: datetime) -> dict:
    students = _active(session, batch.school_code)
    issues, chosen = [], {}
    for index, raw in enumerate(batch.payload["students"]):
        try:
            s = _lookup(students, raw)
        except Refusal as r:
            issues.append(_issue(index + 1, raw, r))
            continue
        chosen[s.id] = s
    marks = _marks(session, batch.round_id, list(chosen))
    for mark in marks.values():
        session.delete(mark)
    session.add(AuditEvent(key=f"{batch.id}/0", at=at, actor=actor, action="existence_clear",
                           round_id=batch.round_id, school_code=batch.school_code,
                           after={"students": [chosen[pk].student_id for pk in marks], "cleared": len(marks)}))
    return {"applied": len(marks), "unchanged": len(chosen) - len(marks), "refused": len(issues), "issues": issues}


def apply_existence_batch(session: Session, batch_id: str, actor: str, at: datetime) -> RosterBatch:
    batch = session.get(RosterBatch, batch_id)
    if batch is None:
        raise refusal("batch_missing", "ไม่พบชุดข้อมูลที่ส่งมา", "The staged batch does not exist", 404)
    if batch.status == "applied":
        return batch  # a retried activity: already done
    apply = {"present": _present, "exception": _exception, "clear": _clear}[batch.payload["op"]]
    batch.report = apply(session, batch, actor, at)
    batch.status, batch.applied_at = "applied", at
    batch.payload = {"op": batch.payload["op"]}  # no personal data kept
    session.add(batch)
    return batch


# --- reading ------------------------------------------------------------------------------------------------

def list_marks(session: Session, round_id: str, school_code: str, *, grade: str | None = None,
               classroom: str | None = None) -> list[tuple[Student, ExistenceMark | None]]:
    """Every active student of the school with its mark (None: not marked yet), in class and number order."""
    q = (select(Student, ExistenceMark)
         .outerjoin(ExistenceMark, and_(ExistenceMark.student_pk == Student.id, ExistenceMark.round_id == round_id))
         .where(Student.school_code == school_code, Student.status == ACTIVE))
    if grade is not None:
        q = q.where(Student.grade == grade)
    if classroom is not None:
        q = q.where(Student.classroom == classroom)
    q = q.order_by(Student.grade, Student.classroom, Student.student_no, Student.id)
    return list(session.exec(q).all())

