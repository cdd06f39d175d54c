"""District monitoring, an area at a glance: each school's stage, funnel bucket, at-risk reason and warning
(`domain.funnel`, `domain.at_risk`), and the area's funnel counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.at_risk import Risk, assess, blocking_warning
from domain.funnel import Bucket, SchoolSnapshot, bucket_of, empty_funnel
from domain.school_round import Stage


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
    warning = None
    if s.blocking:
        warning = blocking_warning(s.blocking, stage, s.cutoff_at, now, set(getattr(s.gate, "excused_cases", ())))
    return SchoolStatus(snapshot=s, stage=stage, bucket=bucket_of(stage, s.gate), risk=assess(s, now, stage),
                        seconds_left=max(0, int((s.cutoff_at - now).total_seconds())), warning=warning)


def area_figures(snapshots: list[SchoolSnapshot], now: datetime) -> AreaFigures:
    statuses = sorted((school_status(s, now) for s in snapshots), key=lambda x: x.snapshot.school_code)
    funnel = empty_funnel()
    for st in statuses:
        funnel[st.bucket] += 1
    return AreaFigures(now=now, funnel=funnel, schools=statuses)
