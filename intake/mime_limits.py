"""Caps on a message's MIME structure, checked on the raw bytes before any parsing (issue 15, finding 6).

The stdlib parser builds one object per MIME part: a 25 MB message of 400,000 empty parts takes about
450 MB and half a minute to parse. `over_limits` finds the boundaries with one regular-expression pass
and stops as soon as a cap is passed, so such a message costs milliseconds and no memory to refuse.

The scan is conservative: a boundary is whatever a multipart Content-Type declares, and a line that
starts with `--boundary` counts as a part even where a parser might disagree (a lost closing line).
The decoded size is estimated from the encoded sizes (base64 shrinks by a quarter), without decoding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from domain.refusals import Refusal, refusal


@dataclass(frozen=True, slots=True)
class MimeLimits:
    max_parts: int = 500
    max_depth: int = 20  # multipart nested in multipart; real mail nests 3-4 levels
    max_decoded_bytes: int = 25 * 1024 * 1024


_EVENT = re.compile(
    rb"^(?:(?P<ct>content-type[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*)|--(?P<delim>[^\r\n]{1,200}?)[ \t]*\r?$)",
    re.IGNORECASE | re.MULTILINE)
_BASE64 = re.compile(rb"^content-transfer-encoding[ \t]*:[ \t]*base64", re.IGNORECASE | re.MULTILINE)
_BLANK = re.compile(rb"\r?\n\r?\n")


def too_many_parts(limit: int) -> Refusal:
    return refusal("too_many_parts", f"อีเมลมีส่วนประกอบเกิน {limit} ส่วน กรุณาส่งใหม่โดยแนบไฟล์ให้น้อยลง",
                   f"The email has more than {limit} MIME parts; please send it again with fewer attachments", 413)


def too_deeply_nested(limit: int) -> Refusal:
    return refusal("too_deeply_nested",
                   f"โครงสร้างอีเมลซ้อนกันเกิน {limit} ชั้น ระบบจึงไม่อ่าน กรุณาส่งอีเมลใหม่ (ไม่ส่งต่อซ้อนกัน)",
                   f"The email's structure is nested deeper than {limit} levels and was not read; "
                   "please send a new email rather than a forward of a forward", 413)


def decoded_too_large(limit: int) -> Refusal:
    mb = limit / (1024 * 1024)
    return refusal("decoded_too_large", f"ไฟล์แนบรวมกันมีขนาดเกิน {mb:.0f} MB กรุณาส่งใหม่โดยลดขนาดไฟล์แนบ",
                   f"The attachments add up to more than {mb:.0f} MB; please send them again smaller", 413)


def _boundary(content_type: bytes) -> str | None:
    header = Message()
    header["Content-Type"] = re.sub(rb"\r?\n[ \t]", b" ", content_type.split(b":", 1)[1]).decode("latin-1").strip()
    if header.get_content_maintype() != "multipart":
        return None
    return header.get_boundary()


def _leaf_size(segment: bytes) -> int:
    """The decoded size of one part, estimated: 0 for a multipart (its children count), 3/4 for base64."""
    split = _BLANK.search(segment)
    head, body = (segment[:split.start()], segment[split.end():]) if split else (segment, b"")
    for found in _EVENT.finditer(head):
        if found.group("ct") and _boundary(found.group("ct")):
            return 0
    return len(body) * 3 // 4 if _BASE64.search(head) else len(body)


def over_limits(raw: bytes, limits: MimeLimits) -> Refusal | None:
    """The refusal of a message over one of the caps, or None. Pure, linear, stops at the first cap passed."""
    stack: list[str] = []  # the boundaries open at this point, outermost first
    parts = 0
    starts = [0]  # where each part (the message itself first) begins
    for found in _EVENT.finditer(raw):
        if found.group("ct"):
            boundary = _boundary(found.group("ct"))
            if boundary and boundary not in stack:
                stack.append(boundary)
                if len(stack) > limits.max_depth:
                    return too_deeply_nested(limits.max_depth)
            continue
        text = found.group("delim").decode("latin-1")
        if text.endswith("--") and text[:-2] in stack:
            del stack[stack.index(text[:-2]):]  # its closing line: it and anything opened inside it end
            starts.append(found.end())
        elif text in stack:
            del stack[stack.index(text) + 1:]  # a part of an outer multipart: the inner ones ended unclosed
            parts += 1
            if parts > limits.max_parts:
                return too_many_parts(limits.max_parts)
            starts.append(found.end())
    starts.append(len(raw))
    decoded = sum(_leaf_size(raw[a:b]) for a, b in zip(starts, starts[1:], strict=False))
    if decoded > limits.max_decoded_bytes:
        return decoded_too_large(limits.max_decoded_bytes)
    return None


__all__ = ["MimeLimits", "decoded_too_large", "over_limits", "too_deeply_nested", "too_many_parts"]
