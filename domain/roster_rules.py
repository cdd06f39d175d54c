"""R1, R2, R5–R9: what a school may do to its roster during round 3, as pure checks.

Each operation's input is normalised here (IDs, names, grades) and refused with the rule's reason. A student
leaves the roster only the ways the letter gives a school (transfer out before the final exam, R7; a dropout after
consulting the district, R8; a death) or by the district's removal, with its reason; one comes back only through
the admission rules (R2, R3, R5, R6, R8).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, EmailStr, Field

from domain.grades import grade_rank, normalise_grade
from domain.ids import is_gcode, normalise_name, normalise_student_id
from domain.refusals import invalid, refusal
from domain.thai_time import thai_date

AdmissionOp = Literal["add_student", "transfer_in_student", "add_student_by_gcode"]
STATUSES = ("studying", "transferred_out", "removed", "dropped_out", "deceased")


class SchoolProfileIn(BaseModel):
    """R1: the school's basic data."""

    name: str | None = Field(None, min_length=1, max_length=200)
    phone: str | None = Field(None, max_length=40)
    address: str | None = Field(None, max_length=500)
    director_name: str | None = Field(None, max_length=200)
    emails: list[EmailStr] | None = Field(None, max_length=20)


class StudentIn(BaseModel):
    """A student added to the roster (add, transfer in, add by G-code)."""

    student: str = Field(description="national ID or G-code; Thai digits, dashes, spaces accepted")
    prefix: str = Field("", max_length=40)
    first_name: str = Field(min_length=1, max_length=120)
    last_name: str = Field(min_length=1, max_length=120)
    gender: str = Field("", max_length=4)
    grade: str
    classroom: str = Field("", max_length=10)
    student_no: str = Field("", max_length=20)
    birth_date: date | None = None
    sat_final_exam_here: bool = Field(description="sat the AY 2566 final exam at this school (R2, R6)")
    entry_academic_year: int | None = Field(
        None, description="the Buddhist-Era academic year the student entered for (e.g. 2566); an applicant for "
                          "the next year (2567) is refused (R5), a Christian-Era year (2024) too")
    from_school: str | None = Field(None, max_length=200, description="transfer in: the school the student comes from")


class StudentUpdateIn(BaseModel):
    """R9: classroom, grade, name and general edits."""

    prefix: str | None = Field(None, max_length=40)
    first_name: str | None = Field(None, min_length=1, max_length=120)
    last_name: str | None = Field(None, min_length=1, max_length=120)
    gender: str | None = Field(None, max_length=4)
    grade: str | None = None
    classroom: str | None = Field(None, max_length=10)
    student_no: str | None = Field(None, max_length=20)
    birth_date: date | None = None


class TransferOutIn(BaseModel):
    left_on: date | None = Field(
        None, description="R7: the day the student left the school: on or before the round's final-exam date, and not "
                          "in the future. Required, since a student on the roster is one who sat the exam here")
    to_school: str | None = Field(None, max_length=200)
    reason: str | None = Field(None, max_length=500)


class StatusIn(BaseModel):
    status: Literal["studying", "transferred_out", "removed", "dropped_out", "deceased"] = Field(
        description="only `deceased` is set here (with its note); a transfer out has its own operation (R7), a "
                    "dropout needs the district's consultation (R8), removal is the district's, and a student comes "
                    "back only through the admission operations")
    note: str | None = Field(None, max_length=500, description="the evidence, e.g. the death certificate's number")


class RemovalIn(BaseModel):
    """The district's removal of a record from a school's roster (a record that should never have been there)."""

    reason: str = Field(min_length=1, max_length=1000, description="why the record is removed; audited")


