"""District monitoring: the funnel of an area's schools, the at-risk estimate, and a school's timeline.

Pure functions over school-level snapshots of the projection (no student is ever named here).

**Funnel.** Each school is in exactly one bucket, the furthest point it has reached (so the buckets
add up to the area's schools): `not_open` (the round has not opened for it), `open` (open, no R10
step complete), `step_3_2_2`, `step_3_2_2_1`, `step_3_2_2_2` (that menu and the ones before it are
complete, not yet confirmed), `confirmed`, `certified`, and `late` (the cutoff passed uncertified).
The stage itself comes from `domain.school_round.stage_at`, the same rule the workflow uses.

**At risk.** A school is at risk when it is open, not certified, before its cutoff, and the first of
these rules holds (that rule is its one-line reason, in Thai and English):

1. `roster_empty`: no student on the roster, and the cutoff is within the attention horizon.
2. `not_started`: students, but no R10 record yet (menus 3.2.2/3.2.2.1/3.2.2.2), within the horizon.
3. `behind_pace`: at its own pace so far (records done ÷ time since the round opened for it), the
   records left plus `DECISION_TIME` for confirmation and certification need longer than the time left.
4. `blocked`: open cases block its confirmation (duplicates, dropouts...) within the horizon.
5. `not_confirmed` / `not_certified`: the confirmation window is open, the gate is done, and less
   than `LAST_CALL` is left without the staff's confirmation / the director's certification.

The attention horizon is `min(ATTENTION_HORIZON, half the school's round)`: three days for the
letter's two-month round, proportionally less for a short (demo) round, so that a school is not
flagged the minute a short round opens.

**Warning hours ahead.** Apart from the at-risk estimate, the school's own view and the district's
dashboard warn when an open case still blocks a school's confirmation less than `BLOCKING_WARNING`
before its cutoff (`blocking_warning`): someone must act now, or the school declares its part.

**Timeline.** A school's round as one list, oldest first: the audit trail (decisions, roster
changes, grouped per batch) merged with its workflow's history (start, timers set and fired,
updates accepted, cases opened and closed, reminders). An accepted update that the audit trail
also records is shown once, as the audit line (it names who). Personal data never appears: an
audit entry's student-level details are reduced to counts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from functools import cached_property

from domain.rounds import RoundPolicy, Schedule
from domain.school_round import STAGE_TH, BlockingCase, Decision, GateProgress, Stage, stage_at
from domain.thai_time import english_datetime, thai_datetime, thai_duration

ATTENTION_HORIZON = timedelta(days=3)
DECISION_TIME = timedelta(minutes=30)  # staff confirmation and the director's certification, on the day
LAST_CALL = timedelta(hours=1)  # dmcflow's last reminder (15.30 น. for a 16.30 น. cutoff); the letter sets none
MIN_OBSERVED = timedelta(minutes=1)
# dmcflow's choice, not the letter's (issue 16): six hours is the morning of a 16.30 cutoff, time enough for a
# district officer to decide or for the school to declare its part of a case
BLOCKING_WARNING = timedelta(hours=6)


class Bucket(str, Enum):
    not_open = "not_open"
    open = "open"
    step_3_2_2 = "step_3_2_2"
    step_3_2_2_1 = "step_3_2_2_1"
    step_3_2_2_2 = "step_3_2_2_2"
    confirmed = "confirmed"
    certified = "certified"
    late = "late"


BUCKET_LABELS: dict[Bucket, tuple[str, str]] = {
    Bucket.not_open: ("ยังไม่เปิดระบบ", "Not open"),
    Bucket.open: ("เปิดแล้ว ยังไม่ครบเมนูใด", "Open, no step done"),
    Bucket.step_3_2_2: ("ครบเมนู 3.2.2", "3.2.2 done"),
    Bucket.step_3_2_2_1: ("ครบเมนู 3.2.2.1", "3.2.2.1 done"),
    Bucket.step_3_2_2_2: ("ครบเมนู 3.2.2.2 รอยืนยัน", "3.2.2.2 done, to confirm"),
    Bucket.confirmed: ("ยืนยันแล้ว รอ ผอ. รับรอง", "Confirmed, to certify"),
    Bucket.certified: ("ผู้อำนวยการรับรองแล้ว", "Certified"),
    Bucket.late: ("ไม่ทันกำหนด", "Late"),
}

STAGE_EN = {
    Stage.not_open: "Not open", Stage.open: "Open", Stage.confirmation_window: "Confirmation window",
    Stage.confirmed: "Confirmed", Stage.certified: "Certified", Stage.late: "Late",
}

CASE_KINDS = {"duplicate": ("นักเรียนซ้ำซ้อน", "duplicate"),
              "id_correction": ("แก้ไขเลขประจำตัวประชาชน", "national ID correction"),
              "dropout": ("ออกกลางคัน", "dropout")}


@dataclass(frozen=True)
class SchoolSnapshot:
    """One school's row of the projection, with the counts of its open side cases. School-level only."""

    school_code: str
    school_name: str
    area: str
    opens_at: datetime
    confirm_from: datetime
    cutoff_at: datetime
    gate: GateProgress
    confirmed_by: str | None = None
    confirmed_at: datetime | None = None
    certified_by: str | None = None
    certified_at: datetime | None = None
    blocking: tuple[BlockingCase, ...] = ()
    open_id_corrections: int = 0
    open_dropouts: int = 0
    open_duplicates: int = 0
    updated_at: datetime | None = None

    @cached_property
    def schedule(self) -> Schedule:
        # the projection's instants were validated by the workflow that wrote them: no second validation
        return Schedule.model_construct(opens_at=self.opens_at, confirm_from=self.confirm_from, cutoff_at=self.cutoff_at)

    def stage(self, now: datetime) -> Stage:
        confirmed = Decision.model_construct(by=self.confirmed_by or "", at=self.confirmed_at) if self.confirmed_at else None
        certified = Decision.model_construct(by=self.certified_by or "", at=self.certified_at) if self.certified_at else None
        return stage_at(now, self.schedule, confirmed, certified)


