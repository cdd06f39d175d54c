"""Applying a staged roster batch (an import or end-of-year records) to the database, idempotently.

Runs inside one transaction: either the whole batch is applied and marked applied, or nothing is.
"""

from __future__ import annotations

import operator
from datetime import date, datetime

from sqlalchemy import update
from sqlmodel import Session, select

from pydantic import ValidationError

from db.bulk import insert_rows, select_in
from db.directory import round_spec, upsert_school
from db.duplicates import claims_left, open_obec_case
from db.models import AuditEvent, EndOfYearRecord, Round, RosterBatch, School, Student
from domain.duplicates import ClaimLimits, too_many_claims, too_many_claims_in_file
from domain.end_of_year import EndOfYearEntry, check_entry
from domain.ids import normalise_name, normalise_student_id
from domain.refusals import Refusal, refusal
from domain.roster_rules import (
    RemovalIn, SchoolProfileIn, StatusIn, StudentIn, StudentUpdateIn, TransferOutIn, check_admission,
    check_entry_year, check_grade_edit, check_removal, check_return, check_status_change, check_transfer_out,
    check_update,
)
from domain.thai_time import to_bangkok

ACTIVE = "studying"
STUDENT_FIELDS = ("student_no", "prefix", "first_name", "last_name", "gender", "grade", "classroom",
                  "birth_date", "sat_final_exam")


def _issue(row: int | None, column: str, value: str, r: Refusal) -> dict:
    return {"row": row, "column": column, "value": value, "code": r.code,
            "message_th": r.message_th, "message_en": r.message_en}


def _jsonable(value):
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def _student_view(s: Student) -> dict:
    return {f: _jsonable(getattr(s, f)) for f in ("student_id", *STUDENT_FIELDS)}


# A school's rows of an export as staged for its workflow: the column names once, then one list per row
# (the same rows as one dict each were twice the JSON to write and to read back)
IMPORT_COLUMNS = ("row", "student_id", "entry_academic_year", *STUDENT_FIELDS)
_BIRTH = IMPORT_COLUMNS.index("birth_date")
_FIRST_FIELD = IMPORT_COLUMNS.index(STUDENT_FIELDS[0])
_staged_values = operator.attrgetter(*IMPORT_COLUMNS)


def import_payload(rows: list) -> dict:
    """`rows`: domain.roster_file.RosterRow of one school."""
    lines = []
    for r in rows:
        line = list(_staged_values(r))
        if line[_BIRTH] is not None:
            line[_BIRTH] = line[_BIRTH].isoformat()
        lines.append(line)
    return {"columns": list(IMPORT_COLUMNS), "rows": lines}


def _staged_rows(payload: dict) -> list[list]:
    """The staged rows as lists in IMPORT_COLUMNS order, whichever way they were staged (a batch staged
    before the columnar payload has one dict per row)."""
    columns = payload.get("columns")
    if columns is None:
        return [[r.get(c) for c in IMPORT_COLUMNS] for r in payload["rows"]]
    if tuple(columns) == IMPORT_COLUMNS:
        return payload["rows"]
    where = [columns.index(c) if c in columns else None for c in IMPORT_COLUMNS]
    return [[None if i is None else r[i] for i in where] for r in payload["rows"]]


