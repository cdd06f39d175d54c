"""District monitoring, the funnel: the school-level snapshot of the projection each view reads, and the
bucket each school is in. Pure functions; no student is ever named here.

**Funnel.** Each school is in exactly one bucket, the furthest point it has reached (so the buckets
add up to the area's schools): `not_open` (the round has not opened for it), `open` (open, no R10
step complete), `step_3_2_2`, `step_3_2_2_1`, `step_3_2_2_2` (that menu and the ones before it are
complete, not yet confirmed), `confirmed`, `certified`, and `late` (the cutoff passed uncertified).
The stage itself comes from `domain.school_round.stage_at`, the same rule the workflow uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from functools import cached_property, lru_cache

from domain.rounds import Schedule
from domain.school_round import STAGE_TH, BlockingCase, Decision, GateProgress, Stage, stage_at


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


@lru_cache(maxsize=4096)
def _schedule(opens_at: datetime, confirm_from: datetime, cutoff_at: datetime) -> Schedule:
    """One object for the schools that share their instants (most of a round's): the dashboard keeps
    thousands of snapshots. The projection's instants were validated by the workflow that wrote them:
    no second validation."""
    return Schedule.model_construct(opens_at=opens_at, confirm_from=confirm_from, cutoff_at=cutoff_at)


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
        return _schedule(self.opens_at, self.confirm_from, self.cutoff_at)

    @cached_property
    def _decisions(self) -> tuple[Decision | None, Decision | None]:
        """Made once: the dashboard keeps a snapshot between requests and asks its stage on each."""
        return (Decision.model_construct(by=self.confirmed_by or "", at=self.confirmed_at) if self.confirmed_at else None,
                Decision.model_construct(by=self.certified_by or "", at=self.certified_at) if self.certified_at else None)

    def stage(self, now: datetime) -> Stage:
        return stage_at(now, self.schedule, *self._decisions)


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


def stage_label(stage: Stage) -> tuple[str, str]:
    return STAGE_TH[stage], STAGE_EN[stage]
