"""Issue 15, finding 6: backscatter. Every message with a `From:` got a reply repeating its subject, so the
intake mailed spam, with the spammer's subject, to any forged address; and the whole message (up to 25 MB,
400,000 MIME parts: 26 s and 450 MB to parse) was stored and parsed before any sender check.

Now: unauthenticated or unregistered mail gets no reply at all; a reply (to an authenticated school) never
repeats the subject or any text the sender typed; the MIME structure is capped before anything parses it
(a message over the caps costs milliseconds and is answered with a code); only the configured relays may
speak SMTP to the intake; clients and senders are rate-limited.
"""

from __future__ import annotations

import time
import tracemalloc

import aiosmtplib
import pytest
from sqlmodel import func, select

from db.engine import session_scope
from db.models import InboundMessage
from intake.email_parsing.message import parse_message
from intake.pipeline import Intake
from intake.smtp_listener import start_listener
from tests.conftest import free_port
from tests.intake.env import INTAKE_ADDRESS, body, outcome_of, replies
from tests.intake.messages import block, build, dkim_dns, letter, sign
from tests.timing import eventually

SPAM_SUBJECT = "CHEAP PILLS http://pills.example/buy-now"
TYPED_NAME = "VISIT pills.example TODAY"


def many_parts(mid: str, parts: int = 400_000, filler: int = 50) -> bytes:
    """About 24 MB in 400,000 small parts, From SCHOOL's address: the shape that took 26 s and 450 MB."""
    head = (f"From: dmc@tuayang.ac.th\r\nTo: {INTAKE_ADDRESS}\r\nSubject: x\r\nMessage-ID: <{mid}@mail.example>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n").encode()
    one = b"--b\r\n\r\n" + b"x" * filler + b"\r\n"
    return head + one * parts + b"--b--\r\n"


def deeply_nested(mid: str, depth: int = 5000) -> bytes:
    head = f"From: dmc@tuayang.ac.th\r\nTo: {INTAKE_ADDRESS}\r\nSubject: x\r\nMessage-ID: <{mid}@mail.example>\r\n"
    nest = "".join(f"Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n" for i in range(depth))
    return (head + "MIME-Version: 1.0\r\n" + nest + "\r\nชื่อ-สกุล: x\r\n").encode()


def measured(call):
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = call()
        return result, time.perf_counter() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("make, code", [(many_parts, "too_many_parts"), (deeply_nested, "too_deeply_nested")])
def test_a_message_over_the_mime_caps_is_refused_before_it_is_parsed(make, code):
    raw = make("cap")
    parsed, seconds, peak = measured(lambda: parse_message(raw))
    assert parsed.problem is not None and parsed.problem.code == code
    assert not parsed.requests and not parsed.attachments
    # generous bounds (tracemalloc doubles the time): the full parse took 26 s and 450 MB
    assert seconds < 3 and peak < 64 * 1024 * 1024, (seconds, peak)


async def test_no_reply_to_unauthenticated_mail_and_replies_never_echo_what_the_sender_typed(intake_env, engine, smtp):
    # spam with a forged From (a registered school's), and spam from its own (signed) domain
    await intake_env.send(build(letter(block()), subject=SPAM_SUBJECT, message_id="<forged@mail.example>",
                                signed=False))
    await intake_env.send(build(letter(block()), subject=SPAM_SUBJECT, message_id="<spam@mail.example>",
                                sender="sales@pills.example"))
    # the school itself, with the spammer's subject and a "name" that is an advert
    await intake_env.send(build(letter(block(old="1449900000018", new="1449909000011", name=TYPED_NAME,
                                             reason=TYPED_NAME)),
                                subject=SPAM_SUBJECT, message_id="<school@mail.example>"))
    [reply] = await eventually(lambda: replies(smtp, "<school@mail.example>"))
    assert "pills" not in str(reply["Subject"]).lower() and "pills" not in body(reply).lower()
    assert "รับเรื่องแล้ว" in body(reply)
    assert outcome_of(engine, "<forged@mail.example>") == "refused:no_authentication"
    assert outcome_of(engine, "<spam@mail.example>") == "refused:sender_not_registered"
    assert [m["To"] for m in smtp.messages] == ["dmc@tuayang.ac.th"]  # nothing went to anyone else, ever


