"""The live feed's cost against the number of watchers (issue 18): SQL statements per area per tick.

    python -m bench.live_feed                          # 1, 20 and 200 watchers; one area, then four
    python -m bench.live_feed --watchers 1,20,200 --areas-watched 1,4 --ticks 10

The API (in this process, under uvicorn, so that a SQLAlchemy event listener on its engine sees every
statement it runs) over a seeded round of `--schools` schools in `--areas` areas, an area as large as the
country's (122 schools). Watchers are real SSE connections over HTTP, a third of each kind: the district
dashboard's feed (bearer token), the district queue's (the officer's web session) and schools' homes
(each school's staff session, schools spread over the area). Once every watcher has its first event,
statements are counted for `--ticks` ticks of every watched area, while a school of each watched area
changes every `--change-every` ticks. Each statement is told apart by where it ran: the area's pulse
(the poll), a dashboard build, or anything else (nothing else should run).

The figure: pulse statements per area per tick (goal 1, the same for 1 and 200 watchers) and dashboard
builds per change (goal 1: one build handed to every dashboard watching the area).
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import random
import statistics
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import httpx
import uvicorn
from sqlalchemy import event, text, update
from sqlmodel import select

import api.live
from api.app import create_app
from api.live import LiveHub
from api.viewer import COOKIE
from bench.dashboard import ROUND, area_name, seed
from bench.local_temporal import free_port
from bench.report import emit
from db.directory import create_user
from db.engine import make_engine, session_scope
from db.migrate import upgrade
from db.models import School, SchoolRound, User
from db.web_sessions import SessionPolicy, open_session
from dmcflow.settings import Settings

WHERE: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="other")  # copied into to_thread


class Counted:
    """Statements by where they ran, pulses per area, dashboard builds; counting only while `on`."""

    def __init__(self, engine) -> None:
        self.on = False
        self.statements: Counter = Counter()
        self.pulses: Counter = Counter()
        self.builds = 0
        self.pulse_ms: list[float] = []  # each counted poll's own time (its one statement, in its thread)
        event.listen(engine, "before_cursor_execute", self._statement)

    def _statement(self, *_args) -> None:
        where = WHERE.get()
        if self.on and where != "outside" or where in ("pulse", "build"):
            self.statements[where] += 1

    def reset(self) -> None:
        self.statements, self.pulses, self.builds, self.pulse_ms = Counter(), Counter(), 0, []


def instrument(hub: LiveHub, counted: Counted) -> None:
    pulse, build = hub._pulse, api.live.area_dashboard_json

    # a poll or build begun before the count (or after it) is not counted, nor are its statements
    def counted_pulse(round_id, area, now):
        WHERE.set("pulse" if counted.on else "outside")
        if not counted.on:
            return pulse(round_id, area, now)
        counted.pulses[area] += 1
        t0 = time.perf_counter()
        try:
            return pulse(round_id, area, now)
        finally:
            counted.pulse_ms.append((time.perf_counter() - t0) * 1000)

    def counted_build(*args):
        WHERE.set("build" if counted.on else "outside")
        if counted.on:
            counted.builds += 1
        return build(*args)

    hub._pulse = counted_pulse
    api.live.area_dashboard_json = counted_build


def sessions(engine, areas: int, per_area: int, now: datetime) -> dict[int, dict]:
    """Per watched area: its officer's web session, and the staff sessions of `per_area` of its schools."""
    policy = SessionPolicy(timedelta(hours=8), timedelta(hours=8))
    found: dict[int, dict] = {}
    with session_scope(engine) as s:
        for a in range(areas):
            officer = s.exec(select(User).where(User.role == "district", User.area == area_name(a))).first()
            codes = list(s.exec(select(School.code).where(School.area == area_name(a)).order_by(School.code)))
            staff = []
            for code in codes[:per_area]:
                user, _ = create_user(s, role="staff", display_name=f"bench staff {code}", school_code=code)
                s.flush()
                staff.append((code, open_session(s, user, now, policy)[1]))
            found[a] = {"officer": open_session(s, officer, now, policy)[1], "staff": staff,
                        "codes": codes}
    return found


