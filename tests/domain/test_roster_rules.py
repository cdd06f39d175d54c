"""R1, R2, R5–R9 as pure checks."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from domain.refusals import Refusal
from domain.roster_file import HEADERS, parse_roster
from domain.roster_rules import (
    StudentIn, StudentUpdateIn, check_admission, check_entry_year, check_grade_edit, check_removal, check_return,
    check_status_change, check_transfer_out, check_update,
)

BASE = dict(student="๑-๔๔๙๙-๐๐๐๐๐-๐๑-๘", first_name=" ปวีณา ", last_name="พลอยงาม", grade="ม 1", sat_final_exam_here=True)


def code_of(fn, *args, **kwargs) -> str:
    with pytest.raises(Refusal) as refused:
        fn(*args, **kwargs)
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


@pytest.mark.parametrize("op", ["add_student", "transfer_in_student", "add_student_by_gcode"])
@pytest.mark.parametrize(("year", "code"), [
    (2024, "entry_year_not_be"), (2566, None), (2560, None), (2567, "r5_applicant"), (2568, "r5_applicant"),
    (66, "entry_year_not_be"), (0, "entry_year_not_be"), (-2566, "entry_year_not_be"), (None, None),
])
def test_r5_entry_year_is_be_and_never_next_years_applicant(op, year, code):
    """R5 wherever a student enters: a CE year (2024) is refused saying years are BE, and 2567's
    applicants are refused in round 3 of 2566 (a CE 2024 used to pass: it is not > 2566)."""
    student = "G664400000008" if op == "add_student_by_gcode" else BASE["student"]
    data = StudentIn(**{**BASE, "student": student, "entry_academic_year": year})
    if code is None:
        check_admission(op, data, 2566)
        return
    with pytest.raises(Refusal) as refused:
        check_admission(op, data, 2566)
    r = refused.value
    assert (r.code, r.status) == (code, 422)
    if code == "entry_year_not_be":
        assert r.message_th.startswith("ปีการศึกษาที่เข้าเรียนต้องเป็นปีพุทธศักราช (พ.ศ.)") and "Buddhist-Era" in r.message_en
    else:
        assert r.message_th.startswith(f"ห้ามบันทึกนักเรียนที่มาสมัครใหม่ปีการศึกษา {year}") and "(ข้อ 5)" in r.message_th


def test_r5_a_ce_year_is_shown_as_the_be_year_it_means():
    with pytest.raises(Refusal) as refused:
        check_entry_year(2024, 2566)
    assert "ค.ศ. 2024 คือ พ.ศ. 2567" in refused.value.message_th and "CE 2024 is BE 2567" in refused.value.message_en
    check_entry_year(None, 2566)


def test_r5_the_import_reads_the_optional_entry_year_column():
    header = [*list(HEADERS)[:12], "ปีการศึกษาที่เข้าเรียน"]
    cells = ["1044449001", "ก", "1449900000018", "ม.1", "1", "1", "ช", "เด็กชาย", "ปวีณา", "พลอยงาม", "02/02/2555", "ใช่"]
    data = "\r\n".join(",".join(r) for r in [header, [*cells, "๒๕๖๗"], [*cells[:2], "1449900000026", *cells[3:], ""],
                                               [*cells[:2], "1449900000034", *cells[3:], "ปีหน้า"]]).encode()
    parsed = parse_roster(data, "roster.csv")
    assert [r.entry_academic_year for r in parsed.rows] == [2567, None]
    assert [(i.row, i.column, i.code) for i in parsed.issues] == [(4, "ปีการศึกษาที่เข้าเรียน", "entry_year_format")]


@pytest.mark.parametrize(("old", "new", "allowed"), [
    ("ม.2", "ม.3", False), ("ม.2", "ม.6", False), ("ป.6", "ม.1", False), ("อ.3", "ป.1", False),
    ("ม.2", "ม.2", True), ("ม.2", "ม.1", True), ("ม.1", "ป.6", True),
])
def test_r9_moving_a_class_up_without_a_reason_is_refused_as_no_roster_edit(old, new, allowed):
    if allowed:
        assert check_grade_edit(old, new) == new
        return
    with pytest.raises(Refusal) as refused:
        check_grade_edit(old, new)
    r = refused.value
    assert (r.code, r.status) == ("grade_up_needs_reason", 422)
    # the message says what the letter says: promotion follows from 3.2.2; it no longer blames ข้อ 9
    assert "เหตุผล" in r.message_th and "3.2.2" in r.message_th and "ข้อ 9" not in r.message_th
    assert "3.2.2" in r.message_en and "(R9)" not in r.message_en
    assert code_of(check_grade_edit, old, new, "   ") == "grade_up_needs_reason"


def test_r9_an_upward_class_correction_with_its_reason_is_allowed():
    """แก้ไขชั้นเรียน: a student recorded as ม.1 who is in ม.2 is corrected, with the reason (it used to
    be refused as a promotion, citing ข้อ 9)."""
    assert check_grade_edit("ม.1", "ม 2", "บันทึกชั้นผิดตอนย้ายเข้า") == "ม.2"
    changes = check_update("ม.1", StudentUpdateIn(grade="ม.2", classroom="3"), "บันทึกชั้นผิด")
    assert changes == {"grade": "ม.2", "classroom": "3"}  # the reason is audited, never a student field
    assert code_of(check_update, "ม.1", StudentUpdateIn(grade="ม.2")) == "grade_up_needs_reason"


def test_update_normalises_names_and_refuses_nothing_to_change():
    assert check_update("ม.2", StudentUpdateIn(first_name="  สม  ชาย ")) == {"first_name": "สม ชาย"}
    assert code_of(check_update, "ม.2", StudentUpdateIn()) == "nothing_to_change"


EXAM = date(2024, 3, 29)  # the round's final-exam date
TODAY = date(2024, 4, 10)


def test_r7_a_student_who_left_on_or_before_the_exam_is_transferred_out():
    check_transfer_out("studying", date(2024, 2, 1), EXAM, TODAY)
    check_transfer_out("studying", EXAM, EXAM, TODAY)  # left on the exam's day: did not sit it here


def test_r7_a_student_who_sat_the_exam_here_stays_with_the_rules_reason():
    # no day given: the roster says the student sat the exam here (every student on it did)
    assert code_of(check_transfer_out, "studying", None, EXAM, TODAY) == "r7_sat_final_exam"
    with pytest.raises(Refusal) as refused:
        check_transfer_out("studying", EXAM + timedelta(days=1), EXAM, TODAY)  # the day after the exam
    r = refused.value
    assert (r.code, r.status) == ("r7_sat_final_exam", 422)
    assert r.message_th.startswith("ย้ายออกไม่ได้") and "(ข้อ 7)" in r.message_th and "29 มี.ค. 2567" in r.message_th
    assert "(R7)" in r.message_en


def test_r7_the_day_a_student_left_is_not_in_the_future():
    check_transfer_out("studying", TODAY, date(2024, 4, 30), TODAY)
    assert code_of(check_transfer_out, "studying", TODAY + timedelta(days=1), date(2024, 4, 30), TODAY) \
        == "left_on_in_future"


def test_r7_only_a_studying_student_is_transferred_out():
    for status in ("transferred_out", "dropped_out", "removed", "deceased"):
        assert code_of(check_transfer_out, status, date(2024, 2, 1), EXAM, TODAY) == "not_studying"


def test_staff_set_only_a_death_with_its_evidence():
    assert code_of(check_status_change, "dropped_out") == "r8_dropout_needs_consultation"
    assert code_of(check_status_change, "transferred_out") == "use_transfer_out"
    with pytest.raises(Refusal) as refused:  # R4, R7, R8 are not to be gone round by removing
        check_status_change("removed", "ผิด")
    assert (refused.value.code, refused.value.status) == ("removal_is_district", 403)
    assert refused.value.message_th.startswith("การลบนักเรียนออกจากทะเบียนเป็นอำนาจของเขตพื้นที่")
    assert code_of(check_status_change, "studying", "กลับมา") == "reactivate_by_admission"
    assert code_of(check_status_change, "deceased", "  ") == "status_note_required"
    assert check_status_change("deceased", " ใบมรณบัตร ") == "ใบมรณบัตร"


def test_removal_is_always_with_a_reason():
    assert check_removal("studying", "  เลขประจำตัวประชาชนซ้ำกับนักเรียนอีกคน ") == "เลขประจำตัวประชาชนซ้ำกับนักเรียนอีกคน"
    assert code_of(check_removal, "studying", "   ") == "removal_reason_required"
    assert code_of(check_removal, "studying", None) == "removal_reason_required"
    assert code_of(check_removal, "removed", "อีกครั้ง") == "already_removed"


@pytest.mark.parametrize("by_import", [True, False])
def test_a_return_to_the_roster_never_undoes_a_decision(by_import):
    """R8's dropout, the district's removal and a death stay, whichever way the student is added again."""
    assert code_of(check_return, "dropped_out", None, by_import=by_import) == "r8_dropped_out"
    assert code_of(check_return, "removed", None, by_import=by_import) == "removed_by_district"
    assert code_of(check_return, "deceased", None, by_import=by_import) == "student_deceased"
    check_return("transferred_out", None, by_import=by_import)  # e.g. a lost duplicate case: R3 decides, as for anyone


def test_a_student_who_left_before_the_exam_comes_back_by_transfer_in_not_by_an_old_export():
    assert code_of(check_return, "transferred_out", date(2024, 2, 1), by_import=True) == "r7_left_before_exam"
    check_return("transferred_out", date(2024, 2, 1), by_import=False)  # transfer in: "sat the exam here" (R6)
