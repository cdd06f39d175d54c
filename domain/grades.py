"""Grade levels อ.1–3, ป.1–6, ม.1–6 and which of them graduate."""

from __future__ import annotations

import re

from domain.refusals import invalid
from domain.thai_time import arabic_digits

_LEVELS = {"อ": 3, "ป": 6, "ม": 6}
_GRADE = re.compile(r"^(อ|ป|ม)\s*\.?\s*([0-9])$")  # [0-9]: \d would keep other scripts' digits
GRADUATING = {"ป.6", "ม.3", "ม.6"}
_ORDER = [f"อ.{i}" for i in range(1, 4)] + [f"ป.{i}" for i in range(1, 7)] + [f"ม.{i}" for i in range(1, 7)]


def normalise_grade(raw: str) -> str:
    match = _GRADE.match(arabic_digits(str(raw)).strip())
    if not match or not 1 <= int(match.group(2)) <= _LEVELS[match.group(1)]:
        raise invalid("grade_format", "ชั้นเรียนต้องเป็น อ.1–3, ป.1–6 หรือ ม.1–6",
                      "A grade is one of อ.1–3, ป.1–6, ม.1–6")
    return f"{match.group(1)}.{match.group(2)}"


def grade_rank(grade: str) -> int:
    return _ORDER.index(grade)


def is_graduating(grade: str) -> bool:
    return grade in GRADUATING
