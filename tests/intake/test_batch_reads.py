"""A batch of stored messages is decided with the registry and the roster read once for the whole batch
(issue 18: read one query per message and per lookup, they were most of a message's time on PostgreSQL,
where each query is a round trip), and every message still gets the outcome and the reply it would alone."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event
from sqlmodel import select

from activities.intake import IntakeActivities
from db.directory import create_round, upsert_school
from db.engine import make_engine, session_scope
from db.models import IdCorrection, InboundMessage, OutboxMail, SchoolRound, Student
from dmcflow.settings import Settings
from domain.rounds import RoundSpec
from intake.pipeline import Intake
from tests.api_world import world_database
from tests.db_backends import BACKENDS
from tests.intake.messages import SCHOOL, SENDER, block, build, dkim_dns, letter, nid

OTHER_SCHOOL = "1044449002"
NOW = datetime(2024, 4, 18, 2, 0, tzinfo=timezone.utc)
TAKEN = nid("244990999999")  # another student's ID already
ELSEWHERE = nid("144990999998")  # a student of the other school


def old(n: int) -> str:
    return nid(f"1449900{n:05d}")


@pytest.fixture(params=BACKENDS)
def world(request, migrated_template, tmp_path_factory):
    with world_database(request.param, migrated_template, tmp_path_factory) as url:
        engine = make_engine(url)
        with session_scope(engine) as s:
            upsert_school(s, SCHOOL, "โรงเรียนตัวอย่างวิทยา", "สพม.มหาสารคาม", [SENDER])
            upsert_school(s, OTHER_SCHOOL, "โรงเรียนอื่น", "สพม.มหาสารคาม", ["other@else.example"])
            s.flush()
            spec = RoundSpec(id="b-1", academic_year=2566, opens_at=NOW - timedelta(days=30),
                             confirm_from=NOW + timedelta(days=10), cutoff_at=NOW + timedelta(days=10, hours=8))
            create_round(s, spec)
            s.flush()
            s.add(SchoolRound(round_id="b-1", school_code=SCHOOL, area="สพม.มหาสารคาม", stage="open",
                              opens_at=spec.opens_at, confirm_from=spec.confirm_from, cutoff_at=spec.cutoff_at))
            s.add_all([Student(school_code=SCHOOL, student_id=old(n), first_name=f"นักเรียน{n}", last_name="ทดสอบ",
                               grade="ม.1") for n in range(40)])
            s.add(Student(school_code=SCHOOL, student_id=TAKEN, first_name="มีเลข", last_name="แล้ว", grade="ม.1"))
            s.add(Student(school_code=OTHER_SCHOOL, student_id=ELSEWHERE, first_name="ต่าง", last_name="โรงเรียน",
                          grade="ม.1"))
        settings = Settings(database_url=url, intake_rate_per_sender=10**6)
        yield engine, Intake(engine, None, settings, dnsfunc=dkim_dns), IntakeActivities(engine, settings)
        engine.dispose()


def stored(door: Intake, raws: list[bytes]) -> list[str]:
    shas = []
    for n, raw in enumerate(raws):
        sha, admitted = door.admit(raw, "smtp", NOW + timedelta(seconds=n))
        assert admitted
        shas.append(sha)
    return shas


def request_mail(n: int, *, old_id: str | None = None, new_id: str | None = None, message_id: str | None = None,
                 subject: str = "ขอแก้ไขเลขประจำตัวประชาชนนักเรียน") -> bytes:
    return build(letter(block(old=old_id or old(n), new=new_id or nid(f"2449900{n:05d}"))),
                 message_id=message_id or f"<b-{n}@mail.example>", subject=subject)


def test_a_batch_decides_each_message_as_it_would_alone(world):
    engine, door, intake = world
    shas = stored(door, [
        request_mail(0), request_mail(1, new_id=TAKEN), request_mail(2, old_id=ELSEWHERE),
        request_mail(3, old_id=nid("144990888888")),  # on no roster
        request_mail(4, message_id="<same@mail.example>"),  # the first of two deliveries of one Message-ID
        request_mail(4, message_id="<same@mail.example>", subject="Fwd: again"),
        request_mail(5, new_id=nid("244990777777")), request_mail(6, new_id=nid("244990777777")),  # the same new ID
    ])
    result = intake.process_inbound_batch(shas)
    assert not result.failed and set(result.replies) == set(shas) - {shas[5]}
    with session_scope(engine) as s:
        status = dict(s.exec(select(InboundMessage.sha256, InboundMessage.outcome)).all())
        refused = {c.message_sha: c.refusal_code for c in s.exec(select(IdCorrection))}
        replies = {m.key.removeprefix("reply/"): m for m in s.exec(select(OutboxMail))}
    assert [status[sha] for sha in shas] == ["accepted", "refused:requests", "refused:requests", "refused:requests",
                                             "accepted", "duplicate", "accepted", "accepted"]
    assert [refused.get(sha) for sha in shas] == [None, "new_id_taken", "other_school_student", "not_on_roster",
                                                  None, None, None, None]
    assert set(replies) == set(shas) - {shas[5]} and all(r.recipients == [SENDER] for r in replies.values())
    assert "นักเรียน0 ทดสอบ" in replies[shas[0]].body_text  # the roster's name, read with the batch
    # decided again (a retried activity), one message at a time: the same outcomes, nothing added
    again = [intake.process_inbound(sha) for sha in shas]
    assert [o.outcome for o in again] == [status[sha] for sha in shas]
    with session_scope(engine) as s:
        assert len(s.exec(select(OutboxMail)).all()) == len(replies)


def test_the_registry_and_the_roster_are_read_once_a_batch(world):
    engine, door, intake = world
    statements = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    counts = []
    for first, size in ((0, 10), (10, 20)):
        shas = stored(door, [request_mail(n) for n in range(first, first + size)])
        statements.clear()
        result = intake.process_inbound_batch(shas)
        assert not result.failed and len(result.replies) == size
        counts.append(len(statements))
    # each message's own writes (its request, its reply, its row) and no lookup of its own: 14 a message before
    per_message = (counts[1] - counts[0]) / 10
    assert per_message <= 4.5, (counts, per_message)
