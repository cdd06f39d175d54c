"""R1, R2, R5–R9: what a school may do to its roster during round 3, as pure checks.

Each operation's input is normalised here (IDs, names, grades) and refused with the rule's reason.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, EmailStr, Field

from domain.grades import grade_rank, normalise_grade
from domain.ids import is_gcode, normalise_name, normalise_student_id
from domain.refusals import invalid, refusal

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
        None, description="the academic year the student applies for; a new applicant for the next year is refused (R5)")
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
    left_on: date | None = None
    to_school: str | None = Field(None, max_length=200)
    reason: str | None = Field(None, max_length=500)


class StatusIn(BaseModel):
    status: Literal["studying", "transferred_out", "removed", "dropped_out", "deceased"]
    note: str | None = Field(None, max_length=500)


def check_admission(op: AdmissionOp, data: StudentIn, round_year: int) -> dict:
    """R2/R6: only students who sat the final exam here; R5: never next year's applicants. Answers the
    normalised student fields."""
    student_id = normalise_student_id(data.student)
    if op == "add_student_by_gcode" and not is_gcode(student_id):
        raise invalid("gcode_required", "เมนูเพิ่มนักเรียนจาก G-code ต้องใช้รหัส G (G ตามด้วยตัวเลข 12 หลัก)",
                      "Adding by G-code needs a G-code (G and 12 digits)")
    if data.entry_academic_year is not None and data.entry_academic_year > round_year:
        raise refusal("r5_applicant", f"ห้ามบันทึกนักเรียนที่มาสมัครใหม่ปีการศึกษา {data.entry_academic_year} (ข้อ 5)",
                      f"New applicants for academic year {data.entry_academic_year} must never be entered (R5)", 422)
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


def check_grade_edit(old_grade: str, new_grade: str) -> str:
    """R9: correcting a grade is an edit; moving a student up is promotion, the system's job after the round."""
    new = normalise_grade(new_grade)
    if grade_rank(new) > grade_rank(old_grade):
        raise refusal("r9_promotion", f"เปลี่ยนชั้นจาก {old_grade} เป็น {new} คือการเลื่อนชั้น ซึ่งระบบทำเองหลังปิดรอบ (ข้อ 9)",
                      f"Changing {old_grade} to {new} is a promotion, which the system does after the round (R9)", 422)
    return new


def check_update(current_grade: str, data: StudentUpdateIn) -> dict:
    changes = data.model_dump(exclude_unset=True)
    for key in ("prefix", "first_name", "last_name"):
        if changes.get(key) is not None:
            changes[key] = normalise_name(changes[key])
    if changes.get("grade") is not None:
        changes["grade"] = check_grade_edit(current_grade, changes["grade"])
    if not changes:
        raise invalid("nothing_to_change", "ไม่มีข้อมูลที่จะแก้ไข", "Nothing to change")
    return changes


def check_transfer_out(sat_final_exam_here: bool) -> None:
    """R7: transfer out only students who left before the final exam."""
    if sat_final_exam_here:
        raise refusal("r7_sat_final_exam",
                      "ย้ายออกไม่ได้: นักเรียนสอบปลายภาคที่โรงเรียนนี้แล้ว ย้ายออกได้เฉพาะผู้ที่ออกก่อนสอบปลายภาค (ข้อ 7)",
                      "Cannot transfer out: the student sat the final exam here; only students who left before it may be "
                      "transferred out (R7)", 422)


def check_status_change(status: str) -> None:
    if status == "dropped_out":
        raise refusal("r8_dropout_needs_consultation",
                      "บันทึกออกกลางคันได้หลังปรึกษาเขตพื้นที่เท่านั้น ให้ยื่นขอปรึกษาการออกกลางคัน (ข้อ 8)",
                      "A dropout is recorded only after consulting the district: request a dropout consultation (R8)", 409)
    if status == "transferred_out":
        raise invalid("use_transfer_out", "การย้ายออกให้ใช้เมนูย้ายออก", "Use transfer_out_student to transfer a student out")