def apply_import(session: Session, batch: RosterBatch, actor: str, at: datetime, limits: ClaimLimits) -> dict:
    """A school's rows of a DMC export, the rules row by row. Set-based reads (the school's roster in one
    query, the IDs held elsewhere in a few) and bulk writes (db.bulk): a 60,000-row area export goes through
    in seconds, and a row that changes nothing costs a comparison of two tuples.

    A file makes at most `limits.per_file` claims on students held elsewhere (and no more than the user's and
    the school's limits allow): once it has, every later row of a student new to the school is refused, claim or
    not, so that a file cannot be used to learn which IDs are on some roster."""
    rows = _staged_rows(batch.payload)
    columns = [Student.id, Student.student_id, Student.status, Student.left_on,
               *(getattr(Student, f) for f in STUDENT_FIELDS)]
    existing = {row.student_id: row for row in session.connection().execute(  # Core rows: no ORM loading
        select(*columns).where(Student.school_code == batch.school_code))}
    # a student not studying here comes back as an admission does: the same search for them on another roster
    ids = [r[1] for r in rows if r[1] not in existing or existing[r[1]].status != ACTIVE]
    elsewhere = set(select_in(session, select(Student.student_id).where(
        Student.school_code != batch.school_code, Student.status == ACTIVE), Student.student_id, ids))
    cases: list[dict] = []
    issues, inserts, updates, audits, unchanged = [], [], [], [], 0
    left, retry_after = claims_left(session, batch.round_id, batch.school_code, actor, at, limits)
    budget = min(left, limits.per_file)
    exhausted = too_many_claims_in_file(limits.per_file) if budget == limits.per_file else too_many_claims(retry_after)
    claims = [0]
    round_year = session.get(Round, batch.round_id).academic_year
    birth, school_code = _BIRTH - _FIRST_FIELD, batch.school_code
    for line in rows:
        row_number, sid, entry_year = line[0], line[1], line[2]
        try:  # R5: a row that says it is next year's applicant never enters, new or returning
            check_entry_year(entry_year, round_year)
        except Refusal as refused:
            issues.append(_issue(row_number, "ปีการศึกษาที่เข้าเรียน", str(entry_year), refused))
            continue
        staged = line[_FIRST_FIELD:]
        fields = list(staged)
        if fields[birth]:
            fields[birth] = date.fromisoformat(fields[birth])
        current = existing.get(sid)
        if current is not None and current.status == ACTIVE and tuple(current[4:]) == tuple(fields):
            unchanged += 1  # the common case of a re-import: nothing to check or write
            continue
        values = dict(zip(STUDENT_FIELDS, fields, strict=True))
        if current is None:
            if claims[0] >= budget:
                issues.append(_issue(row_number, "เลขประจำตัวประชาชน", sid, exhausted) | {"status": exhausted.status})
                continue
            if sid in elsewhere:
                case = _open_case(session, batch, sid, values, cases, actor, at, claims)
                issues.append(_issue(row_number, "เลขประจำตัวประชาชน", sid, _elsewhere(case)))
                continue
            inserts.append({"school_code": school_code, "student_id": sid, **values, "status": ACTIVE,
                            "updated_at": at})
            audits.append((None, {"student_id": sid, **dict(zip(STUDENT_FIELDS, staged, strict=True))}))
            continue
        if current.status != ACTIVE:
            # a way back onto the roster: the admission's rules (R3's claim, R8 and the other records that say
            # no), never a bare status flip; an old export must not undo a decision
            try:
                check_return(current.status, current.left_on, by_import=True)
            except Refusal as refused:
                issues.append(_issue(row_number, "เลขประจำตัวประชาชน", sid, refused))
                continue
            if claims[0] >= budget:
                issues.append(_issue(row_number, "เลขประจำตัวประชาชน", sid, exhausted) | {"status": exhausted.status})
                continue
            if sid in elsewhere:
                case = _open_case(session, batch, sid, values, cases, actor, at, claims)
                issues.append(_issue(row_number, "เลขประจำตัวประชาชน", sid, _elsewhere(case)))
                continue
        changed = {k: v for k, v in values.items() if getattr(current, k) != v}
        if not changed and current.status == ACTIVE:
            unchanged += 1
            continue
        if "grade" in changed:
            try:
                check_grade_edit(current.grade, values["grade"])
            except Refusal as refused:
                issues.append(_issue(row_number, "ชั้น", values["grade"], refused))
                continue
        updates.append({"id": current.id, **changed, "status": ACTIVE, "updated_at": at})
        before = {"student_id": sid, "status": current.status, **_jsonable_all({k: getattr(current, k) for k in changed})}
        audits.append((before, {"student_id": sid, "status": ACTIVE, **_jsonable_all(changed)}))
    if updates:
        session.execute(update(Student), updates)
    key, round_id, school = f"{batch.id}/", batch.round_id, batch.school_code
    insert_rows(session, (Student.__table__, inserts), (AuditEvent.__table__, [
        {"key": f"{key}{n}", "at": at, "actor": actor, "action": "import_student", "round_id": round_id,
         "school_code": school, "before": before, "after": after}
        for n, (before, after) in enumerate(audits)]))
    applied = len(inserts) + len(updates)
    return {"applied": applied, "unchanged": unchanged, "refused": len(issues), "issues": issues, "cases": cases}


