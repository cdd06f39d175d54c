"""The SMTP way in (aiosmtpd): the district's address, locally or behind a relay.

A message is acknowledged (250) only once stored; if storing fails the sender is asked to retry later
(451), so a relay keeps it. A message over the limit is still taken (its head is kept) so that the
school gets a reply naming the limit; only beyond twice the limit does the SMTP session refuse it (552).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from aiosmtpd.controller import Controller

from intake.pipeline import Intake

log = logging.getLogger(__name__)


class IntakeHandler:
    def __init__(self, intake: Intake) -> None:
        self.intake = intake

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's handler protocol
        raw = envelope.original_content or envelope.content
        try:
            await self.intake.receive(raw, "smtp", datetime.now(timezone.utc))
        except Exception:
            log.exception("intake: message not stored; asking the sender to retry")
            return "451 4.3.0 Temporarily unable to store the message; please retry"
        return "250 2.0.0 Stored"


def start_listener(intake: Intake, host: str, port: int, max_bytes: int) -> Controller:
    controller = Controller(IntakeHandler(intake), hostname=host, port=port, data_size_limit=2 * max_bytes)
    controller.start()
    return controller
