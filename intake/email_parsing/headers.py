"""A message's envelope read from its raw headers: the bare sender address (a display name proves
nothing), Message-ID, In-Reply-To, References, Subject and Date."""

from __future__ import annotations

import email
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from email import policy
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any

from intake.email_parsing.decoding import decode_words, unescape_8bit


def raw_headers(msg: Message) -> dict[str, list[str]]:
    """Header values as received (unfolded), keyed by lowercased name."""
    found: dict[str, list[str]] = {}
    for name, value in msg.raw_items():
        value = unescape_8bit(str(value))
        value = re.sub(r"\r?\n[ \t]", " ", value).strip()
        found.setdefault(str(name).lower(), []).append(value)
    return found


# No control characters (NUL cannot even be stored by PostgreSQL); at most 254 characters (RFC 5321).
_ATOM = r"[^\s@<>()\[\]\\,;:\"\x00-\x1f\x7f]+"
_ADDRESS = re.compile(rf"^{_ATOM}@{_ATOM}\.{_ATOM}$")


def _strip_quoted_and_comments(value: str) -> str:
    """Drop "quoted strings" and (comments): display-name material, never the address."""
    out, depth, quoted, escaped = [], 0, False, False
    for ch in value:
        if escaped:
            escaped = False
        elif ch == "\\" and (quoted or depth):
            escaped = True
        elif quoted:
            quoted = ch != '"'
        elif ch == '"' and not depth:
            quoted = True
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(ch)
    return "".join(out)


def sender_address(from_values: list[str]) -> str | None:
    """The one bare address of From, lowercased; None if absent, several, or not an address.

    Read from the raw header: a display name (even encoded, even holding `<dmc@school>`) proves nothing
    and must never be mistaken for the address.
    """
    if len(from_values) != 1:
        return None
    rest = _strip_quoted_and_comments(from_values[0])
    if "," in rest or ";" in rest:  # several mailboxes or a group: ambiguous, trust none
        return None
    angle = re.fullmatch(r"[^<>]*<([^<>]*)>\s*", rest)
    if angle:
        address = angle.group(1).strip()
    elif "<" in rest or ">" in rest:
        return None
    else:
        address = rest.strip()
    return address.lower() if len(address) <= 254 and _ADDRESS.match(address) else None


def _msg_ids(value: str | None) -> list[str]:
    if not value:
        return []
    ids = [re.sub(r"[\s\x00-\x1f\x7f]+", "", m) for m in re.findall(r"<([^<>]*)>", value)]
    if not ids and value.split():
        ids = [value.split()[0]]  # a bare id without brackets, as some mailers send it
    return [f"<{i}>" for i in ids if i and len(i) <= 996]


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except Exception:
        return None
    # `-0000` (time in UTC, sender's zone unknown) comes back naive.
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


def envelope(headers: Mapping[str, list[str]]) -> dict[str, Any]:
    """The ParsedMessage fields read from the headers."""
    def first(name: str) -> str | None:
        values = headers.get(name)
        return values[0] if values else None

    message_ids = _msg_ids(first("message-id"))
    reply_to = _msg_ids(first("in-reply-to"))
    return dict(
        message_id=message_ids[0] if message_ids else None,
        sender=sender_address(headers.get("from", [])),
        subject=decode_words(first("subject") or "").strip(),
        date=_date(first("date")),
        in_reply_to=reply_to[0] if reply_to else None,
        references=tuple(_msg_ids(" ".join(headers.get("references", [])))),
    )


def headers_only(raw: bytes) -> dict[str, Any]:
    """The envelope of a message too large to read: enough to answer it and to recognise it again."""
    head = raw[:256 * 1024].split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    msg = email.message_from_bytes(head + b"\n\n", policy=policy.compat32)
    return envelope(raw_headers(msg))
