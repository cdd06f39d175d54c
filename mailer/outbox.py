"""The transactional outbox: a mail is written in the same transaction as the change that causes it,
then delivered; a delivery retried after a crash finds the row already sent and sends nothing."""

from __future__ import annotations

import hashlib
import logging
import re

from sqlalchemy.engine import Engine
from sqlmodel import Session

from db.engine import session_scope
from db.models import OutboxMail, utcnow
from dmcflow.settings import Settings
from mailer import smtp_sender

log = logging.getLogger(__name__)


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
    with session_scope(engine) as session:
        row = session.get(OutboxMail, key)
        row.status, row.sent_at = "sent", utcnow()
    log.info("mail sent kind=%s key=%s", row.kind, hashlib.sha256(key.encode()).hexdigest()[:12])
    return True
