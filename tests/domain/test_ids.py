"""National ID, G-code, school code and names (domain.md, "Identifiers")."""

from __future__ import annotations

import csv
import io
import unicodedata

import pytest

from domain.ids import (
    is_gcode,
    is_national_id,
    normalise_gcode,
    normalise_name,
    normalise_national_id,
    normalise_school_code,
    normalise_student_id,
)
from domain.refusals import Refusal


def spec_check_digit(first12: str) -> int:
    """The spec's formula, written out here on purpose rather than imported:
    (11 - sum(d[i] * (13 - i) for i in 0..11) mod 11) mod 10."""
    assert len(first12) == 12 and first12.isascii() and first12.isdigit()
    total = 0
    for i in range(12):
        total += int(first12[i]) * (13 - i)
    return (11 - (total % 11)) % 10


def assert_refused(exc: pytest.ExceptionInfo, code: str) -> None:
    refusal = exc.value
    assert isinstance(refusal, Refusal)
    assert refusal.code == code
    # Thai first, English beside it: both present, and the Thai one really is Thai.
    assert refusal.message_th and any("\u0e00" <= ch <= "\u0e7f" for ch in refusal.message_th)
    assert refusal.message_en and refusal.message_en.isascii()
    assert refusal.as_dict() == {"code": code, "message_th": refusal.message_th, "message_en": refusal.message_en}
    assert refusal.status == 422  # bad input, not a conflict


# --- the check digit ---------------------------------------------------------------------------

# Worked by hand from the spec formula (weights 13..2):
#   1-1037-02071-81-?  13+12+0+30+63+0+14+0+35+4+24+2 = 197; 197 mod 11 = 10; 11-10 = 1
#   1-4499-00000-01-?  13+48+44+90+81+0+0+0+0+0+0+2 = 278; 278 mod 11 = 3; 11-3 = 8
#   0-0000-00000-00-?  sum 0;  11-0 = 11; 11 mod 10 = 1   (the "mod 10" case)
#   0-1000-00000-00-?  sum 12; 12 mod 11 = 1; 11-1 = 10; 10 mod 10 = 0
#   0-0100-00000-00-?  sum 11; 11 mod 11 = 0; 11-0 = 11 -> 1
HAND_WORKED = {
    "110370207181": 1,
    "144990000001": 8,
    "000000000000": 1,
    "010000000000": 0,
    "001000000000": 1,
}


@pytest.mark.parametrize("first12,expected", sorted(HAND_WORKED.items()))
def test_check_digit_matches_hand_worked_examples(first12, expected):
    assert spec_check_digit(first12) == expected  # the helper itself is right
    full = first12 + str(expected)
    assert is_national_id(full)
    assert normalise_national_id(full) == full


@pytest.mark.parametrize("first12", ["310120034567", "576543210987", "812345678901", "234567890123", "099999999999"])
def test_exactly_one_check_digit_is_accepted(first12):
    good = spec_check_digit(first12)
    for digit in range(10):
        candidate = f"{first12}{digit}"
        if digit == good:
            assert normalise_national_id(candidate) == candidate
        else:
            with pytest.raises(Refusal) as exc:
                normalise_national_id(candidate)
            assert_refused(exc, "national_id_check_digit")


def test_sample_roster_ids_are_valid(sample_roster_bytes):
    rows = list(csv.DictReader(io.StringIO(sample_roster_bytes.decode("utf-8-sig"))))
    ids = [row["เลขประจำตัวประชาชน"] for row in rows]
    national = [i for i in ids if not i.startswith("G")]
    gcodes = [i for i in ids if i.startswith("G")]
    assert len(national) == 14 and len(gcodes) == 2
    for value in national:
        assert int(value[12]) == spec_check_digit(value[:12]), value
        assert normalise_national_id(value) == value
        assert normalise_student_id(value) == value
    for value in gcodes:
        assert normalise_student_id(value) == value


def test_first_digit_nine_is_refused_even_with_a_correct_check_digit():
    first12 = "910370207181"
    value = first12 + str(spec_check_digit(first12))
    with pytest.raises(Refusal) as exc:
        normalise_national_id(value)
    assert_refused(exc, "national_id_first_digit")
    assert not is_national_id(value)


@pytest.mark.parametrize("first", "012345678")
def test_first_digits_zero_to_eight_are_accepted(first):
    first12 = first + "10370207181"
    value = first12 + str(spec_check_digit(first12))
    assert normalise_national_id(value) == value


@pytest.mark.parametrize("raw", ["", "144990000001", "14499000000188", "1449900000O18", "abc", "1449900000018x"])
def test_wrong_length_or_letters_are_a_format_refusal(raw):
    with pytest.raises(Refusal) as exc:
        normalise_national_id(raw)
    assert_refused(exc, "national_id_format")