def _jsonable_all(values: dict) -> dict:
    return {k: _jsonable(v) for k, v in values.items()}


def _elsewhere(case_id: str) -> Refusal:
    # nothing of the student or of the school that has them: the claimant learns only that the district was asked
    return refusal("active_elsewhere",
                   f"เลขประจำตัวประชาชน/รหัส G นี้มีอยู่ในทะเบียนของโรงเรียนอื่น จึงยังไม่เพิ่ม ได้แจ้งเขตพื้นที่ให้พิจารณาเรื่องนักเรียนซ้ำซ้อน "
                   f"{case_id} แล้ว (ข้อ 3)",
                   f"This ID is on another school's roster, so the student was not added; the district has been asked "
                   f"to review duplicate case {case_id} (R3)", 409)


def _open_case(session: Session, batch: RosterBatch, student_id: str, fields: dict, cases: list[dict], actor: str,
               at: datetime, claims: list[int]) -> str:
    holder = session.exec(select(Student).where(Student.student_id == student_id, Student.status == ACTIVE,
                                                Student.school_code != batch.school_code)).first()
    row, case, new = open_obec_case(session, batch.round_id, holder, batch.school_code,
                                    {"student_id": student_id, **fields}, claimed_by=actor, at=at)
    claims[0] += new
    # a settled case stays settled: the same claim again starts no new workflow
    if row.status != "resolved" and all(c["case_id"] != case.case_id for c in cases):
        cases.append(case.model_dump())
    return case.case_id


def _find(session: Session, school_code: str, raw_id: str) -> Student:
    sid = normalise_student_id(raw_id)
    student = session.exec(select(Student).where(Student.school_code == school_code, Student.student_id == sid)).first()
    if student is None:
        raise refusal("student_not_on_roster", "ไม่พบนักเรียนคนนี้ในทะเบียนของโรงเรียน",
                      "This student is not on the school's roster", 404)
    return student


def _audit(session: Session, batch: RosterBatch, actor: str, at: datetime, action: str, before, after,
           reason: str | None = None) -> None:
    session.add(AuditEvent(key=f"{batch.id}/0", at=at, actor=actor, action=action, round_id=batch.round_id,
                           school_code=batch.school_code, before=before, after=after, reason=reason))


