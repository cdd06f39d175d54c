"""One received message read whole: `parse_message` (the intake's outcome, with the refusals decided without a
database) and `message_text` (what the officer's page shows). Both never raise, whatever the bytes."""

from __future__ import annotations

import email
from email import policy

from domain.correction_requests import ParsedMessage
from domain.refusals import Refusal
from intake.email_parsing.decoding import decode_words
from intake.email_parsing.headers import envelope, headers_only, raw_headers
from intake.email_parsing.mime_parts import STRUCTURAL, attachments_of, body_of, defects_of
from intake.email_parsing.request_blocks import requests_in, split_blocks
from intake.mime_limits import MimeLimits, over_limits
from mailer.id_correction_refusals import no_evidence, no_request_block, too_large, unreadable

MAX_BYTES = 25 * 1024 * 1024
_MAIL_HEADERS = ("from", "date", "message-id", "subject", "mime-version", "content-type", "to", "received")


def parse_message(raw: bytes, *, max_bytes: int = MAX_BYTES, limits: MimeLimits = MimeLimits()) -> ParsedMessage:
    """Read one received message. Never raises: whatever the bytes, an outcome comes back. A message over
    the size or the MIME caps is read no further than its headers."""
    size = 0
    try:
        raw = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw or b"")
        size = len(raw)
        if size > max_bytes:
            return ParsedMessage(**headers_only(raw), problem=too_large(max_bytes), size=size)
        if (capped := over_limits(raw, limits)) is not None:
            return ParsedMessage(**headers_only(raw), problem=capped, size=size)
        return _parse(raw)
    except Exception:  # a message we cannot read gets a reply, not a crash (RecursionError included)
        problem = too_large(max_bytes) if size > max_bytes else unreadable()
        return ParsedMessage(message_id=None, sender=None, subject="", date=None, problem=problem, size=size)


def _parse(raw: bytes) -> ParsedMessage:
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    headers = raw_headers(msg)
    body = body_of(msg)
    requests = tuple(requests_in(split_blocks(body.lines)))
    attachments = tuple(attachments_of(msg))
    defects = defects_of(msg)
    broken = any(isinstance(d, STRUCTURAL) for d in defects) or body.lossy \
        or not any(h in headers for h in _MAIL_HEADERS)
    problem: Refusal | None = None
    if not requests:
        problem = unreadable() if broken else no_request_block()
    elif not any(a.is_evidence for a in attachments):
        problem = no_evidence(bool(attachments))
    return ParsedMessage(**envelope(headers), requests=requests, attachments=attachments, problem=problem,
                         defects=tuple(dict.fromkeys(type(d).__name__ for d in defects)), size=len(raw))


def message_text(raw: bytes, *, limits: MimeLimits = MimeLimits()) -> tuple[str, str]:
    """(subject, body) of a stored message as the intake read it, for the officer's page: plain text, the
    HTML form walked as a tree (never rendered), quoted history left out. Never raises."""
    try:
        if over_limits(raw, limits) is not None:
            return "", ""
        msg = email.message_from_bytes(raw, policy=policy.compat32)
        subject = decode_words(str(msg.get("Subject", "")))
        return subject, "\n".join(body_of(msg).lines).strip()
    except Exception:  # an unreadable message was refused by the intake; the page still opens
        return "", ""
