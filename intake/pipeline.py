"""The one path every received email takes, whichever way it came in (SMTP or IMAP).

Store the raw bytes first, in their own transaction; only then hand the message to Temporal. If the
process dies between the two, `resume()` finds the stored message and hands it over again.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from db.engine import session_scope
from db.id_corrections import store_raw
from db.models import InboundMessage
from dmcflow.settings import Settings
from workflows.ids import inbound_message_id
from workflows.inbound_message import InboundMessageWorkflow

log = logging.getLogger(__name__)


class Intake:
    def __init__(self, engine: Engine, client: Client, settings: Settings) -> None:
        self.engine, self.client, self.settings = engine, client, settings

    async def receive(self, raw: bytes, via: str, received_at: datetime) -> str:
        """Answers the message's hash once it is safely stored and handed over. Raises if it could not be
        stored: the caller must then not acknowledge it (SMTP 451, IMAP left unmarked)."""
        sha, new = await asyncio.to_thread(self._store, raw, via, received_at)
        log.info("intake: message %s via %s stored (%s bytes)%s", sha[:12], via, len(raw), "" if new else " again")
        await self.hand_over(sha)
        return sha

    def _store(self, raw: bytes, via: str, received_at: datetime) -> tuple[str, bool]:
        with session_scope(self.engine) as session:
            return store_raw(session, raw, via, received_at, self.settings.intake_max_bytes)

    async def hand_over(self, sha: str) -> None:
        try:
            await self.client.start_workflow(
                InboundMessageWorkflow.run, sha, id=inbound_message_id(sha), task_queue=self.settings.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
        except WorkflowAlreadyStartedError:
            pass  # the same bytes again, already processed: no second request, no second reply

    async def resume(self) -> int:
        """Hand over every message stored but never processed (a crash between store and hand-over)."""
        def stored() -> list[str]:
            with session_scope(self.engine) as session:
                return list(session.exec(select(InboundMessage.sha256).where(InboundMessage.status == "stored")))

        shas = await asyncio.to_thread(stored)
        for sha in shas:
            await self.hand_over(sha)
        return len(shas)