def check_admission(op: AdmissionOp, data: StudentIn, round_year: int) -> dict:
    """R2/R6: only students who sat the final exam here; R5: never next year's applicants. Answers the
    normalised student fields."""
    student_id = normalise_student_id(data.student)
    if op == "add_student_by_gcode" and not is_gcode(student_id):
        raise invalid("gcode_required", "เมนูเพิ่มนักเรียนจาก G-code ต้องใช้รหัส G (G ตามด้วยตัวเลข 12 หลัก)",
                      "Adding by G-code needs a G-code (G and 12 digits)")
    check_entry_year(data.entry_academic_year, round_year)
    if not data.sat_final_exam_here:
        raise refusal("r6_no_final_exam",
                      f"เพิ่ม/ย้ายเข้าได้เฉพาะนักเรียนที่สอบปลายภาคปีการศึกษา {round_year} ที่โรงเรียนนี้ (ข้อ 2, 6)",
                      f"Only students who sat the AY {round_year} final exam at this school may be added (R2, R6)", 422)
    return {
        "student_id": student_id, "prefix": normalise_name(data.prefix), "first_name": normalise_name(data.first_name),
        "last_name": normalise_name(data.last_name), "gender": data.gender.strip(), "grade": normalise_grade(data.grade),
        "classroom": data.classroom.strip(), "student_no": data.student_no.strip(), "birth_date": data.birth_date,
        "sat_final_exam": True,
    }


# Academic years are Buddhist Era (BE = CE + 543); a year below this is a CE year or a typing slip.
FIRST_BE_YEAR = 2500


def check_entry_year(year: int | None, round_year: int) -> None:
    """R5: the academic year a student entered for is a BE year, and never one after the round's (an
    applicant for next year, e.g. 2567 in round 3 of 2566, must never be entered). Unknown is allowed:
    the DMC export does not carry it."""
    if year is None:
        return
    if year < FIRST_BE_YEAR:
        looks_ce = 1900 <= year <= 2200
        hint_th = f" (ค.ศ. {year} คือ พ.ศ. {year + 543})" if looks_ce else ""
        hint_en = f" (CE {year} is BE {year + 543})" if looks_ce else ""
        raise invalid("entry_year_not_be",
                      f"ปีการศึกษาที่เข้าเรียนต้องเป็นปีพุทธศักราช (พ.ศ.) เช่น {round_year}{hint_th}",
                      f"The entry academic year must be a Buddhist-Era year, e.g. {round_year}{hint_en}")
    if year > round_year:
        raise refusal("r5_applicant",
                      f"ห้ามบันทึกนักเรียนที่มาสมัครใหม่ปีการศึกษา {year} เข้าระบบ: รอบนี้เป็นข้อมูลปีการศึกษา {round_year} (ข้อ 5)",
                      f"Applicants for academic year {year} must never be entered: this round holds "
                      f"AY {round_year} (R5)", 422)


def check_grade_edit(old_grade: str, new_grade: str, reason: str | None = None) -> str:
    """R9 allows correcting a class (แก้ไขชั้นเรียน). Moving a student down is an ordinary edit; moving
    one up is allowed as a correction with its reason (a student recorded as ม.1 who is in ม.2), and
    audited. Without a reason it looks like promotion for next year, which is no roster edit: it follows
    from the 3.2.2 results after the round (an import, which carries no reason, never moves anyone up)."""
    new = normalise_grade(new_grade)
    if grade_rank(new) > grade_rank(old_grade) and not (reason or "").strip():
        raise invalid(
            "grade_up_needs_reason",
            f"เปลี่ยนชั้นจาก {old_grade} เป็น {new} ต้องระบุเหตุผลการแก้ไขชั้นเรียน (เช่น บันทึกชั้นไว้ผิด) "
            "การเลื่อนชั้นสำหรับปีการศึกษาหน้าไม่ต้องแก้ในทะเบียน เพราะเป็นไปตามผลสิ้นปีในเมนู 3.2.2 หลังปิดรอบ",
            f"Changing {old_grade} to {new} needs the reason for correcting the class (e.g. recorded wrongly); "
            "promotion for next year is not a roster edit: it follows from the menu 3.2.2 results after the round")
    return new


