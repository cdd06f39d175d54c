"""Applying a staged roster batch (an import or end-of-year records) to the database, idempotently.

Runs inside one transaction: either the whole batch is applied and marked applied, or nothing is.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session, select

from db.models import AuditEvent, EndOfYearRecord, RosterBatch, Student, utcnow
from domain.end_of_year import EndOfYearEntry, check_entry
from domain.ids import normalise_student_id
from domain.refusals import Refusal, refusal

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


def apply_import(session: Session, batch: RosterBatch, actor: str, at: datetime) -> dict:
    rows = batch.payload["rows"]
    existing = {s.student_id: s for s in session.exec(
        select(Student).where(Student.school_code == batch.school_code))}
    ids = [r["student_id"] for r in rows if r["student_id"] not in existing]
    elsewhere: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        elsewhere.update(session.exec(select(Student.student_id).where(
            Student.student_id.in_(chunk), Student.school_code != batch.school_code, Student.status == ACTIVE)))
    issues, audits, applied, unchanged = [], [], 0, 0
    for r in rows:
        values = {f: r.get(f) for f in STUDENT_FIELDS}
        if values["birth_date"]:
            values["birth_date"] = date.fromisoformat(values["birth_date"])
        current = existing.get(r["student_id"])
        if current is None:
            if r["student_id"] in elsewhere:
                issues.append(_issue(r["row"], "เลขประจำตัวประชาชน", r["student_id"], refusal(
                    "active_elsewhere", "นักเรียนคนนี้มีสถานะกำลังศึกษาอยู่ที่โรงเรียนอื่น (ซ้ำซ้อน ข้อ 3)",
                    "This student is active at another school (duplicate, R3)")))
                continue
            student = Student(school_code=batch.school_code, student_id=r["student_id"], **values)
            session.add(student)
            audits.append((None, _student_view(student), r["student_id"]))
            applied += 1
            continue
        before = _student_view(current)
        changed = {k: v for k, v in values.items() if getattr(current, k) != v}
        if not changed and current.status == ACTIVE:
            unchanged += 1
            continue
        for k, v in changed.items():
            setattr(current, k, v)
        current.status = ACTIVE
        current.updated_at = utcnow()
        session.add(current)
        audits.append((before, _student_view(current), r["student_id"]))
        applied += 1
    for n, (before, after, _sid) in enumerate(audits):
        session.add(AuditEvent(key=f"{batch.id}/{n}", at=at, actor=actor, action="import_student",
                               round_id=batch.round_id, school_code=batch.school_code, before=before, after=after))
    return {"applied": applied, "unchanged": unchanged, "refused": len(issues), "issues": issues}


def apply_end_of_year(session: Session, batch: RosterBatch, actor: str, at: datetime) -> dict:
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


def apply_batch(session: Session, batch_id: str, actor: str, at: datetime) -> RosterBatch:
    batch = session.get(RosterBatch, batch_id)
    if batch is None:
        raise refusal("batch_missing", "ไม่พบชุดข้อมูลที่ส่งมา", "The staged batch does not exist", 404)
    if batch.status == "applied":
        return batch  # a retried activity: already done
    apply = apply_import if batch.kind == "import" else apply_end_of_year
    batch.report = apply(session, batch, actor, at)
    batch.status, batch.applied_at = "applied", at
    batch.payload = {"step": batch.payload.get("step")} if batch.kind == "end_of_year" else {}
    session.add(batch)
    return batch
