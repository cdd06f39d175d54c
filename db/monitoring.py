"""Reads for district monitoring, all from the `school_rounds` projection and the case tables.

Never one query per school and never a workflow query: an area is a handful of indexed queries
(its projection rows, then its open cases counted with GROUP BY), a whole round's funnel is one
GROUP BY over the projection with the stage computed by the database at the given instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

from sqlalchemy import (
    Float, Integer, String, and_, bindparam, case, column, func, literal, null, or_, select, true, type_coerce, union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session

from db.models import (
    AuditEvent, DropoutRequest, DuplicateCase, IdCorrection, Round, School, SchoolRound, Student, User,
)
from db.projection_rows import blocking_of, gate_of
from domain.at_risk import ATTENTION_HORIZON, DECISION_TIME, LAST_CALL, MIN_OBSERVED
from domain.funnel import Bucket, SchoolSnapshot, empty_funnel

OPEN_ID_CORRECTION = ("pending",)
OPEN_DROPOUT = ("waiting_district", "waiting_school")
DECIDED_DROPOUT = ("approved", "rejected", "expired", "withdrawn")
OPEN_DUPLICATE = ("open", "at_district")  # db.duplicates.OPEN_STATUSES: a case without its outcome


def area_exists(session: Session, area: str) -> bool:
    """An area is known when a school of it exists (an area without schools has nothing to watch)."""
    return session.scalars(select(School.code).where(School.area == area).limit(1)).first() is not None


def latest_round(session: Session) -> Round | None:
    """The round a dashboard opens on by default: the last one started, else the last one created."""
    started = session.scalars(select(Round).where(Round.started_at.is_not(None))
                              .order_by(Round.started_at.desc()).limit(1)).first()
    return started or session.scalars(select(Round).order_by(Round.created_at.desc()).limit(1)).first()


def _counts(session: Session, stmt) -> dict[str, int]:
    return {code: n for code, n in session.execute(stmt).all()}


def open_case_counts(session: Session, round_id: str, area: str) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Per school of the area's projection: pending ID corrections, open dropout consultations, open duplicate
    cases (`area_cases`)."""
    found = area_cases(session, round_id, area)
    return found.id_corrections, found.dropouts, found.duplicates


_ROW = (SchoolRound.school_code, School.name, SchoolRound.area, SchoolRound.opens_at, SchoolRound.confirm_from,
        SchoolRound.cutoff_at, SchoolRound.confirmed_by, SchoolRound.confirmed_at, SchoolRound.certified_by,
        SchoolRound.certified_at, SchoolRound.gate, SchoolRound.blocking, SchoolRound.updated_at)


def area_snapshots(session: Session, round_id: str, area: str) -> list[SchoolSnapshot]:
    rows = session.execute(select(*_ROW).join(School, School.code == SchoolRound.school_code)
                           .where(SchoolRound.round_id == round_id, SchoolRound.area == area)).all()
    idc, dro, dup = open_case_counts(session, round_id, area)
    return [snapshot(r, idc.get(r.school_code, 0), dro.get(r.school_code, 0), dup.get(r.school_code, 0)) for r in rows]


def snapshot(r, idc: int = 0, dro: int = 0, dup: int = 0) -> SchoolSnapshot:
    """From a row of `_ROW`."""
    return SchoolSnapshot(
        school_code=r.school_code, school_name=r.name, area=r.area, opens_at=r.opens_at, confirm_from=r.confirm_from,
        cutoff_at=r.cutoff_at, gate=gate_of(r), confirmed_by=r.confirmed_by,
        confirmed_at=r.confirmed_at, certified_by=r.certified_by, certified_at=r.certified_at,
        blocking=tuple(blocking_of(r)), open_id_corrections=idc,
        open_dropouts=dro, open_duplicates=dup, updated_at=r.updated_at)