def bucket_of(stage: Stage, gate: GateProgress) -> Bucket:
    if stage in (Stage.not_open, Stage.confirmed, Stage.certified, Stage.late):
        return Bucket(stage.value)
    if gate.students > 0 and gate.step_3222_done:
        return Bucket.step_3_2_2_2
    if gate.students > 0 and gate.step_3221_done:
        return Bucket.step_3_2_2_1
    if gate.students > 0 and gate.step_322_done:
        return Bucket.step_3_2_2
    return Bucket.open


def empty_funnel() -> dict[Bucket, int]:
    return {b: 0 for b in Bucket}


# --- at risk -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Risk:
    code: str
    th: str
    en: str


def records_done(gate: GateProgress) -> int:
    return gate.results + gate.repeat_reasons + gate.destinations


def records_left(gate: GateProgress) -> int:
    return (max(0, gate.students - gate.results) + max(0, gate.repeaters - gate.repeat_reasons)
            + max(0, gate.graduates - gate.destinations))


def attention_horizon(schedule: Schedule) -> timedelta:
    return min(ATTENTION_HORIZON, (schedule.cutoff_at - schedule.opens_at) / 2)


def english_duration(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    if hours:
        parts.append(f"{hours} h")
    if mins or not parts:
        parts.append(f"{mins} min")
    return " ".join(parts)


def _cases_text(blocking: tuple[BlockingCase, ...]) -> tuple[str, str]:
    kinds = Counter(c.kind for c in blocking)
    th = ", ".join(f"{CASE_KINDS.get(k, (k, k))[0]} {n}" for k, n in sorted(kinds.items()))
    en = ", ".join(f"{n} {CASE_KINDS.get(k, (k, k))[1]}" for k, n in sorted(kinds.items()))
    return th, en


def assess(s: SchoolSnapshot, now: datetime) -> Risk | None:
    """The first rule of the module docstring that holds, or None when the school is on track."""
    stage = s.stage(now)
    if stage in (Stage.not_open, Stage.certified, Stage.late):
        return None
    left = s.cutoff_at - now
    left_th, left_en = thai_duration(left), english_duration(left)
    near = left <= attention_horizon(s.schedule)
    gate = s.gate
    if gate.students == 0:
        if near:
            return Risk("roster_empty", f"ยังไม่มีนักเรียนในทะเบียน เหลือเวลา {left_th}",
                        f"No student on the roster yet; {left_en} left")
        return None
    if stage is not Stage.confirmed:
        todo, done = records_left(gate), records_done(gate)
        if todo and not done:
            if near:
                return Risk("not_started", f"ยังไม่เริ่มบันทึกข้อมูลสิ้นปี (เมนู 3.2.2) {todo} รายการ เหลือเวลา {left_th}",
                            f"No end-of-year record yet (menu 3.2.2), {todo} to do; {left_en} left")
            return None
        if todo:
            observed = max(now - s.opens_at, MIN_OBSERVED)
            needed = observed * (todo / done) + DECISION_TIME
            if needed > left:
                per_hour = done / (observed.total_seconds() / 3600)
                return Risk(
                    "behind_pace",
                    f"ตามอัตราที่ผ่านมา (ราว {per_hour:.1f} รายการ/ชม.) อีก {todo} รายการจะใช้เวลาราว "
                    f"{thai_duration(needed)} แต่เหลือเวลา {left_th}",
                    f"At its pace so far (~{per_hour:.1f} records/h) the {todo} records left need about "
                    f"{english_duration(needed)}, but {left_en} are left")
        if s.blocking and near:
            th, en = _cases_text(s.blocking)
            return Risk("blocked", f"มีเรื่องค้างที่ต้องปิดก่อนยืนยัน ({th}) เหลือเวลา {left_th}",
                        f"Open cases block confirmation ({en}); {left_en} left")
        if not todo and now >= s.confirm_from and left <= LAST_CALL:
            return Risk("not_confirmed", f"บันทึกครบแล้วแต่เจ้าหน้าที่ยังไม่ยืนยัน เหลือเวลา {left_th}",
                        f"All records done but staff have not confirmed; {left_en} left")
        return None
    if now >= s.confirm_from and left <= LAST_CALL:
        return Risk("not_certified", f"ยืนยันแล้วแต่ผู้อำนวยการยังไม่รับรอง เหลือเวลา {left_th}",
                    f"Confirmed, but the director has not certified; {left_en} left")
    return None


def blocking_warning(blocking: tuple[BlockingCase, ...] | list[BlockingCase], stage: Stage, cutoff_at: datetime,
                     now: datetime, excused: set[str] | frozenset[str] = frozenset()) -> Risk | None:
    """Open cases still block confirmation and the cutoff is less than `BLOCKING_WARNING` away (not earlier).
    `excused`: refs of cases that wait for the district without blocking (R11's exception marks)."""
    blocking = [c for c in blocking if c.ref not in excused]
    left = cutoff_at - now
    if not blocking or stage not in (Stage.open, Stage.confirmation_window) or not timedelta(0) < left <= BLOCKING_WARNING:
        return None
    th, en = _cases_text(tuple(blocking))
    return Risk("blocking_near_cutoff",
                f"อีก {thai_duration(left)} จะถึงกำหนดส่ง แต่ยังมีเรื่องค้างที่ทำให้ยืนยันข้อมูลไม่ได้ ({th}): "
                "ขอให้ผู้เกี่ยวข้องดำเนินการก่อนปิดระบบ",
                f"The cutoff is {english_duration(left)} away and open cases still block confirmation ({en}): "
                "whoever must act should do so before the cutoff")


# --- an area at a glance ------------------------------------------------------------------------------

@dataclass(frozen=True)
class SchoolStatus:
    snapshot: SchoolSnapshot
    stage: Stage
    bucket: Bucket
    risk: Risk | None
    seconds_left: int
    warning: Risk | None = None  # `blocking_warning`


@dataclass(frozen=True)
class AreaFigures:
    now: datetime
    funnel: dict[Bucket, int]
    schools: list[SchoolStatus]

    @property
    def at_risk(self) -> list[SchoolStatus]:
        """Soonest cutoff first, then by school code."""
        risky = [s for s in self.schools if s.risk is not None]
        return sorted(risky, key=lambda s: (s.snapshot.cutoff_at, s.snapshot.school_code))

    @property
    def warned(self) -> list[SchoolStatus]:
        """Schools an open case still blocks within `BLOCKING_WARNING` of their cutoff, soonest first."""
        return sorted((s for s in self.schools if s.warning is not None),
                      key=lambda s: (s.snapshot.cutoff_at, s.snapshot.school_code))

    @property
    def total(self) -> int:
        return len(self.schools)


def school_status(s: SchoolSnapshot, now: datetime) -> SchoolStatus:
    stage = s.stage(now)
    return SchoolStatus(snapshot=s, stage=stage, bucket=bucket_of(stage, s.gate), risk=assess(s, now),
                        seconds_left=max(0, int((s.cutoff_at - now).total_seconds())),
                        warning=blocking_warning(s.blocking, stage, s.cutoff_at, now,
                                                 set(getattr(s.gate, "excused_cases", ()))))


def area_figures(snapshots: list[SchoolSnapshot], now: datetime) -> AreaFigures:
    statuses = sorted((school_status(s, now) for s in snapshots), key=lambda x: x.snapshot.school_code)
    funnel = empty_funnel()
    for st in statuses:
        funnel[st.bucket] += 1
    return AreaFigures(now=now, funnel=funnel, schools=statuses)


def stage_label(stage: Stage) -> tuple[str, str]:
    return STAGE_TH[stage], STAGE_EN[stage]


# --- a school's timeline -----------------------------------------------------------------------------

@dataclass(frozen=True)
class AuditItem:
    """An audit event as stored; `before`/`after` may hold personal data and are never shown as such."""

    at: datetime
    actor: str
    action: str
    after: dict | None = None
    before: dict | None = None
    reason: str | None = None


@dataclass(frozen=True)
class HistoryItem:
    """A workflow history event, already reduced to what the timeline needs (no payload content)."""

    at: datetime
    kind: str  # started | timer_started | timer_fired | timer_canceled | update | signal | reminder | continued | closed
    name: str | None = None  # update or signal name
    fire_at: datetime | None = None  # timers
    actor: str | None = None  # the user id an update names
    ref: str | None = None  # a case reference a signal names
    case_kind: str | None = None


@dataclass(frozen=True)
class TimelineLine:
    at: datetime
    source: str  # audit | workflow
    code: str
    actor: str | None
    th: str
    en: str
    count: int = 1
    extra: dict = field(default_factory=dict)


ACTION_LABELS: dict[str, tuple[str, str]] = {
    "confirm": ("เจ้าหน้าที่ยืนยันข้อมูล (ข้อ 11)", "Staff confirmed the roster (R11)"),
    "withdraw_confirmation": ("เจ้าหน้าที่ยกเลิกการยืนยัน", "Staff withdrew the confirmation"),
    "certify": ("ผู้อำนวยการรับรองข้อมูล (ข้อ 12)", "The director certified (R12)"),
    "extend_deadline": ("ขยายกำหนดส่ง", "Deadline extended"),
    # issue 18: written by the area's batch at the cutoff, dated at the cutoff itself
    "late": ("ไม่ทันกำหนด: ถึงกำหนดส่งโดยผู้อำนวยการยังไม่รับรองข้อมูล", "Late: the cutoff passed before certification"),
    "end_of_year_3.2.2": ("บันทึกผลสิ้นปี เมนู 3.2.2", "End-of-year results, menu 3.2.2"),
    "end_of_year_3.2.2.1": ("บันทึกสาเหตุซ้ำชั้น เมนู 3.2.2.1", "Reasons for repeating, menu 3.2.2.1"),
    "end_of_year_3.2.2.2": ("บันทึกการศึกษาต่อ เมนู 3.2.2.2", "Further study, menu 3.2.2.2"),
    "import_student": ("นำเข้าทะเบียนนักเรียน", "Roster import"),
    "duplicate_removed": ("จำหน่ายนักเรียนซ้ำซ้อนออกจากโรงเรียน", "Duplicate student removed from the school"),
    "duplicate_added": ("เพิ่มนักเรียนตามผลเรื่องซ้ำซ้อน", "Student added after a duplicate case"),
    "id_correction": ("แก้ไขเลขประจำตัวประชาชนตามคำขอ (อนุมัติ)", "National ID corrected (approved request)"),
    "dropout_approved": ("อนุมัติออกกลางคัน", "Dropout approved"),
    "dropout_rejected": ("ไม่อนุมัติออกกลางคัน", "Dropout rejected"),
}
_STUDENT_OPS = {
    "add_student": ("เพิ่มนักเรียน", "Student added"),
    "transfer_in_student": ("รับย้ายเข้า", "Student transferred in"),
    "add_student_by_gcode": ("เพิ่มนักเรียนด้วยรหัส G", "Student added by G-code"),
    "update_student": ("แก้ไขข้อมูลนักเรียน", "Student record edited"),
    "transfer_out_student": ("ย้ายออก", "Student transferred out"),
    "set_student_status": ("เปลี่ยนสถานะนักเรียน", "Student status changed"),
    "remove_student": ("เขตพื้นที่ลบนักเรียนออกจากทะเบียน", "Student removed from the roster by the district"),
    "update_school_profile": ("แก้ไขข้อมูลพื้นฐานโรงเรียน", "School profile updated"),
}
ACTION_LABELS.update(_STUDENT_OPS)
# R11, every record: one audit event per batch of existence marks (db/existence.py)
_EXISTENCE_OPS = {
    "existence_present": ("ยืนยันนักเรียนมีตัวตนอยู่จริง (ข้อ 11)", "Students confirmed present (R11)"),
    "existence_exception": ("บันทึกข้อยกเว้นการมีตัวตน (ข้อ 11)", "Existence exception recorded (R11)"),
    "existence_clear": ("ล้างการยืนยันการมีตัวตน (ข้อ 11)", "Existence marks cleared (R11)"),
}
ACTION_LABELS.update(_EXISTENCE_OPS)
COUNTED = {"import_student", "end_of_year_3.2.2", "end_of_year_3.2.2.1", "end_of_year_3.2.2.2",
           *(set(_STUDENT_OPS) - {"update_school_profile"})}
# Updates whose effect the audit trail records itself (with who): their history line merges into it.
UPDATE_AUDITED = {"confirm": {"confirm"}, "withdraw_confirmation": {"withdraw_confirmation"},
                  "certify": {"certify"}, "extend_deadline": {"extend_deadline"},
                  "apply_roster_batch": {"import_student", "end_of_year_3.2.2", "end_of_year_3.2.2.1",
                                         "end_of_year_3.2.2.2", *_STUDENT_OPS, *_EXISTENCE_OPS}}
UPDATE_LABELS = {
    "confirm": ("ระบบรับคำสั่งยืนยันข้อมูล", "Confirmation accepted by the workflow"),
    "withdraw_confirmation": ("ระบบรับคำสั่งยกเลิกการยืนยัน", "Withdrawal accepted by the workflow"),
    "certify": ("ระบบรับคำสั่งรับรองข้อมูล", "Certification accepted by the workflow"),
    "extend_deadline": ("ระบบรับคำสั่งขยายกำหนดส่ง", "Extension accepted by the workflow"),
    "apply_roster_batch": ("ระบบรับชุดแก้ไขทะเบียน", "Roster change accepted by the workflow"),
}
MERGE_WINDOW = timedelta(seconds=60)
_TIMER_MATCH = timedelta(seconds=60)


def _safe_detail(item: AuditItem) -> tuple[str, str, dict]:
    """The part of an audit entry that may be shown: instants, scopes, case refs, stages. No IDs, no names."""
    after, before = item.after or {}, item.before or {}
    if item.action == "extend_deadline" and "cutoff_at" in after:
        new = datetime.fromisoformat(after["cutoff_at"])
        th, en = f" เป็น {thai_datetime(new)}", f" to {english_datetime(new)}"
        if "cutoff_at" in before:
            old = datetime.fromisoformat(before["cutoff_at"])
            th, en = f" จาก {thai_datetime(old)}{th}", f" from {english_datetime(old)}{en}"
        if item.reason:
            th += f" เหตุผล: {item.reason}"
            en += f"; reason: {item.reason}"
        return th, en, {"cutoff_at": new.isoformat()}
    for key in ("case", "ref"):
        if isinstance(after.get(key), str):
            return f" ({after[key]})", f" ({after[key]})", {key: after[key]}
    return "", "", {}


def _timer_name(fire_at: datetime, schedules: list[Schedule], policy: RoundPolicy) -> tuple[str, str]:
    names: list[tuple[datetime, str, str]] = []
    for sch in schedules:
        names += [(sch.opens_at, "เปิดระบบ", "round opens"),
                  (sch.confirm_from, "เริ่มยืนยัน/รับรองข้อมูล", "confirmation opens"),
                  (sch.cutoff_at, "ปิดระบบ (กำหนดส่ง)", "cutoff"),
                  (sch.cutoff_at + policy.late_grace, "ปิดงานของรอบ (พ้นระยะขยายเวลา)", "late grace ends")]
        names += [(i, "ส่งอีเมลเตือน", "reminder") for i in sch.reminder_instants(policy)]
    best = min(names, key=lambda n: abs(n[0] - fire_at), default=None)
    if best is not None and abs(best[0] - fire_at) <= _TIMER_MATCH:
        return best[1], best[2]
    return "ตัวจับเวลา", "timer"


def _history_line(h: HistoryItem, schedules: list[Schedule], policy: RoundPolicy) -> TimelineLine | None:
    if h.kind == "started":
        return TimelineLine(h.at, "workflow", "workflow_started", "system", "เริ่มติดตามรอบของโรงเรียน",
                            "The school's round workflow started")
    if h.kind in ("timer_started", "timer_fired", "timer_canceled") and h.fire_at is not None:
        th_name, en_name = _timer_name(h.fire_at, schedules, policy)
        when_th, when_en = thai_datetime(h.fire_at), english_datetime(h.fire_at)
        th, en = {
            "timer_started": (f"ตั้งเวลา: {th_name} {when_th}", f"Timer set: {en_name} at {when_en}"),
            "timer_fired": (f"ถึงเวลา: {th_name}", f"Timer fired: {en_name}"),
            "timer_canceled": (f"ยกเลิกเวลาที่ตั้งไว้: {th_name} {when_th}", f"Timer cancelled: {en_name} at {when_en}"),
        }[h.kind]
        return TimelineLine(h.at, "workflow", h.kind, "system", th, en, extra={"fire_at": h.fire_at.isoformat()})
    if h.kind == "update":
        th, en = UPDATE_LABELS.get(h.name or "", (f"ระบบรับคำสั่ง {h.name}", f"Update {h.name} accepted"))
        return TimelineLine(h.at, "workflow", f"update_{h.name}", h.actor, th, en)
    if h.kind == "signal":
        kind_th, kind_en = CASE_KINDS.get(h.case_kind or "", ("", "case"))
        ref = f" {h.ref}" if h.ref else ""
        if h.name == "case_opened":
            return TimelineLine(h.at, "workflow", "case_opened", "system", f"เปิดเรื่อง{kind_th}{ref} (ต้องปิดก่อนยืนยัน)",
                                f"{kind_en.capitalize()}{ref} opened (blocks confirmation)", extra={"ref": h.ref})
        if h.name == "case_closed":
            return TimelineLine(h.at, "workflow", "case_closed", "system", f"ปิดเรื่อง{ref}", f"Case{ref} closed",
                                extra={"ref": h.ref})
        return TimelineLine(h.at, "workflow", f"signal_{h.name}", "system", f"สัญญาณ {h.name}", f"Signal {h.name}")
    if h.kind == "reminder":
        return TimelineLine(h.at, "workflow", "reminder", "system", "ส่งอีเมลเตือนโรงเรียน", "Reminder emailed to the school")
    if h.kind == "continued":
        return TimelineLine(h.at, "workflow", "continued_as_new", "system", "เริ่มประวัติชุดใหม่ (ประวัติยาว)",
                            "History continued as new (long history)")
    if h.kind == "closed":
        return TimelineLine(h.at, "workflow", "workflow_closed", "system", "ปิดงานของรอบ",
                            "The school's round workflow ended")
    return None


def timeline(audit: list[AuditItem], history: list[HistoryItem], schedule: Schedule,
             policy: RoundPolicy | None = None) -> list[TimelineLine]:
    """Audit lines (one per decision; roster batches grouped by action, actor and instant) merged with the
    workflow's history, oldest first."""
    policy = policy or RoundPolicy()
    groups: dict[tuple[datetime, str, str], list[AuditItem]] = {}
    for item in audit:
        groups.setdefault((item.at, item.actor, item.action), []).append(item)
    lines: list[TimelineLine] = []
    cutoffs = {schedule.cutoff_at}
    for (at, actor, action), items in groups.items():
        th, en = ACTION_LABELS.get(action, (action, action.replace("_", " ")))
        if action in COUNTED:  # student-level changes: only how many
            n = len(items)
            detail_th, detail_en, extra = f" {n} รายการ", f": {n} record{'s' if n > 1 else ''}", {}
        else:
            detail_th, detail_en, extra = _safe_detail(items[0])
            if len(items) > 1:
                detail_th, detail_en = f"{detail_th} ({len(items)} รายการ)", f"{detail_en} ({len(items)} records)"
        for item in items:
            for side in (item.before, item.after):
                if action == "extend_deadline" and side and "cutoff_at" in side:
                    cutoffs.add(datetime.fromisoformat(side["cutoff_at"]))
        lines.append(TimelineLine(at, "audit", action, actor, th + detail_th, en + detail_en, count=len(items),
                                  extra=extra))
    schedules = [schedule.with_cutoff(c) for c in sorted(cutoffs) if c > schedule.confirm_from]
    for h in history:
        if h.kind == "update":
            audited = UPDATE_AUDITED.get(h.name or "", set())
            if any(line.code in audited and timedelta(0) - MERGE_WINDOW <= line.at - h.at <= MERGE_WINDOW
                   for line in lines if line.source == "audit"):
                continue
        line = _history_line(h, schedules, policy)
        if line is not None:
            lines.append(line)
    order = {"workflow": 0, "audit": 1}
    return sorted(lines, key=lambda line: (line.at, order[line.source]))
