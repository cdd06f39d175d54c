"""Reading the mail the local stack caught (`dmcflow mail list`), whatever is in the folder.

The folder may hold mail written by older versions, or by anything else that talks to the catcher:
a header with a broken encoded word, an unknown charset, raw 8-bit bytes, a Date that is no date.
Each is shown as well as it can be read, never a crash. Decoding is the intake's (`decode_words`,
`decode_text`): the same tolerance the ID-correction intake has for what schools send.
"""

from __future__ import annotations

import email
import mailbox
from datetime import datetime, timezone
from email import policy
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path

from intake.email_parsing.decoding import decode_text, decode_words

_NO_DATE = datetime.min.replace(tzinfo=timezone.utc)


def header(msg: Message, name: str) -> str:
    """The header's first value as stored: compat32 would wrap raw 8-bit bytes in a `Header` object."""
    return next((str(v) for k, v in msg.raw_items() if k.lower() == name.lower()), "")


def readable(raw: str) -> str:
    """A header as a person reads it: encoded words decoded where they can be, shown as they came where not."""
    try:
        if not raw.isascii():  # raw 8-bit bytes (UTF-8 or TIS-620 sent without encoded words)
            raw = decode_text(raw.encode("utf-8", "surrogateescape"), None)[0]
        text = decode_words(raw)
    except Exception:  # noqa: BLE001 (whatever the header holds, the listing goes on)
        text = raw
    return " ".join(text.split())


def _when(msg: Message) -> datetime:
    try:
        when = parsedate_to_datetime(header(msg, "Date"))
    except Exception:  # noqa: BLE001 (no Date, or one that is no date: listed first)
        return _NO_DATE
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when


def _body(msg: Message) -> str | None:
    part = next((p for p in msg.walk() if p.get_content_type() == "text/plain"), None)
    if part is None:
        return None
    payload = part.get_payload(decode=True)
    return decode_text(payload, part.get_content_charset())[0] if isinstance(payload, bytes) else None


def _read(file) -> Message:
    # compat32 keeps every header as it came (raw 8-bit as surrogate escapes): `readable` decodes it
    return email.message_from_binary_file(file, policy=policy.compat32)


def listing(folder: Path, *, last: int = 20, body: bool = False) -> str:
    """The last `last` messages of a Maildir, oldest first, then how many there are."""
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    box = mailbox.Maildir(str(folder), factory=_read, create=False)
    messages = sorted(box, key=_when)
    lines = []
    for msg in messages[-last:] if last > 0 else []:
        date, to, subject = (readable(header(msg, name)) for name in ("Date", "To", "Subject"))
        lines.append(f"— {date}  to {to}\n  {subject}")
        text = _body(msg) if body else None
        if text is not None:
            lines.append("  " + text.replace("\n", "\n  "))
    lines.append(f"{len(messages)} message(s) in {folder}")
    # what cannot be encoded (a lone surrogate) is shown escaped rather than failing the print
    return "\n".join(lines).encode("utf-8", "backslashreplace").decode("utf-8")