def check_update(current_grade: str, data: StudentUpdateIn, reason: str | None = None) -> dict:
    """R9's edits, normalised; `reason` is the clerk's reason for the change (needed to move a class up)."""
    changes = data.model_dump(exclude_unset=True)
    for key in ("prefix", "first_name", "last_name"):
        if changes.get(key) is not None:
            changes[key] = normalise_name(changes[key])
    if changes.get("grade") is not None:
        changes["grade"] = check_grade_edit(current_grade, changes["grade"], reason)
    if not changes:
        raise invalid("nothing_to_change", "ไม่มีข้อมูลที่จะแก้ไข", "Nothing to change")
    return changes


def check_transfer_out(status: str, left_on: date | None, exam_date: date, today: date) -> None:
    """R7: "ย้ายออก สามารถย้ายนักเรียนที่ออกจากโรงเรียนก่อนสอบปลายภาค": only a studying student who left on or
    before the round's final-exam date, a day that has come. Without the day, the roster says the student sat the
    exam here (every student on it did, ข้อ 2), and so stays."""
    if status != "studying":
        raise refusal("not_studying", "ย้ายออกได้เฉพาะนักเรียนที่กำลังศึกษาอยู่ในทะเบียนของโรงเรียน",
                      "Only a student who is studying at the school can be transferred out", 409)
    exam, exam_th = exam_date.isoformat(), thai_date(exam_date)
    if left_on is None:
        raise refusal("r7_sat_final_exam",
                      "ย้ายออกไม่ได้: ทะเบียนบันทึกว่านักเรียนสอบปลายภาคที่โรงเรียนนี้ ย้ายออกได้เฉพาะผู้ที่ออกจากโรงเรียนก่อน"
                      f"สอบปลายภาค (วันสอบ {exam_th}) ให้ระบุวันที่นักเรียนออกจากโรงเรียน (ข้อ 7)",
                      "Cannot transfer out: the roster says the student sat the final exam here; only a student who "
                      f"left before the final exam ({exam}) may be transferred out: give the day they left (R7)", 422)
    if left_on > today:
        raise invalid("left_on_in_future",
                      f"วันที่ออกจากโรงเรียน ({thai_date(left_on)}) ต้องไม่เป็นวันในอนาคต",
                      f"The day the student left ({left_on.isoformat()}) cannot be in the future")
    if left_on > exam_date:
        raise refusal("r7_sat_final_exam",
                      f"ย้ายออกไม่ได้: นักเรียนออกจากโรงเรียนวันที่ {thai_date(left_on)} หลังวันสอบปลายภาค ({exam_th}) "
                      "จึงถือว่าสอบปลายภาคที่โรงเรียนนี้ ย้ายออกได้เฉพาะผู้ที่ออกก่อนสอบปลายภาค (ข้อ 7)",
                      f"Cannot transfer out: the student left on {left_on.isoformat()}, after the final exam ({exam}), "
                      "so sat it here; only students who left before it may be transferred out (R7)", 422)


def check_status_change(status: str, note: str | None = None) -> str:
    """What school staff may set through set_student_status: a death, with its evidence (answers the note, trimmed).
    Every other way off the roster has its own rule (R7 transfer out, R8 dropout after consulting the district,
    removal by the district), and the way back is an admission (R2, R3, R5, R6, R8)."""
    if status == "dropped_out":
        raise refusal("r8_dropout_needs_consultation",
                      "บันทึกออกกลางคันได้หลังปรึกษาเขตพื้นที่เท่านั้น ให้ยื่นขอปรึกษาการออกกลางคัน (ข้อ 8)",
                      "A dropout is recorded only after consulting the district: request a dropout consultation (R8)", 409)
    if status == "transferred_out":
        raise invalid("use_transfer_out", "การย้ายออกให้ใช้เมนูย้ายออก พร้อมวันที่นักเรียนออกจากโรงเรียน (ข้อ 7)",
                      "Use transfer_out_student, with the day the student left, to transfer a student out (R7)")
    if status == "removed":
        raise refusal("removal_is_district",
                      "การลบนักเรียนออกจากทะเบียนเป็นอำนาจของเขตพื้นที่ (พร้อมเหตุผล) โรงเรียนให้ใช้เมนูย้ายออก (ข้อ 7) "
                      "ขอปรึกษาการออกกลางคัน (ข้อ 8) หรือส่งอีเมลขอแก้ไขเลขประจำตัวประชาชน (ข้อ 4)",
                      "Removing a student from the roster is the district's, with a reason; a school transfers out "
                      "(R7), requests a dropout consultation (R8) or emails an ID correction (R4)", 403)
    if status == "studying":
        raise refusal("reactivate_by_admission",
                      "นำนักเรียนกลับเข้าทะเบียนให้ใช้เมนูเพิ่มนักเรียนหรือย้ายเข้า ซึ่งตรวจตามข้อ 2, 3, 5, 6 และ 8",
                      "A student comes back on the roster only by add_student or transfer_in_student, under R2, R3, R5, "
                      "R6 and R8", 409)
    note = (note or "").strip()
    if not note:
        raise invalid("status_note_required", "ต้องระบุหลักฐาน (เช่น เลขที่ใบมรณบัตร)",
                      "Give the evidence (e.g. the death certificate's number)")
    return note


