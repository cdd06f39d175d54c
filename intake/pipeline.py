"""The one path every received email takes, whichever way it came in (SMTP or IMAP).

At the door, before anything is parsed (issue 15, findings 5 and 6): the client's rate, the sender's
authentication (a DKIM signature verified here, or the trusted relay's dmarc=pass: intake/mail_auth.py),
whether the address is registered for a school, the sender's rate. Mail that fails is kept (its head) as
refused with its reason, for the district to see, and is never parsed, handed over or answered: a reply
to a forged From would be spam sent in the school's name. Mail that passes is stored whole in its own
transaction; only then is it handed to Temporal. If the process dies between the two, `resume()` finds
the stored message and hands it over again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio.client import Client

from db.engine import session_scope
from db.id_corrections import keep_refused, registered_schools, store_raw
from db.models import InboundMessage
from dmcflow.settings import Settings
from domain.intake_messages import IntakeRun
from intake.mail_auth import DnsFunc, Verdict, authenticate, from_sender, header_values
from intake.rate_limits import SlidingWindow
from workflows.activity_calls import signal_name
from workflows.ids import inbound_intake_id
from workflows.inbound_intake import InboundIntakeWorkflow

log = logging.getLogger(__name__)
RESUME_CHUNK = 500  # hashes per signal when resuming: one signal stays far below Temporal's payload limit


class Deferred(Exception):
    """Not now: the SMTP client is told to retry later (451), the IMAP message stays unmarked."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(code)
        self.code, self.text = code, text


class Intake:
    def __init__(self, engine: Engine, client: Client, settings: Settings, dnsfunc: DnsFunc | None = None) -> None:
        """`dnsfunc` looks up DKIM keys (dkimpy's resolver when None; tests answer from a local table)."""
        self.engine, self.client, self.settings, self.dnsfunc = engine, client, settings, dnsfunc
        window = settings.intake_rate_window_seconds
        self.per_client = SlidingWindow(settings.intake_rate_per_client, window)
        self.per_sender = SlidingWindow(settings.intake_rate_per_sender, window)
        self._handing: dict[asyncio.AbstractEventLoop, list] = {}  # hand-overs waiting for a signal, per event loop

    async def receive(self, raw: bytes, via: str, received_at: datetime, client: str | None = None) -> str:
        """Answers the message's hash once it is safely stored (and, if admitted, handed over). Raises if it
        could not be stored, or `Deferred`: the caller must then not acknowledge it (SMTP 4xx, IMAP unmarked)."""
        sha, admitted = await asyncio.to_thread(self.admit, raw, via, received_at, client)
        if admitted:
            await self.hand_over(sha)
        return sha

    def admit(self, raw: bytes, via: str, received_at: datetime, client: str | None = None) -> tuple[str, bool]:
        """The door: rates, authentication, registration, then storage. Answers (sha256, admitted): an admitted
        message is stored whole and must be handed over; any other is kept refused, or dropped, unanswered."""
        if client is not None and not self.per_client.take(client):
            raise Deferred("rate_limited_client", "Too many messages from this client; try again later")
        verdict = self._authenticate(raw)
        if verdict.temporary:
            raise Deferred(verdict.reason, "Sender authentication temporarily unavailable; try again later")
        sha, new, admitted = self._store(raw, via, received_at, client, verdict)
        log.info("intake: message %s via %s %s (%s bytes, %s)%s", sha[:12], via, "stored" if admitted else "refused",
                 len(raw), verdict.reason, "" if new else " again")
        return sha, admitted

    def _authenticate(self, raw: bytes) -> Verdict:
        # An unregistered From is refused without a DNS lookup or a body hash: nothing to authenticate for.
        try:
            sender = from_sender(header_values(raw))
        except Exception:  # noqa: BLE001  headers too broken to read
            sender = None
        with session_scope(self.engine) as session:
            if not registered_schools(session, sender):
                return Verdict(sender, None, None, "sender_not_registered")
        return authenticate(raw, authserv_id=self.settings.intake_authserv_id, dnsfunc=self.dnsfunc)

    def _store(self, raw: bytes, via: str, received_at: datetime, client: str | None,
               verdict: Verdict) -> tuple[str, bool, bool]:
        """(sha256, newly stored, admitted). Over the sender's rate an authenticated message is deferred; an
        unauthenticated one is dropped unstored (deferring it would make the relay bounce it to the forged
        From: backscatter again)."""
        if verdict.authenticated:
            if not self.per_sender.take(f"sender:{verdict.sender}"):
                raise Deferred("rate_limited_sender", "Too many messages from this sender; try again later")
            with session_scope(self.engine) as session:
                return (*store_raw(session, raw, via, received_at, self.settings.intake_max_bytes, verdict, client),
                        True)
        if not self.per_sender.take(f"unauthenticated:{(verdict.sender or '@').rsplit('@', 1)[1]}"):
            log.warning("intake: unauthenticated mail over the rate limit dropped (%s)", verdict.reason)
            return hashlib.sha256(raw).hexdigest(), False, False
        with session_scope(self.engine) as session:
            return (*keep_refused(session, raw, via, received_at, verdict, verdict.reason, client), False)

    async def hand_over(self, *shas: str) -> None:
        """To the task queue's InboundIntakeWorkflow (started if need be), in one signal with the hashes of the
        messages stored while the previous signal was on its way (one RPC and one history event for several
        messages). The same bytes again are no second request and no second reply: it decides each message
        once and finds its reply sent. Raises when Temporal did not take them."""
        loop = asyncio.get_running_loop()  # the SMTP listener's loop, or the IMAP poller's
        queue = self._handing.setdefault(loop, [])
        done = loop.create_future()
        queue.append((shas, done))
        if len(queue) == 1:
            loop.create_task(self._signal(queue))
        await done

    async def _signal(self, queue: list) -> None:
        while queue:
            await asyncio.sleep(0)  # the receipts that are ready join
            taken = queue[:]
            try:
                await self.client.start_workflow(
                    InboundIntakeWorkflow.run, IntakeRun(), id=inbound_intake_id(self.settings.task_queue),
                    task_queue=self.settings.task_queue, start_signal=signal_name(InboundIntakeWorkflow.received),
                    start_signal_args=[[sha for shas, _ in taken for sha in shas]])
            except Exception as exc:  # noqa: BLE001  each waiting receipt fails with it (SMTP 451, IMAP unmarked)
                for _, done in taken:
                    if not done.done():  # its receipt may have been given up (the SMTP session closed)
                        done.set_exception(exc)
            else:
                for _, done in taken:
                    if not done.done():
                        done.set_result(None)
            del queue[:len(taken)]

    async def resume(self) -> int:
        """Hand over every message stored but never processed (a crash between store and hand-over)."""
        def stored() -> list[str]:
            with session_scope(self.engine) as session:
                return list(session.exec(select(InboundMessage.sha256).where(InboundMessage.status == "stored")))

        shas = await asyncio.to_thread(stored)
        for at in range(0, len(shas), RESUME_CHUNK):
            await self.hand_over(*shas[at:at + RESUME_CHUNK])
        return len(shas)