def watcher_plan(a: int, n: int, who: dict) -> list[tuple[str, dict]]:
    """n watchers of area `a`: dashboard, queue and school homes in turn."""
    area = quote(area_name(a), safe="")
    plan = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            plan.append((f"/rounds/{ROUND}/areas/{area}/events", {"Authorization": f"Bearer bench-district-{a}"}))
        elif kind == 1:
            plan.append((f"/live/areas/{area}/rounds/{ROUND}/queue", {"Cookie": f"{COOKIE}={who['officer']}"}))
        else:
            code, session_id = who["staff"][(i // 3) % len(who["staff"])]
            plan.append((f"/live/schools/{code}/rounds/{ROUND}", {"Cookie": f"{COOKIE}={session_id}"}))
    return plan


async def watch(http: httpx.AsyncClient, path: str, headers: dict, first: asyncio.Event, events: list) -> None:
    async with http.stream("GET", path, headers=headers) as feed:
        assert feed.status_code == 200, (path, feed.status_code)
        async for line in feed.aiter_lines():
            if line.startswith("data: "):
                events.append(time.monotonic())
                first.set()


def change(writer, code: str, n: int) -> None:
    """A change every page of the school's area shows: its staff confirmed (again)."""
    with session_scope(writer) as s:
        s.execute(update(SchoolRound).where(SchoolRound.round_id == ROUND, SchoolRound.school_code == code)
                  .values(version=SchoolRound.version + 1, updated_at=datetime.now(timezone.utc),
                          confirmed_by="u-bench", confirmed_at=datetime.now(timezone.utc) - timedelta(seconds=n)))


async def scenario(base: str, hub: LiveHub, counted: Counted, writer, who: dict, watchers: int, areas: int,
                   ticks: int, change_every: int) -> dict:
    plans = {a: watcher_plan(a, watchers, who[a]) for a in range(areas)}
    limits = httpx.Limits(max_connections=watchers * areas + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(60, read=None), limits=limits) as http:
        firsts, received, tasks = [], [], []
        for a in range(areas):
            for path, headers in plans[a]:
                first, events = asyncio.Event(), []
                firsts.append(first)
                received.append(events)
                tasks.append(asyncio.create_task(watch(http, path, headers, first, events)))
        await asyncio.wait_for(asyncio.gather(*(f.wait() for f in firsts)), 120)
        await asyncio.sleep(hub.poll_seconds * 1.5)  # the feeds settled: every first build is done
        counted.reset()
        counted.on = True
        changes = 0
        target = ticks * areas
        t0 = time.monotonic()
        while sum(counted.pulses.values()) < target:
            done = sum(counted.pulses.values()) // areas
            if done and done % change_every == 0 and changes < done // change_every and done <= ticks - 2:
                changes += 1
                for a in range(areas):
                    code = who[a]["codes"][random.randrange(len(who[a]["codes"]))]
                    await asyncio.to_thread(change, writer, code, changes)
            await asyncio.sleep(hub.poll_seconds / 10)
        await asyncio.sleep(hub.poll_seconds / 2)  # the last tick's builds end
        counted.on = False
        elapsed = time.monotonic() - t0
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    pulses = sum(counted.pulses.values())
    dashboards = sum(1 for a in range(areas) for path, _ in plans[a] if path.endswith("/events"))
    return {"watchers_per_area": watchers, "areas": areas, "ticks_per_area": round(pulses / areas, 1),
            "queries_per_area_tick": round(counted.statements["pulse"] / pulses, 3),
            "changes_per_area": changes, "dashboard_watchers": dashboards,
            "builds_per_change": round(counted.builds / (changes * areas), 2) if changes and dashboards else None,
            "statements_per_build": round(counted.statements["build"] / counted.builds, 1) if counted.builds else None,
            "other_statements": counted.statements["other"], "seconds": round(elapsed, 1),
            "pulse_ms_p50": round(statistics.median(counted.pulse_ms), 2),
            "events_received": sum(len(e) for e in received)}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schools", type=int, default=3000)
    ap.add_argument("--areas", type=int, default=25, help="3,000 schools in 25 areas: 120 an area, as in the country")
    ap.add_argument("--watchers", type=lambda v: [int(x) for x in v.split(",")], default=[1, 20, 200])
    ap.add_argument("--areas-watched", type=lambda v: [int(x) for x in v.split(",")], default=[1, 4])
    ap.add_argument("--ticks", type=int, default=10)
    ap.add_argument("--change-every", type=int, default=3)
    ap.add_argument("--poll", type=float, default=api.live.POLL_SECONDS)
    ap.add_argument("--database-url", help="default: a SQLite file in a temp dir; postgresql://... (an empty database)")
    ap.add_argument("--json", default="bench/results/live_feed.json")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dmcflow-live-"))
    url = args.database_url or f"sqlite:///{tmp / 'app.sqlite'}"
    upgrade(url)
    engine, writer = make_engine(url), make_engine(url)
    now = datetime.now(timezone.utc)
    seed(writer, args.schools, args.areas, now, random.Random(18))
    if writer.dialect.name == "postgresql":  # the planner's statistics, as a database in service has them
        with writer.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    who = sessions(writer, max(args.areas_watched), max(1, max(args.watchers) // 3), now)

    async def wall_clock() -> datetime:
        return datetime.now(timezone.utc)

    app = create_app(Settings(database_url=url), engine=engine, temporal=object(), clock=wall_clock)
    # the time-only refresh (a build per area every 30 s, whatever the watchers) is left out of the count
    hub = app.state.live_hub = LiveHub(engine, wall_clock, poll_seconds=args.poll, refresh_seconds=3600)
    counted = Counted(engine)
    instrument(hub, counted)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                           access_log=False, timeout_graceful_shutdown=1))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    figures: dict = {"schools": args.schools, "areas": args.areas, "database": url.split(":")[0],
                     "poll_seconds": args.poll, "scenarios": []}
    try:
        for areas in args.areas_watched:
            for watchers in args.watchers:
                found = await scenario(f"http://127.0.0.1:{port}", hub, counted, writer, who, watchers, areas,
                                       args.ticks, args.change_every)
                print(found, flush=True)
                figures["scenarios"].append(found)
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 30)
    by = {(s["areas"], s["watchers_per_area"]): s for s in figures["scenarios"]}
    for (areas, watchers), s in sorted(by.items()):
        figures[f"live_queries_per_area_tick_{areas}a_{watchers}w"] = s["queries_per_area_tick"]
    low, high = min(args.watchers), max(args.watchers)
    one = by.get((1, low)) or figures["scenarios"][0]
    most = by.get((1, high)) or figures["scenarios"][-1]
    figures |= {"live_watchers_fewest": low, "live_watchers_most": high,
                "live_queries_per_area_tick_fewest": one["queries_per_area_tick"],
                "live_queries_per_area_tick_most": most["queries_per_area_tick"],
                "live_ratio_most_to_fewest": round(most["queries_per_area_tick"] / one["queries_per_area_tick"], 3),
                "live_builds_per_change_most": most["builds_per_change"]}
    print(f"\nlive feed: queries per area per tick at {low} and {high} watchers: {one['queries_per_area_tick']} and "
          f"{most['queries_per_area_tick']} (goal: 1, equal; ratio {figures['live_ratio_most_to_fewest']}); "
          f"dashboard builds per change at {high}: {most['builds_per_change']} (goal: 1)", flush=True)
    emit(figures, args.json)


if __name__ == "__main__":
    asyncio.run(main())
