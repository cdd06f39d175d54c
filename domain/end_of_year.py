"""R10: end-of-year menus 3.2.2 (result), 3.2.2.1 (reasons for repeating), 3.2.2.2 (destination)."""

from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import BaseModel, Field

from domain.grades import is_graduating
from domain.refusals import Refusal, invalid, refusal
from domain.school_round import GateProgress

Step = Literal["3.2.2", "3.2.2.1", "3.2.2.2"]


class Result(str, Enum):
    promoted = "promoted"  # เลื่อนชั้น
    repeat = "repeat"  # ซ้ำชั้น
    graduated = "graduated"  # จบการศึกษา
    pending = "pending"  # รอดำเนินการ


class RepeatReason(str, Enum):
    failed_subjects = "failed_subjects"  # ผลการเรียนไม่ผ่านเกณฑ์
    attendance = "attendance"  # เวลาเรียนไม่ครบ
    health = "health"  # ปัญหาสุขภาพ
    family = "family"  # ปัญหาครอบครัว
    behaviour = "behaviour"  # ปัญหาพฤติกรรม
    other = "other"  # อื่น ๆ


class Destination(str, Enum):
    same_school = "same_school"  # ศึกษาต่อโรงเรียนเดิม
    other_school = "other_school"  # ศึกษาต่อโรงเรียนอื่น
    vocational = "vocational"  # ศึกษาต่อสายอาชีพ
    higher_education = "higher_education"  # ศึกษาต่ออุดมศึกษา
    employment = "employment"  # ประกอบอาชีพ
    other = "other"  # อื่น ๆ


class EndOfYearEntry(BaseModel):
    student: str = Field(description="national ID or G-code; Thai digits, dashes and spaces are accepted")
    result: Result | None = None
    years_studied: int | None = Field(None, ge=0, le=20)
    reasons: list[RepeatReason] | None = None
    destination: Destination | None = None
    note: str | None = Field(None, max_length=500)


class EndOfYearBatch(BaseModel):
    step: Step
    records: list[EndOfYearEntry] = Field(min_length=1, max_length=20000)


def check_step_order(step: Step, gate: GateProgress) -> None:
    """R10: menu 3.2.2 for every student first; then 3.2.2.1 and 3.2.2.2 in either order (the letter
    orders 3.2.2 before the other two, not one of them before the other). All three gate confirmation."""
    if step != "3.2.2" and not gate.step_322_done:
        raise refusal("step_order", f"ต้องบันทึกเมนู 3.2.2 ให้ครบทุกคนก่อนเมนู {step}",
                      f"Menu 3.2.2 must be complete for every student before {step}")


def check_entry(step: Step, entry: EndOfYearEntry, grade: str, current_result: str | None) -> None:
    """One student's record for one step, against the student's grade and earlier result."""
    if step == "3.2.2":
        if entry.result is None:
            raise invalid("result_required", "เมนู 3.2.2 ต้องระบุผลสิ้นปี (เลื่อนชั้น/ซ้ำชั้น/จบการศึกษา/รอดำเนินการ)",
                          "Menu 3.2.2 needs a result: promoted, repeat, graduated or pending")
        if entry.result is Result.graduated and not is_graduating(grade):
            raise invalid("not_graduating_grade", f"ชั้น {grade} ไม่ใช่ชั้นที่จบการศึกษา (ป.6, ม.3, ม.6)",
                          f"Grade {grade} does not graduate (only ป.6, ม.3, ม.6)")
        if entry.result is Result.promoted and grade == "ม.6":
            raise invalid("cannot_promote_m6", "นักเรียน ม.6 เลื่อนชั้นไม่ได้ ให้เลือกจบการศึกษา",
                          "A ม.6 student cannot be promoted; choose graduated")
    elif step == "3.2.2.1":
        if current_result != Result.repeat.value:
            raise invalid("not_repeater", "เมนู 3.2.2.1 ใช้กับนักเรียนที่ซ้ำชั้นเท่านั้น",
                          "Menu 3.2.2.1 applies to repeating students only")
        if not entry.reasons:
            raise invalid("reasons_required", "ต้องระบุสาเหตุการซ้ำชั้นอย่างน้อยหนึ่งข้อ",
                          "At least one reason for repeating is required")
    else:
        if current_result != Result.graduated.value:
            raise invalid("not_graduate", "เมนู 3.2.2.2 ใช้กับนักเรียนที่จบการศึกษาเท่านั้น",
                          "Menu 3.2.2.2 applies to graduating students only")
        if entry.destination is None:
            raise invalid("destination_required", "ต้องระบุการศึกษาต่อ/ปลายทางของผู้จบการศึกษา",
                          "A further-study destination is required")


__all__ = ["Destination", "EndOfYearBatch", "EndOfYearEntry", "RepeatReason", "Refusal", "Result", "Step",
           "check_entry", "check_step_order"]
