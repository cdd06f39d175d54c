"""District monitoring, a school's timeline. Pure functions; no personal data.

**Timeline.** A school's round as one list, oldest first: the audit trail (decisions, roster
changes, grouped per batch) merged with its workflow's history (start, timers set and fired,
updates accepted, cases opened and closed, reminders). An accepted update that the audit trail
also records is shown once, as the audit line (it names who). Personal data never appears: an
audit entry's student-level details are reduced to counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.at_risk import CASE_KINDS
from domain.rounds import RoundPolicy, Schedule
from domain.thai_time import english_datetime, thai_datetime


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
