"""IMAP way in (R4): hand every new message of a district mailbox to the intake, then mark it processed.

A message is marked ($DmcStored + \\Seen, or moved to `processed_mailbox`) only after `receive` returned,
i.e. after the intake stored it; a crash in between re-delivers it on the next pass, which the intake
absorbs (the same Message-ID never opens a second request). Everything goes by UID, never by sequence
number, because sequence numbers shift whenever someone else expunges a message from the mailbox.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import aioimaplib

log = logging.getLogger(__name__)

Receive = Callable[[bytes, str, datetime], Awaitable[object]]  # (raw message, via="imap", received_at UTC)

KEYWORD = "$DmcStored"
COMMAND_TIMEOUT = 30.0  # seconds for one command; a FETCH times out only after this long without data
MAX_BACKOFF = 60.0


@dataclass
class ImapConfig:
    host: str
    port: int
    username: str
    password: str
    mailbox: str = "INBOX"
    processed_mailbox: str | None = None  # when set, processed messages are moved there (created if missing)
    use_ssl: bool = False
    poll_seconds: float = 30  # between passes when the server has no IDLE
    idle_seconds: float = 300  # longest IDLE before a pass anyway (servers drop idle clients after ~30 min)


class ImapError(Exception):
    """The server answered NO or BAD."""


class _Stopped(Exception):
    """run()'s stop event was set while waiting on the server."""


