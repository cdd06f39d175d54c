"""The database layer on SQLite and on PostgreSQL: migrations, instants, directory, gate, roster, projection.

Every test runs twice, as [sqlite] and [postgresql] (see tests/db_backends.py).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, func, text
from sqlalchemy.exc import StatementError
from sqlmodel import Session, SQLModel, select

from db.directory import create_round, create_user, hash_token, upsert_school, user_by_token
from db.engine import session_scope
from db.gate import gate_progress
from db.migrate import alembic_config
from db.models import (AuditEvent, DuplicateCase, EndOfYearRecord, Round, RosterBatch, School, SchoolEmail, SchoolRound,
                       Student, User)
from db.duplicates import record_declarations
from db.projection import write_transition
from db.roster_changes import apply_batch
from domain.messages import AuditEntry, Transition
from domain.rounds import RoundSpec
from domain.school_round import Decision, SchoolRoundState, Stage
from domain.thai_time import BANGKOK, bangkok


AREA = "สพม.มหาสารคาม"
OTHER_AREA = "สพป.ขอนแก่น เขต 1"
SCHOOL = "1044449001"
OTHER_SCHOOL = "1040000009"
ROUND = "2566-3"
UTC = timezone.utc


def round_spec(round_id: str = ROUND) -> RoundSpec:
    return RoundSpec(id=round_id, academic_year=2566, opens_at=bangkok(2024, 3, 1, 0, 0),
                     confirm_from=bangkok(2024, 4, 30, 8, 30), cutoff_at=bangkok(2024, 4, 30, 16, 30))


def seed(engine, *round_ids: str) -> None:
    with session_scope(engine) as s:
        upsert_school(s, SCHOOL, "โรงเรียนตัวอย่างวิทยา", AREA, ["dmc@tuayang.ac.th"])
        upsert_school(s, OTHER_SCHOOL, "โรงเรียนอื่น", OTHER_AREA, ["other@school.example"])
        for rid in round_ids or (ROUND,):
            create_round(s, round_spec(rid))


def count(engine, model, *where) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


# --- migrations ------------------------------------------------------------------------------------

def test_migrations_reach_head_and_match_the_models(backend_engine, backend_url):
    head = ScriptDirectory.from_config(alembic_config(backend_url)).get_current_head()
    with backend_engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        assert ctx.get_current_revision() == head
        diff = compare_metadata(ctx, SQLModel.metadata)
    assert diff == [], f"models and migrations differ (write a migration): {diff}"


# --- instants --------------------------------------------------------------------------------------

def test_aware_instants_round_trip_as_utc(backend_engine):
    spec = round_spec()
    with session_scope(backend_engine) as s:
        create_round(s, spec)

    with Session(backend_engine) as s:
        if backend_engine.dialect.name == "postgresql":  # the session's zone must not leak into values
            s.connection().exec_driver_sql("SET TIME ZONE 'Asia/Bangkok'")
        row = s.get(Round, ROUND)
        for name in ("opens_at", "confirm_from", "cutoff_at", "created_at"):
            value = getattr(row, name)
            assert value.tzinfo is not None and value.utcoffset() == timedelta(0), (name, value)
        assert row.opens_at == spec.opens_at == datetime(2024, 2, 29, 17, 0, tzinfo=UTC)
        assert row.confirm_from == spec.confirm_from == datetime(2024, 4, 30, 1, 30, tzinfo=UTC)
        assert row.cutoff_at == spec.cutoff_at == datetime(2024, 4, 30, 9, 30, tzinfo=UTC)
        assert row.cutoff_at.astimezone(BANGKOK).hour == 16
        assert row.started_at is None

    # and what is stored is the UTC instant, not Bangkok wall-clock time
    with backend_engine.connect() as conn:
        if backend_engine.dialect.name == "postgresql":
            raw = conn.execute(text("SELECT cutoff_at AT TIME ZONE 'UTC' FROM rounds")).scalar_one()
        else:
            raw = conn.execute(text("SELECT cutoff_at FROM rounds")).scalar_one()
    raw = datetime.fromisoformat(raw) if isinstance(raw, str) else raw
    assert raw.replace(tzinfo=None) == datetime(2024, 4, 30, 9, 30)


def test_naive_datetime_is_refused(backend_engine):
    seed(backend_engine)
    naive = datetime(2024, 4, 30, 16, 30)
    with pytest.raises(StatementError) as caught:
        with session_scope(backend_engine) as s:
            s.add(Round(id="naive", academic_year=2566, opens_at=naive - timedelta(days=60),
                        confirm_from=naive - timedelta(hours=8), cutoff_at=naive))
    assert isinstance(caught.value.orig, ValueError)
    assert "naive datetime refused" in str(caught.value)
    assert count(backend_engine, Round, Round.id == "naive") == 0


# --- directory -------------------------------------------------------------------------------------

def emails_of(engine, code: str) -> list[str]:
    with Session(engine) as s:
        return sorted(e.email for e in s.exec(select(SchoolEmail).where(SchoolEmail.school_code == code)))


def test_upsert_school_replaces_emails_idempotently(backend_engine):
    with session_scope(backend_engine) as s:
        upsert_school(s, SCHOOL, "โรงเรียนตัวอย่าง", AREA, ["DMC@tuayang.ac.th ", "head@tuayang.ac.th", "dmc@tuayang.ac.th"])
    assert emails_of(backend_engine, SCHOOL) == ["dmc@tuayang.ac.th", "head@tuayang.ac.th"]

    for _ in range(2):  # the same upsert again changes nothing
        with session_scope(backend_engine) as s:
            upsert_school(s, SCHOOL, "โรงเรียนตัวอย่างวิทยา", AREA, ["head@tuayang.ac.th", "dmc@tuayang.ac.th"])
        assert emails_of(backend_engine, SCHOOL) == ["dmc@tuayang.ac.th", "head@tuayang.ac.th"]
        assert count(backend_engine, SchoolEmail) == 2

    with session_scope(backend_engine) as s:  # a new list replaces the old one, twice in one transaction too
        upsert_school(s, SCHOOL, "โรงเรียนตัวอย่างวิทยา", OTHER_AREA, ["new@tuayang.ac.th"])
        upsert_school(s, SCHOOL, "โรงเรียนตัวอย่างวิทยา", OTHER_AREA, ["new@tuayang.ac.th"])
    assert emails_of(backend_engine, SCHOOL) == ["new@tuayang.ac.th"]
    with Session(backend_engine) as s:
        school = s.get(School, SCHOOL)
        assert (school.name, school.area) == ("โรงเรียนตัวอย่างวิทยา", OTHER_AREA)
        assert school.updated_at.tzinfo is not None
    assert count(backend_engine, School) == 1


def test_create_user_stores_only_the_token_hash(backend_engine):
    seed(backend_engine)
    token = "s3cret-token-for-the-test"
    with session_scope(backend_engine) as s:
        user, answered = create_user(s, role="staff", display_name="ครูธุรการ", school_code=SCHOOL, token=token)
        user_id = user.id
    assert answered == token

    with backend_engine.connect() as conn:
        stored = conn.execute(User.__table__.select().where(User.__table__.c.id == user_id)).one()
    assert stored.token_hash == hash_token(token) and stored.token_hash != token
    assert all(token not in str(v) for v in stored), "the token itself must not be stored"
    assert stored.area == AREA  # a school user belongs to the school's area

    with session_scope(backend_engine) as s:
        assert user_by_token(s, token).id == user_id
        assert user_by_token(s, token + "x") is None
        _, generated = create_user(s, role="admin", display_name="ผู้ดูแลระบบ")
        assert generated and user_by_token(s, generated).role == "admin"
        s.get(User, user_id).active = False
    with session_scope(backend_engine) as s:
        assert user_by_token(s, token) is None  # a deactivated user's token no longer works


# --- R10 gate --------------------------------------------------------------------------------------

def add_student(s: Session, school: str, sid: str, grade: str, status: str = "studying") -> int:
    student = Student(school_code=school, student_id=sid, first_name="ชื่อ", last_name="นามสกุล",
                      grade=grade, status=status)
    s.add(student)
    s.flush()
    return student.id


NO_MARKS = {"present": 0, "exceptions": 0, "exception_kinds": {}, "excused_cases": []}  # R11: none marked here


def test_gate_progress_counts_results_repeaters_and_graduates(backend_engine):
    seed(backend_engine, ROUND, "2565-3")
    at = bangkok(2024, 4, 1, 10, 0)
    with session_scope(backend_engine) as s:
        pk = {n: add_student(s, SCHOOL, f"14499000000{n:02d}", grade)
              for n, grade in enumerate(["ม.1", "ม.2", "ม.1", "ม.3", "ม.6", "ม.2"], start=1)}
        moved = add_student(s, SCHOOL, "1449900000099", "ม.3", status="moved")
        elsewhere = add_student(s, OTHER_SCHOOL, "1449900000098", "ม.3")

        def record(student_pk: int, result: str, round_id: str = ROUND, **kw) -> None:
            s.add(EndOfYearRecord(round_id=round_id, student_pk=student_pk, result=result, updated_by="u-1",
                                  updated_at=at, **kw))

        record(pk[1], "promoted")
        record(pk[2], "repeat", reasons=["attendance"])
        record(pk[3], "repeat")  # 3.2.2.1 not recorded yet
        record(pk[4], "graduated", destination="other_school")
        record(pk[5], "graduated")  # 3.2.2.2 not recorded yet
        # pk[6]: no 3.2.2 result this round, only one in another round
        record(pk[6], "promoted", round_id="2565-3")
        record(moved, "graduated", destination="vocational")  # no longer on the roster: not counted
        record(elsewhere, "repeat", reasons=["health"])  # another school: not counted

    with Session(backend_engine) as s:
        gate = gate_progress(s, ROUND, SCHOOL)
        assert gate.model_dump() == {"students": 6, "results": 5, "repeaters": 2, "repeat_reasons": 1,
                                     "graduates": 2, "destinations": 1, **NO_MARKS}
        assert not gate.step_322_done and not gate.complete
        assert gate_progress(s, "2565-3", SCHOOL).results == 1
        assert gate_progress(s, ROUND, OTHER_SCHOOL).model_dump() == {
            "students": 1, "results": 1, "repeaters": 1, "repeat_reasons": 1, "graduates": 0, "destinations": 0,
            **NO_MARKS}
        empty = gate_progress(s, "no-such-round", "0000000000")
        assert empty.students == 0 and empty.results == 0 and not empty.complete


# --- roster batches ---------------------------------------------------------------------------------

def roster_row(row: int, sid: str, first: str, grade: str = "ม.1") -> dict:
    return {"row": row, "student_id": sid, "student_no": str(10000 + row), "prefix": "เด็กชาย",
            "first_name": first, "last_name": "ทดสอบ", "gender": "ช", "grade": grade, "classroom": "1",
            "birth_date": "2012-02-02", "sat_final_exam": True}


def test_apply_batch_applies_once_and_refuses_students_active_elsewhere(backend_engine):
    seed(backend_engine)
    at = bangkok(2024, 4, 2, 9, 0)
    with session_scope(backend_engine) as s:
        add_student(s, OTHER_SCHOOL, "1449900000026", "ม.3")  # active at the other school
        s.add(RosterBatch(id="b-1", round_id=ROUND, school_code=SCHOOL, kind="import", created_by="u-1",
                          payload={"rows": [roster_row(2, "1449900000018", "ปวีณา"),
                                            roster_row(3, "1449900000026", "ศุภชัย", "ม.3")]}))

    with session_scope(backend_engine) as s:
        batch = apply_batch(s, "b-1", "u-1", at)
    assert (batch.report["applied"], batch.report["unchanged"], batch.report["refused"]) == (1, 0, 1)
    [issue] = batch.report["issues"]
    assert (issue["code"], issue["row"], issue["value"]) == ("active_elsewhere", 3, "1449900000026")

    def snapshot() -> tuple:
        with Session(backend_engine) as s:
            students = sorted((st.school_code, st.student_id, st.first_name, st.status)
                              for st in s.exec(select(Student)))
            audits = sorted(a.key for a in s.exec(select(AuditEvent)))
            b = s.get(RosterBatch, "b-1")
            return students, audits, b.status, b.report, b.payload, b.applied_at

    first = snapshot()
    assert first[0] == [(OTHER_SCHOOL, "1449900000026", "ชื่อ", "studying"),  # still only at the other school
                        (SCHOOL, "1449900000018", "ปวีณา", "studying")]
    assert first[1][0] == "b-1/0" and first[1][1].endswith("/claim") and len(first[1]) == 2  # the claim is audited
    assert first[2] == "applied" and first[4] == {}  # the staged personal data is dropped once applied
    assert first[5] == at

    with session_scope(backend_engine) as s:  # the same batch again (a retried activity): nothing changes
        again = apply_batch(s, "b-1", "u-2", at + timedelta(minutes=5))
        assert again.report == batch.report
    assert snapshot() == first

    # a new batch with the same content: the student is already there, unchanged
    with session_scope(backend_engine) as s:
        s.add(RosterBatch(id="b-2", round_id=ROUND, school_code=SCHOOL, kind="import", created_by="u-1",
                          payload={"rows": [roster_row(2, "1449900000018", "ปวีณา")]}))
    with session_scope(backend_engine) as s:
        report = apply_batch(s, "b-2", "u-1", at).report
    assert (report["applied"], report["unchanged"], report["refused"]) == (0, 1, 0)
    assert count(backend_engine, Student, Student.school_code == SCHOOL) == 1
    assert count(backend_engine, AuditEvent) == 2  # the first import and its claim


# --- projection ------------------------------------------------------------------------------------

def transition(version: int, stage: Stage, *, confirmed: bool = False, key: str | None = None) -> Transition:
    spec = round_spec()
    decided_at = bangkok(2024, 4, 30, 9, 0)
    state = SchoolRoundState(round_id=ROUND, school_code=SCHOOL, area=AREA, schedule=spec.schedule,
                             confirmed=Decision(by="u-staff", at=decided_at) if confirmed else None)
    audit = AuditEntry(key=key, at=decided_at, actor="u-staff", action=stage.value, round_id=ROUND,
                       school_code=SCHOOL, area=AREA) if key else None
    return Transition(state=state, stage=stage, version=version, audit=audit)


def test_write_transition_keeps_the_newer_version(backend_engine):
    seed(backend_engine)
    with session_scope(backend_engine) as s:
        write_transition(s, transition(1, Stage.open))
    with session_scope(backend_engine) as s:
        write_transition(s, transition(3, Stage.confirmed, confirmed=True, key="confirm/1"))
    with session_scope(backend_engine) as s:  # version 2 arrives late (a retried activity)
        write_transition(s, transition(2, Stage.confirmation_window, key="window/1"))
    with session_scope(backend_engine) as s:  # and the confirmation's activity is retried after commit
        write_transition(s, transition(3, Stage.confirmed, confirmed=True, key="confirm/1"))

    with Session(backend_engine) as s:
        row = s.get(SchoolRound, (ROUND, SCHOOL))
        assert (row.version, row.stage, row.confirmed_by) == (3, "confirmed", "u-staff")
        assert row.confirmed_at == bangkok(2024, 4, 30, 9, 0)
        assert row.cutoff_at == bangkok(2024, 4, 30, 16, 30)
        audits = sorted(a.key for a in s.exec(select(AuditEvent)))
    assert audits == ["confirm/1", "window/1"]  # the late one's audit is kept, each written once
    assert count(backend_engine, SchoolRound) == 1

    with session_scope(backend_engine) as s:  # a newer version still overwrites
        write_transition(s, transition(4, Stage.late))
    with Session(backend_engine) as s:
        row = s.get(SchoolRound, (ROUND, SCHOOL))
        assert (row.version, row.stage, row.confirmed_by) == (4, "late", None)


def race(engine, newer, older, older_reached) -> None:
    """`newer` writes and holds its locks uncommitted while `older` runs in another thread up to the statement
    `older_reached` picks; then `newer` commits and `older` finishes: an older activity retried alongside a newer."""
    reached = threading.Event()

    def note(conn, cursor, statement, *args) -> None:
        if threading.current_thread().name.startswith("older") and older_reached(statement.lstrip().upper()):
            reached.set()

    def run_older() -> None:
        with session_scope(engine) as s:
            older(s)

    event.listen(engine, "before_cursor_execute", note)
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="older") as pool:
            with session_scope(engine) as s:
                newer(s)
                s.flush()
                done = pool.submit(run_older)
                assert reached.wait(30), "the older write never reached its statement"
            done.result(timeout=60)
    finally:
        event.remove(engine, "before_cursor_execute", note)


def test_an_older_projection_racing_a_newer_one_does_not_overwrite_it(backend_engine):
    """An update's projection and the main loop's can be in flight at once (both retried after a database
    outage): the older one, reading while the newer one is uncommitted, must still lose to it."""
    seed(backend_engine)
    with session_scope(backend_engine) as s:
        write_transition(s, transition(3, Stage.confirmation_window))
    race(backend_engine,
         newer=lambda s: write_transition(s, transition(5, Stage.confirmed, confirmed=True, key="confirm/5")),
         older=lambda s: write_transition(s, transition(4, Stage.confirmation_window, key="window/4")),
         older_reached=lambda sql: sql.startswith("UPDATE"))  # it has read, if it reads before it writes

    with Session(backend_engine) as s:
        row = s.get(SchoolRound, (ROUND, SCHOOL))
        assert (row.version, row.stage, row.confirmed_by) == (5, "confirmed", "u-staff")
        assert sorted(a.key for a in s.exec(select(AuditEvent))) == ["confirm/5", "window/4"]


def test_a_duplicate_cases_older_record_racing_a_newer_one_keeps_both_declarations(backend_engine):
    seed(backend_engine)
    with session_scope(backend_engine) as s:
        student = Student(school_code=SCHOOL, student_id="1449900000018", first_name="ชื่อ", last_name="นามสกุล",
                          grade="M3")
        s.add(student)
        s.flush()
        s.add(DuplicateCase(id="dup-1", round_id=ROUND, kind="obec", student_pk=student.id,
                            student_id=student.student_id, holder_school=SCHOOL, claimant_school=OTHER_SCHOOL))
    holder = {"school": SCHOOL, "claim": "absent"}
    claimant = {"school": OTHER_SCHOOL, "claim": "present"}
    race(backend_engine,  # the holder declared first; both schools' records are in flight, the newer commits first
         newer=lambda s: record_declarations(s, "dup-1", {SCHOOL: holder, OTHER_SCHOOL: claimant}, None),
         older=lambda s: record_declarations(s, "dup-1", {SCHOOL: holder}, None),
         older_reached=lambda sql: True)
    with Session(backend_engine) as s:
        assert s.get(DuplicateCase, "dup-1").declarations == {SCHOOL: holder, OTHER_SCHOOL: claimant}


def test_a_moved_deadline_clears_the_escalation_and_an_unmoved_one_keeps_it(backend_engine):
    seed(backend_engine)
    with session_scope(backend_engine) as s:
        write_transition(s, transition(1, Stage.late))
    escalated = bangkok(2024, 4, 30, 16, 35)
    with session_scope(backend_engine) as s:
        s.get(SchoolRound, (ROUND, SCHOOL)).escalated_at = escalated

    def escalated_at():
        with Session(backend_engine) as s:
            return s.get(SchoolRound, (ROUND, SCHOOL)).escalated_at

    with session_scope(backend_engine) as s:  # the same deadline: the district was already told
        write_transition(s, transition(2, Stage.late))
    assert escalated_at() == escalated
    extended = transition(3, Stage.confirmation_window)  # the district extends the school's deadline
    extended.state.schedule = extended.state.schedule.model_copy(
        update={"cutoff_at": bangkok(2024, 5, 2, 16, 30)})
    with session_scope(backend_engine) as s:
        write_transition(s, extended)
    assert escalated_at() is None  # late again after the new deadline, it is escalated again
