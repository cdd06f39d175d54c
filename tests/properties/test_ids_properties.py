"""Identifiers under any input (domain.md, "Identifiers"): a normalised value or a Refusal, nothing else."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.grades import normalise_grade
from domain.ids import (
    is_gcode,
    is_national_id,
    normalise_gcode,
    normalise_national_id,
    normalise_school_code,
    normalise_student_id,
)
from domain.refusals import Refusal
from domain.thai_time import thai_digits
from tests.hypothesis_profiles import examples

ID_CODES = {"national_id_format", "national_id_first_digit", "national_id_check_digit", "gcode_format"}
NORMALISERS = {
    normalise_national_id: {"national_id_format", "national_id_first_digit", "national_id_check_digit"},
    normalise_gcode: {"gcode_format"},
    normalise_student_id: ID_CODES,
    normalise_school_code: {"school_code_format"},
    normalise_grade: {"grade_format"},
}

# What people paste: digits of both scripts, the separators seen in the wild, G, and everything else.
id_like_text = st.one_of(
    st.text(),
    st.text(alphabet="0123456789๐๑๒๓๔๕๖๗๘๙-‐–— _.Gg\t\u00a0\u200b", max_size=20),
    st.text(alphabet=st.characters(categories=["Nd"]), max_size=16),  # other scripts' digits too
)


def spec_check_digit(first12: str) -> int:
    """The spec's formula, written out rather than imported (domain.md)."""
    return (11 - sum(int(d) * (13 - i) for i, d in enumerate(first12)) % 11) % 10


def spec_remainder(first12: str) -> int:
    return sum(int(d) * (13 - i) for i, d in enumerate(first12)) % 11


national_ids = st.builds(lambda first, rest: first + rest, st.sampled_from("012345678"),
                         st.text(alphabet="0123456789", min_size=11, max_size=11)
                         ).map(lambda f12: f12 + str(spec_check_digit(f12)))


def assert_refusal(exc: Refusal, codes: set[str]) -> None:
    assert exc.code in codes, exc.code
    assert exc.status == 422
    assert exc.message_th and exc.message_en and exc.message_th != exc.message_en


@pytest.mark.parametrize("normalise", NORMALISERS, ids=lambda f: f.__name__)
@settings(max_examples=examples(300))
@given(raw=id_like_text)
def test_any_text_is_normalised_or_refused_with_a_reason(normalise, raw):
    try:
        value = normalise(raw)
    except Refusal as exc:
        assert_refusal(exc, NORMALISERS[normalise])
        return
    assert value == value.strip()
    if normalise is normalise_national_id:
        assert is_national_id(value)
    elif normalise is normalise_gcode:
        assert is_gcode(value)
    elif normalise is normalise_student_id:
        assert is_national_id(value) or is_gcode(value)
    elif normalise is normalise_school_code:
        assert len(value) == 10 and value.isascii() and value.isdigit()
    else:
        assert value[0] in "อปม" and value[1] == "." and value[2] in "123456"
    # normalising is idempotent: a stored value reads back as itself
    assert normalise(value) == value


@settings(max_examples=examples(300))
@given(nid=national_ids, style=st.sampled_from(["plain", "printed", "thai", "thai_printed", "spaced", "padded"]))
def test_valid_national_ids_are_accepted_however_they_are_typed(nid, style):
    printed = f"{nid[0]}-{nid[1:5]}-{nid[5:10]}-{nid[10:12]}-{nid[12]}"  # x-xxxx-xxxxx-xx-x
    typed = {"plain": nid, "printed": printed, "thai": thai_digits(nid), "thai_printed": thai_digits(printed),
             "spaced": printed.replace("-", " "), "padded": f"  {printed.replace('-', '–')}\t"}[style]
    assert normalise_national_id(typed) == nid
    assert normalise_student_id(typed) == nid


@settings(max_examples=examples(500))
@given(nid=national_ids, position=st.integers(0, 12), new_digit=st.sampled_from("0123456789"))
def test_a_single_digit_changed_is_refused_unless_the_check_digit_cannot_see_it(nid, position, new_digit):
    """The ministry's check digit does not catch every typo, and the system must not pretend it does:
    the third digit has weight 11 (= 0 mod 11), and remainders 0 and 10 both give check digit 1.
    Every other single-digit change is refused."""
    assume(nid[position] != new_digit)
    changed = nid[:position] + new_digit + nid[position + 1:]
    invisible = position == 2 or (position < 12 and {spec_remainder(nid[:12]), spec_remainder(changed[:12])} == {0, 10})
    if new_digit == "9" and position == 0:
        with pytest.raises(Refusal) as exc:
            normalise_national_id(changed)
        assert exc.value.code == "national_id_first_digit"
    elif invisible:
        assert normalise_national_id(changed) == changed
    else:
        with pytest.raises(Refusal) as exc:
            normalise_national_id(changed)
        assert exc.value.code == "national_id_check_digit"


@settings(max_examples=examples(200))
@given(digits=st.text(alphabet="0123456789", min_size=12, max_size=12), lower=st.booleans(), thai=st.booleans(),
       dashed=st.booleans())
def test_gcodes_normalise_to_capital_g_and_12_arabic_digits(digits, lower, thai, dashed):
    body = thai_digits(digits) if thai else digits
    typed = ("g" if lower else "G") + (f"{body[:2]}-{body[2:6]}-{body[6:]}" if dashed else body)
    assert normalise_gcode(typed) == normalise_student_id(typed) == "G" + digits
    with pytest.raises(Refusal) as exc:
        normalise_national_id(typed)  # a G-code is never a national ID (the new ID of a correction)
    assert exc.value.code == "national_id_format"


@settings(max_examples=examples(200))
@given(digits=st.text(alphabet="0123456789", min_size=0, max_size=16))
def test_gcodes_of_the_wrong_length_are_refused(digits):
    assume(len(digits) != 12)
    with pytest.raises(Refusal) as exc:
        normalise_student_id("G" + digits)
    assert exc.value.code == "gcode_format"
