"""What a reply or a forward quotes is not part of the message: `>` lines, and everything below a quote
header ("On ... wrote:", "เมื่อ ... เขียนว่า:", "-----Original Message-----", Outlook's From:/Sent: block)."""

from __future__ import annotations

import re

from intake.email_parsing.labels import label_line

_QUOTE_START = re.compile(
    r"(?:wrote|เขียนว่า)\s*[:：]\s*$"  # Gmail, Apple Mail, Thunderbird: "On ... wrote:" / "เมื่อ ... เขียนว่า:"
    r"|^-{2,}\s*(?:original message|ข้อความต้นฉบับ|forwarded message|ข้อความที่ส่งต่อ)\s*-{2,}\s*$",
    re.IGNORECASE,
)
# Outlook quotes under a header block: "From: ..." then "Sent: ..." (Thai Outlook: "จาก:", "ส่ง:").
_OUTLOOK_FROM = re.compile(r"^(?:from|จาก)\s*[:：]", re.IGNORECASE)
_OUTLOOK_SENT = re.compile(r"^(?:sent|ส่ง|date|วันที่)\s*[:：]", re.IGNORECASE)

# What the HTML walk writes where Outlook's quoted message starts: a quote header `drop_quoted` knows.
QUOTE_MARK = "-----Original Message-----"


def _is_quote_start(lines: list[str], i: int) -> bool:
    line = lines[i]
    if label_line(line):
        return False
    if _QUOTE_START.search(line):
        return True
    return bool(_OUTLOOK_FROM.match(line)) and any(_OUTLOOK_SENT.match(n) for n in lines[i + 1:i + 4])


def drop_quoted(lines: list[str]) -> tuple[list[str], bool]:
    """Lines written in this message only: `>` lines skipped, everything below a quote header cut.
    Answers (lines, whether a quote header was met)."""
    kept = []
    for i, line in enumerate(lines):
        if line.lstrip().startswith(">"):
            continue
        if _is_quote_start(lines, i):
            return kept, True
        kept.append(line)
    return kept, False