def apply_student_op(session: Session, batch: RosterBatch, actor: str, at: datetime, limits: ClaimLimits) -> dict:
    """One operation of the rules table (R1, R2, R5–R9); a refusal is reported, nothing half-written."""
    op, data, cases = batch.payload["op"], batch.payload["data"], []
    try:
        if op in ("add_student", "transfer_in_student", "add_student_by_gcode"):
            year = session.get(Round, batch.round_id).academic_year
            fields = check_admission(op, StudentIn.model_validate(data), year)
            sid = fields.pop("student_id")
            current = session.exec(select(Student).where(Student.school_code == batch.school_code,
                                                         Student.student_id == sid)).first()
            if current is not None and current.status == ACTIVE:
                raise refusal("already_on_roster", "นักเรียนคนนี้อยู่ในทะเบียนของโรงเรียนแล้ว",
                              "This student is already on the school's roster")
            if current is not None:  # back onto the roster: what the records say first, then R3 as for anyone new
                check_return(current.status, current.left_on, by_import=False)
            left, retry_after = claims_left(session, batch.round_id, batch.school_code, actor, at, limits)
            if left <= 0:  # every add could be a claim: refusing only the claims would answer which IDs exist
                raise too_many_claims(retry_after)
            if session.exec(select(Student.id).where(Student.student_id == sid, Student.status == ACTIVE,
                                                     Student.school_code != batch.school_code)).first():
                raise _elsewhere(_open_case(session, batch, sid, fields, cases, actor, at, [0]))
            before = _student_view(current) if current else None
            student = current or Student(school_code=batch.school_code, student_id=sid, **fields)
            for k, v in fields.items():
                setattr(student, k, v)
            student.status, student.status_reason, student.left_on, student.updated_at = ACTIVE, None, None, at
            session.add(student)
            after = {**_student_view(student), "from_school": data.get("from_school")}
            _audit(session, batch, actor, at, op, before, after)
        elif op == "update_student":
            student = _find(session, batch.school_code, data["student"])
            reason = (data.get("reason") or "").strip() or None  # R9: a class moved up is a correction, with its reason
            changes = check_update(student.grade, StudentUpdateIn.model_validate(data["changes"]), reason)
            before = _student_view(student)
            for k, v in changes.items():
                setattr(student, k, v)
            student.updated_at = at
            session.add(student)
            _audit(session, batch, actor, at, op, before, _student_view(student), reason)
        elif op == "transfer_out_student":
            student = _find(session, batch.school_code, data["student"])
            details = TransferOutIn.model_validate(data.get("details") or {})
            exam_date = round_spec(session.get(Round, batch.round_id)).exam_date
            check_transfer_out(student.status, details.left_on, exam_date, to_bangkok(at).date())
            before = _student_view(student) | {"status": student.status}
            # R7: the record now says the student left before the final exam, and when
            student.status, student.sat_final_exam, student.left_on = "transferred_out", False, details.left_on
            student.updated_at = at
            session.add(student)
            _audit(session, batch, actor, at, op, before, {"status": student.status, **details.model_dump(mode="json")})
        elif op == "set_student_status":
            status = StatusIn.model_validate(data["status"])
            note = check_status_change(status.status, status.note)
            student = _find(session, batch.school_code, data["student"])
            if student.status != ACTIVE:
                raise refusal("not_studying", "เปลี่ยนสถานะได้เฉพาะนักเรียนที่กำลังศึกษาอยู่ในทะเบียนของโรงเรียน",
                              "Only a student who is studying at the school can have their status changed")
            before = {"student_id": student.student_id, "status": student.status}
            student.status, student.updated_at = status.status, at
            session.add(student)
            _audit(session, batch, actor, at, op, before, {"status": status.status, "note": note}, note)
        elif op == "update_school_profile":
            profile = SchoolProfileIn.model_validate(data)
            school = session.get(School, batch.school_code)
            fields = ("name", "phone", "address", "director_name")
            before = {f: getattr(school, f) for f in fields}
            for f in fields:
                if getattr(profile, f) is not None:
                    setattr(school, f, normalise_name(getattr(profile, f)))
            if profile.emails is not None:
                upsert_school(session, school.code, school.name, school.area, [str(e) for e in profile.emails])
            school.updated_at = at
            session.add(school)
            _audit(session, batch, actor, at, op, before,
                   {**{f: getattr(school, f) for f in fields}, "emails": [str(e) for e in profile.emails or []]})
        else:
            raise refusal("unknown_operation", "ไม่รู้จักรายการนี้", f"Unknown operation {op}", 422)
    except (Refusal, ValidationError) as exc:
        r = exc if isinstance(exc, Refusal) else refusal(
            "invalid_request", "ข้อมูลที่ส่งมาไม่ถูกต้อง", f"Invalid input: {exc.errors()[0]['msg']}", 422)
        issue = _issue(None, "", "", r) | {"status": r.status}
        if getattr(r, "headers", None):
            issue["retry_after"] = r.headers["Retry-After"]
        return {"applied": 0, "unchanged": 0, "refused": 1, "cases": cases, "issues": [issue]}
    return {"applied": 1, "unchanged": 0, "refused": 0, "issues": [], "cases": cases}


