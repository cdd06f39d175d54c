"""R1, R2, R5–R9 as pure checks."""

from __future__ import annotations

import pytest

from domain.refusals import Refusal
from domain.roster_rules import (
    StudentIn, StudentUpdateIn, check_admission, check_grade_edit, check_status_change, check_transfer_out, check_update,
)

BASE = dict(student="๑-๔๔๙๙-๐๐๐๐๐-๐๑-๘", first_name=" ปวีณา ", last_name="พลอยงาม", grade="ม 1", sat_final_exam_here=True)


def code_of(fn, *args) -> str:
    with pytest.raises(Refusal) as refused:
        fn(*args)
    assert refused.value.message_th and refused.value.message_en
    return refused.value.code


@pytest.mark.parametrize("op", ["add_student", "transfer_in_student"])
def test_admission_normalises_and_applies_r2_r5_r6(op):
    fields = check_admission(op, StudentIn(**BASE), 2566)
    assert (fields["student_id"], fields["first_name"], fields["grade"]) == ("1449900000018", "ปวีณา", "ม.1")
    assert code_of(check_admission, op, StudentIn(**{**BASE, "sat_final_exam_here": False}), 2566) == "r6_no_final_exam"
    assert code_of(check_admission, op, StudentIn(**{**BASE, "entry_academic_year": 2567}), 2566) == "r5_applicant"
    check_admission(op, StudentIn(**{**BASE, "entry_academic_year": 2566}), 2566)
    assert code_of(check_admission, op, StudentIn(**{**BASE, "grade": "ม.7"}), 2566) == "grade_format"


def test_add_by_gcode_needs_a_gcode():
    assert code_of(check_admission, "add_student_by_gcode", StudentIn(**BASE), 2566) == "gcode_required"
    fields = check_admission("add_student_by_gcode", StudentIn(**{**BASE, "student": "g664400000008"}), 2566)
    assert fields["student_id"] == "G664400000008"


@pytest.mark.parametrize(("old", "new", "allowed"), [
    ("ม.2", "ม.3", False), ("ม.2", "ม.6", False), ("ป.6", "ม.1", False), ("อ.3", "ป.1", False),
    ("ม.2", "ม.2", True), ("ม.2", "ม.1", True), ("ม.1", "ป.6", True),
])
def test_r9_a_grade_edit_that_is_a_promotion_is_refused(old, new, allowed):
    if allowed:
        assert check_grade_edit(old, new) == new
    else:
        assert code_of(check_grade_edit, old, new) == "r9_promotion"


def test_update_normalises_names_and_refuses_nothing_to_change():
    assert check_update("ม.2", StudentUpdateIn(first_name="  สม  ชาย ")) == {"first_name": "สม ชาย"}
    assert code_of(check_update, "ม.2", StudentUpdateIn()) == "nothing_to_change"


def test_r7_and_r8():
    assert code_of(check_transfer_out, True) == "r7_sat_final_exam"
    check_transfer_out(False)
    assert code_of(check_status_change, "dropped_out") == "r8_dropout_needs_consultation"
    assert code_of(check_status_change, "transferred_out") == "use_transfer_out"
    check_status_change("deceased")
