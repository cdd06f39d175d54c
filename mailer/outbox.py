"""The transactional outbox: a mail is written in the same transaction as the change that causes it,
then delivered; a delivery retried after a crash finds the row already sent and sends nothing."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from email.charset import Charset
from email.message import EmailMessage
from itertools import chain, repeat

from aiosmtplib import SMTPNotSupported, SMTPRecipientsRefused, SMTPResponseException
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from db.engine import session_scope
from db.models import OutboxMail, utcnow
from dmcflow.settings import Settings
from mailer import smtp_sender

log = logging.getLogger(__name__)
MARK_SENT_PATIENCE_S = 30.0  # with a send of up to 20 s (smtp_timeout_seconds), within the 60 s activity timeout
ENCODED_WORD_MAX = 75  # RFC 2047: an encoded word is at most 75 characters
HEADER_LINE_MAX = 78  # RFC 5322: lines SHOULD be at most 78 characters
# A msg-id dmcflow may echo (In-Reply-To, References): printable ASCII, no brackets or spaces inside.
_MSG_ID = re.compile(r"^<[!-;=?-~]+@[!-;=?-~]+>$")
# Control characters and whatever Python counts as a line break (NEL, LS, PS): a header is one line.
_NOT_IN_A_HEADER = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(text: str) -> str:
    """Header text: no control characters or line breaks, one space between words."""
    return " ".join(_NOT_IN_A_HEADER.sub(" ", text).split())


def message_id_for(key: str, settings: Settings) -> str:
    domain = settings.mail_from.rsplit("@", 1)[-1].strip(">") or "dmcflow.local"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def enqueue(session: Session, settings: Settings, *, key: str, kind: str, to: list[str], subject: str,
            body: str, in_reply_to: str | None = None) -> OutboxMail:
    existing = session.get(OutboxMail, key)
    if existing is not None:
        return existing
    # a subject may echo a sender's: one line, no control characters, within its column (300)
    subject = one_line(subject)
    subject = subject if len(subject) <= 300 else subject[:299] + "…"
    row = OutboxMail(key=key, kind=kind, recipients=to, subject=subject, body_text=body.replace("\x00", ""),
                     message_id=message_id_for(key, settings), in_reply_to=in_reply_to)
    session.add(row)
    return row


def well_formed_headers(msg: EmailMessage, *, subject: str, in_reply_to: str | None) -> None:
    """Write the headers that may echo a sender's text so that every reader decodes them as written.

    The email package's policy writes text that looks like an encoded word (`=?utf-8?b?4Li?=`, an echoed
    subject whose encoded word was broken) as it is, or re-encodes its bytes as `unknown-8bit`: readers
    then decode a broken word, or crash. Its folding also drops the space between two encoded words of a
    long Thai subject. So any subject that is not plain ASCII text is encoded whole, with the email
    package's UTF-8 charset (words split between characters, each at most 75 characters, one per line):
    it reads back as the same text. A sender's Message-ID is echoed only when it is a plain msg-id,
    written verbatim (the policy would decode an `=?...?=` inside it)."""
    subject = one_line(subject)  # a row stored before enqueue cleaned as much
    del msg["Subject"]
    if subject.isascii() and "=?" not in subject:
        msg["Subject"] = subject
    else:
        first = min(ENCODED_WORD_MAX, HEADER_LINE_MAX - len("Subject: "))
        words = Charset("utf-8").header_encode_lines(subject, chain([first], repeat(ENCODED_WORD_MAX)))
        msg.set_raw("Subject", "\n ".join(words))  # folded already: each line within 78 characters
    for name in ("In-Reply-To", "References"):
        del msg[name]
        if in_reply_to and _MSG_ID.match(in_reply_to) and len(name) + 2 + len(in_reply_to) <= 998:
            msg.set_raw(name, in_reply_to)


def _due(session: Session, settings: Settings, key: str) -> EmailMessage | None:
    """The mail to send now (its attempt counted), or None when it is sent already or has nobody to go to."""
    return _due_row(settings, session.get(OutboxMail, key))


def _due_row(settings: Settings, row: OutboxMail | None) -> EmailMessage | None:
    if row is None or row.status == "sent":
        return None
    if not row.recipients:
        row.status = "no_recipients"
        return None
    row.attempts += 1
    msg = smtp_sender.build_message(settings, to=list(row.recipients), subject=row.subject,
                                    body=row.body_text, message_id=row.message_id, in_reply_to=row.in_reply_to)
    well_formed_headers(msg, subject=row.subject, in_reply_to=row.in_reply_to)
    return msg


async def deliver(engine: Engine, settings: Settings, key: str) -> bool:
    """Send one outbox mail unless it was sent already. Raises while the SMTP server is unreachable."""
    with session_scope(engine) as session:
        msg = _due(session, settings, key)
    if msg is None:
        return False
    await smtp_sender.send(settings, msg)
    row = await _mark_sent(engine, key)
    log.info("mail sent kind=%s key=%s", row.kind, hashlib.sha256(key.encode()).hexdigest()[:12])
    return True


async def deliver_many(engine: Engine, settings: Settings, keys: list[str]) -> int:
    """`deliver` for many mails over one SMTP connection (a connection per mail costs more than the mail).
    Each is recorded sent as soon as it is out, so a retry sends only the others. One refused mail does not
    hold up the rest: they go first, then the refusal is raised (for the activity to try it again). Answers
    how many were sent now."""
    def due() -> list[tuple[str, EmailMessage]]:
        with session_scope(engine) as session:
            rows = {row.key: row for row in session.exec(select(OutboxMail).where(OutboxMail.key.in_(keys)))}
            return [(key, msg) for key in keys if (msg := _due_row(settings, rows.get(key))) is not None]

    mails = await asyncio.to_thread(due)
    if not mails:
        return 0
    sent, failure = 0, None
    async with smtp_sender.client(settings) as smtp:
        for key, msg in mails:
            try:
                await smtp.send_message(msg)
            except (SMTPResponseException, SMTPRecipientsRefused, SMTPNotSupported) as exc:
                # this mail refused (its recipients, its size): the envelope is reset and the others may go
                failure = failure or exc
                continue
            await asyncio.to_thread(_mark_sent_now, engine, key)  # a commit waits for the disk: not on the loop
            sent += 1
    log.info("mail sent: %d of %d in one connection", sent, len(mails))
    if failure is not None:
        raise failure
    return sent


async def _mark_sent(engine: Engine, key: str) -> OutboxMail:
    """The mail is out: record it, waiting out a database blip (a restart, a failover) rather than failing
    the activity, whose retry would send it a second time. Only a longer outage, or a crash right here,
    still leads to a resend (the same Message-ID, so the receiver can tell)."""
    def mark() -> OutboxMail:
        with session_scope(engine) as session:
            row = session.get(OutboxMail, key)
            row.status, row.sent_at = "sent", utcnow()
        return row

    return await asyncio.to_thread(_patiently, mark)


def _mark_sent_now(engine: Engine, key: str) -> None:
    """`_mark_sent` in one statement, in the calling thread (deliver_many's)."""
    def mark() -> None:
        with session_scope(engine) as session:
            session.execute(update(OutboxMail).where(OutboxMail.key == key).values(status="sent", sent_at=utcnow()))

    _patiently(mark)


def _patiently(write):
    """`write()`, again while the database is unavailable, for up to MARK_SENT_PATIENCE_S."""
    deadline, delay = time.monotonic() + MARK_SENT_PATIENCE_S, 0.5
    while True:
        try:
            return write()
        except OperationalError:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("mail sent but not yet recorded (database unavailable); retrying in %.1fs", delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