def apply_removal(session: Session, batch: RosterBatch, actor: str, at: datetime, _: ClaimLimits) -> dict:
    """The district removes a record from a school's roster, with its reason, audited. The school's workflow lets
    only the district of the school's area, or an admin, send this kind of batch."""
    data = batch.payload["data"]
    try:
        if batch.payload.get("op") != "remove_student":
            raise refusal("unknown_operation", "ไม่รู้จักรายการนี้", "Unknown operation", 422)
        body = RemovalIn.model_validate({"reason": data.get("reason")})
        student = _find(session, batch.school_code, data["student"])
        reason = check_removal(student.status, body.reason)
        before = _student_view(student) | {"status": student.status}
        student.status, student.updated_at = "removed", at
        session.add(student)
        _audit(session, batch, actor, at, "remove_student", before, {"student_id": student.student_id,
                                                                      "status": student.status}, reason)
    except (Refusal, ValidationError) as exc:
        r = exc if isinstance(exc, Refusal) else refusal(
            "removal_reason_required", "ต้องระบุเหตุผลที่ลบนักเรียนออกจากทะเบียน",
            "Give the reason for removing the student from the roster", 422)
        return {"applied": 0, "unchanged": 0, "refused": 1, "cases": [],
                "issues": [_issue(None, "", "", r) | {"status": r.status}]}
    return {"applied": 1, "unchanged": 0, "refused": 0, "issues": [], "cases": []}


def apply_end_of_year(session: Session, batch: RosterBatch, actor: str, at: datetime, _: ClaimLimits) -> dict:
    step = batch.payload["step"]
    entries = [EndOfYearEntry.model_validate(e) for e in batch.payload["records"]]
    students = {s.student_id: s for s in session.exec(
        select(Student).where(Student.school_code == batch.school_code, Student.status == ACTIVE))}
    records = {r.student_pk: r for r in session.exec(
        select(EndOfYearRecord).where(EndOfYearRecord.round_id == batch.round_id,
                                      EndOfYearRecord.student_pk.in_([s.id for s in students.values()])))}
    issues, applied, unchanged = [], 0, 0
    for index, entry in enumerate(entries):
        try:
            sid = normalise_student_id(entry.student)
            student = students.get(sid)
            if student is None:
                raise refusal("student_not_on_roster", "ไม่พบนักเรียนคนนี้ในทะเบียนของโรงเรียน",
                              "This student is not on the school's roster", 422)
            record = records.get(student.id)
            check_entry(step, entry, student.grade, record.result if record else None)
        except Refusal as r:
            issues.append(_issue(index + 1, "student", entry.student, r))
            continue
        before = record.model_dump(include={"result", "years_studied", "reasons", "destination"}) if record else None
        if record is None:
            record = EndOfYearRecord(round_id=batch.round_id, student_pk=student.id, updated_by=actor)
            records[student.id] = record
        if step == "3.2.2":
            if record.result != entry.result.value:
                record.reasons, record.destination = None, None  # they belonged to the old result
            record.result = entry.result.value
            if entry.years_studied is not None:
                record.years_studied = entry.years_studied
        elif step == "3.2.2.1":
            record.reasons = sorted(r.value for r in entry.reasons)
        else:
            record.destination = entry.destination.value
        if entry.note is not None:
            record.note = entry.note
        after = record.model_dump(include={"result", "years_studied", "reasons", "destination"})
        if before == after:
            unchanged += 1
            continue
        record.updated_by, record.updated_at = actor, at
        session.add(record)
        session.add(AuditEvent(key=f"{batch.id}/{index}", at=at, actor=actor, action=f"end_of_year_{step}",
                               round_id=batch.round_id, school_code=batch.school_code,
                               before=before, after={"student": sid, **after}))
        applied += 1
    return {"applied": applied, "unchanged": unchanged, "refused": len(issues), "issues": issues}


def apply_batch(session: Session, batch_id: str, actor: str, at: datetime,
                limits: ClaimLimits = ClaimLimits()) -> RosterBatch:
    batch = session.get(RosterBatch, batch_id)
    if batch is None:
        raise refusal("batch_missing", "ไม่พบชุดข้อมูลที่ส่งมา", "The staged batch does not exist", 404)
    if batch.status == "applied":
        return batch  # a retried activity: already done
    apply = {"import": apply_import, "end_of_year": apply_end_of_year, "student": apply_student_op,
             "removal": apply_removal}[batch.kind]
    batch.report = apply(session, batch, actor, at, limits)
    batch.status, batch.applied_at = "applied", at
    batch.payload = {"step": batch.payload.get("step")} if batch.kind == "end_of_year" else {}  # no PII kept
    session.add(batch)
    return batch
