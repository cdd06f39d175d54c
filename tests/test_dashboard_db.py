"""The monitoring reads on SQLite and PostgreSQL: the database's GROUP BY agrees with the domain's rules."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import insert

from db import monitoring
from db.directory import create_round, upsert_school
from db.engine import session_scope
from db.models import (
    DropoutRequest, DuplicateCase, IdCorrection, InboundMessage, School, SchoolRound, Student, User,
)
from domain.area_figures import area_figures
from domain.funnel import Bucket
from domain.rounds import ROUND_2566_3
from domain.thai_time import bangkok
from tests.db_backends import backend_engine, backend_url  # noqa: F401

R = ROUND_2566_3
AREAS = ["สพม.มหาสารคาม", "สพป.ขอนแก่น เขต 1", "สพป.ทดสอบ เขต 3"]


def random_school_rows(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        students = rng.choice([0, 1, 5, 40, 300])
        results = rng.choice([0, students // 2, students, students])
        repeaters = rng.choice([0, students // 10])
        graduates = rng.choice([0, students // 5])
        gate = {"students": students, "results": results, "repeaters": repeaters,
                "repeat_reasons": rng.choice([0, repeaters]), "graduates": graduates,
                "destinations": rng.choice([0, graduates])}
        cutoff = R.cutoff_at + rng.choice([timedelta(0), timedelta(0), timedelta(days=2), timedelta(hours=-30)])
        opens = R.opens_at + rng.choice([timedelta(0), timedelta(days=58, hours=12)])
        confirm_from = min(R.confirm_from, cutoff - timedelta(hours=1))
        row = {"round_id": R.id, "school_code": f"{1000000000 + i}", "area": AREAS[i % 3], "stage": "open",
               "opens_at": opens, "confirm_from": confirm_from, "cutoff_at": cutoff, "gate": gate,
               "blocking": [{"kind": "duplicate", "ref": f"dup-{i}"}] if rng.random() < 0.2 else [],
               "version": 1, "confirmed_by": None, "confirmed_at": None, "certified_by": None, "certified_at": None,
               "escalated_at": None, "updated_at": R.opens_at}
        state = rng.random()
        if state > 0.6:
            row.update(confirmed_by="u-1", confirmed_at=R.confirm_from + timedelta(minutes=5))
        if state > 0.8:
            row.update(certified_by="u-2", certified_at=R.confirm_from + timedelta(minutes=20))
        rows.append(row)
    return rows


@pytest.fixture
def seeded(backend_engine):  # noqa: F811
    rng = random.Random(2566)
    rows = random_school_rows(rng, 240)
    with session_scope(backend_engine) as s:
        create_round(s, R)
        for row in rows:
            upsert_school(s, row["school_code"], f"โรงเรียน {row['school_code']}", row["area"], [])
        s.flush()
        s.execute(insert(SchoolRound.__table__), rows)
    return backend_engine, rows


INSTANTS = [R.opens_at - timedelta(hours=1), bangkok(2024, 4, 10, 10), bangkok(2024, 4, 28, 12),
            bangkok(2024, 4, 29, 10, 30), bangkok(2024, 4, 30, 8, 0), bangkok(2024, 4, 30, 15, 40),
            bangkok(2024, 4, 30, 16, 29, 59), R.cutoff_at, bangkok(2024, 5, 2, 16, 0)]


def test_the_round_funnel_and_at_risk_counts_agree_with_the_domain(seeded):
    engine, rows = seeded
    seen_reasons: Counter = Counter()
    with session_scope(engine) as s:
        for now in INSTANTS:
            counts = monitoring.round_funnel(s, R.id, now)
            assert set(counts) == set(AREAS)
            for area in AREAS:
                figures = area_figures(monitoring.area_snapshots(s, R.id, area), now)
                assert counts[area].funnel == figures.funnel, (now, area)
                reasons = Counter(x.risk.code for x in figures.at_risk)
                assert counts[area].at_risk == dict(reasons), (now, area)
                assert counts[area].total == figures.total == 80
                seen_reasons.update(reasons)
    # the data exercise every rule
    assert set(seen_reasons) == {"roster_empty", "not_started", "behind_pace", "blocked", "not_confirmed",
                                 "not_certified"}, seen_reasons


# --- the at-risk rule on its every boundary ---------------------------------------------------------------
# domain/at_risk.py (`assess`) and db/monitoring.py (`_risk_expression`, the round overview's GROUP BY) write
# the rule twice. The cases below are generated from the Python rule's own thresholds: each instant one
# second either side of every threshold (and on it, on PostgreSQL: SQLite's julianday arithmetic is off by
# microseconds, too little to show but enough to break an equality), and the pace rule one record either side.
# Each case is its own area of the overview, so the SQL's answer per school is compared with `assess`'s.

BOUNDARY_NOW = bangkok(2024, 4, 30, 12, 0)
SECOND = timedelta(seconds=1)


def _gate(students=0, results=0, repeaters=0, reasons=0, graduates=0, destinations=0) -> dict:
    return {"students": students, "results": results, "repeaters": repeaters, "repeat_reasons": reasons,
            "graduates": graduates, "destinations": destinations}


# (todo, done) shapes spread over the three menus, and over-complete counts (the clamp of `records_left`)
GATES = [_gate(), _gate(10, 10, 2, 2, 3, 3), _gate(5), _gate(5, 0, 1, 0, 1, 0), _gate(10, 4, 2, 0, 3, 1),
         _gate(10, 12, 2, 0, 3, 3), _gate(10, 10, 1, 3, 2, 0), _gate(10, 10, 2, 0, 1, 3), _gate(1),
         _gate(10, 10, 2, 1, 3, 3)]


def _pace_cases(deltas: list[int]) -> list[dict]:
    """Schools whose time left sits on the pace rule's threshold, for several rates and observation times
    (also either side of `MIN_OBSERVED`), then one record more or less to do or done at that time left."""
    from domain.at_risk import DECISION_TIME, MIN_OBSERVED

    out = []
    for observed in (MIN_OBSERVED - SECOND, MIN_OBSERVED + SECOND, timedelta(hours=2), timedelta(days=20)):
        for todo, done in ((1, 1), (7, 1), (2, 3), (40, 5), (5, 40), (299, 1)):
            left = max(observed, MIN_OBSERVED) * (todo / done) + DECISION_TIME
            sides = [(d, 0, 0) for d in deltas] + [(0, dt, dd) for dt, dd in ((1, 0), (-1, 0), (0, 1), (0, -1))]
            for d, dt, dd in sides:  # one record either side: at the threshold's instant (not an equality)
                if todo + dt < 1 or done + dd < 1:
                    continue
                gate = _gate(students=todo + dt + done + dd, results=done + dd)
                cutoff_at = BOUNDARY_NOW + left + d * SECOND
                for window, confirm_from in enumerate((BOUNDARY_NOW - observed, cutoff_at - timedelta(hours=1))):
                    out.append({"boundary": "pace, time left" if dt == dd == 0 else "pace, records",
                                "group": (observed, todo, done, window), "side": (d, dt, dd), "gate": gate,
                                "opens_at": BOUNDARY_NOW - observed, "confirm_from": confirm_from,
                                "cutoff_at": cutoff_at})
    return out


def _instant_cases(deltas: list[int]) -> list[dict]:
    """Schools on each threshold of an instant: the horizon (three days, and half of a short round), the
    last call, the confirmation window's start, the cutoff and the round's opening for the school."""
    from domain.at_risk import ATTENTION_HORIZON, LAST_CALL

    now, out = BOUNDARY_NOW, []
    long_ago, short = now - timedelta(days=50), timedelta(hours=2)
    for d in deltas:
        s = d * SECOND
        times = {
            "horizon": (long_ago, now - timedelta(hours=1), now + ATTENTION_HORIZON + s),
            "horizon, short round": (now - short, now - short, now + short + s),  # half the round: `short` left
            "last call": (long_ago, now - timedelta(hours=3), now + LAST_CALL + s),
            "confirmation window": (long_ago, now + s, now + LAST_CALL - SECOND),
            "cutoff": (long_ago, now - timedelta(hours=3), now + s),
            "opens": (now + s, now + s, now + timedelta(minutes=20)),
        }
        for boundary, (opens_at, confirm_from, cutoff_at) in times.items():
            out += [{"boundary": boundary, "group": n, "side": d, "gate": g, "opens_at": opens_at,
                     "confirm_from": confirm_from, "cutoff_at": cutoff_at} for n, g in enumerate(GATES)]
    return out


def test_the_round_overview_applies_the_at_risk_rule_on_its_every_boundary(backend_engine):  # noqa: F811
    from domain.at_risk import assess
    from domain.funnel import SchoolSnapshot
    from domain.school_round import BlockingCase, GateProgress

    exact = backend_engine.dialect.name == "postgresql"
    deltas = [-1, 0, 1] if exact else [-1, 1]
    now, cases = BOUNDARY_NOW, []
    for base in _instant_cases(deltas) + _pace_cases(deltas):
        for decided in ("none", "confirmed", "certified"):
            for blocking in ([], [{"kind": "duplicate", "ref": "dup-1"}]):
                cases.append(base | {"blocking": blocking, "group": (base["group"], decided, len(blocking)),
                                     "confirmed_at": None if decided == "none" else now - timedelta(hours=1),
                                     "certified_at": now - timedelta(minutes=30) if decided == "certified" else None})
    rows, expected = [], {}
    for i, c in enumerate(cases):
        code, area = f"{1000000000 + i}", f"case-{i:05d}"
        rows.append({"round_id": R.id, "school_code": code, "area": area, "stage": "open", "opens_at": c["opens_at"],
                     "confirm_from": c["confirm_from"], "cutoff_at": c["cutoff_at"], "gate": c["gate"],
                     "blocking": c["blocking"], "version": 1, "confirmed_by": c["confirmed_at"] and "u-1",
                     "confirmed_at": c["confirmed_at"], "certified_by": c["certified_at"] and "u-2",
                     "certified_at": c["certified_at"], "escalated_at": None, "updated_at": R.opens_at})
        snap = SchoolSnapshot(
            school_code=code, school_name=code, area=area, opens_at=c["opens_at"], confirm_from=c["confirm_from"],
            cutoff_at=c["cutoff_at"], gate=GateProgress.model_validate(c["gate"]), confirmed_by=rows[-1]["confirmed_by"],
            confirmed_at=c["confirmed_at"], certified_by=rows[-1]["certified_by"], certified_at=c["certified_at"],
            blocking=tuple(BlockingCase.model_validate(b) for b in c["blocking"]))
        risk = assess(snap, now)
        expected[area] = risk.code if risk else None
    with session_scope(backend_engine) as s:
        create_round(s, R)
        upsert_school(s, "1000000000", "โรงเรียนต้นแบบ", AREAS[0], [])
        s.flush()
        s.execute(insert(School.__table__), [{"code": r["school_code"], "name": r["school_code"], "area": AREAS[0],
                                              "updated_at": R.opens_at} for r in rows[1:]])
        s.execute(insert(SchoolRound.__table__), rows)
    with session_scope(backend_engine) as s:
        counts = monitoring.round_funnel(s, R.id, now)
    got = {area: next(iter(c.at_risk), None) for area, c in counts.items()}
    wrong = [(cases[int(a[5:])]["boundary"], cases[int(a[5:])]["side"], expected[a], got[a])
             for a in expected if got[a] != expected[a]]
    assert not wrong, (len(wrong), wrong[:10])
    # the cases sit on the thresholds: on each boundary, some school's answer differs either side of it
    answers: dict[tuple, set] = {}
    for c, area in zip(cases, expected, strict=True):
        answers.setdefault((c["boundary"], c["group"]), set()).add(expected[area])
    flips = Counter(boundary for (boundary, _), codes in answers.items() if len(codes) > 1)
    assert set(flips) == {"horizon", "horizon, short round", "last call", "confirmation window", "cutoff", "opens",
                          "pace, time left", "pace, records"}, flips
    assert set(expected.values()) == {None, "roster_empty", "not_started", "behind_pace", "blocked",
                                      "not_confirmed", "not_certified"}


def test_open_cases_are_counted_per_school_and_area(seeded):
    engine, rows = seeded
    a, b = rows[0]["school_code"], rows[3]["school_code"]  # both in AREAS[0]
    other = rows[1]["school_code"]  # AREAS[1]
    with session_scope(engine) as s:
        before = monitoring.area_fingerprint(s, R.id, AREAS[0])
        s.add(InboundMessage(sha256="f" * 64, via="smtp", received_at=R.opens_at, size=1, raw=b"x"))
        students = [Student(school_code=code, student_id=f"{n:013d}", first_name="ก", last_name="ข", grade="ม.1")
                    for n, code in enumerate([a, a, b, other])]
        s.add_all(students)
        s.flush()
        for n, status in enumerate(["pending", "pending", "approved"]):
            s.add(IdCorrection(id=f"IDC-{n}", message_sha="f" * 64, block=n, round_id=R.id, school_code=a,
                               area=AREAS[0], status=status))
        statuses = ["waiting_district", "waiting_school", "approved", "waiting_district"]
        for n, (st, status) in enumerate(zip(students, statuses, strict=True)):
            s.add(DropoutRequest(id=f"dro-{n}", round_id=R.id, school_code=st.school_code, area=AREAS[n // 3],
                                 student_pk=st.id, reason="moved_home", status=status, requested_by="u-1",
                                 requested_at=R.opens_at))
        s.add(DuplicateCase(id="dup-ab", round_id=R.id, kind="obec", student_pk=students[0].id, student_id="1",
                            holder_school=a, claimant_school=b, status="open"))
        s.add(DuplicateCase(id="dup-b-other", round_id=R.id, kind="obec", student_pk=students[3].id, student_id="2",
                            holder_school=other, claimant_school=b, status="open"))
        s.add(DuplicateCase(id="dup-done", round_id=R.id, kind="obec", student_pk=students[1].id, student_id="3",
                            holder_school=a, claimant_school=b, status="resolved"))
    with session_scope(engine) as s:
        snaps = {x.school_code: x for x in monitoring.area_snapshots(s, R.id, AREAS[0])}
        assert (snaps[a].open_id_corrections, snaps[a].open_dropouts, snaps[a].open_duplicates) == (2, 2, 1)
        assert (snaps[b].open_id_corrections, snaps[b].open_dropouts, snaps[b].open_duplicates) == (0, 0, 2)
        assert monitoring.area_fingerprint(s, R.id, AREAS[0]) != before
        cases = monitoring.round_open_cases(s, R.id)
        assert cases[AREAS[0]] == {"id_corrections": 2, "dropouts": 2, "duplicates": 2}
        assert cases[AREAS[1]] == {"id_corrections": 0, "dropouts": 1, "duplicates": 1}
        assert monitoring.area_exists(s, AREAS[2]) and not monitoring.area_exists(s, "สพม.ไม่มีจริง")


def test_the_round_overview_is_shared_and_refreshed_behind_its_callers(seeded):
    import time

    from api import dashboard_views as views

    engine, rows = seeded
    now = bangkok(2024, 4, 30, 10, 0)
    first = views.round_overview(engine, R.id, now)
    uncertified = next(r["school_code"] for r in rows if r["certified_at"] is None)
    with session_scope(engine) as s:
        s.get(SchoolRound, (R.id, uncertified)).certified_at = now  # one more certified school
    assert views.round_overview(engine, R.id, now + timedelta(seconds=1)) is first  # shared for 2 s
    later = now + timedelta(seconds=5)
    assert views.round_overview(engine, R.id, later) is first  # answered at once, refreshed behind
    for _ in range(200):
        shared = views._overview[(id(engine), R.id)]
        if not shared.refreshing:
            break
        time.sleep(0.05)
    refreshed = views.round_overview(engine, R.id, later)
    assert refreshed is not first and refreshed.now.iso == later
    certified = sum(a.funnel[Bucket.certified] for a in refreshed.areas)
    assert certified == sum(a.funnel[Bucket.certified] for a in first.areas) + 1
    moved = views.round_overview(engine, R.id, now + timedelta(days=1))  # a skipped clock: computed again
    assert moved.now.iso == now + timedelta(days=1)


def test_an_areas_dashboard_shows_every_change_at_once(seeded):
    """The dashboard keeps what the clock does not move between requests (api/dashboard_views.py): a
    decision, a decider's name, an open case, a school's new name and a new school show on the next look."""
    import json

    from api import dashboard_views as views

    engine, rows = seeded
    area, now = AREAS[0], bangkok(2024, 4, 30, 10, 0)

    def look() -> dict:
        body = json.loads(views.area_dashboard_json(engine, R.id, area, now))
        return {**body, "by_code": {s["school_code"]: s for s in body["schools"]}}

    first = look()
    assert look() == first  # kept, the same answer
    code = next(r["school_code"] for r in rows
                if r["area"] == area and r["certified_at"] is None and r["opens_at"] <= now < r["cutoff_at"])
    with session_scope(engine) as s:  # as the projection writes a decision: a new version, updated_at
        row = s.get(SchoolRound, (R.id, code))
        row.certified_by, row.certified_at, row.version, row.updated_at = "u-2", now, row.version + 1, now
    body = look()
    assert body["by_code"][code]["stage"] == "certified" and body["by_code"][code]["certified"]["by_name"] is None
    assert body["funnel"] != first["funnel"]
    with session_scope(engine) as s:
        s.add(User(id="u-2", display_name="ผอ.โรงเรียน", role="director", token_hash="x" * 64,
                   token_expires_at=now + timedelta(days=1)))
    assert look()["by_code"][code]["certified"]["by_name"] == "ผอ.โรงเรียน"
    with session_scope(engine) as s:
        s.add(InboundMessage(sha256="e" * 64, via="smtp", received_at=now, size=1, raw=b"x"))
        s.flush()
        s.add(IdCorrection(id="IDC-NEW", message_sha="e" * 64, block=1, round_id=R.id, school_code=code, area=area,
                           status="pending"))
    body = look()
    assert body["by_code"][code]["open_id_corrections"] == 1 and body["open_cases"]["id_corrections"] == 1
    with session_scope(engine) as s:
        upsert_school(s, code, "โรงเรียนชื่อใหม่", area, [])
        upsert_school(s, "1099999999", "โรงเรียนมาใหม่", area, [])
        s.flush()
        s.add(SchoolRound(round_id=R.id, school_code="1099999999", area=area, stage="open", opens_at=R.opens_at,
                          confirm_from=R.confirm_from, cutoff_at=R.cutoff_at, gate={"students": 3}, blocking=[],
                          version=1))
    body = look()
    assert body["by_code"][code]["school_name"] == "โรงเรียนชื่อใหม่"
    assert body["total"] == first["total"] + 1 and body["by_code"]["1099999999"]["gate"]["students"] == 3
