"""What the dashboard, its live feed and the reports show, built from the projection (db.monitoring)
with the domain's rules (domain.monitoring). School-level data only: no student appears here."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from api.schemas import Instant, Person
from api.views import instant
from domain.thai_time import thai_datetime, to_bangkok
from db import monitoring as reads
from db.engine import session_scope
from domain.monitoring import BUCKET_LABELS, CASE_KINDS, AreaFigures, Bucket, SchoolStatus, area_figures, stage_label
from domain.school_round import Stage


class FunnelStep(BaseModel):
    bucket: Bucket
    label_th: str
    label_en: str
    count: int


class RiskOut(BaseModel):
    code: str = Field(description="roster_empty | not_started | behind_pace | blocked | not_confirmed | not_certified")
    th: str
    en: str


class AtRiskOut(BaseModel):
    school_code: str
    school_name: str
    seconds_left: int
    risk: RiskOut


class CaseOut(BaseModel):
    kind: str
    kind_th: str
    ref: str


class SchoolRowOut(BaseModel):
    school_code: str
    school_name: str
    stage: Stage
    stage_th: str
    stage_en: str
    bucket: Bucket
    gate: dict = Field(description="counts of menus 3.2.2 / 3.2.2.1 / 3.2.2.2 and which steps are done")
    open_id_corrections: int
    open_dropouts: int
    open_duplicates: int
    blocking_cases: list[CaseOut]
    cutoff_at: Instant
    seconds_left: int
    confirmed: Person | None
    certified: Person | None
    risk: RiskOut | None
    warning: RiskOut | None = Field(None, description="blocking_near_cutoff: open cases still block confirmation "
                                                      "within hours of the cutoff (domain.monitoring.BLOCKING_WARNING)")


class OpenCases(BaseModel):
    id_corrections: int = 0
    dropouts: int = 0
    duplicates: int = 0


class AreaDashboardOut(BaseModel):
    round_id: str
    area: str
    now: Instant
    total: int
    funnel: list[FunnelStep]
    at_risk: list[AtRiskOut]
    warnings: list[AtRiskOut] = Field(default_factory=list, description="schools an open case still blocks within "
                                                                         "hours of their cutoff, soonest first")
    open_cases: OpenCases
    schools: list[SchoolRowOut]


class AreaOverviewOut(BaseModel):
    area: str
    total: int
    funnel: dict[Bucket, int]
    at_risk: int
    at_risk_by_reason: dict[str, int]
    open_cases: OpenCases


class RoundOverviewOut(BaseModel):
    round_id: str
    now: Instant
    total: int
    funnel: list[FunnelStep]
    at_risk: int
    open_cases: OpenCases
    areas: list[AreaOverviewOut]


# An area's dashboard is built as plain JSON-ready dicts of the shape `AreaDashboardOut` documents
# (tests/test_dashboard_api.py validates the answers against it): the values are already valid, as
# they come from the projection through the domain's own types, and building ~10 pydantic objects per
# school cost more than everything else the request does. The routes answer the JSON text as it is.

def funnel_steps(counts: dict[Bucket, int]) -> list[FunnelStep]:
    return [FunnelStep.model_construct(bucket=b, label_th=BUCKET_LABELS[b][0], label_en=BUCKET_LABELS[b][1],
                                       count=counts.get(b, 0)) for b in Bucket]


def _instant(value: datetime) -> dict:
    return {"iso": to_bangkok(value).isoformat(), "th": thai_datetime(value)}


def _person(names: dict[str, str], by: str | None, at: datetime | None) -> dict | None:
    if by is None or at is None:
        return None
    return {"by": by, "by_name": names.get(by), "at": _instant(at)}


def _risk(status: SchoolStatus) -> dict | None:
    r = status.risk
    return {"code": r.code, "th": r.th, "en": r.en} if r else None


def _warning(status: SchoolStatus) -> dict | None:
    w = status.warning
    return {"code": w.code, "th": w.th, "en": w.en} if w else None


def school_row(st: SchoolStatus, names: dict[str, str], cutoffs: dict[datetime, dict]) -> dict:
    s = st.snapshot
    th, en = stage_label(st.stage)
    cutoff = cutoffs.get(s.cutoff_at) or cutoffs.setdefault(s.cutoff_at, _instant(s.cutoff_at))
    return {
        "school_code": s.school_code, "school_name": s.school_name, "stage": st.stage.value, "stage_th": th,
        "stage_en": en, "bucket": st.bucket.value, "gate": s.gate.summary(),
        "open_id_corrections": s.open_id_corrections, "open_dropouts": s.open_dropouts,
        "open_duplicates": s.open_duplicates,
        "blocking_cases": [{"kind": c.kind, "kind_th": CASE_KINDS.get(c.kind, (c.kind, c.kind))[0], "ref": c.ref}
                           for c in s.blocking],
        "cutoff_at": cutoff, "seconds_left": st.seconds_left,
        "confirmed": _person(names, s.confirmed_by, s.confirmed_at),
        "certified": _person(names, s.certified_by, s.certified_at), "risk": _risk(st), "warning": _warning(st)}


def area_figures_now(engine: Engine, round_id: str, area: str,
                     now: datetime) -> tuple[AreaFigures, dict[str, str], dict[str, int]]:
    with session_scope(engine) as session:
        snaps = reads.area_snapshots(session, round_id, area)
        names = reads.user_names(session, {x for s in snaps for x in (s.confirmed_by, s.certified_by) if x})
        cases = {"id_corrections": sum(x.open_id_corrections for x in snaps),
                 "dropouts": sum(x.open_dropouts for x in snaps),
                 "duplicates": reads.area_open_duplicates(session, round_id, area)}
    return area_figures(snaps, now), names, cases


def area_dashboard(engine: Engine, round_id: str, area: str, now: datetime) -> dict:
    """The `AreaDashboardOut` of an area at `now`, as a JSON-ready dict."""
    figures, names, cases = area_figures_now(engine, round_id, area, now)
    cutoffs: dict[datetime, dict] = {}
    return {
        "round_id": round_id, "area": area, "now": _instant(now), "total": figures.total,
        "funnel": [step.model_dump(mode="json") for step in funnel_steps(figures.funnel)],
        "at_risk": [{"school_code": s.snapshot.school_code, "school_name": s.snapshot.school_name,
                     "seconds_left": s.seconds_left, "risk": _risk(s)} for s in figures.at_risk],
        "warnings": [{"school_code": s.snapshot.school_code, "school_name": s.snapshot.school_name,
                      "seconds_left": s.seconds_left, "risk": _warning(s)} for s in figures.warned],
        "open_cases": cases, "schools": [school_row(s, names, cutoffs) for s in figures.schools]}


def area_dashboard_json(engine: Engine, round_id: str, area: str, now: datetime) -> str:
    return json.dumps(area_dashboard(engine, round_id, area, now), ensure_ascii=False, separators=(",", ":"))


# --- the round overview: one GROUP BY, shared ------------------------------------------------------

OVERVIEW_TTL_SECONDS = 2.0  # figures younger than this are served as they are
OVERVIEW_STALE_SECONDS = 15.0  # older ones, up to this, are served while one refresh runs behind them


@dataclass
class _Shared:
    made: float  # time.monotonic() when computed
    result: RoundOverviewOut
    refreshing: bool = False


_overview: dict[tuple[int, str], _Shared] = {}
_overview_locks: dict[tuple[int, str], threading.Lock] = {}
_guard = threading.Lock()


def _compute_overview(engine: Engine, round_id: str, now: datetime) -> RoundOverviewOut:
    with session_scope(engine) as session:
        counts = reads.round_funnel(session, round_id, now)
        cases = reads.round_open_cases(session, round_id)
        duplicates = reads.open_duplicates(session, round_id)  # a case between two areas counts once
    areas, total_funnel = [], {b: 0 for b in Bucket}
    for area, c in counts.items():
        areas.append(AreaOverviewOut(area=area, total=c.total, funnel=c.funnel, at_risk=sum(c.at_risk.values()),
                                     at_risk_by_reason=c.at_risk, open_cases=OpenCases(**cases.get(area, {}))))
        for b, n in c.funnel.items():
            total_funnel[b] += n
    total_cases = OpenCases(id_corrections=sum(a.open_cases.id_corrections for a in areas),
                            dropouts=sum(a.open_cases.dropouts for a in areas), duplicates=duplicates)
    return RoundOverviewOut(round_id=round_id, now=instant(now), total=sum(total_funnel.values()),
                            funnel=funnel_steps(total_funnel), at_risk=sum(a.at_risk for a in areas),
                            open_cases=total_cases, areas=areas)


def _age_below(shared: _Shared, now: datetime, seconds: float) -> bool:
    """Young enough by the wall clock and by the app's clock (which tests move by time skipping)."""
    return (time.monotonic() - shared.made < seconds
            and timedelta(0) <= now - shared.result.now.iso < timedelta(seconds=seconds))