def check_removal(status: str, reason: str | None) -> str:
    """The district removes a record from a school's roster, always with its reason; answers the reason, trimmed."""
    reason = (reason or "").strip()
    if not reason:
        raise invalid("removal_reason_required", "ต้องระบุเหตุผลที่ลบนักเรียนออกจากทะเบียน",
                      "Give the reason for removing the student from the roster")
    if status == "removed":
        raise refusal("already_removed", "นักเรียนคนนี้ถูกลบออกจากทะเบียนแล้ว",
                      "This student has already been removed from the roster")
    return reason


def check_return(status: str, left_on: date | None, *, by_import: bool) -> None:
    """A student who is on the school's records but not studying comes back only as an admission would let them in
    (R2, R3, R5 and R6 are checked by the caller as for anyone new); these are the records that say no:
    R8's dropout is the district's decision, a removal too, a death is final; and a student the school transferred
    out as having left before the final exam (R7) is not brought back by an import (an older export still lists
    them): one who came back and sat the exam here is transferred in, which says so."""
    if status == "dropped_out":
        raise refusal("r8_dropped_out",
                      "นักเรียนคนนี้ถูกบันทึกออกกลางคันตามการพิจารณาของเขตพื้นที่แล้ว นำกลับเข้าทะเบียนไม่ได้ (ข้อ 8)",
                      "This student was recorded as dropped out on the district's decision and cannot be put back on "
                      "the roster (R8)")
    if status == "removed":
        raise refusal("removed_by_district",
                      "นักเรียนคนนี้ถูกเขตพื้นที่ลบออกจากทะเบียนแล้ว นำกลับเข้าทะเบียนไม่ได้ หากเห็นว่าผิดพลาดให้ติดต่อเขตพื้นที่",
                      "The district removed this student from the roster; they cannot be put back (ask the district "
                      "if it was a mistake)")
    if status == "deceased":
        raise refusal("student_deceased",
                      "นักเรียนคนนี้ถูกบันทึกว่าเสียชีวิตแล้ว นำกลับเข้าทะเบียนไม่ได้ หากบันทึกผิดให้ติดต่อเขตพื้นที่",
                      "This student is recorded as deceased and cannot be put back on the roster (ask the district if "
                      "the record is wrong)")
    if status == "transferred_out" and left_on is not None and by_import:
        raise refusal("r7_left_before_exam",
                      f"นักเรียนคนนี้ย้ายออกแล้ว (ออกจากโรงเรียนวันที่ {thai_date(left_on)} ก่อนสอบปลายภาค) การนำเข้าจึงไม่นำ"
                      "กลับเข้าทะเบียน หากกลับมาเรียนและสอบปลายภาคที่โรงเรียนนี้ ให้ใช้เมนูย้ายเข้า (ข้อ 6, 7)",
                      f"This student was transferred out, having left on {left_on.isoformat()} before the final exam; "
                      "an import does not bring them back: one who returned and sat the exam here is transferred in "
                      "(R6, R7)")
