"""A roster import costs a fixed number of statements per school, however many rows (issue 18), and its
bulk writes store exactly what an INSERT through SQLAlchemy stores. On SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from sqlalchemy import event, insert, text
from sqlmodel import Session, select

from bench.roster_export import rows as export_rows
from db.bulk import insert_rows, select_in
from db.directory import create_round, upsert_school
from db.engine import session_scope
from db.models import AuditEvent, RosterBatch, Student
from db.roster_changes import apply_batch, import_payload
from domain.roster_file import parse_roster
from domain.thai_time import bangkok
from tests.test_database import AREA, ROUND, round_spec

SCHOOLS = ("1044449001", "1044449002")


def seed(engine) -> None:
    with session_scope(engine) as s:
        for code in SCHOOLS:
            upsert_school(s, code, f"โรงเรียน {code[-3:]}", AREA, [])
        create_round(s, round_spec())


def staged(engine, batch_id: str, school: str, n: int, offset: int) -> None:
    """`n` rows of a generated export, as the API stages them for `school`."""
    table = export_rows(n + offset, 1)
    lines = "\r\n".join(",".join(cells) for cells in [table[0], *table[1 + offset:]])
    parsed = parse_roster(lines.encode(), "area.csv")
    for row in parsed.rows:
        row.school_code = school
    with session_scope(engine) as s:
        s.add(RosterBatch(id=batch_id, round_id=ROUND, school_code=school, kind="import", created_by="u-1",
                          payload=import_payload(parsed.rows)))


def applied(engine, batch_id: str, at: datetime) -> tuple[dict, int]:
    """The batch's report, and how many statements applying it sent."""
    sent = []

    def count(*_args) -> None:
        sent.append(1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with session_scope(engine) as s:
            report = apply_batch(s, batch_id, "u-1", at).report
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return report, len(sent)


def test_an_import_sends_as_many_statements_for_400_rows_as_for_40(backend_engine):
    seed(backend_engine)
    at = bangkok(2024, 4, 2, 9, 0)
    staged(backend_engine, "b-small", SCHOOLS[0], 40, 0)
    staged(backend_engine, "b-large", SCHOOLS[1], 400, 40)
    small, small_sent = applied(backend_engine, "b-small", at)
    large, large_sent = applied(backend_engine, "b-large", at)
    assert (small["applied"], large["applied"]) == (40, 400)
    assert small_sent == large_sent

    staged(backend_engine, "b-again", SCHOOLS[1], 400, 40)  # the same rows again: nothing to write
    again, again_sent = applied(backend_engine, "b-again", at + timedelta(hours=1))
    assert (again["applied"], again["unchanged"], again["refused"]) == (0, 400, 0)
    assert again_sent <= large_sent
    with Session(backend_engine) as s:
        assert len(s.exec(select(AuditEvent.id).where(AuditEvent.school_code == SCHOOLS[1])).all()) == 400
        student = s.exec(select(Student).where(Student.school_code == SCHOOLS[1])).first()
        assert student.updated_at == at  # unchanged rows are not written again


def test_bulk_rows_read_back_as_an_insert_stores_them(backend_engine):
    seed(backend_engine)
    at = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=7)))
    audits = [{"key": "k/0", "at": at, "actor": "u", "action": "import_student", "round_id": ROUND,
               "school_code": SCHOOLS[0], "before": None, "after": {"ชื่อ": "สม\tชาย\\n\"", "none": None}},
              {"key": "k/1", "at": at, "actor": "u", "action": "import_student", "round_id": None,
               "school_code": SCHOOLS[0], "before": {"a": [1, 2]}, "after": None}]
    student = {"school_code": SCHOOLS[0], "student_id": "1", "student_no": "", "prefix": "", "first_name": "ก\\ข",
               "last_name": "x", "gender": "", "grade": "ม.1", "classroom": "", "birth_date": date(2010, 2, 3),
               "sat_final_exam": True, "status": "studying", "updated_at": at}
    students = [student, student | {"student_id": "2", "birth_date": None, "sat_final_exam": False}]
    with session_scope(backend_engine) as s:
        insert_rows(s, (AuditEvent.__table__, audits))
        s.execute(insert(AuditEvent), [a | {"key": "i" + a["key"][1:]} for a in audits])
        insert_rows(s, (Student.__table__, students))
        s.execute(insert(Student), [st | {"student_id": "i" + st["student_id"]} for st in students])
    with backend_engine.connect() as c:  # as stored, not as read back through the models
        stored = {r[0]: r[1:] for r in c.execute(text("SELECT key, at, round_id, before, after FROM audit_events"))}
        assert stored["k/0"] == stored["i/0"] and stored["k/1"] == stored["i/1"]
        assert c.execute(text("SELECT count(*) FROM audit_events WHERE before IS NULL")).scalar() == 2  # SQL NULL
        kept = {r[0]: r[1:] for r in c.execute(text(
            "SELECT student_id, first_name, birth_date, sat_final_exam, updated_at, left_on FROM students"))}
        assert kept["1"] == kept["i1"] and kept["2"] == kept["i2"]
    with Session(backend_engine) as s:
        assert s.exec(select(AuditEvent).where(AuditEvent.key == "k/0")).one().at == at


def test_select_in_finds_every_value_of_a_long_list(backend_engine):
    seed(backend_engine)
    now = datetime.now(timezone.utc)
    with session_scope(backend_engine) as s:
        insert_rows(s, (Student.__table__, [
            {"school_code": SCHOOLS[0], "student_id": f"{n:013d}", "student_no": "", "prefix": "", "first_name": "ก",
             "last_name": "ข", "gender": "", "grade": "ม.1", "classroom": "", "sat_final_exam": True,
             "status": "studying", "updated_at": now} for n in range(1200)]))
    with Session(backend_engine) as s:
        wanted = [f"{n:013d}" for n in range(0, 2400, 2)]  # half of them exist
        found = select_in(s, select(Student.student_id), Student.student_id, wanted)
        assert sorted(found) == [f"{n:013d}" for n in range(0, 1200, 2)]
        assert select_in(s, select(Student.student_id), Student.student_id, []) == []
