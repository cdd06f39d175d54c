"""What the dashboard, its live feed and the reports show, built from the projection (db.monitoring)
with the domain's rules (domain.funnel, domain.at_risk, domain.area_figures). School-level data only: no student
appears here."""

from __future__ import annotations

import json
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.schemas import Instant, Person
from api.views import instant
from domain.thai_time import thai_datetime, to_bangkok
from db import monitoring as reads
from db.engine import session_scope
from domain.area_figures import AreaFigures, area_figures
from domain.at_risk import CASE_KINDS, Risk
from domain.funnel import BUCKET_LABELS, Bucket, SchoolSnapshot, stage_label
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
                                                      "within hours of the cutoff (domain.at_risk.BLOCKING_WARNING)")


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


def funnel_steps(counts: dict[Bucket, int]) -> list[FunnelStep]:
    return [FunnelStep.model_construct(bucket=b, label_th=BUCKET_LABELS[b][0], label_en=BUCKET_LABELS[b][1],
                                       count=counts.get(b, 0)) for b in Bucket]


def _instant(value: datetime) -> dict:
    return {"iso": to_bangkok(value).isoformat(), "th": thai_datetime(value)}


def _person(names: dict[str, str], by: str | None, at: datetime | None) -> dict | None:
    if by is None or at is None:
        return None
    return {"by": by, "by_name": names.get(by), "at": _instant(at)}


def area_figures_now(engine: Engine, round_id: str, area: str,
                     now: datetime) -> tuple[AreaFigures, dict[str, str], dict[str, int]]:
    with session_scope(engine) as session:
        snaps = reads.area_snapshots(session, round_id, area)
        names = reads.user_names(session, {x for s in snaps for x in (s.confirmed_by, s.certified_by) if x})
        cases = {"id_corrections": sum(x.open_id_corrections for x in snaps),
                 "dropouts": sum(x.open_dropouts for x in snaps),
                 "duplicates": reads.area_open_duplicates(session, round_id, area)}
    return area_figures(snaps, now), names, cases


# --- an area's dashboard: the JSON text of `AreaDashboardOut` ----------------------------------------
#
# Written as JSON text straight away (tests/test_dashboard_api.py validates the answers against the
# model): building ~10 pydantic objects per school cost more than everything else the request did.
# What the clock does not move (names, gate counts, cases that block, instants, who decided) is kept
# per area as JSON fragments (about 4 KB a school: 120 MB for the country's 30,000), checked on every
# request against each school's row version (`db.monitoring.area_versions`); only a changed school's row
# is read again. A request reads those versions and the area's open cases (two small queries) and works
# out only what moves with time: each school's stage, bucket, risk and warning, by the domain's own
# rules (`domain.area_figures.school_status`).

_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # json.dumps made one per call
_STAGE_JSON = {stage: f'"stage":{_json(stage.value)},"stage_th":{_json(stage_label(stage)[0])},'
                      f'"stage_en":{_json(stage_label(stage)[1])},' for stage in Stage}
_BUCKET_JSON = {b: f'"bucket":{_json(b.value)},' for b in Bucket}
_FUNNEL_JSON = {b: f'{{"bucket":{_json(b.value)},"label_th":{_json(BUCKET_LABELS[b][0])},'
                   f'"label_en":{_json(BUCKET_LABELS[b][1])},"count":' for b in Bucket}
AREA_CACHE_SIZE = 300  # areas kept per database (the country has 245)


@dataclass(frozen=True, slots=True)
class _SchoolPart:
    """A school's row of the dashboard, the parts the clock does not move as JSON text."""

    snapshot: SchoolSnapshot
    head: str  # '{"school_code":…,"school_name":…,' (an at-risk entry starts the same way)
    gate: str  # '"gate":{…},'
    tail: str  # '"blocking_cases":[…],"cutoff_at":{…},'
    persons: str  # '"confirmed":…,"certified":…,'


@dataclass(frozen=True)
class _AreaPart:
    versions: dict[str, tuple]  # `db.monitoring.area_versions` when the rows were read
    schools: list[_SchoolPart]  # by school code


_areas: weakref.WeakKeyDictionary[Engine, OrderedDict[tuple[str, str], _AreaPart]] = weakref.WeakKeyDictionary()
_areas_guard = threading.Lock()


def _school_part(row, cutoffs: dict[datetime, str]) -> _SchoolPart:
    """From a row of `db.monitoring.area_rows`."""
    s = reads.snapshot(row)
    names = {row.confirmed_by: row.confirmed_name, row.certified_by: row.certified_name}
    cutoff = cutoffs.get(s.cutoff_at) or cutoffs.setdefault(s.cutoff_at, _json(_instant(s.cutoff_at)))
    blocking = [{"kind": c.kind, "kind_th": CASE_KINDS.get(c.kind, (c.kind, c.kind))[0], "ref": c.ref}
                for c in s.blocking]
    return _SchoolPart(
        snapshot=s, head=f'{{"school_code":{_json(s.school_code)},"school_name":{_json(s.school_name)},',
        gate=f'"gate":{_json(s.gate.summary())},', tail=f'"blocking_cases":{_json(blocking)},"cutoff_at":{cutoff},',
        persons=f'"confirmed":{_json(_person(names, s.confirmed_by, s.confirmed_at))},'
                f'"certified":{_json(_person(names, s.certified_by, s.certified_at))},')