def school_snapshot(session: Session, round_id: str, school_code: str) -> SchoolSnapshot | None:
    row = session.execute(select(*_ROW).join(School, School.code == SchoolRound.school_code)
                          .where(SchoolRound.round_id == round_id, SchoolRound.school_code == school_code)).first()
    if row is None:
        return None
    idc, dro, dup = open_case_counts(session, round_id, row.area)
    return snapshot(row, idc.get(school_code, 0), dro.get(school_code, 0), dup.get(school_code, 0))


# The dashboard's reads of an area, on every request: each statement is built once, with the round and the
# area as parameters, and run on the session's connection (no ORM entities to load).
_ROUND, _AREA = bindparam("round_id"), bindparam("area")
_OF_AREA = (SchoolRound.round_id == _ROUND, SchoolRound.area == _AREA)
_CONFIRMER, _CERTIFIER = aliased(User), aliased(User)


def _with_deciders(stmt):
    """The names of who confirmed and who certified, beside the projection row (None: no such user)."""
    return (stmt.add_columns(_CONFIRMER.display_name.label("confirmed_name"),
                             _CERTIFIER.display_name.label("certified_name"))
            .outerjoin(_CONFIRMER, _CONFIRMER.id == SchoolRound.confirmed_by)
            .outerjoin(_CERTIFIER, _CERTIFIER.id == SchoolRound.certified_by))


@cache
def _versions_statement():
    # the instants as the driver gives them (only compared, never shown): no time-zone work per row
    return _with_deciders(
        select(SchoolRound.school_code, SchoolRound.version, type_coerce(SchoolRound.updated_at, String),
               type_coerce(School.updated_at, String))
        .join(School, School.code == SchoolRound.school_code).where(*_OF_AREA))


def area_versions(session: Session, round_id: str, area: str) -> dict[str, tuple]:
    """Per school of the area, what changes whenever its dashboard row may change apart from the clock
    and its cases: its projection row (every projection write moves the row's version and `updated_at`,
    db/projection.py), its directory row (every write moves `updated_at`) and its deciders' names. One
    indexed read of a few columns: what the dashboard keeps between requests is checked against it."""
    rows = session.connection().execute(_versions_statement(), {"round_id": round_id, "area": area}).all()
    return {row[0]: tuple(row[1:]) for row in rows}


@cache
def _rows_statement(some: bool):
    stmt = _with_deciders(select(*_ROW).join(School, School.code == SchoolRound.school_code).where(*_OF_AREA))
    return stmt.where(SchoolRound.school_code.in_(bindparam("codes", expanding=True))) if some else stmt


def area_rows(session: Session, round_id: str, area: str, codes: list[str] | None = None) -> list:
    """The area's projection rows with their schools' and deciders' names (rows of `_ROW` with
    `confirmed_name`, `certified_name`); only these schools' if `codes`."""
    params = {"round_id": round_id, "area": area}
    if codes is not None:
        params["codes"] = codes
    return session.connection().execute(_rows_statement(codes is not None), params).all()


@dataclass
class AreaCases:
    """An area's open cases: per school of its projection, pending ID corrections, open dropout consultations
    and open duplicate cases (as holder or claimant, the school in the area); and the open duplicate cases
    with a party school in the area, each counted once."""

    id_corrections: dict[str, int] = field(default_factory=dict)
    dropouts: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    area_duplicates: int = 0


