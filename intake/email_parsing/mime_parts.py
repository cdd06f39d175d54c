"""The parts of a MIME message: which are the body text to read (one form of a multipart/alternative), which
are attachments to keep (hashed and sniffed, never opened), and the structural defects met on the way."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from email import errors as email_errors
from email import policy
from email.message import Message
from email.utils import unquote

from domain.correction_requests import Attachment
from domain.evidence import sniff_evidence
from intake.email_parsing.decoding import decode_text, decode_words, unescape_8bit
from intake.email_parsing.html_text import html_lines
from intake.email_parsing.quoting import drop_quoted
from intake.email_parsing.request_blocks import has_request
from intake.email_parsing.tables import tab_tables

MAX_MIME_DEPTH = 20  # real mail nests 3-4 levels; deeper is an attack or a loop, and is not read
# A request is typed by a person: a body part beyond these sizes (after inline data: images are dropped)
# is pasted data, and only its beginning is read. HTML is cut shorter: building its tree is the slow part.
_MAX_TEXT_CHARS = 1_000_000
_MAX_HTML_CHARS = 500_000

# Defects that mean the MIME structure itself is broken (not just a sloppy header).
STRUCTURAL = (
    email_errors.NoBoundaryInMultipartDefect, email_errors.StartBoundaryNotFoundDefect,
    email_errors.CloseBoundaryNotFoundDefect, email_errors.MultipartInvariantViolationDefect,
    email_errors.MissingHeaderBodySeparatorDefect, email_errors.InvalidBase64PaddingDefect,
    email_errors.InvalidBase64CharactersDefect, email_errors.InvalidBase64LengthDefect,
)


@dataclass
class Body:
    lines: list[str] = field(default_factory=list)
    lossy: bool = False  # some text could only be decoded with replacement characters
    quoted: bool = False  # a quote header was met: what follows in the message is quoted too


def _is_body_text(part: Message) -> bool:
    disposition = (part.get_content_disposition() or "").lower()
    return part.get_content_type() in ("text/plain", "text/html") and disposition != "attachment" \
        and not part.get_filename()


def _text_of(part: Message) -> Body:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    text, lossy = decode_text(data, part.get_content_charset())
    if part.get_content_type() == "text/html":
        # Inline images as data: URIs can be megabytes of base64 inside an attribute: never text.
        text = re.sub(r"data:[^\"'\s>]{256,}", "data:", text)
        lines = html_lines(_clean_text(text[:_MAX_HTML_CHARS]))
    else:
        lines = _clean_text(text[:_MAX_TEXT_CHARS]).split("\n")
    kept, quoted = drop_quoted(lines)
    if part.get_content_type() == "text/plain":
        kept = tab_tables(kept)
    return Body(kept, lossy, quoted)


def _clean_text(text: str) -> str:
    """NFC, one line-break style, no zero-width characters (Thai text uses them as word breaks), and
    NIKHAHIT + SARA AA folded into SARA AM, so labels match however they were typed."""
    text = unicodedata.normalize("NFC", text).replace("\u0e4d\u0e32", "\u0e33")
    text = re.sub("[\x00\u200b\u200c\u200d\u2060\ufeff\u00ad]", "", text)  # NUL too: never text
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")


def _alternative(children: list[Message], depth: int) -> Body:
    """One message in several forms: read ONE of them. text/plain first; the HTML only when the text
    form yields no request (e.g. a "view this in HTML" stub)."""
    def plain_first(part: Message) -> int:
        return 0 if part.get_content_type() == "text/plain" else 1

    bodies = [body_of(c, depth + 1) for c in sorted(children, key=plain_first)]
    for body in bodies:
        if has_request(body.lines):
            return body
    return bodies[0] if bodies else Body()


def body_of(part: Message, depth: int = 0) -> Body:
    """The text written in this message, as lines: quoted history left out, HTML and tables as label lines."""
    if depth > MAX_MIME_DEPTH:
        return Body()
    if part.get_content_maintype() == "multipart" and part.is_multipart():
        children = [c for c in part.get_payload() if isinstance(c, Message)]
        if part.get_content_subtype() == "alternative":
            return _alternative(children, depth)
        whole = Body()
        for child in children:
            if whole.quoted:
                break
            found = body_of(child, depth + 1)
            whole = Body(whole.lines + found.lines, whole.lossy or found.lossy, found.quoted)
        return whole
    if _is_body_text(part):
        return _text_of(part)
    return Body()


def _attachment_filename(part: Message) -> str | None:
    value = part.get_param("filename", header="content-disposition") or part.get_param("name")
    if value is None:
        return None
    if isinstance(value, tuple):  # RFC 2231 (continuations already joined): (charset, language, text)
        charset, _, text = value
        name = decode_text(bytes(text, "raw-unicode-escape"), charset)[0]
    else:
        # RFC 2047 in a filename is against the rules, and what most mailers send.
        name = decode_words(unescape_8bit(unquote(str(value))))
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).replace("\\", "/").rsplit("/", 1)[-1].strip()
    return unicodedata.normalize("NFC", name) or None


def attachments_of(part: Message, depth: int = 0) -> list[Attachment]:
    """Every leaf that is not body text: attachments, and inline images (a photo of the ID card pasted
    into the mail is evidence too). A forwarded message (message/rfc822) is kept whole, never read."""
    if depth > MAX_MIME_DEPTH:
        return []
    if part.get_content_maintype() == "multipart":
        if not part.is_multipart():  # its boundary is missing: broken structure (a defect), not a file
            return []
        return [a for c in part.get_payload() if isinstance(c, Message) for a in attachments_of(c, depth + 1)]
    if _is_body_text(part):
        return []
    if part.get_content_maintype() == "message" and part.is_multipart():
        try:
            content = b"".join(p.as_bytes(policy=policy.compat32) for p in part.get_payload())
        except Exception:
            content = b""
    else:
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
    return [Attachment(
        filename=_attachment_filename(part),
        content_type=part.get_content_type(),
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        evidence_type=sniff_evidence(content),
    )]


def defects_of(msg: Message, depth: int = 0) -> list[email_errors.MessageDefect]:
    found = list(getattr(msg, "defects", []))
    if depth < MAX_MIME_DEPTH and msg.is_multipart():
        for child in msg.get_payload():
            if isinstance(child, Message):
                found += defects_of(child, depth + 1)
    return found
