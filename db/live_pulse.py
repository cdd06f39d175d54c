"""What the live pages watch, read in one statement per area: the pulse of an area's schools.

One row per school and kind, from the projection and the case tables (a UNION ALL of small indexed
GROUP BYs): the school's projection row (its version, and where `now` stands against its three instants),
its own row of the directory (the R1 profile), its ID corrections, dropout requests and duplicate cases
(as holder and as claimant) counted by status. Nothing of the rows is sent anywhere: the live feed
(api/live.py) compares digests of them, so a page learns only that *its* part changed.

A digest is one of three views of the same rows: a school's (its home: every row of that school), the
area's queue (what the district decides, and which schools are late), the whole area (the dashboard).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Integer, String, and_, bindparam, case, func, literal_column, select, type_coerce, union_all
from sqlmodel import Session

from db.models import DropoutRequest, DuplicateCase, IdCorrection, School, SchoolRound
from db.types import AwareDateTime

DASHBOARD, QUEUE, SCHOOL = "dashboard", "queue", "school:"
QUEUE_KINDS = frozenset("idhc")  # ID corrections, dropouts, duplicates (holder side, claimant side)


_ZERO = literal_column("0", Integer)  # SQL literals, not parameters: PostgreSQL types a UNION's columns from them


def _kind(letter: str):
    return literal_column(f"'{letter}'", String)


def _flag(condition):
    return case((condition, 1), else_=0)


def pulse(session: Session, round_id: str, now: datetime, *, area: str | None = None,
          school: str | None = None) -> list[tuple]:
    """(kind, school, a, b, c, at) rows of an area's schools (`area`), or of one school whatever its area (`school`)."""
    by = "area" if area is not None else "school"
    params = {"round_id": round_id, "now": now, "key": area if area is not None else school}
    return [tuple(row) for row in session.execute(_statement(by), params).all()]


@lru_cache(maxsize=2)
def _statement(by: str):
    """Built once with bound parameters (round_id, now, key): building the expression costs more than running it."""
    sr, s, idc, dro, dup = SchoolRound, School, IdCorrection, DropoutRequest, DuplicateCase
    round_id, now, key = bindparam("round_id", type_=String), bindparam("now", type_=AwareDateTime), \
        bindparam("key", type_=String)

    def scoped(stmt, area_column, school_column):
        return stmt.where((area_column if by == "area" else school_column) == key)

    # where `now` stands against the school's instants (its stage moves with time alone), and late (R13)
    phase = _flag(sr.opens_at <= now) + _flag(sr.confirm_from <= now) + _flag(sr.cutoff_at <= now)
    late = _flag(and_(sr.certified_at.is_(None), sr.cutoff_at <= now))
    parts = [
        scoped(select(_kind("r"), sr.school_code, sr.version, phase, late, sr.updated_at)
               .where(sr.round_id == round_id), sr.area, sr.school_code),
        scoped(select(_kind("s"), s.code, _ZERO, _ZERO, _ZERO, s.updated_at), s.area, s.code),
        scoped(select(_kind("i"), idc.school_code, func.count(), func.sum(_flag(idc.status == "pending")),
                      _ZERO, type_coerce(func.max(idc.created_at), AwareDateTime))
               .where(idc.round_id == round_id), idc.area, idc.school_code).group_by(idc.school_code),
        scoped(select(_kind("d"), dro.school_code, func.count(), func.sum(_flag(dro.status == "waiting_district")),
                      func.sum(_flag(dro.status == "waiting_school")),
                      type_coerce(func.max(dro.requested_at), AwareDateTime))
               .where(dro.round_id == round_id), dro.area, dro.school_code).group_by(dro.school_code),
    ]
    for kind, side in (("h", dup.holder_school), ("c", dup.claimant_school)):  # a claim is both schools' business
        parts.append(scoped(
            select(_kind(kind), side, func.count(), func.sum(_flag(dup.status == "claimed")),
                   func.sum(_flag(dup.status.in_(("open", "at_district")))),
                   type_coerce(func.max(dup.opened_at), AwareDateTime))
            .join(s, s.code == side).where(dup.round_id == round_id), s.area, side).group_by(side))
    return union_all(*parts)


def _digest(rows: Iterable) -> str:
    return hashlib.sha1("\n".join(sorted(map(repr, rows))).encode()).hexdigest()[:16]


def school_digest(rows: Iterable[tuple]) -> str:
    """Of one school's rows (`pulse(..., school=code)`, or its rows of the area's pulse)."""
    return _digest(rows)


def queue_digest(rows: Iterable[tuple]) -> str:
    """What the district's queue shows: the cases by status, and which schools are late."""
    return _digest(row if row[0] in QUEUE_KINDS else (row[1], row[4]) for row in rows if row[0] in QUEUE_KINDS
                   or row[0] == "r")


def area_digest(rows: Iterable[tuple]) -> str:
    return _digest(rows)


class Digests:
    """The digests of one area's pulse, each computed once, when asked for."""

    def __init__(self, rows: list[tuple]) -> None:
        self.rows = rows
        self.whole = area_digest(rows)
        self._by_school: dict[str, list[tuple]] | None = None
        self._found: dict[str, str] = {}

    def of(self, watch: str) -> str:
        if watch not in self._found:
            if watch == QUEUE:
                self._found[watch] = queue_digest(self.rows)
            elif watch.startswith(SCHOOL):
                if self._by_school is None:
                    self._by_school = defaultdict(list)
                    for row in self.rows:
                        self._by_school[row[1]].append(row)
                self._found[watch] = school_digest(self._by_school.get(watch[len(SCHOOL):], ()))
            else:
                self._found[watch] = self.whole
        return self._found[watch]