@cache
def _cases_statement():
    in_projection = select(SchoolRound.school_code).where(*_OF_AREA).scalar_subquery()

    def dup(kind: str, side):
        return (select(literal(kind), side, func.count()).join(School, School.code == side)
                .where(DuplicateCase.round_id == _ROUND, DuplicateCase.status.in_(OPEN_DUPLICATE), School.area == _AREA)
                .group_by(side))

    claimant = aliased(School)
    both = (select(literal("both"), null(), func.count()).select_from(DuplicateCase)
            .join(School, School.code == DuplicateCase.holder_school)
            .join(claimant, claimant.code == DuplicateCase.claimant_school)
            .where(DuplicateCase.round_id == _ROUND, DuplicateCase.status.in_(OPEN_DUPLICATE),
                   School.area == _AREA, claimant.area == _AREA))
    return union_all(
        # reached from the area's projection rows through the (round, school) indexes: the area's cases only
        select(literal("idc"), IdCorrection.school_code, func.count())
        .where(IdCorrection.round_id == _ROUND, IdCorrection.school_code.in_(in_projection),
               IdCorrection.area == _AREA, IdCorrection.status.in_(OPEN_ID_CORRECTION))
        .group_by(IdCorrection.school_code),
        select(literal("dro"), DropoutRequest.school_code, func.count())
        .where(DropoutRequest.round_id == _ROUND, DropoutRequest.school_code.in_(in_projection),
               DropoutRequest.area == _AREA, DropoutRequest.status.in_(OPEN_DROPOUT))
        .group_by(DropoutRequest.school_code),
        dup("holder", DuplicateCase.holder_school), dup("claimant", DuplicateCase.claimant_school), both)


def area_cases(session: Session, round_id: str, area: str) -> AreaCases:
    """The area's open cases, in one query."""
    found = AreaCases()
    sides = 0
    for kind, code, n in session.connection().execute(_cases_statement(), {"round_id": round_id, "area": area}):
        if kind == "idc":
            found.id_corrections[code] = n
        elif kind == "dro":
            found.dropouts[code] = n
        elif kind == "both":
            found.area_duplicates -= n  # a case between two of the area's schools is one case, not two
        else:
            found.duplicates[code] = found.duplicates.get(code, 0) + n
            sides += n
    found.area_duplicates += sides
    return found


def area_fingerprint(session: Session, round_id: str, area: str) -> tuple:
    """Changes whenever anything the area's dashboard shows changes (apart from the clock)."""
    rows = session.execute(select(func.count(), func.max(SchoolRound.updated_at), func.sum(SchoolRound.version))
                           .where(SchoolRound.round_id == round_id, SchoolRound.area == area)).one()
    idc, dro, dup = open_case_counts(session, round_id, area)
    return (*rows, sum(idc.values()), sum(dro.values()), tuple(sorted(dup.items())))


class epoch_seconds(FunctionElement):
    """Seconds since 1970 of a stored instant, on each backend (SQLite keeps naive UTC text)."""

    type = Float()
    name = "epoch_seconds"
    inherit_cache = True


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element, compiler, **kw):
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


@compiles(epoch_seconds)
def _epoch_postgresql(element, compiler, **kw):  # date_part: double precision (EXTRACT answers numeric, slower)
    return f"date_part('epoch', {compiler.process(element.clauses, **kw)})"


def _positive(a, b):
    return case((a > b, a - b), else_=0)


GATE_FIELDS = [("students", "students"), ("results", "results"), ("repeaters", "repeaters"),
               ("repeat_reasons", "reasons"), ("graduates", "graduates"), ("destinations", "destinations")]


def _facts(round_id: str, dialect: str):
    """One row per school with the gate counts and instants read once (materialised: the expressions
    below refer to them many times). The JSON gate is parsed once per row: SQLite caches the parse
    of `json_extract`; PostgreSQL would parse a `json` column again for every `->>`, so it reads
    all six counts with one `json_to_record`."""
    r = SchoolRound
    stmt = select(r.area.label("area"), r.opens_at.label("opens_at"), r.cutoff_at.label("cutoff_at"),
                  r.confirm_from.label("confirm_from"), r.confirmed_at.label("confirmed_at"),
                  r.certified_at.label("certified_at"),
                  epoch_seconds(r.opens_at).label("opens_s"), epoch_seconds(r.cutoff_at).label("cutoff_s"),
                  func.json_array_length(r.blocking).label("blocking"))
    if dialect == "postgresql":
        gate = func.json_to_record(r.gate).table_valued(
            *(column(key, Integer) for key, _ in GATE_FIELDS)).render_derived("gate", with_types=True)
        stmt = stmt.add_columns(*(func.coalesce(gate.c[key], 0).label(name) for key, name in GATE_FIELDS)) \
            .select_from(r).join(gate, true())
    else:
        stmt = stmt.add_columns(*(func.coalesce(r.gate[key].as_integer(), 0).label(name) for key, name in GATE_FIELDS))
    return stmt.where(r.round_id == round_id).cte("facts").prefix_with("MATERIALIZED")


