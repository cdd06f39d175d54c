"""Past the parser: every message that passes the door (its From domain authenticated, its address
registered) is decided against the registry and the roster and gets exactly one reply; every other one is
kept as refused, decided no further and never answered (id-correction-email.md; issue 15, findings 5-6).

The intake's door and its activity are called directly on a real database (SQLite and PostgreSQL, which refuses what
SQLite lets pass: NUL characters, text longer than its column): the decision and the reply are
its work; Temporal only calls it, and the end-to-end path is tested in tests/intake/test_intake_flow.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from activities.intake import IntakeActivities
from db.directory import create_round, upsert_school
from db.engine import make_engine, session_scope
from db.models import IdCorrection, InboundMessage, OutboxMail, SchoolRound, Student
from dmcflow.settings import Settings
from domain.rounds import RoundSpec
from tests.api_world import world_database
from tests.db_backends import BACKENDS
from tests.hypothesis_profiles import examples
from intake.pipeline import Intake
from tests.intake.messages import SCHOOL, SENDER, block, build, dkim_dns, letter, nid, sign
from tests.properties.email_strategies import VALID_IDS, any_mail, id_values

MAX_BYTES = 6000  # small, so that some generated messages are over it
NOW = datetime(2024, 4, 18, 2, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module", params=BACKENDS)
def intake(request, migrated_template, tmp_path_factory):
    with world_database(request.param, migrated_template, tmp_path_factory) as url:
        yield from _intake(url)


def _intake(url: str):
    engine = make_engine(url)
    with session_scope(engine) as s:
        upsert_school(s, SCHOOL, "โรงเรียนตัวอย่างวิทยา", "สพม.มหาสารคาม", [SENDER])
        s.flush()
        spec = RoundSpec(id="p-1", academic_year=2566, opens_at=NOW - timedelta(days=30),
                         confirm_from=NOW + timedelta(days=10), cutoff_at=NOW + timedelta(days=10, hours=8))
        create_round(s, spec)
        s.flush()
        s.add(SchoolRound(round_id="p-1", school_code=SCHOOL, area="สพม.มหาสารคาม", stage="open",
                          opens_at=spec.opens_at, confirm_from=spec.confirm_from, cutoff_at=spec.cutoff_at))
        s.add(Student(school_code=SCHOOL, student_id=VALID_IDS[0], first_name="ทดสอบ", last_name="ระบบ", grade="ม.1"))
    settings = Settings(database_url=str(engine.url), intake_max_bytes=MAX_BYTES, intake_rate_per_sender=10**6)
    yield Intake(engine, None, settings, dnsfunc=dkim_dns), IntakeActivities(engine, settings)
    engine.dispose()


# Messages that get past the parser: the registered sender (or not), blocks whose old ID is on the roster
# (or not). Built in the test body: the stdlib picks MIME boundaries at random, which a strategy must not.
olds = st.one_of(st.just(VALID_IDS[0]), id_values)
news = st.one_of(st.text(alphabet="0123456789", min_size=12, max_size=12).map(nid), id_values)
# Names, reasons and subjects as long as people paste them, or with a NUL a broken client left in.
texts = st.sampled_from(["เด็กชายทดสอบ ใจดี", "x", "ด.ช.\x00ทดสอบ", "ก" * 300, "ขอแก้ไข " * 60])
blocks = st.lists(st.tuples(olds, news, st.one_of(texts, st.just("")), texts), min_size=1, max_size=3)
deep_mail = st.tuples(blocks, st.sampled_from([SENDER, SENDER, "stranger@else.example"]),
                      st.sampled_from(["unique", "unique", "unique", "<p-1@mail.example>", None]), texts)


def build_deep(spec, number: int) -> bytes:
    request_blocks, sender, message_id, subject = spec
    if message_id == "unique":
        message_id = f"<p-{number}@mail.example>"
    return build(letter(*(block(old=o, new=n, name=name, reason=reason) for o, n, name, reason in request_blocks)),
                 sender=sender, message_id=message_id, subject=subject)


_count = iter(range(10**9))


def signed(raw: bytes) -> bytes:
    """Any mail, signed by its From domain as far as it has one (DKIM signs bytes, however broken)."""
    try:
        return sign(raw)
    except Exception:  # noqa: BLE001  headers dkimpy cannot even sign: the door refuses them unsigned
        return raw


@settings(max_examples=examples(120))
@given(mail=st.one_of(deep_mail, any_mail), late=st.integers(0, 9), seconds=st.integers(0, 10**6))
def test_every_stored_message_is_decided_and_replied_to_once(intake, mail, late, seconds):
    door, intake = intake
    raw = signed(mail) if isinstance(mail, bytes) else build_deep(mail, next(_count))
    received = NOW + timedelta(seconds=seconds, days=30 if late == 0 else 0)  # some after the cutoff
    sha, admitted = door.admit(raw, "smtp", received)
    if not admitted:  # unauthenticated or unregistered: kept as refused, nothing decided, nobody answered
        with session_scope(intake.engine) as s:
            row = s.get(InboundMessage, sha)
            event(f"refused at the door: {row.outcome}")
            assert row.status == "refused" and row.outcome.startswith("refused:")
            assert not s.exec(select(OutboxMail).where(OutboxMail.key == f"reply/{sha}")).all()
            assert not s.exec(select(IdCorrection).where(IdCorrection.message_sha == sha)).all()
        return
    first = intake.process_inbound(sha)
    assert intake.process_inbound(sha) == first  # a retried activity answers the same and adds nothing
    with session_scope(intake.engine) as s:
        row = s.get(InboundMessage, sha)
        replies = s.exec(select(OutboxMail).where(OutboxMail.key == f"reply/{sha}")).all()
        corrections = s.exec(select(IdCorrection).where(IdCorrection.message_sha == sha)).all()
        event(f"outcome: {first.outcome}")
        assert row.status in ("processed", "duplicate") and row.auth_domain == SENDER.split("@")[1]
        if row.status == "duplicate":  # the same Message-ID seen before: no second request, no second reply
            assert first.outcome == "duplicate" and not replies and not corrections
            return
        assert first.outcome in ("accepted", "partly_accepted") or first.outcome.startswith("refused:")
        assert len(replies) == 1 and first.reply_key == f"reply/{sha}"  # to the authenticated school
        for reply in replies:
            assert reply.recipients == [SENDER] and reply.subject and any("\u0e00" <= c <= "\u0e7f" for c in
                                                                          reply.body_text)
            for correction in corrections:  # every request is named by its reference in the reply
                assert correction.id in reply.body_text
        assert {c.id for c in corrections if c.status == "pending"} == {r.ref for r in first.requests}
        if first.outcome.startswith("refused:") and first.outcome != "refused:requests":
            assert not corrections  # a message refused as a whole opens nothing