async def test_an_authenticated_message_over_the_caps_is_answered_with_its_code(intake_env, engine, smtp):
    raw = sign(many_parts("parts"))
    assert len(raw) > 23_000_000
    await intake_env.send(raw)
    assert await eventually(lambda: outcome_of(engine, "<parts@mail.example>"), timeout=60) == "refused:too_many_parts"
    [reply] = await eventually(lambda: replies(smtp, "<parts@mail.example>"))
    assert "500" in body(reply) and "MIME" in body(reply)


async def test_unauthenticated_mail_is_refused_at_the_door_cheaply(intake_env, engine):
    raw = many_parts("door")  # unsigned: refused on its headers, its parts never looked at
    (sha, admitted), seconds, peak = measured(lambda: intake_env.intake.admit(raw, "smtp", intake_env.cutoff))
    assert not admitted and seconds < 3 and peak < 64 * 1024 * 1024, (seconds, peak)
    with session_scope(engine) as s:
        row = s.get(InboundMessage, sha)
        assert row.status == "refused" and len(row.raw) <= 64 * 1024 and row.size == len(raw)


async def test_only_the_configured_relays_may_send(intake_env, engine, settings):
    settings.intake_relay_addresses = ["192.0.2.25/32"]  # the district's relay; the test connects from loopback
    port = free_port()
    listener = start_listener(intake_env.intake, "127.0.0.1", port, settings.intake_max_bytes)
    try:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await aiosmtplib.send(build(letter(block()), message_id="<stranger@mail.example>"),
                                  sender="dmc@tuayang.ac.th", recipients=[INTAKE_ADDRESS], hostname="127.0.0.1",
                                  port=port)
        assert refused.value.code == 554
    finally:
        listener.stop()
    with session_scope(engine) as s:
        assert s.exec(select(func.count()).select_from(InboundMessage)).one() == 0


async def test_clients_and_senders_are_rate_limited(intake_env, engine, settings):
    stack = intake_env.stack
    settings.intake_rate_per_sender = 2
    settings.intake_rate_per_client = 7
    intake = Intake(engine, stack.client, settings, dnsfunc=dkim_dns)  # fresh counts, the settings above
    port = free_port()
    listener = start_listener(intake, "127.0.0.1", port, settings.intake_max_bytes)

    async def send(raw: bytes) -> int:
        try:
            await aiosmtplib.send(raw, sender="x@y.example", recipients=[INTAKE_ADDRESS], hostname="127.0.0.1",
                                  port=port)
            return 250
        except aiosmtplib.SMTPDataError as exc:
            return exc.code

    try:
        school = [build(letter(block()), message_id=f"<s{n}@mail.example>") for n in range(3)]
        assert [await send(raw) for raw in school] == [250, 250, 451]  # the school: twice, then "later"
        # forged mail past the sender limit is taken and dropped unstored: deferring it would make the relay
        # bounce it to the forged From
        forged = [build(letter(block()), message_id=f"<f{n}@mail.example>", signed=False) for n in range(3)]
        assert [await send(raw) for raw in forged] == [250, 250, 250]
        assert await send(build(letter(block()), message_id="<c@mail.example>", sender="x@other.example")) == 250
        assert await send(build(letter(block()), message_id="<d@mail.example>", sender="x@other.example")) == 451
    finally:
        listener.stop()
    with session_scope(engine) as s:
        stored = {r.message_id: r.status for r in s.exec(select(InboundMessage))}
    # the client's eighth message was deferred; of the forged ones, the third was dropped
    assert set(stored) == {"<s0@mail.example>", "<s1@mail.example>", "<f0@mail.example>", "<f1@mail.example>",
                           "<c@mail.example>"}
