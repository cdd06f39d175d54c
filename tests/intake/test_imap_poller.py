"""The IMAP way in against a real Dovecot (scripts/test.sh starts it and sets DMCFLOW_TEST_IMAP_*).

Each test works in its own freshly created folder of the test user, so tests never see each other's mail.
Without DMCFLOW_TEST_IMAP_HOST the tests skip, except under CI where that is a failure.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import aioimaplib
import pytest

import intake.imap_poller as imap_poller
from intake.imap_poller import KEYWORD, ImapPoller
from tests.intake.conftest import Mailbox  # noqa: F401  (fixtures imap_config, mailbox: conftest)
from tests.intake.messages import build, find_samples

pytestmark = pytest.mark.slow

SAMPLES = find_samples(Path(__file__))


def crlf(raw: bytes) -> bytes:
    # IMAP hands messages out with CRLF line ends (Dovecot converts bare LF), as an MTA delivers them.
    return re.sub(rb"\r?\n", b"\r\n", raw)


def messages(count: int) -> list[bytes]:
    """`count` distinct messages: the shared samples first (exact bytes), then built ones."""
    found = [crlf(p.read_bytes()) for p in sorted(SAMPLES.glob("*.eml"))] if SAMPLES else []
    built = [crlf(build("ขอแก้ไขเลขประจำตัวประชาชน", message_id=f"<imap-{i}-{uuid.uuid4().hex}@mail.example>"))
             for i in range(count)]
    return (found + built)[:count]


class Recorder:
    """A `receive` that remembers what it was handed, and can be told to fail for some messages."""

    def __init__(self, fail: Callable[[bytes], bool] = lambda raw: False):
        self.calls: list[tuple[bytes, str, datetime]] = []
        self.fail = fail

    async def __call__(self, raw: bytes, via: str, received_at: datetime) -> None:
        if self.fail(raw):
            raise RuntimeError(f"store failed for {raw[:200]!r}")  # content in the error: must not be logged
        self.calls.append((raw, via, received_at))

    @property
    def raws(self) -> list[bytes]:
        return [raw for raw, _, _ in self.calls]


async def wait_until(condition: Callable[[], bool], timeout: float = 10) -> float:
    """Seconds until `condition()` held; fails after `timeout`."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, f"not within {timeout} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def stop_promptly(stop: asyncio.Event, task: asyncio.Task) -> float:
    start = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, 5)
    return time.monotonic() - start


# --- poll_once ---------------------------------------------------------------------------------------

async def test_each_message_is_handed_over_once_with_its_exact_bytes(imap_config, mailbox):
    raws = messages(6)
    internal = datetime(2024, 4, 18, 9, 5, 7, tzinfo=timezone.utc)
    for raw in raws:
        await mailbox.append(raw, date=internal)
    receive = Recorder()
    poller = ImapPoller(imap_config, receive)
    try:
        assert await poller.poll_once() == len(raws)
        assert receive.raws == raws  # in UID order, byte for byte (8-bit TIS-620 included)
        assert {via for _, via, _ in receive.calls} == {"imap"}
        assert {at for _, _, at in receive.calls} == {internal}  # from INTERNALDATE, aware UTC
        assert await poller.poll_once() == 0
        assert len(receive.calls) == len(raws)
    finally:
        await poller.close()
    assert len(await mailbox.uids("KEYWORD", KEYWORD, "SEEN")) == len(raws)
    assert await mailbox.uids("UNKEYWORD", KEYWORD) == []
    assert await mailbox.bodies() == raws  # marked, not moved or altered


async def test_a_message_whose_receive_fails_is_retried_alone_and_logged_by_uid_only(imap_config, mailbox, caplog):
    raws = messages(3)
    for raw in raws:
        await mailbox.append(raw)
    failing = [True]
    receive = Recorder(fail=lambda raw: raw == raws[1] and failing[0])
    poller = ImapPoller(imap_config, receive)
    caplog.set_level(logging.WARNING, logger="intake.imap_poller")
    try:
        assert await poller.poll_once() == 2
        assert receive.raws == [raws[0], raws[2]]
        assert await mailbox.uids("UNKEYWORD", KEYWORD) == [2]
        assert await mailbox.uids("UNSEEN") == [2]  # fetched with PEEK: not even \Seen

        assert await poller.poll_once() == 0  # still failing: stays unmarked, nothing re-delivered
        assert receive.raws == [raws[0], raws[2]]

        failing[0] = False
        assert await poller.poll_once() == 1
        assert receive.raws == [raws[0], raws[2], raws[1]]
        assert await poller.poll_once() == 0
    finally:
        await poller.close()
    records = [r.getMessage() for r in caplog.records if r.name == "intake.imap_poller"]
    assert len(records) == 2 and all("UID 2" in r and "RuntimeError" in r for r in records)
    assert "store failed" not in caplog.text and "Subject" not in caplog.text and "From" not in caplog.text


