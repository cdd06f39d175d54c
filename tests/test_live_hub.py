"""The live feed's cost and what each watcher learns (issue 17's live pages, issue 18's figure), in process.

LiveHub is driven tick by tick (no timing): its poller's own first tick is awaited, then `tick()` is
called by the test while every SQL statement on the engine is counted. The cost of a tick is one
statement per area, whatever the number of watchers (1, 20, 200) or their kinds, plus one build of the
dashboard per change when a dashboard is watched. A school's watcher hears of its own school's changes
only; the queue's of cases and late schools, not of a school's routine work; the dashboard's of all.
On SQLite and PostgreSQL: the pulse is one UNION ALL statement that both must read alike.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, insert, update

from api.live import DASHBOARD, QUEUE, SCHOOL, LiveHub
from db import live_pulse
from db.directory import create_round, upsert_school
from db.engine import session_scope
from db.models import DropoutRequest, InboundMessage, IdCorrection, SchoolRound, Student
from domain.rounds import ROUND_2566_3
from tests.db_backends import backend_engine, backend_url  # noqa: F401

R = ROUND_2566_3
AREAS = ["สพม.มหาสารคาม", "สพป.ขอนแก่น เขต 1", "สพป.ทดสอบ เขต 3"]
PER_AREA = 12
NOW = R.confirm_from + timedelta(hours=2)  # the confirmation window: nobody is late yet


def code(area: int, n: int) -> str:
    return f"{1000000000 + area * 100 + n}"


@pytest.fixture
def seeded(backend_engine):  # noqa: F811
    with session_scope(backend_engine) as s:
        create_round(s, R)
        for a, area in enumerate(AREAS):
            for n in range(PER_AREA):
                upsert_school(s, code(a, n), f"โรงเรียน {a}-{n}", area, [])
        s.flush()
        s.execute(insert(SchoolRound.__table__), [
            {"round_id": R.id, "school_code": code(a, n), "area": area, "stage": "confirmation_window",
             "opens_at": R.opens_at, "confirm_from": R.confirm_from, "cutoff_at": R.cutoff_at,
             "gate": {"students": 10}, "blocking": [], "version": 1, "updated_at": R.opens_at}
            for a, area in enumerate(AREAS) for n in range(PER_AREA)])
        s.add(InboundMessage(sha256="f" * 64, via="smtp", received_at=R.opens_at, size=1, raw=b"x"))
    return backend_engine


class Statements:
    """Every SQL statement the engine runs while counting."""

    def __init__(self, engine) -> None:
        self.n, self.on = 0, False
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args) -> None:
        if self.on:
            self.n += 1

    @contextlib.contextmanager
    def counting(self):
        self.n, self.on = 0, True
        try:
            yield self
        finally:
            self.on = False


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    async def __call__(self) -> datetime:
        return self.now


@contextlib.asynccontextmanager
async def watching(hub: LiveHub, watchers: list[tuple[str, str]]):
    """Subscribes every (area, watch); answers their queues once each has its first item (the poller's own tick)."""
    async with contextlib.AsyncExitStack() as stack:
        queues = [await stack.enter_async_context(hub.subscribe(R.id, area, watch)) for area, watch in watchers]
        firsts = await asyncio.wait_for(asyncio.gather(*(q.get() for q in queues)), 30)
        yield queues, firsts


def drained(queues) -> list:
    return [q.get_nowait() if not q.empty() else None for q in queues]


def bump(engine, school: str) -> None:
    """A school's routine change: its workflow wrote its projection row again (a batch of end-of-year records)."""
    with session_scope(engine) as s:
        s.execute(update(SchoolRound).where(SchoolRound.round_id == R.id, SchoolRound.school_code == school)
                  .values(version=SchoolRound.version + 1, updated_at=NOW))


def confirm(engine, school: str) -> None:
    """A change the dashboard shows: the school's staff confirmed."""
    with session_scope(engine) as s:
        s.execute(update(SchoolRound).where(SchoolRound.round_id == R.id, SchoolRound.school_code == school)
                  .values(version=SchoolRound.version + 1, updated_at=NOW, confirmed_by="u-1", confirmed_at=NOW))


def new_correction(engine, school: str, area: str, ref: str) -> None:
    with session_scope(engine) as s:
        s.add(IdCorrection(id=ref, message_sha="f" * 64, block=1, round_id=R.id, school_code=school, area=area,
                           status="pending"))


@pytest.mark.parametrize("watchers", [1, 20, 200])
async def test_a_tick_costs_one_statement_per_area_whatever_the_number_of_watchers(seeded, watchers):
    engine = seeded
    statements = Statements(engine)
    hub = LiveHub(engine, Clock(NOW), poll_seconds=3600)  # the poller ticks once on its own, then the test ticks
    kinds = [QUEUE, SCHOOL + code(0, 0), SCHOOL + code(0, 1)]
    # one area watched by `watchers` pages of each kind; two other areas by as many school pages
    plan = [(AREAS[0], kinds[i % 3]) for i in range(watchers)] + [(AREAS[0], kinds[i]) for i in range(3)]
    plan += [(AREAS[a], SCHOOL + code(a, i % PER_AREA)) for a in (1, 2) for i in range(watchers)]
    async with watching(hub, plan) as (queues, firsts):
        assert all(firsts)
        with statements.counting():  # nothing changed: one statement per area, nobody is told anything
            for area in AREAS:
                await hub.tick(R.id, area)
        assert statements.n == len(AREAS) and drained(queues) == [None] * len(queues)

        bump(engine, code(0, 0))  # one school's change
        with statements.counting():
            for area in AREAS:
                await hub.tick(R.id, area)
        assert statements.n == len(AREAS)  # told by digest: no build of anything
        told = [(watch, item is not None) for (_, watch), item in zip(plan, drained(queues), strict=True)]
        assert {w for w, heard in told if heard} == {SCHOOL + code(0, 0)}  # its own home only: not the queue


@pytest.mark.parametrize("watchers", [1, 20, 200])
async def test_the_dashboard_is_built_once_per_change_for_all_its_watchers(seeded, watchers):
    engine = seeded
    statements = Statements(engine)
    hub = LiveHub(engine, Clock(NOW), poll_seconds=3600)
    async with watching(hub, [(AREAS[0], DASHBOARD)] * watchers) as (queues, firsts):
        assert len(set(firsts)) == 1  # one build, handed to every page
        with statements.counting():
            await hub.tick(R.id, AREAS[0])
        idle = statements.n
        confirm(engine, code(0, 3))
        with statements.counting():
            await hub.tick(R.id, AREAS[0])
        items = drained(queues)
    assert idle == 1 and statements.n > 1  # the pulse, then the build
    assert all(items) and len(set(items)) == 1 and items[0] != firsts[0]


async def test_the_cost_of_a_change_does_not_grow_with_dashboard_watchers(seeded):
    engine = seeded
    statements = Statements(engine)
    per_change = []
    for watchers in (1, 200):
        hub = LiveHub(engine, Clock(NOW), poll_seconds=3600)
        async with watching(hub, [(AREAS[1], DASHBOARD)] * watchers):
            confirm(engine, code(1, watchers % PER_AREA))
            with statements.counting():
                await hub.tick(R.id, AREAS[1])
            per_change.append(statements.n)
    assert per_change[0] == per_change[1] > 1  # one pulse and one build, for 1 watcher or 200


async def test_each_watcher_hears_of_what_its_page_shows(seeded):
    engine = seeded
    clock = Clock(NOW)
    hub = LiveHub(engine, clock, poll_seconds=3600)
    mine, other = code(0, 4), code(0, 5)
    plan = [(AREAS[0], SCHOOL + mine), (AREAS[0], SCHOOL + other), (AREAS[0], QUEUE), (AREAS[2], QUEUE)]
    async with watching(hub, plan) as (queues, _):
        async def told() -> list[bool]:
            await hub.tick(R.id, AREAS[0])
            await hub.tick(R.id, AREAS[2])
            return [item is not None for item in drained(queues)]

        new_correction(engine, mine, AREAS[0], "IDC-1")  # an ID correction arrives for `mine`
        assert await told() == [True, False, True, False]
        with session_scope(engine) as s:  # its district decides it
            s.get(IdCorrection, "IDC-1").status = "approved"
        assert await told() == [True, False, True, False]
        with session_scope(engine) as s:  # a dropout request of `other` waits for the district, then is asked back
            student = Student(school_code=other, student_id="1449900000018", first_name="ก", last_name="ข", grade="ม.1")
            s.add(student)
            s.flush()
            s.add(DropoutRequest(id="dro-1", round_id=R.id, school_code=other, area=AREAS[0], student_pk=student.id,
                                 reason="moved_home", status="waiting_district", requested_by="u-1", requested_at=NOW))
        assert await told() == [False, True, True, False]
        with session_scope(engine) as s:
            s.get(DropoutRequest, "dro-1").status = "waiting_school"
        assert await told() == [False, True, True, False]
        bump(engine, other)  # routine work of a school: its home, not the queue
        assert await told() == [False, True, False, False]
        assert await told() == [False, False, False, False]  # nothing new: nobody is told
        clock.now = R.cutoff_at + timedelta(minutes=1)  # time alone: the schools are late, their stage moved
        assert await told() == [True, True, True, True]


def test_a_pages_digest_is_the_one_the_feed_computes(seeded):
    """The page renders with `pulse(school=...)`, the feed computes from the area's pulse: the same digest."""
    engine = seeded
    new_correction(engine, code(2, 1), AREAS[2], "IDC-9")
    with session_scope(engine) as s:
        area_rows = live_pulse.pulse(s, R.id, NOW, area=AREAS[2])
        digests = live_pulse.Digests(area_rows)
        for n in (0, 1):
            own = live_pulse.pulse(s, R.id, NOW, school=code(2, n))
            assert {row[1] for row in own} == {code(2, n)}
            assert live_pulse.school_digest(own) == digests.of(SCHOOL + code(2, n))
        assert digests.of(SCHOOL + code(2, 0)) != digests.of(SCHOOL + code(2, 1))
        assert live_pulse.queue_digest(area_rows) == digests.of(QUEUE)
        assert digests.of(DASHBOARD) == live_pulse.area_digest(area_rows)