# --- normalisation of what clerks type -----------------------------------------------------------

@pytest.mark.parametrize("raw", [
    "1-1037-02071-81-1",          # the printed form
    "1 1037 02071 81 1",
    "  1103702071811  ",
    "๑๑๐๓๗๐๒๐๗๑๘๑๑",              # Thai digits
    "๑-๑๐๓๗-๐๒๐๗๑-๘๑-๑",          # Thai digits, printed form
    "1–1037–02071–81–1",          # en dashes from a word processor
    "１１０３７０２０７１８１１",    # full-width digits from a Thai/CJK input method
    "1-1037-02071-81-1\u00a0",   # a non-breaking space pasted from a web page
])
def test_national_id_normalised_to_13_arabic_digits(raw):
    assert normalise_national_id(raw) == "1103702071811"
    assert normalise_student_id(raw) == "1103702071811"


def test_other_scripts_digits_are_never_stored():
    # Arabic-Indic digits are "digits" to Python's \d but not to the ministry: never store them as they came.
    raw = "١١٠٣٧٠٢٠٧١٨١١"
    with pytest.raises(Refusal) as exc:
        normalise_national_id(raw)
    assert_refused(exc, "national_id_format")
    with pytest.raises(Refusal) as exc:
        normalise_school_code("١٠٤٤٤٤٩٠٠١")
    assert_refused(exc, "school_code_format")
    with pytest.raises(Refusal) as exc:
        normalise_gcode("G١٢٣٤٥٦٧٨٩٠١٢")
    assert_refused(exc, "gcode_format")


# --- G-code ------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["G664400000008", "g664400000008", " G-66-44-00000008 ", "G๖๖๔๔๐๐๐๐๐๐๐๘"])
def test_gcode_accepted_and_normalised(raw):
    assert normalise_gcode(raw) == "G664400000008"
    assert normalise_student_id(raw) == "G664400000008"
    assert is_gcode("G664400000008")


@pytest.mark.parametrize("raw", ["G66440000000", "G6644000000081", "X664400000008", "G66440000000A", "G", "664400000008G"])
def test_gcode_refused(raw):
    with pytest.raises(Refusal) as exc:
        normalise_gcode(raw)
    assert_refused(exc, "gcode_format")


def test_student_id_routes_g_prefix_to_gcode_rules():
    with pytest.raises(Refusal) as exc:
        normalise_student_id("G12")
    assert_refused(exc, "gcode_format")  # not a national-ID message for a G-code
    with pytest.raises(Refusal) as exc:
        normalise_student_id("1103702071813")
    assert_refused(exc, "national_id_check_digit")


# --- school code -------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["1044449001", " 1044449001 ", "๑๐๔๔๔๔๙๐๐๑", "10-4444-9001"])
def test_school_code_ten_digits(raw):
    assert normalise_school_code(raw) == "1044449001"


@pytest.mark.parametrize("raw", ["104444900", "10444490011", "104444900A", "", "สพม.มหาสารคาม"])
def test_school_code_refused(raw):
    with pytest.raises(Refusal) as exc:
        normalise_school_code(raw)
    assert_refused(exc, "school_code_format")


# --- names -------------------------------------------------------------------------------------

def test_name_trimmed_and_inner_whitespace_collapsed():
    assert normalise_name("  ปวีณา \t  พลอยงาม \n") == "ปวีณา พลอยงาม"


def test_thai_tone_mark_typed_before_the_vowel_is_the_same_name():
    # ปู่ typed as consonant + tone mark (U+0E48, ccc 107) + sara uu (U+0E39, ccc 103): canonical order puts
    # the vowel first. Both typings look identical on screen and must be stored as one name.
    typed = "\u0e1b\u0e48\u0e39"
    canonical = "\u0e1b\u0e39\u0e48"
    assert typed != canonical
    assert normalise_name(typed) == canonical
    assert normalise_name(canonical) == canonical
    assert normalise_name(f" ธนากร {typed}") == f"ธนากร {canonical}"


def test_decomposed_name_is_composed():
    composed = "Chloé Nguyễn"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed and len(decomposed) > len(composed)
    assert normalise_name(decomposed) == composed
    assert unicodedata.is_normalized("NFC", normalise_name("  " + decomposed + "  "))


def test_thai_name_survives_unchanged():
    name = "ภูมิพัฒน์ ศรีบุญเรือง"
    assert normalise_name(unicodedata.normalize("NFD", name)) == name


def test_sara_am_typed_as_nikhahit_and_sara_aa_is_one_name():
    from domain.ids import normalise_name

    assert normalise_name("ค\u0e4d\u0e32มูล") == normalise_name("คำมูล") == "คำมูล"