async def test_processed_messages_are_moved_to_the_processed_mailbox(imap_config, mailbox):
    imap_config.processed_mailbox = f"ดำเนินการแล้ว-{uuid.uuid4().hex[:8]}"  # Thai: modified UTF-7 on the wire
    raws = messages(3)
    for raw in raws:
        await mailbox.append(raw)
    receive = Recorder(fail=lambda raw: raw == raws[2])
    poller = ImapPoller(imap_config, receive)  # creates the processed mailbox itself
    try:
        assert await poller.poll_once() == 2
        assert receive.raws == raws[:2]
        assert await mailbox.bodies() == [raws[2]]  # the failed one stays where it was
        assert await mailbox.bodies(mailbox=imap_config.processed_mailbox) == raws[:2]
        assert len(await mailbox.uids("SEEN", "KEYWORD", KEYWORD, mailbox=imap_config.processed_mailbox)) == 2

        receive.fail = lambda raw: False
        assert await poller.poll_once() == 1
        assert await poller.poll_once() == 0
    finally:
        await poller.close()
    assert await mailbox.bodies() == []
    assert await mailbox.bodies(mailbox=imap_config.processed_mailbox) == raws[:2] + [raws[2]]
    assert receive.raws == raws[:2] + [raws[2]]


async def test_without_keyword_support_it_falls_back_to_unseen(imap_config, mailbox, monkeypatch):
    monkeypatch.setattr(imap_poller, "_keywords_allowed", lambda lines: False)  # as if PERMANENTFLAGS lacked \*
    raws = messages(2)
    for raw in raws:
        await mailbox.append(raw)
    receive = Recorder()
    poller = ImapPoller(imap_config, receive)
    try:
        assert await poller.poll_once() == 2
        assert await poller.poll_once() == 0
    finally:
        await poller.close()
    assert receive.raws == raws
    assert await mailbox.uids("UNSEEN") == [] and len(await mailbox.uids("UNKEYWORD", KEYWORD)) == 2


# --- run ---------------------------------------------------------------------------------------------

async def test_run_idles_picks_up_new_mail_at_once_and_stops_promptly(imap_config, mailbox):
    first, second = messages(2)
    await mailbox.append(first)
    receive = Recorder()
    poller = ImapPoller(imap_config, receive)  # poll_seconds and idle_seconds are 60: only IDLE can be this fast
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    try:
        await wait_until(lambda: len(receive.calls) == 1)
        await wait_until(lambda: poller._client is not None and poller._client.has_pending_idle())
        await mailbox.append(second)
        assert await wait_until(lambda: len(receive.calls) == 2) < 10
        assert receive.raws == [first, second]
    finally:
        assert await stop_promptly(stop, task) < 2
    assert task.result() is None
    assert len(await mailbox.uids("KEYWORD", KEYWORD)) == 2


async def test_run_polls_every_poll_seconds_when_the_server_has_no_idle(imap_config, mailbox, monkeypatch):
    real = aioimaplib.IMAP4.has_capability
    monkeypatch.setattr(aioimaplib.IMAP4, "has_capability", lambda self, name: name != "IDLE" and real(self, name))
    imap_config.poll_seconds = 0.3
    receive = Recorder()
    poller = ImapPoller(imap_config, receive)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    try:
        await wait_until(lambda: poller._client is not None)
        await asyncio.sleep(0.5)
        (raw,) = messages(1)
        await mailbox.append(raw)
        assert await wait_until(lambda: len(receive.calls) == 1) < 10
        assert not poller._client.has_pending_idle()
    finally:
        assert await stop_promptly(stop, task) < 2
    assert receive.raws == [raw]


async def test_run_reconnects_after_the_connection_drops(imap_config, mailbox, caplog):
    first, second, third = messages(3)
    await mailbox.append(first)
    receive = Recorder()
    poller = ImapPoller(imap_config, receive)
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    caplog.set_level(logging.WARNING, logger="intake.imap_poller")
    try:
        await wait_until(lambda: len(receive.calls) == 1)
        await wait_until(lambda: poller._client is not None and poller._client.has_pending_idle())
        dropped = poller._client
        dropped.protocol.transport.close()  # the connection dies under the idling poller
        await mailbox.append(second)
        assert await wait_until(lambda: len(receive.calls) == 2) < 10  # backoff starts at 1 s
        assert poller._client is not dropped
        await wait_until(lambda: poller._client is not None and poller._client.has_pending_idle())
        await mailbox.append(third)  # and the new connection idles again
        assert await wait_until(lambda: len(receive.calls) == 3) < 10
    finally:
        assert await stop_promptly(stop, task) < 2
    assert receive.raws == [first, second, third]
    assert "connection lost" in caplog.text and "reconnecting in 1 s" in caplog.text


async def test_run_keeps_retrying_an_unreachable_server_with_backoff_and_still_stops_promptly(imap_config, caplog):
    # A closed port rather than a wrong password: Dovecot delays every login from an address after a
    # failed one (auth penalty, seconds), which would slow down the other IMAP tests.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        imap_config.port = s.getsockname()[1]  # nobody listens there once the socket is closed
    receive = Recorder()
    poller = ImapPoller(imap_config, receive)
    stop = asyncio.Event()
    caplog.set_level(logging.WARNING, logger="intake.imap_poller")
    task = asyncio.create_task(poller.run(stop))
    try:
        await wait_until(lambda: "reconnecting in 2 s" in caplog.text)  # backoff doubles: 1 s, then 2 s
        assert not task.done()
    finally:
        assert await stop_promptly(stop, task) < 2
    assert "reconnecting in 1 s" in caplog.text and "ConnectionRefusedError" in caplog.text
    assert imap_config.password not in caplog.text
