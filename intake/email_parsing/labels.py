"""Recognising a field's label as people type it (`ชื่อ - สกุล:`, `1. Old ID`, `old_id：`): on a line with
its value, or alone in a table cell. The labels themselves are the spec's (domain.correction_requests.LABELS)."""

from __future__ import annotations

import re

from domain.correction_requests import LABELS, Field

_DASHES = "".join(re.escape(ch) for ch in "-‐‑‒–—")  # escaped: a bare `-` inside [...] makes a range


def _label_pattern(label: str) -> str:
    """A label as typed by people: `ชื่อ-สกุล` also as `ชื่อ - สกุล` or `ชื่อสกุล`, `Old ID` as `old_id`."""
    parts = []
    for ch in label:
        if ch == "-":
            parts.append(rf"\s*[{_DASHES}]?\s*")
        elif ch == " ":
            parts.append(rf"[\s_{_DASHES}]*")
        else:
            parts.append(re.escape(ch))
    return "".join(parts)


# After the label: `:`, full-width `：`, or whitespace. Requiring one stops `ชั้น` from matching inside
# `ชั้นเรียน...` and `Class` inside `Classroom`. Labels are prefixes of one another (`เลขประจำตัวประชาชนเดิม`,
# `เลขเดิม`), so the alternation lists the longest first; if a label matches but no separator follows,
# the regex falls back to the shorter ones, exactly as trying them one by one would.
_LABEL_ORDER = sorted(((lbl, f) for f, lbls in LABELS.items() for lbl in lbls), key=lambda p: -len(p[0]))
_ALTERNATION = "|".join(f"(?P<l{i}>{_label_pattern(lbl)})" for i, (lbl, _) in enumerate(_LABEL_ORDER))
_LABEL_LINE = re.compile(rf"^(?:{_ALTERNATION})(?:\s*[:：]|(?=\s)|$)\s*(?P<value>.*)$", re.IGNORECASE)
_LABEL_CELL = re.compile(rf"^(?:{_ALTERNATION})\s*[:：]?$", re.IGNORECASE)

# Bullets and numbering people put before a label: "- ", "• ", "1. ", "2) ".
_BULLET = re.compile(r"^(?:[-*•·▪►]|\(?[0-9๐-๙]{1,2}[.)])\s+")


def _matched_field(m: re.Match[str]) -> Field:
    return next(fld for i, (_, fld) in enumerate(_LABEL_ORDER) if m.group(f"l{i}") is not None)


def label_line(line: str) -> tuple[Field, str] | None:
    """(field, value as written) of a `label: value` line, or None when the line holds no label."""
    m = _LABEL_LINE.match(_BULLET.sub("", line.strip()))
    return (_matched_field(m), m.group("value").strip()) if m else None


def exact_label(cell: str) -> Field | None:
    """A table cell holding nothing but a label (a header cell, or the left cell of a label/value row)."""
    m = _LABEL_CELL.match(cell.strip())
    return _matched_field(m) if m else None