class ImapPoller:
    def __init__(self, config: ImapConfig, receive: Receive):
        self._config = config
        self._receive = receive
        self._client: aioimaplib.IMAP4 | None = None
        self._lost = asyncio.Event()
        self._keywords = True  # whether the selected mailbox lets us store $DmcStored
        self._stop: asyncio.Event | None = None  # run()'s, so that waits on the server end when it is set

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set; connection errors reconnect with backoff, they never end the loop."""
        backoff = 1.0
        self._stop = stop
        try:
            while not stop.is_set():
                try:
                    await self.poll_once()
                    backoff = 1.0
                    await self._wait_for_news()
                except _Stopped:
                    break
                except Exception as exc:  # the poller must outlive any server trouble
                    log.warning("IMAP %s:%s: %s; reconnecting in %.0f s",
                                self._config.host, self._config.port, _describe(exc), backoff)
                    self._drop()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
        finally:
            self._stop = None
            await self.close()

    async def poll_once(self) -> int:
        """One pass over the messages not yet stored; answers how many `receive` accepted."""
        if self._client is None or self._lost.is_set():
            self._drop()
            await self._connect()
        handed_over = 0
        attempted: set[int] = set()
        # Search again until nothing new shows up: a message that arrives during the pass is announced
        # (EXISTS) in the answer to some FETCH or STORE, which aioimaplib drops, so IDLE would not wake for it.
        while uids := [uid for uid in await self._search() if uid not in attempted]:
            for uid in uids:
                attempted.add(uid)
                if await self._hand_over(uid):
                    handed_over += 1
        return handed_over

    async def close(self) -> None:
        """Log out (best effort) and drop the connection; the next poll_once connects again."""
        if self._client is not None and not self._lost.is_set():
            with contextlib.suppress(Exception):
                await self._race(self._client.logout(), timeout=5)
        self._drop()

    # --- one message -------------------------------------------------------------------------------

    async def _hand_over(self, uid: int) -> bool:
        """Fetch, receive, mark. A failure of this one message is logged by UID only (the content may hold
        national IDs) and leaves it unmarked for the next pass; connection errors propagate."""
        try:
            fetched = await self._fetch(uid)
        except ImapError as exc:
            log.warning("IMAP UID %s could not be fetched (%s); retried on the next pass", uid, exc)
            return False
        if fetched is None:
            return False  # expunged by someone else meanwhile
        raw, received_at = fetched
        try:
            await self._receive(raw, "imap", received_at)
        except Exception as exc:  # whatever the intake raises, the other messages still go through
            log.warning("IMAP UID %s not handed over (%s); retried on the next pass", uid, type(exc).__name__)
            return False
        try:
            await self._mark(uid)
        except ImapError as exc:
            log.warning("IMAP UID %s handed over but not marked (%s); it will be handed over again", uid, exc)
        return True

    async def _fetch(self, uid: int) -> tuple[bytes, datetime] | None:
        # BODY.PEEK[] rather than RFC822: fetching must not set \Seen before the message is stored.
        # No overall timeout: aioimaplib times a FETCH out only after COMMAND_TIMEOUT without data.
        response = _ok(await self._race(self._client.uid("fetch", str(uid), "(INTERNALDATE BODY.PEEK[])"),
                                        timeout=None), "UID FETCH")
        literals = [bytes(line) for line in response.lines if isinstance(line, bytearray)]
        if not literals:
            return None
        meta = b" ".join(line for line in response.lines if isinstance(line, bytes))
        return literals[0], _internaldate(meta) or datetime.now(timezone.utc)

    async def _mark(self, uid: int) -> None:
        # Flag even when moving: the moved copy then shows as read and stored, and if the move fails
        # the message is still not handed over twice.
        client = self._client
        flags = f"(\\Seen {KEYWORD})" if self._keywords else "(\\Seen)"
        _ok(await self._race(client.uid("store", str(uid), "+FLAGS.SILENT", flags)), "UID STORE")
        target = self._config.processed_mailbox
        if not target:
            return
        if client.has_capability("MOVE"):
            _ok(await self._race(client.uid("move", str(uid), _mailbox_arg(target))), "UID MOVE")
            return
        # RFC 6851 fallback: copy, flag \Deleted, and expunge only this UID (UIDPLUS) so that messages
        # someone else flagged \Deleted are left alone.
        _ok(await self._race(client.uid("copy", str(uid), _mailbox_arg(target))), "UID COPY")
        _ok(await self._race(client.uid("store", str(uid), "+FLAGS.SILENT", "(\\Deleted)")), "UID STORE")
        if client.has_capability("UIDPLUS"):
            _ok(await self._race(client.uid("expunge", str(uid))), "UID EXPUNGE")

    # --- connection ------------------------------------------------------------------------------------

    async def _connect(self) -> None:
        config = self._config
        lost = self._lost = asyncio.Event()  # one per connection: a late callback of an old one is harmless
        self._client = client = aioimaplib.IMAP4(
            config.host, config.port, timeout=COMMAND_TIMEOUT, conn_lost_cb=lambda _exc: lost.set(),
            ssl_context=ssl.create_default_context() if config.use_ssl else None)
        await self._race(client.wait_hello_from_server(), stoppable=True)
        _ok(await self._race(client.login(config.username, config.password), stoppable=True), "LOGIN")
        if config.processed_mailbox:  # a NO answer means it exists already
            await self._race(client.create(_mailbox_arg(config.processed_mailbox)), stoppable=True)
        selected = _ok(await self._race(client.select(_mailbox_arg(config.mailbox)), stoppable=True), "SELECT")
        self._keywords = _keywords_allowed(selected.lines)

    def _drop(self) -> None:
        if self._client is not None and self._client.protocol.transport is not None:
            self._client.protocol.transport.close()
        self._client = None

    async def _search(self) -> list[int]:
        # A NOOP first: the server announces mail that arrived since the last command (EXISTS) in its
        # answer, and aioimaplib would otherwise let that announcement spoil the SEARCH's own answer.
        _ok(await self._race(self._client.noop()), "NOOP")
        criteria = ("UNKEYWORD", KEYWORD) if self._keywords else ("UNSEEN",)
        response = _ok(await self._race(self._client.uid_search(*criteria, charset=None), stoppable=True),
                       "UID SEARCH")
        return [int(token) for line in response.lines[:-1] for token in line.split() if token.isdigit()]

    async def _wait_for_news(self) -> None:
        """Return when the mailbox may have changed or it is time for a pass anyway; _Stopped on stop."""
        client = self._client
        if not client.has_capability("IDLE"):
            await self._race(asyncio.sleep(self._config.poll_seconds), timeout=None, stoppable=True, command=False)
            return
        # idle_start ends the wait itself after idle_seconds; any untagged answer (EXISTS, EXPUNGE, a
        # keep-alive) wakes us early and we simply make a pass: a search is cheap.
        idle = await self._race(client.idle_start(timeout=self._config.idle_seconds))
        try:
            await self._race(client.wait_server_push(timeout=self._config.idle_seconds + COMMAND_TIMEOUT),
                             timeout=None, stoppable=True, command=False)
        finally:
            if self._client is client and not self._lost.is_set():
                client.idle_done()
                await self._race(idle)  # the server's tagged OK ends IDLE; only then may we send again

    async def _race(self, aw: Awaitable[Any], *, timeout: float | None = COMMAND_TIMEOUT,
                    stoppable: bool = False, command: bool = True) -> Any:
        """Await `aw` unless the connection drops or `timeout` passes (both raise), or, when `stoppable`,
        run()'s stop event is set (raises _Stopped).

        aioimaplib leaves a command pending forever when the connection drops (and UID STORE has no
        timeout at all), hence the race against the connection-lost callback. A `command` given up on
        stays pending in aioimaplib and blocks every later one, so its connection is dropped too.
        A message in hand is never given up on for stop: fetch, store and move are not `stoppable`.
        """
        task = asyncio.ensure_future(aw)
        stop = self._stop if stoppable else None
        waiters = {asyncio.ensure_future(self._lost.wait())}
        if stop is not None:
            waiters.add(asyncio.ensure_future(stop.wait()))
        try:
            done, _ = await asyncio.wait({task, *waiters}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in (task, *waiters):
                future.cancel()
        if task in done:
            if command and task.exception() is not None:
                self._drop()  # a command that failed (timeout, abort) leaves aioimaplib in an unknown state
            return task.result()
        if command:
            self._drop()
        if stop is not None and stop.is_set():
            raise _Stopped
        if self._lost.is_set():
            raise ConnectionError("IMAP connection lost")
        raise TimeoutError("IMAP server did not answer in time")


# --- IMAP details ------------------------------------------------------------------------------------

def _ok(response: Any, what: str) -> Any:
    if response.result != "OK":
        text = response.lines[-1].decode(errors="replace") if response.lines else ""
        raise ImapError(f"{what}: {response.result} {text}".strip())
    return response


def _keywords_allowed(select_lines: list[bytes]) -> bool:
    """Whether SELECT's PERMANENTFLAGS lets us store $DmcStored (else we fall back to \\Seen / UNSEEN)."""
    for line in select_lines:
        if match := re.search(rb"\[PERMANENTFLAGS \(([^)]*)\)\]", line):
            flags = match.group(1).split()
            return b"\\*" in flags or KEYWORD.encode() in flags
    return True  # RFC 3501: without PERMANENTFLAGS, all flags can be changed permanently