def _bucket_expression(f, now: datetime):
    """`domain.funnel.bucket_of(stage_at(now, ...))`, computed by the database."""
    s322 = and_(f.c.students > 0, f.c.results >= f.c.students)
    s3221 = and_(s322, f.c.reasons >= f.c.repeaters)
    s3222 = and_(s3221, f.c.destinations >= f.c.graduates)
    return case(
        (f.c.certified_at.is_not(None), literal(Bucket.certified.value)),
        (f.c.opens_at > now, literal(Bucket.not_open.value)),
        (f.c.cutoff_at <= now, literal(Bucket.late.value)),
        (f.c.confirmed_at.is_not(None), literal(Bucket.confirmed.value)),
        (s3222, literal(Bucket.step_3_2_2_2.value)),
        (s3221, literal(Bucket.step_3_2_2_1.value)),
        (s322, literal(Bucket.step_3_2_2.value)),
        else_=literal(Bucket.open.value))


def _risk_expression(f, now: datetime):
    """`domain.at_risk.assess(...).code` (None when on track), computed by the database: the rules
    of that module's docstring, in the same order. tests/test_dashboard_db.py holds them equal on every
    threshold of the Python rule (cases generated from its constants, one second or one record either side)."""
    now_s = now.timestamp()
    left = f.c.cutoff_s - now_s
    observed = case((now_s - f.c.opens_s > MIN_OBSERVED.total_seconds(), now_s - f.c.opens_s),
                    else_=MIN_OBSERVED.total_seconds())
    half_round = (f.c.cutoff_s - f.c.opens_s) / 2.0
    horizon = case((half_round < ATTENTION_HORIZON.total_seconds(), half_round),
                   else_=ATTENTION_HORIZON.total_seconds())
    near = left <= horizon
    todo = (_positive(f.c.students, f.c.results) + _positive(f.c.repeaters, f.c.reasons)
            + _positive(f.c.graduates, f.c.destinations))
    done = f.c.results + f.c.reasons + f.c.destinations
    confirmed = f.c.confirmed_at.is_not(None)
    window = f.c.confirm_from <= now
    last_call = left <= LAST_CALL.total_seconds()
    return case(
        (or_(f.c.certified_at.is_not(None), f.c.opens_at > now, f.c.cutoff_at <= now), literal(None)),
        (f.c.students == 0, case((near, literal("roster_empty")), else_=literal(None))),
        (and_(~confirmed, todo > 0, done == 0), case((near, literal("not_started")), else_=literal(None))),
        (and_(~confirmed, todo > 0, observed * todo * 1.0 / done + DECISION_TIME.total_seconds() > left),
         literal("behind_pace")),
        (and_(~confirmed, f.c.blocking > 0, near), literal("blocked")),
        (and_(~confirmed, todo == 0, window, last_call), literal("not_confirmed")),
        (and_(confirmed, window, last_call), literal("not_certified")),
        else_=literal(None))


@dataclass
class AreaCounts:
    funnel: dict[Bucket, int] = field(default_factory=empty_funnel)
    at_risk: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.funnel.values())


