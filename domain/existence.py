"""R11 "ทุกรายการ": each active student's existence at the school on the day, confirmed record by record.

The letter asks school staff to confirm the real existence of the students, every record, not to press one
button for the school. So each active student carries a mark for the round: present (มีตัวตนอยู่จริง), or an
exception with its kind (a student who left and waits to be transferred out, one under a dropout request, one
under a duplicate case). The school's confirmation is possible only when no active student is left unmarked,
and it records the counts. Marks are part of the roster: frozen with it while confirmed, and after the
director's certification (`domain.school_round.check_roster_editable`).
"""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, Field

from domain.refusals import invalid, refusal

MAX_STUDENTS_PER_REQUEST = 5000


class Mark(str, Enum):
    present = "present"  # มีตัวตนอยู่จริง
    exception = "exception"  # ข้อยกเว้น


class ExceptionKind(str, Enum):
    transferred_out = "transferred_out"  # ย้ายออกแล้ว รอดำเนินการย้ายออกในระบบ
    dropout_request = "dropout_request"  # อยู่ระหว่างขอจำหน่ายออกกลางคัน (ข้อ 8)
    duplicate_case = "duplicate_case"  # อยู่ระหว่างตรวจสอบนักเรียนซ้ำซ้อน (ข้อ 3)


MARK_TH = {Mark.present: "มีตัวตนอยู่จริง", Mark.exception: "ข้อยกเว้น"}
EXCEPTION_TH = {
    ExceptionKind.transferred_out: "ย้ายออกแล้ว รอดำเนินการย้ายออก",
    ExceptionKind.dropout_request: "อยู่ระหว่างขอจำหน่ายออกกลางคัน",
    ExceptionKind.duplicate_case: "อยู่ระหว่างตรวจสอบนักเรียนซ้ำซ้อน",
}
# Kinds that stand on an open case of the school's (a dropout request, a duplicate case) rather than on a note.
CASE_KINDS = {ExceptionKind.dropout_request: "dropout", ExceptionKind.duplicate_case: "duplicate"}


class ExistenceCounts(BaseModel):
    """Counts only, never names: they travel in the school's gate, its projection and the confirmation."""

    students: int = 0
    present: int = 0
    exceptions: int = 0
    exception_kinds: dict[str, int] = Field(default_factory=dict)

    @property
    def unmarked(self) -> int:
        return max(0, self.students - self.present - self.exceptions)

    @property
    def complete(self) -> bool:
        return self.students > 0 and self.unmarked == 0


def check_existence_complete(counts: ExistenceCounts) -> None:
    """R11: every active student confirmed present or given an exception before the school's confirmation."""
    if counts.unmarked:
        n = counts.unmarked
        raise refusal(
            "existence_incomplete",
            f"ยังยืนยันการมีตัวตนของนักเรียนไม่ครบทุกรายการ (ข้อ 11) ขาดอีก {n} คน "
            "ให้ยืนยันว่ามีตัวตนอยู่จริง หรือบันทึกข้อยกเว้นให้ครบทุกคน",
            f"Existence not confirmed for every record (R11): {n} student(s) are neither confirmed present "
            "nor recorded as an exception",
        )


def check_exception(kind: ExceptionKind, note: str | None, has_open_case: bool) -> None:
    """An exception says why the student is not simply present: a note for a student who left, an open case
    of the school's for a dropout request or a duplicate case (the mark refers to that case)."""
    if kind is ExceptionKind.transferred_out and not (note or "").strip():
        raise invalid("exception_note_required",
                      "ข้อยกเว้น \"ย้ายออกแล้ว\" ต้องระบุหมายเหตุ (ย้ายไปที่ใด เมื่อใด)",
                      "A \"transferred out\" exception needs a note (where to, and when)")
    if kind in CASE_KINDS and not has_open_case:
        what_th = "คำขอจำหน่ายออกกลางคัน" if kind is ExceptionKind.dropout_request else "กรณีนักเรียนซ้ำซ้อน"
        what_en = "dropout request" if kind is ExceptionKind.dropout_request else "duplicate case"
        raise refusal("exception_without_case",
                      f"นักเรียนคนนี้ไม่มี{what_th}ที่ยังเปิดอยู่ของโรงเรียนในรอบนี้ จึงบันทึกข้อยกเว้นนี้ไม่ได้",
                      f"This student has no open {what_en} of the school in this round; the exception cannot be "
                      "recorded", 409)


# --- what the API accepts ---------------------------------------------------------------------------

class MarkPresentIn(BaseModel):
    """Whom to confirm present: everyone, one class (a grade, optionally one room), or a list of students.

    Everyone and a class mark only students who have no mark yet (an exception already recorded stays); a
    list marks exactly those students present, which also turns an exception back into present."""

    all: bool = False
    grade: str | None = Field(None, max_length=4, description="e.g. ม.1")
    classroom: str | None = Field(None, max_length=10, description="the room, with a grade")
    students: list[str] = Field(default_factory=list, max_length=MAX_STUDENTS_PER_REQUEST,
                                description="national IDs or G-codes")


class MarkExceptionIn(BaseModel):
    student: str = Field(min_length=1, max_length=40, description="national ID or G-code")
    kind: ExceptionKind
    note: str | None = Field(None, max_length=500)


class ClearMarksIn(BaseModel):
    students: list[str] = Field(min_length=1, max_length=MAX_STUDENTS_PER_REQUEST,
                                description="national IDs or G-codes whose marks are cleared")


def check_present_selection(body: MarkPresentIn) -> None:
    chosen = [body.all, body.grade is not None, bool(body.students)]
    if sum(chosen) != 1 or (body.classroom is not None and body.grade is None):
        raise invalid("existence_selection",
                      "เลือกอย่างใดอย่างหนึ่ง: นักเรียนทั้งหมด ชั้นเรียน (ระบุห้องได้) หรือรายชื่อนักเรียน",
                      "Choose exactly one of: all students, a grade (with an optional classroom), or a list of students")