_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}
_INTERNALDATE = re.compile(rb'INTERNALDATE "\s?(\d{1,2})-(\w{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([-+])(\d\d)(\d\d)"')


def _internaldate(meta: bytes) -> datetime | None:
    # Parsed by hand: strptime's %b follows the process locale, and a Thai LC_TIME would break it.
    match = _INTERNALDATE.search(meta)
    if not match or match.group(2).decode() not in _MONTHS:
        return None
    day, mon, year, hh, mm, ss, sign, oh, om = (g.decode() for g in match.groups())
    offset = timedelta(hours=int(oh), minutes=int(om)) * (-1 if sign == "-" else 1)
    local = datetime(int(year), _MONTHS[mon], int(day), int(hh), int(mm), int(ss), tzinfo=timezone(offset))
    return local.astimezone(timezone.utc)


def _mailbox_arg(name: str) -> str:
    """A mailbox name as an IMAP quoted string, non-ASCII in modified UTF-7 (RFC 3501 5.1.3): district
    folders are often named in Thai."""
    def encode(run: re.Match[str]) -> str:
        return "&" + base64.b64encode(run.group().encode("utf-16-be")).rstrip(b"=").replace(b"/", b",").decode() + "-"

    return aioimaplib.quoted(re.sub(r"[^ -~]+", encode, name.replace("&", "&-")))


def _describe(exc: BaseException) -> str:
    # Connection and protocol errors carry no message content; anything else shows its type only.
    if isinstance(exc, (OSError, ImapError, aioimaplib.AioImapException)):
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return type(exc).__name__