def round_funnel(session: Session, round_id: str, now: datetime) -> dict[str, AreaCounts]:
    """Every area of the round at `now`: schools per funnel bucket and at-risk schools per reason.
    One GROUP BY over the projection, whatever the number of schools."""
    f = _facts(round_id, session.get_bind().dialect.name)
    bucket = _bucket_expression(f, now).label("bucket")
    risk = _risk_expression(f, now).label("risk")
    rows = session.execute(select(f.c.area, bucket, risk, func.count()).group_by(f.c.area, bucket, risk)).all()
    areas: dict[str, AreaCounts] = {}
    for area, b, code, n in rows:
        counts = areas.setdefault(area, AreaCounts())
        counts.funnel[Bucket(b)] += n
        if code:
            counts.at_risk[code] = counts.at_risk.get(code, 0) + n
    return dict(sorted(areas.items()))


def area_open_duplicates(session: Session, round_id: str, area: str) -> int:
    """Open duplicate cases with a party school in the area (a case between two of its schools counts once)."""
    return area_cases(session, round_id, area).area_duplicates


def round_open_cases(session: Session, round_id: str) -> dict[str, dict[str, int]]:
    """Per area of the round: pending ID corrections, open dropouts and open duplicate cases."""
    out: dict[str, dict[str, int]] = {}

    def add(key: str, stmt) -> None:
        for area, n in session.execute(stmt).all():
            out.setdefault(area, {"id_corrections": 0, "dropouts": 0, "duplicates": 0})[key] += n

    add("id_corrections", select(IdCorrection.area, func.count()).where(
        IdCorrection.round_id == round_id, IdCorrection.status.in_(OPEN_ID_CORRECTION)).group_by(IdCorrection.area))
    add("dropouts", select(DropoutRequest.area, func.count()).where(
        DropoutRequest.round_id == round_id, DropoutRequest.status.in_(OPEN_DROPOUT)).group_by(DropoutRequest.area))
    add("duplicates", select(School.area, func.count(func.distinct(DuplicateCase.id)))
        .join(School, or_(School.code == DuplicateCase.holder_school, School.code == DuplicateCase.claimant_school))
        .where(DuplicateCase.round_id == round_id, DuplicateCase.status.in_(OPEN_DUPLICATE)).group_by(School.area))
    return out


def open_duplicates(session: Session, round_id: str) -> int:
    return session.execute(select(func.count()).select_from(DuplicateCase).where(
        DuplicateCase.round_id == round_id, DuplicateCase.status.in_(OPEN_DUPLICATE))).scalar_one()


def user_names(session: Session, ids: set[str]) -> dict[str, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all())


def school_audit(session: Session, round_id: str, school_code: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.round_id == round_id,
                                                         AuditEvent.school_code == school_code)
                                .order_by(AuditEvent.at, AuditEvent.id)))


def decided_id_corrections(session: Session, round_id: str, school_code: str) -> list[IdCorrection]:
    return list(session.scalars(select(IdCorrection).where(
        IdCorrection.round_id == round_id, IdCorrection.school_code == school_code,
        IdCorrection.status.not_in(OPEN_ID_CORRECTION)).order_by(IdCorrection.created_at, IdCorrection.id)))


def decided_dropouts(session: Session, round_id: str, school_code: str) -> list[tuple[DropoutRequest, Student | None]]:
    rows = session.execute(select(DropoutRequest, Student).outerjoin(Student, Student.id == DropoutRequest.student_pk)
                           .where(DropoutRequest.round_id == round_id, DropoutRequest.school_code == school_code,
                                  DropoutRequest.status.in_(DECIDED_DROPOUT))
                           .order_by(DropoutRequest.requested_at, DropoutRequest.id)).all()
    return [(d, s) for d, s in rows]


def resolved_duplicates(session: Session, round_id: str, school_code: str) -> list[tuple[DuplicateCase, Student | None]]:
    rows = session.execute(select(DuplicateCase, Student).outerjoin(Student, Student.id == DuplicateCase.student_pk)
                           .where(DuplicateCase.round_id == round_id, DuplicateCase.status == "resolved",
                                  or_(DuplicateCase.holder_school == school_code,
                                      DuplicateCase.claimant_school == school_code))
                           .order_by(DuplicateCase.opened_at, DuplicateCase.id)).all()
    return [(c, s) for c, s in rows]
