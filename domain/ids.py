"""Student identifiers: the Thai national ID (13 digits, check digit) and the ministry's G-code."""

from __future__ import annotations

import operator
import re
import unicodedata

from domain.refusals import Refusal, invalid
from domain.thai_time import arabic_digits

_SEPARATORS = re.compile(r"[\s\-‐‑‒–—_.]")
# [0-9], not \d: \d also matches other scripts' digits (e.g. Arabic-Indic), which must never be stored.
_NATIONAL = re.compile(r"^[0-8][0-9]{12}$")
_GCODE = re.compile(r"^G[0-9]{12}$")
_SCHOOL = re.compile(r"^[0-9]{10}$")


def _compact(raw: str) -> str:
    text = unicodedata.normalize("NFKC", arabic_digits(str(raw))).strip()
    return _SEPARATORS.sub("", text)


_WEIGHTS = range(13, 1, -1)
_THIRTEEN = re.compile(r"[0-9]{13}")


_ZEROS = sum(_WEIGHTS) * ord("0")


def national_id_check_digit(first12: str) -> int:
    # the digits' code points, weighted, less the zeros': each row of an export has one to check
    total = sum(map(operator.mul, first12.encode("ascii"), _WEIGHTS)) - _ZEROS
    return (11 - total % 11) % 10


def is_national_id(value: str) -> bool:
    return bool(_NATIONAL.match(value)) and national_id_check_digit(value[:12]) == int(value[12])


def _plain(raw: str) -> bool:
    """Already 13 Arabic digits, as nearly every cell of an export is: nothing to compact."""
    return len(raw) == 13 and raw.isascii() and raw.isdigit()


def normalise_national_id(raw: str) -> str:
    """Accepts Thai digits, dashes and spaces; answers 13 Arabic digits or raises a Refusal."""
    value = raw if _plain(raw) else _compact(raw)
    if not _THIRTEEN.fullmatch(value):
        raise invalid("national_id_format", "เลขประจำตัวประชาชนต้องมี 13 หลัก",
                      "A national ID has 13 digits")
    if value[0] == "9":
        raise invalid("national_id_first_digit", "เลขประจำตัวประชาชนหลักแรกต้องเป็น 0–8",
                      "The first digit of a national ID must be 0-8")
    if not is_national_id(value):
        raise invalid("national_id_check_digit", "เลขประจำตัวประชาชนไม่ถูกต้อง (หลักตรวจสอบไม่ตรง)",
                      "The national ID's check digit is wrong")
    return value


def normalise_gcode(raw: str) -> str:
    value = _compact(raw).upper()
    if not _GCODE.match(value):
        raise invalid("gcode_format", "รหัส G ต้องเป็นตัว G ตามด้วยตัวเลข 12 หลัก",
                      "A G-code is the letter G followed by 12 digits")
    return value


def normalise_student_id(raw: str) -> str:
    """A student's identifier as the roster holds it: a national ID or a G-code."""
    if _plain(raw):
        return normalise_national_id(raw)
    value = _compact(raw).upper()
    if value.startswith("G"):
        return normalise_gcode(value)
    return normalise_national_id(value)


def is_gcode(value: str) -> bool:
    return bool(_GCODE.match(value))


# What a clerk calls the identifier: "เลขประจำตัวนักเรียน" is the school's own student number, never this.
NATIONAL_ID_TERM = ("เลขประจำตัวประชาชน", "national ID")
GCODE_TERM = ("รหัส G", "G-code")


def id_term(student_id: str) -> tuple[str, str]:
    """(Thai, English) name of a roster identifier: a national ID, or a G-code for a student without one."""
    return GCODE_TERM if str(student_id).upper().startswith("G") else NATIONAL_ID_TERM


def normalise_school_code(raw: str) -> str:
    value = _compact(raw)
    if not _SCHOOL.match(value):
        raise invalid("school_code_format", "รหัสโรงเรียนต้องเป็นตัวเลข 10 หลัก",
                      "A school code has 10 digits")
    return value


def normalise_name(raw: str) -> str:
    """Thai names: NFC, inner whitespace collapsed, trimmed; NIKHAHIT + SARA AA typed for SARA AM is
    folded into SARA AM (NFC keeps them apart, and they look identical on screen)."""
    text = unicodedata.normalize("NFC", str(raw)).replace("\u0e4d\u0e32", "\u0e33")
    return re.sub(r"\s+", " ", text).strip()


def masked(student_id: str) -> str:
    """For logs and error texts read by others: never the whole ID."""
    return student_id[:1] + "•" * (len(student_id) - 4) + student_id[-3:] if len(student_id) > 4 else "•••"


__all__ = [
    "GCODE_TERM", "NATIONAL_ID_TERM", "Refusal", "id_term", "is_gcode", "is_national_id", "masked",
    "national_id_check_digit", "normalise_gcode", "normalise_name", "normalise_national_id",
    "normalise_school_code", "normalise_student_id",
]
