"""The school round's state machine (R10–R12 and the cutoff), as pure functions over its state.

The workflow holds this state and asks these functions; the API asks the same functions to show a
stage from the projection, so a stage is computed one way everywhere.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from pydantic import BaseModel, Field

from domain.existence import ExistenceCounts, check_existence_complete
from domain.refusals import Refusal, refusal
from domain.rounds import RoundPolicy, Schedule
from domain.thai_time import english_datetime, thai_datetime


class Stage(str, Enum):
    not_open = "not_open"
    open = "open"
    confirmation_window = "confirmation_window"
    confirmed = "confirmed"
    certified = "certified"
    late = "late"


STAGE_TH = {
    Stage.not_open: "ยังไม่เปิดระบบ",
    Stage.open: "เปิดปรับปรุงข้อมูล",
    Stage.confirmation_window: "ช่วงยืนยันข้อมูล",
    Stage.confirmed: "ยืนยันข้อมูลแล้ว",
    Stage.certified: "ผู้อำนวยการรับรองแล้ว",
    Stage.late: "ไม่ทันกำหนด",
}


class Actor(BaseModel):
    """Who acts, by opaque user id, role and scope: names stay in the database, out of histories.

    The scope (the user's school, or area) lets each workflow refuse an actor from elsewhere
    (`domain.actor_scope`). Both default to None so histories stored before it still decode."""

    user_id: str
    role: str
    school_code: str | None = None
    area: str | None = None


class Decision(BaseModel):
    by: str
    at: datetime
    counts: ExistenceCounts | None = None  # R11: what the school's confirmation confirmed


class GateProgress(BaseModel):
    """R10: how far the school is with menus 3.2.2, 3.2.2.1 and 3.2.2.2 (counts only, no names)."""

    students: int = 0
    results: int = Field(0, description="3.2.2 recorded")
    repeaters: int = 0
    repeat_reasons: int = Field(0, description="3.2.2.1 recorded, for repeaters")
    graduates: int = 0
    destinations: int = Field(0, description="3.2.2.2 recorded, for graduates")
    # R11, every record: active students confirmed present, or given an exception (by kind)
    present: int = 0
    exceptions: int = 0
    exception_kinds: dict[str, int] = Field(default_factory=dict)
    # open dropout requests whose student the school marked as an exception: they no longer block (R11)
    excused_cases: list[str] = Field(default_factory=list)

    @property
    def step_322_done(self) -> bool:
        return self.results >= self.students

    @property
    def step_3221_done(self) -> bool:
        return self.step_322_done and self.repeat_reasons >= self.repeaters

    @property
    def step_3222_done(self) -> bool:
        """3.2.2.2 and both menus before it: the funnel's last step (`domain.funnel`)."""
        return self.step_3221_done and self.destinations >= self.graduates

    @property
    def menu_3222_done(self) -> bool:
        """3.2.2.2 on its own: after 3.2.2 it may be done before 3.2.2.1 (R10)."""
        return self.step_322_done and self.destinations >= self.graduates

    @property
    def complete(self) -> bool:
        return self.students > 0 and self.step_3222_done

    @property
    def existence(self) -> ExistenceCounts:
        return ExistenceCounts(students=self.students, present=self.present, exceptions=self.exceptions,
                               exception_kinds=self.exception_kinds)

    def summary(self) -> dict:
        e = self.existence
        return {
            **self.model_dump(),
            "steps": {"3.2.2": self.step_322_done, "3.2.2.1": self.step_3221_done, "3.2.2.2": self.menu_3222_done},
            "complete": self.complete,
            "existence": {**e.model_dump(), "unmarked": e.unmarked, "complete": e.complete},
        }


class BlockingCase(BaseModel):
    """An open side process that blocks confirmation (R3 duplicates, R4 ID corrections, R8 dropouts)."""

    kind: str  # duplicate | id_correction | dropout
    ref: str  # the case's own reference, never a personal identifier


# --- naming an open case for the school's staff -----------------------------------------------------

CASE_KIND_NAMES = {
    "dropout": ("คำขอออกกลางคัน", "dropout request"),
    "duplicate": ("เรื่องนักเรียนซ้ำซ้อน", "duplicate student case"),
    "id_correction": ("คำขอแก้ไขเลขประจำตัวประชาชน", "national ID correction request"),
}
# Who must act before the case stops blocking.
WAITING_ON = {
    "district": ("รอเขตพื้นที่พิจารณา", "waiting for the district's decision"),
    "holder_district": ("รอเขตพื้นที่ของโรงเรียนที่มีชื่อนักเรียนอยู่พิจารณาเปิดเรื่อง",
                        "waiting for the district of the school holding the student to open the case"),
    "school_answer": ("รอโรงเรียนตอบคำถามของเขตพื้นที่", "waiting for this school to answer the district's question"),
    "school_declare": ("รอโรงเรียนแจ้งว่านักเรียนยังเรียนอยู่ที่โรงเรียน (แนบหลักฐาน) หรือไม่ได้เรียนอยู่แล้ว",
                       "waiting for this school to declare the student present (with evidence) or absent"),
    "schools_or_district": ("รอโรงเรียนแจ้งข้อมูลนักเรียน หรือเขตพื้นที่พิจารณา",
                            "waiting for the schools' declarations or the district's decision"),
}
DEFAULT_WAITING_ON = {"dropout": "district", "duplicate": "schools_or_district", "id_correction": "district"}


class NamedCase(BaseModel):
    """An open case as the school's own staff read it: kind, reference, their student, who must act.

    `student` is the name as the school's own records hold it (never another school's record), or None."""

    kind: str
    ref: str
    student: str | None = None
    waiting_on: str | None = None  # a WAITING_ON key; None: the usual one for the kind

    def texts(self) -> tuple[str, str]:
        kind_th, kind_en = CASE_KIND_NAMES.get(self.kind, ("เรื่องค้าง", f"open {self.kind} case"))
        wait_th, wait_en = WAITING_ON[self.waiting_on or DEFAULT_WAITING_ON.get(self.kind, "district")]
        of = f" ของ {self.student}" if self.student else ""
        # the English line stays free of names: it is what logs and Temporal failures show (domain/refusals.py)
        return f"{kind_th} {self.ref}{of} ({wait_th})", f"{kind_en} {self.ref} ({wait_en})"


def blocking_cases_refusal(cases: list[NamedCase]) -> Refusal:
    """R11 waits for open cases: each named in Thai, with who must act. `cases` rides along for the API."""
    th = "; ".join(c.texts()[0] for c in cases)
    en = "; ".join(c.texts()[1] for c in cases)
    return refusal(
        "blocking_cases",
        f"ยังยืนยันข้อมูลไม่ได้ มีเรื่องค้าง {len(cases)} เรื่องที่ต้องได้ข้อยุติก่อน: {th}",
        f"Cannot confirm yet: {len(cases)} open case(s) must be settled first: {en}",
        details={"cases": [{"kind": c.kind, "ref": c.ref} for c in cases]},
    )


class SchoolRoundState(BaseModel):
    round_id: str
    school_code: str
    area: str
    schedule: Schedule
    policy: RoundPolicy = Field(default_factory=RoundPolicy)
    gate: GateProgress = Field(default_factory=GateProgress)
    confirmed: Decision | None = None
    certified: Decision | None = None
    blocking: list[BlockingCase] = Field(default_factory=list)
    reminders_sent: list[datetime] = Field(default_factory=list)
    late_notified_for: datetime | None = None

    def stage(self, now: datetime) -> Stage:
        return stage_at(now, self.schedule, self.confirmed, self.certified)


def stage_at(now: datetime, schedule: Schedule, confirmed: Decision | None, certified: Decision | None) -> Stage:
    if certified is not None:
        return Stage.certified
    if now < schedule.opens_at:
        return Stage.not_open
    if now >= schedule.cutoff_at:
        return Stage.late
    if confirmed is not None:
        return Stage.confirmed
    if now >= schedule.confirm_from:
        return Stage.confirmation_window
    return Stage.open


# --- refusals of the round -------------------------------------------------------------------------

def _not_yet(schedule: Schedule) -> Refusal:
    return refusal(
        "window_not_open",
        f"ยังไม่ถึงเวลายืนยัน/รับรองข้อมูล เริ่มได้ {thai_datetime(schedule.confirm_from)}",
        f"Confirmation and certification open at {english_datetime(schedule.confirm_from)}",
    )


def _closed(schedule: Schedule) -> Refusal:
    return refusal(
        "round_closed",
        f"ระบบปิดแล้วเมื่อ {thai_datetime(schedule.cutoff_at)}",
        f"The round closed at {english_datetime(schedule.cutoff_at)}",
    )


def decision_not_recorded() -> Refusal:
    """A decision whose projection write failed past its bound (the database stayed down): undone, to try again."""
    return refusal("database_unavailable",
                   "ฐานข้อมูลไม่พร้อมให้บริการชั่วคราว การดำเนินการนี้ยังไม่ถูกบันทึก กรุณาลองใหม่ในอีกสักครู่",
                   "The database is unavailable for the moment; this decision was not recorded: try again shortly",
                   503)


def _not_open(schedule: Schedule) -> Refusal:
    return refusal(
        "round_not_open",
        f"รอบนี้ยังไม่เปิด เปิด {thai_datetime(schedule.opens_at)}",
        f"The round opens at {english_datetime(schedule.opens_at)}",
    )


def already_certified() -> Refusal:
    return refusal("already_certified", "ผู้อำนวยการรับรองข้อมูลแล้ว แก้ไขไม่ได้",
                   "The director has already certified; nothing can change")


def _refused_in(state: SchoolRoundState, now: datetime, *stages: Stage) -> Stage:
    """The standard refusal of each listed stage; otherwise answers the stage for the caller's own rules."""
    stage = state.stage(now)
    if stage in stages:
        standard = {Stage.not_open: _not_open, Stage.open: _not_yet, Stage.late: _closed,
                    Stage.certified: lambda _: already_certified()}
        raise standard[stage](state.schedule)
    return stage


def check_roster_editable(state: SchoolRoundState, now: datetime) -> None:
    """Roster edits: only while the round is open, frozen while confirmed and after the cutoff."""
    if _refused_in(state, now, Stage.not_open, Stage.late, Stage.certified) is Stage.confirmed:
        raise refusal(
            "roster_frozen",
            "ข้อมูลถูกยืนยันแล้ว แก้ไขไม่ได้ หากต้องแก้ไข ให้เจ้าหน้าที่ยกเลิกการยืนยันก่อน",
            "The roster is confirmed and frozen; staff must withdraw the confirmation to edit it",
        )


def check_can_confirm(state: SchoolRoundState, now: datetime, *, existence: bool = True) -> None:
    """`existence=False` only for replaying confirmations accepted before R11's marks (workflow.patched)."""
    if _refused_in(state, now, Stage.not_open, Stage.open, Stage.late, Stage.certified) is Stage.confirmed:
        raise refusal("already_confirmed", "ยืนยันข้อมูลไปแล้ว", "Already confirmed")
    gate = state.gate
    if gate.students == 0:
        raise refusal("roster_empty", "ยังไม่มีนักเรียนในทะเบียน ยืนยันไม่ได้",
                      "The roster has no students; there is nothing to confirm")
    if not gate.step_322_done:
        missing = gate.students - gate.results
        raise refusal("gate_3_2_2", f"ยังบันทึกข้อมูลสิ้นปี (เมนู 3.2.2) ไม่ครบ ขาดอีก {missing} คน",
                      f"End-of-year results (menu 3.2.2) missing for {missing} student(s)")
    if not gate.step_3221_done:
        missing = gate.repeaters - gate.repeat_reasons
        raise refusal("gate_3_2_2_1", f"ยังบันทึกสาเหตุการซ้ำชั้น (เมนู 3.2.2.1) ไม่ครบ ขาดอีก {missing} คน",
                      f"Reasons for repeating (menu 3.2.2.1) missing for {missing} student(s)")
    if not gate.step_3222_done:
        missing = gate.graduates - gate.destinations
        raise refusal("gate_3_2_2_2", f"ยังบันทึกการศึกษาต่อของผู้จบ (เมนู 3.2.2.2) ไม่ครบ ขาดอีก {missing} คน",
                      f"Further-study destinations (menu 3.2.2.2) missing for {missing} graduate(s)")
    if existence:
        check_existence_complete(gate.existence)
    if blocking := (still_blocking(state) if existence else state.blocking):
        # the workflow knows no names: the API names each case for the school's staff (api/blocking_cases.py)
        raise blocking_cases_refusal([NamedCase(kind=c.kind, ref=c.ref) for c in blocking])


def still_blocking(state: SchoolRoundState) -> list[BlockingCase]:
    """The open cases that block confirmation: a dropout request stops blocking once the school has marked its
    student as an exception under R11 (the student stays on the roster until the district decides)."""
    excused = set(state.gate.excused_cases)
    return [c for c in state.blocking if not (c.kind == "dropout" and c.ref in excused)]


def check_can_withdraw(state: SchoolRoundState, now: datetime) -> None:
    if _refused_in(state, now, Stage.certified, Stage.late) is not Stage.confirmed:
        raise refusal("not_confirmed", "ยังไม่ได้ยืนยันข้อมูล จึงไม่มีอะไรให้ยกเลิก",
                      "There is no confirmation to withdraw")


def check_can_certify(state: SchoolRoundState, now: datetime) -> None:
    stages = (Stage.not_open, Stage.open, Stage.late, Stage.certified)
    if _refused_in(state, now, *stages) is Stage.confirmation_window:
        raise refusal("not_confirmed", "เจ้าหน้าที่ต้องยืนยันข้อมูลก่อน ผู้อำนวยการจึงรับรองได้",
                      "School staff must confirm before the director can certify")


def check_extension(state: SchoolRoundState, now: datetime, new_cutoff: datetime, *, only_later: bool = True) -> None:
    """`only_later=False` only for replaying extensions accepted before the rule existed (workflow.patched)."""
    if state.certified is not None:
        raise already_certified()
    if new_cutoff <= state.schedule.confirm_from:
        raise refusal(
            "extension_before_window",
            f"กำหนดส่งใหม่ต้องหลังเวลาเริ่มยืนยัน {thai_datetime(state.schedule.confirm_from)}",
            f"The new cutoff must be after confirmation opens ({english_datetime(state.schedule.confirm_from)})",
            422,
        )
    if only_later:
        check_later_cutoff(state.schedule.cutoff_at, new_cutoff)
    if new_cutoff <= now:
        raise refusal("extension_in_past", "กำหนดส่งใหม่ต้องอยู่ในอนาคต", "The new cutoff must be in the future", 422)


def check_later_cutoff(current: datetime, new_cutoff: datetime) -> None:
    """An extension only moves a cutoff later: a school must never lose time it was promised."""
    if new_cutoff <= current:
        raise refusal(
            "extension_not_later",
            f"การขยายเวลาต้องเลื่อนกำหนดส่งให้ช้ากว่าเดิม ({thai_datetime(current)}) เท่านั้น เลื่อนให้เร็วขึ้นไม่ได้",
            f"An extension only moves the cutoff later than the current one ({english_datetime(current)}); "
            "it cannot bring it earlier",
            422,
        )
