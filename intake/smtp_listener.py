"""The SMTP way in (aiosmtpd): the district's address, behind the district's relay (or locally).

Only the configured relay addresses may send (`intake_relay_addresses`, loopback by default): anyone else
is refused at MAIL FROM (554), before any data is read, so nothing of theirs is stored or answered.
A message is acknowledged (250) once stored, whatever the intake decided about it: refusing it here would
make the relay bounce it to its From, which may be forged. If storing fails, or the client or sender is
over its rate, the relay is asked to retry later (451) and keeps the message. A message over the limit is
still taken (its head is kept) so that the school gets a reply naming the limit; only beyond twice the
limit does the SMTP session refuse it (552).
"""

from __future__ import annotations

import ipaddress
import logging
from datetime import datetime, timezone

from aiosmtpd.controller import Controller

from intake.pipeline import Deferred, Intake

log = logging.getLogger(__name__)


class IntakeHandler:
    def __init__(self, intake: Intake, relays: list[str]) -> None:
        self.intake = intake
        self.relays = [ipaddress.ip_network(r, strict=False) for r in relays]

    def _peer(self, session) -> str | None:
        return session.peer[0] if isinstance(session.peer, tuple) and session.peer else None

    def _from_relay(self, session) -> bool:
        try:
            address = ipaddress.ip_address((self._peer(session) or "").split("%", 1)[0])
        except ValueError:
            return False
        if address.version == 6 and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.relays)

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:  # aiosmtpd's handler protocol
        if not self._from_relay(session):
            log.warning("intake: SMTP from %s refused: not a configured relay", self._peer(session))
            return "554 5.7.1 Relay access only: this client may not send here"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if not self._from_relay(session):  # MAIL FROM already refused it; never store what slipped past
            return "554 5.7.1 Relay access only: this client may not send here"
        raw = envelope.original_content or envelope.content
        try:
            await self.intake.receive(raw, "smtp", datetime.now(timezone.utc), client=self._peer(session))
        except Deferred as exc:
            return f"451 4.7.1 {exc.text} ({exc.code})"
        except Exception:
            log.exception("intake: message not stored; asking the sender to retry")
            return "451 4.3.0 Temporarily unable to store the message; please retry"
        return "250 2.0.0 Stored"


def start_listener(intake: Intake, host: str, port: int, max_bytes: int) -> Controller:
    handler = IntakeHandler(intake, intake.settings.intake_relay_addresses)
    controller = Controller(handler, hostname=host, port=port, data_size_limit=2 * max_bytes)
    controller.start()
    return controller