def _area_part(session, engine: Engine, round_id: str, area: str) -> _AreaPart:
    """The area's parts that the clock does not move, kept between requests: a school's part is read and
    made again when its row's version changed (`db.monitoring.area_versions`: a decision, a new name).
    The versions are read before the rows: a write in between only makes the next request read again."""
    versions = reads.area_versions(session, round_id, area)
    key = (round_id, area)
    with _areas_guard:
        kept = _areas.setdefault(engine, OrderedDict()).get(key)
        if kept is not None and kept.versions == versions:
            _areas[engine].move_to_end(key)
            return kept
    cutoffs: dict[datetime, str] = {}
    changed = None if kept is None else {code for code, v in versions.items() if kept.versions.get(code) != v}
    if changed is None or len(changed) > len(versions) / 2:  # a first look, or most schools changed
        schools = [_school_part(r, cutoffs) for r in reads.area_rows(session, round_id, area)]
    else:  # schools changed, came or went: the ones that changed or came are read again
        schools = [p for p in kept.schools if p.snapshot.school_code in versions
                   and p.snapshot.school_code not in changed]
        if changed:
            schools += [_school_part(r, cutoffs) for r in reads.area_rows(session, round_id, area, sorted(changed))]
    part = _AreaPart(versions=versions, schools=sorted(schools, key=lambda p: p.snapshot.school_code))
    with _areas_guard:
        areas = _areas[engine]
        areas[key] = part
        areas.move_to_end(key)
        while len(areas) > AREA_CACHE_SIZE:
            areas.popitem(last=False)
    return part


def _risk_json(risk: Risk | None) -> str:
    return "null" if risk is None else _json({"code": risk.code, "th": risk.th, "en": risk.en})


def area_dashboard_json(engine: Engine, round_id: str, area: str, now: datetime, session: Session | None = None) -> str:
    """The `AreaDashboardOut` of an area at `now`, as JSON text; read in `session` when given (the caller's,
    which checked the viewer's scope: one transaction a request, not two)."""
    if session is None:
        with session_scope(engine) as session:
            return area_dashboard_json(engine, round_id, area, now, session)
    part = _area_part(session, engine, round_id, area)
    cases = reads.area_cases(session, round_id, area)
    figures = area_figures([p.snapshot for p in part.schools], now)  # in school-code order, as part.schools
    idc, dro, dup = cases.id_corrections, cases.dropouts, cases.duplicates
    risks: dict[str, str] = {}
    rows = []
    for school, st in zip(part.schools, figures.schools, strict=True):
        code = st.snapshot.school_code
        risk = risks[code] = _risk_json(st.risk)
        rows.append(f'{school.head}{_STAGE_JSON[st.stage]}{_BUCKET_JSON[st.bucket]}{school.gate}'
                    f'"open_id_corrections":{idc.get(code, 0)},"open_dropouts":{dro.get(code, 0)},'
                    f'"open_duplicates":{dup.get(code, 0)},{school.tail}"seconds_left":{st.seconds_left},'
                    f'{school.persons}"risk":{risk},"warning":{_risk_json(st.warning)}}}')
    heads = {p.snapshot.school_code: p.head for p in part.schools}
    at_risk = ",".join(f'{heads[st.snapshot.school_code]}"seconds_left":{st.seconds_left},'
                       f'"risk":{risks[st.snapshot.school_code]}}}' for st in figures.at_risk)
    warned = ",".join(f'{heads[st.snapshot.school_code]}"seconds_left":{st.seconds_left},'
                      f'"risk":{_risk_json(st.warning)}}}' for st in figures.warned)
    funnel = ",".join(f"{_FUNNEL_JSON[b]}{n}}}" for b, n in figures.funnel.items())
    open_cases = {"id_corrections": sum(idc.get(code, 0) for code in heads),
                  "dropouts": sum(dro.get(code, 0) for code in heads), "duplicates": cases.area_duplicates}
    return (f'{{"round_id":{_json(round_id)},"area":{_json(area)},"now":{_json(_instant(now))},'
            f'"total":{figures.total},"funnel":[{funnel}],"at_risk":[{at_risk}],"warnings":[{warned}],'
            f'"open_cases":{_json(open_cases)},"schools":[{",".join(rows)}]}}')


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


_overview_texts: dict[tuple[int, str], tuple[RoundOverviewOut, str]] = {}


def round_overview_json(engine: Engine, round_id: str, now: datetime) -> str:
    """`round_overview` as JSON text, written once per computation (75 KB for 245 areas), not per caller."""
    result = round_overview(engine, round_id, now)
    key = (id(engine), round_id)
    with _guard:
        kept = _overview_texts.get(key)
    if kept is not None and kept[0] is result:
        return kept[1]
    text = result.model_dump_json()
    with _guard:
        _overview_texts[key] = (result, text)
    return text
