"""District monitoring, the at-risk estimate and the warning hours ahead: pure functions over a school's
snapshot (`domain.funnel.SchoolSnapshot`), school-level only.

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

The round overview counts the same rule in SQL (`db.monitoring._risk_expression`);
tests/test_dashboard_db.py generates its cases from `assess` at every threshold of this module.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from domain.funnel import SchoolSnapshot
from domain.rounds import Schedule
from domain.school_round import BlockingCase, GateProgress, Stage
from domain.thai_time import thai_duration

ATTENTION_HORIZON = timedelta(days=3)
DECISION_TIME = timedelta(minutes=30)  # staff confirmation and the director's certification, on the day
LAST_CALL = timedelta(hours=1)  # dmcflow's last reminder (15.30 น. for a 16.30 น. cutoff); the letter sets none
MIN_OBSERVED = timedelta(minutes=1)
# dmcflow's choice, not the letter's (issue 16): six hours is the morning of a 16.30 cutoff, time enough for a
# district officer to decide or for the school to declare its part of a case
BLOCKING_WARNING = timedelta(hours=6)

CASE_KINDS = {"duplicate": ("นักเรียนซ้ำซ้อน", "duplicate"),
              "id_correction": ("แก้ไขเลขประจำตัวประชาชน", "national ID correction"),
              "dropout": ("ออกกลางคัน", "dropout")}



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
    return _english_minutes(max(0, int(delta.total_seconds() // 60)))


@lru_cache(maxsize=4096)  # said for every school of an area, most sharing their cutoff (domain.thai_time)
def _english_minutes(minutes: int) -> str:
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


def assess(s: SchoolSnapshot, now: datetime, stage: Stage | None = None) -> Risk | None:
    """The first rule of the module docstring that holds, or None when the school is on track.
    `stage`: the school's stage at `now`, when the caller has it already."""
    stage = s.stage(now) if stage is None else stage
    if stage in (Stage.not_open, Stage.certified, Stage.late):
        return None
    left = s.cutoff_at - now
    near = left <= attention_horizon(s.schedule)
    gate = s.gate
    if gate.students == 0:
        if near:
            return Risk("roster_empty", f"ยังไม่มีนักเรียนในทะเบียน เหลือเวลา {thai_duration(left)}",
                        f"No student on the roster yet; {english_duration(left)} left")
        return None
    if stage is not Stage.confirmed:
        todo, done = records_left(gate), records_done(gate)
        if todo and not done:
            if near:
                return Risk("not_started",
                            f"ยังไม่เริ่มบันทึกข้อมูลสิ้นปี (เมนู 3.2.2) {todo} รายการ เหลือเวลา {thai_duration(left)}",
                            f"No end-of-year record yet (menu 3.2.2), {todo} to do; {english_duration(left)} left")
            return None
        if todo:
            observed = max(now - s.opens_at, MIN_OBSERVED)
            needed = observed * (todo / done) + DECISION_TIME
            if needed > left:
                per_hour = done / (observed.total_seconds() / 3600)
                return Risk(
                    "behind_pace",
                    f"ตามอัตราที่ผ่านมา (ราว {per_hour:.1f} รายการ/ชม.) อีก {todo} รายการจะใช้เวลาราว "
                    f"{thai_duration(needed)} แต่เหลือเวลา {thai_duration(left)}",
                    f"At its pace so far (~{per_hour:.1f} records/h) the {todo} records left need about "
                    f"{english_duration(needed)}, but {english_duration(left)} are left")
        if s.blocking and near:
            th, en = _cases_text(s.blocking)
            return Risk("blocked", f"มีเรื่องค้างที่ต้องปิดก่อนยืนยัน ({th}) เหลือเวลา {thai_duration(left)}",
                        f"Open cases block confirmation ({en}); {english_duration(left)} left")
        if not todo and now >= s.confirm_from and left <= LAST_CALL:
            return Risk("not_confirmed", f"บันทึกครบแล้วแต่เจ้าหน้าที่ยังไม่ยืนยัน เหลือเวลา {thai_duration(left)}",
                        f"All records done but staff have not confirmed; {english_duration(left)} left")
        return None
    if now >= s.confirm_from and left <= LAST_CALL:
        return Risk("not_certified", f"ยืนยันแล้วแต่ผู้อำนวยการยังไม่รับรอง เหลือเวลา {thai_duration(left)}",
                    f"Confirmed, but the director has not certified; {english_duration(left)} left")
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
