"""The transactional outbox: a mail is written in the same transaction as the change that causes it,
then delivered; a delivery retried after a crash finds the row already sent and sends nothing."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time

from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from db.engine import session_scope
from db.models import OutboxMail, utcnow
from dmcflow.settings import Settings
from mailer import smtp_sender

log = logging.getLogger(__name__)
MARK_SENT_PATIENCE_S = 30.0  # with a send of up to 20 s (smtp_timeout_seconds), within the 60 s activity timeout


def message_id_for(key: str, settings: Settings) -> str:
    domain = settings.mail_from.rsplit("@", 1)[-1].strip(">") or "dmcflow.local"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def enqueue(session: Session, settings: Settings, *, key: str, kind: str, to: list[str], subject: str,
            body: str, in_reply_to: str | None = None) -> OutboxMail:
    existing = session.get(OutboxMail, key)
    if existing is not None:
        return existing
    # a subject may echo a sender's: one line, no control characters, within its column (300)
    subject = re.sub(r"[\x00-\x1f\x7f]+", " ", subject).strip()
    subject = subject if len(subject) <= 300 else subject[:299] + "…"
    row = OutboxMail(key=key, kind=kind, recipients=to, subject=subject, body_text=body.replace("\x00", ""),
                     message_id=message_id_for(key, settings), in_reply_to=in_reply_to)
    session.add(row)
    return row


async def deliver(engine: Engine, settings: Settings, key: str) -> bool:
    """Send one outbox mail unless it was sent already. Raises while the SMTP server is unreachable."""
    with session_scope(engine) as session:
        row = session.get(OutboxMail, key)
        if row is None or row.status == "sent":
            return False
        if not row.recipients:
            row.status = "no_recipients"
            return False
        row.attempts += 1
        msg = smtp_sender.build_message(settings, to=list(row.recipients), subject=row.subject,
                                        body=row.body_text, message_id=row.message_id, in_reply_to=row.in_reply_to)
    await smtp_sender.send(settings, msg)
    row = await _mark_sent(engine, key)
    log.info("mail sent kind=%s key=%s", row.kind, hashlib.sha256(key.encode()).hexdigest()[:12])
    return True


async def _mark_sent(engine: Engine, key: str) -> OutboxMail:
    """The mail is out: record it, waiting out a database blip (a restart, a failover) rather than failing
    the activity, whose retry would send it a second time. Only a longer outage, or a crash right here,
    still leads to a resend (the same Message-ID, so the receiver can tell)."""
    deadline, delay = time.monotonic() + MARK_SENT_PATIENCE_S, 0.5
    while True:
        try:
            with session_scope(engine) as session:
                row = session.get(OutboxMail, key)
                row.status, row.sent_at = "sent", utcnow()
            return row
        except OperationalError:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("mail sent but not yet recorded (database unavailable); retrying in %.1fs", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