def _refresh(engine: Engine, key: tuple[int, str], round_id: str, now: datetime) -> None:
    try:
        result = _compute_overview(engine, round_id, now)
        with _guard:
            _overview[key] = _Shared(time.monotonic(), result)
    finally:
        with _guard:
            if key in _overview:
                _overview[key].refreshing = False


def round_overview(engine: Engine, round_id: str, now: datetime) -> RoundOverviewOut:
    """A whole round is one aggregate over its projection (0.2–0.3 s for 30,000 schools, unloaded).
    Callers share it: figures younger than `OVERVIEW_TTL_SECONDS` are answered as they are; older
    ones (up to `OVERVIEW_STALE_SECONDS`) are answered at once while a single refresh runs in the
    background; only a first or long-idle caller waits, and concurrent first callers wait for one
    computation. The answer's `now` says how old the figures are."""
    key = (id(engine), round_id)
    with _guard:
        shared = _overview.get(key)
        if shared is not None and _age_below(shared, now, OVERVIEW_TTL_SECONDS):
            return shared.result
        if shared is not None and _age_below(shared, now, OVERVIEW_STALE_SECONDS):
            if not shared.refreshing:
                shared.refreshing = True
                threading.Thread(target=_refresh, args=(engine, key, round_id, now), daemon=True).start()
            return shared.result
        lock = _overview_locks.setdefault(key, threading.Lock())
    with lock:
        with _guard:
            shared = _overview.get(key)
            if shared is not None and _age_below(shared, now, OVERVIEW_TTL_SECONDS):
                return shared.result  # computed by the caller this one waited for
        result = _compute_overview(engine, round_id, now)
        with _guard:
            _overview[key] = _Shared(time.monotonic(), result)
        return result
