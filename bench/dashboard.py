"""Dashboard read latency for a national round: `area_dashboard`, `round_overview` and the page.

    python -m bench.dashboard                       # 30,000 schools, 245 areas: SQLite, then PostgreSQL
    python -m bench.dashboard --backends sqlite     # one only (PostgreSQL: a private server, bench/local_postgres.py)
    python -m bench.dashboard --database-url postgresql://user:pw@host/db   # an empty database of your own

The projection of a round of 30,000 schools in 245 areas is written straight into the app database
(with open ID corrections, dropouts and duplicate cases sprinkled over it): the dashboard reads only
the projection, so 30,000 running workflows are not needed to measure how fast it reads (starting
them is what `bench.start_round` measures). The API runs under uvicorn in its own process, as in
production, and is asked over real HTTP with several requests in flight at once: `area_dashboard` with
each area's district token, the page with the web session its officer logged in to once.

The main figures are the last afternoon's: every area's dashboard has been looked at once (its officer
has it open), and projection writes keep arriving meanwhile (`--writes-per-s`, each a school's new
version, as a decision makes it). `area_dashboard_first_look` is the worst case: every school's row
changed at once, then 200 areas each asked for the first time since. The p95 of each with 8 requests in
flight is printed with the goal (150 ms, issue 18) and its ratio (≤ 1 meets it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import httpx
from sqlalchemy import insert, update

from api.viewer import COOKIE
from bench.harness import cpu_s
from bench.local_temporal import free_port
from bench.report import emit
from db.directory import create_round, create_user
from db.engine import make_engine, session_scope
from db.migrate import upgrade
from db.models import (
    Area, DropoutRequest, DuplicateCase, IdCorrection, InboundMessage, School, SchoolRound, Student,
)
from domain.rounds import RoundSpec

ROUND = "bench"
GOAL_MS, GOAL_CONCURRENCY = 150, 8  # issue 18: an area's dashboard and the page, p95 with 8 requests in flight
GOAL_FIGURES = ("area_dashboard", "dashboard_page", "area_dashboard_first_look")


def area_name(a: int) -> str:
    return f"สพป.ทดสอบ เขต {a + 1}"


def seed(engine, schools: int, areas: int, now: datetime, rng: random.Random) -> None:
    """Schools, a round on its last day (confirmation open, cutoff in 5 hours), and every school's
    projection row at some point of the funnel."""
    opens, confirm_from, cutoff = now - timedelta(days=60), now - timedelta(hours=3), now + timedelta(hours=5)
    with session_scope(engine) as s:
        create_round(s, RoundSpec(id=ROUND, academic_year=2566, opens_at=opens, confirm_from=confirm_from,
                                  cutoff_at=cutoff))
        s.add_all([Area(name=area_name(a)) for a in range(areas)])
        s.flush()
        s.execute(insert(School.__table__), [
            {"code": f"{1000000000 + i}", "name": f"โรงเรียนทดสอบ {i}", "area": area_name(i % areas), "updated_at": now}
            for i in range(schools)])
        rows = []
        for i in range(schools):
            students = rng.randint(20, 1500)
            kind = rng.random()
            results = students if kind > 0.3 else rng.randint(0, students)
            repeaters, graduates = students // 30, students // 6
            row = {"round_id": ROUND, "school_code": f"{1000000000 + i}", "area": area_name(i % areas),
                   "stage": "confirmation_window", "opens_at": opens, "confirm_from": confirm_from, "cutoff_at": cutoff,
                   "gate": {"students": students, "results": results, "repeaters": repeaters,
                            "repeat_reasons": repeaters if kind > 0.4 else 0, "graduates": graduates,
                            "destinations": graduates if kind > 0.5 else 0},
                   "blocking": [{"kind": "duplicate", "ref": f"dup-{i}"}] if rng.random() < 0.01 else [],
                   "version": rng.randint(1, 40), "updated_at": now - timedelta(seconds=rng.randint(0, 86400)),
                   "confirmed_by": None, "confirmed_at": None, "certified_by": None, "certified_at": None,
                   "escalated_at": None}
            if kind > 0.6:
                row.update(confirmed_by="u-bench", confirmed_at=now - timedelta(minutes=rng.randint(1, 170)))
            if kind > 0.8:
                row.update(certified_by="u-bench", certified_at=now - timedelta(minutes=rng.randint(0, 60)))
            rows.append(row)
        s.execute(insert(SchoolRound.__table__), rows)
        # open side cases on about 2 % of the schools
        s.add(InboundMessage(sha256="0" * 64, via="smtp", received_at=now, size=1, raw=b"x", status="processed"))
        picked = rng.sample(range(schools), min(schools, 600))
        students = [Student(school_code=f"{1000000000 + i}", student_id=f"{i:013d}", first_name="ทดสอบ",
                            last_name="ระบบ", grade="ม.1") for i in picked]
        s.add_all(students)
        s.flush()
        for n, (i, st) in enumerate(zip(picked, students, strict=True)):
            code, area = f"{1000000000 + i}", area_name(i % areas)
            if n % 3 == 0:
                s.add(IdCorrection(id=f"IDC-{n:08d}", message_sha="0" * 64, block=n, round_id=ROUND, school_code=code,
                                   area=area, status="pending"))
            elif n % 3 == 1:
                s.add(DropoutRequest(id=f"dro-{n}", round_id=ROUND, school_code=code, area=area, student_pk=st.id,
                                     reason="moved_home", status="waiting_district", requested_by="u-bench",
                                     requested_at=now))
            else:
                s.add(DuplicateCase(id=f"dup-{n}", round_id=ROUND, kind="obec", student_pk=st.id,
                                    student_id=st.student_id, holder_school=code, status="open"))
        create_user(s, role="admin", display_name="bench admin", token="bench-admin")
        for a in range(areas):
            create_user(s, role="district", display_name=f"bench district {a}", area=area_name(a),
                        token=f"bench-district-{a}")


def app_factory():
    """uvicorn bench.dashboard:app_factory --factory: the API over the seeded database, no Temporal needed."""
    from api.app import create_app
    from dmcflow.settings import Settings

    url = os.environ["DMCFLOW_DATABASE_URL"]
    settings = Settings(database_url=url)
    return create_app(settings, engine=make_engine(url), temporal=_NoTemporal())


class _NoTemporal:
    """The dashboard's reads never reach Temporal; this stands in so the app does not connect at start-up."""


def uncached_overview(url: str, now: datetime, runs: int = 10) -> dict:
    """The round overview's aggregate itself, without the API's few-second sharing (in process)."""
    from api.dashboard_views import _compute_overview

    engine = make_engine(url)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        _compute_overview(engine, ROUND, now)
        times.append((time.perf_counter() - t0) * 1000)
    engine.dispose()
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(percentile(times, 95), 1), "runs": runs}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


async def measure(base: str, paths: list[tuple[str, dict]], concurrency: int, server_pid: int | None = None) -> dict:
    """Latency of the requests, `concurrency` in flight at once; with the server's pid, also the server's CPU
    per request (user + system), which the machine's other load does not inflate as it does latency."""
    gate = asyncio.Semaphore(concurrency)
    cpu0 = cpu_s(server_pid) if server_pid else 0.0
    times: list[float] = []
    sizes: list[int] = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        async def one(path: str, headers: dict) -> None:
            async with gate:
                t0 = time.perf_counter()
                r = await http.get(path, headers=headers)
                times.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, (path, r.status_code, r.text[:300])
                assert not path.startswith("/dashboard") or b'id="initial-data"' in r.content, "not the area's page"
                sizes.append(len(r.content))

        t0 = time.perf_counter()
        await asyncio.gather(*(one(p, h) for p, h in paths))
        wall = time.perf_counter() - t0
    figures = {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(percentile(times, 95), 1),
               "max_ms": round(max(times), 1), "requests": len(times), "per_s": round(len(times) / wall, 1),
               "bytes_avg": int(statistics.mean(sizes))}
    if server_pid:
        figures["server_cpu_ms"] = round((cpu_s(server_pid) - cpu0) * 1000 / len(times), 1)
    return figures


class Writer:
    """Projection writes arriving meanwhile, as the workflows' `write_transition` makes them (a new version,
    `updated_at`): each makes the next look at its area read that school's row again."""

    def __init__(self, url: str, schools: int, per_s: float, rng: random.Random) -> None:
        self.engine, self.schools, self.per_s, self.rng = make_engine(url), schools, per_s, rng
        self.written, self.stopping = 0, False

    def write_one(self) -> None:
        code = f"{1000000000 + self.rng.randrange(self.schools)}"
        with session_scope(self.engine) as s:
            s.execute(update(SchoolRound).where(SchoolRound.round_id == ROUND, SchoolRound.school_code == code)
                      .values(version=SchoolRound.version + 1, updated_at=datetime.now(timezone.utc)))
        self.written += 1

    async def run(self) -> None:
        began = time.monotonic()
        while not self.stopping and self.per_s > 0:
            await asyncio.to_thread(self.write_one)
            await asyncio.sleep(max(0.0, began + self.written / self.per_s - time.monotonic()))

    async def stop(self, task: asyncio.Task) -> int:
        self.stopping = True
        await task
        self.engine.dispose()
        return self.written


def touch_every_school(url: str) -> None:
    engine = make_engine(url)
    with session_scope(engine) as s:
        s.execute(update(SchoolRound).where(SchoolRound.round_id == ROUND)
                  .values(version=SchoolRound.version + 1, updated_at=datetime.now(timezone.utc)))
    engine.dispose()


async def log_in(base: str, areas: int) -> dict[int, str]:
    """Each area's officer logs in to the page once, as a browser does: the web session's id per area."""
    sessions = {}
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        for a in range(areas):
            r = await http.post("/dashboard/login", data={"token": f"bench-district-{a}"})
            assert r.status_code == 303, (r.status_code, r.text[:300])
            sessions[a] = r.cookies[COOKIE]
    return sessions


async def one_backend(url: str, args, rng: random.Random) -> dict:
    """Seed the database at `url` (empty), serve it, measure; the figures of one backend."""
    upgrade(url)
    engine = make_engine(url)
    now = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    seed(engine, args.schools, args.areas, now, rng)
    seeded = time.perf_counter() - t0
    engine.dispose()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.dashboard:app_factory", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        env={**os.environ, "DMCFLOW_DATABASE_URL": url}, cwd=Path(__file__).resolve().parents[1])
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{base}/openapi.json", timeout=1)
                break
            except httpx.HTTPError:
                await asyncio.sleep(0.1)

        def district(a: int) -> dict:
            return {"Authorization": f"Bearer bench-district-{a}"}

        sessions = await log_in(base, args.areas)

        def cookie(a: int) -> dict:
            return {"Cookie": f"{COOKIE}={sessions[a]}"}

        admin = {"Authorization": "Bearer bench-admin"}

        def dashboard(a: int) -> tuple[str, dict]:
            return f"/rounds/{ROUND}/areas/{quote(area_name(a))}/dashboard", district(a)

        # the afternoon's officers have their area's dashboard open already
        await measure(base, [dashboard(a) for a in range(args.areas)] + [(f"/rounds/{ROUND}/overview", admin)], 8)
        figures: dict = {"seed_s": round(seeded, 1)}
        writer = Writer(url, args.schools, args.writes_per_s, random.Random(rng.random()))
        writing = asyncio.create_task(writer.run())
        for concurrency in args.concurrency:
            areas = [rng.randrange(args.areas) for _ in range(args.requests)]
            figures[f"area_dashboard_c{concurrency}"] = await measure(
                base, [dashboard(a) for a in areas], concurrency, server.pid)
            figures[f"dashboard_page_c{concurrency}"] = await measure(
                base, [(f"/dashboard?round={ROUND}", cookie(a)) for a in areas], concurrency, server.pid)
            figures[f"round_overview_c{concurrency}"] = await measure(
                base, [(f"/rounds/{ROUND}/overview", admin)] * args.requests, concurrency, server.pid)
        figures["projection_writes_meanwhile"] = await writer.stop(writing)
        # every school's row changed at once (a bulk write): each area's next look reads all its rows again
        await asyncio.to_thread(touch_every_school, url)
        first = rng.sample(range(args.areas), min(args.areas, args.requests))
        figures[f"area_dashboard_first_look_c{GOAL_CONCURRENCY}"] = await measure(
            base, [dashboard(a) for a in first], GOAL_CONCURRENCY, server.pid)
        for name in GOAL_FIGURES:
            key = f"{name}_c{GOAL_CONCURRENCY}"
            if key in figures:
                p95 = figures[key]["p95_ms"]
                figures[f"{name}_goal"] = {"p95_ms": p95, "goal_ms": GOAL_MS, "ratio": round(p95 / GOAL_MS, 2),
                                           "in_flight": GOAL_CONCURRENCY, "met": p95 < GOAL_MS}
        figures["round_overview_uncached"] = uncached_overview(url, now)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return figures


def table(figures: dict) -> str:
    lines = [f"dashboard: {figures['schools']} schools in {figures['areas']} areas, {GOAL_CONCURRENCY} requests "
             f"in flight, {figures['writes_per_s']} projection writes/s meanwhile",
             f"{'backend':<11} {'figure':<26} {'p50 ms':>7} {'p95 ms':>7} {'goal':>6} {'ratio':>6}  met  server CPU ms/req",
             "-" * 92]
    for backend in figures["backends"]:
        for name in GOAL_FIGURES:
            goal = figures[backend].get(f"{name}_goal")
            if goal is None:
                continue
            measured = figures[backend][f"{name}_c{GOAL_CONCURRENCY}"]
            lines.append(f"{backend:<11} {name:<26} {measured['p50_ms']:>7} {goal['p95_ms']:>7} {f'< {GOAL_MS}':>6} "
                         f"{goal['ratio']:>6}  {'yes' if goal['met'] else 'NO ':<4} {measured.get('server_cpu_ms')}")
    lines.append(f"load average (1 min) before and after: {figures['load_average']}")
    return "\n".join(lines)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schools", type=int, default=30000)
    ap.add_argument("--areas", type=int, default=245)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=lambda v: [int(x) for x in v.split(",")], default=[1, 8],
                    help="requests in flight at once, e.g. 1,8 (each level is measured)")
    ap.add_argument("--writes-per-s", type=float, default=5.0,
                    help="projection writes (decisions, roster batches) arriving while the reads are measured")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--database-url", help="one empty database to use instead (sqlite:///… or postgresql://…)")
    ap.add_argument("--json", default="bench/results/dashboard.json")
    args = ap.parse_args()
    backends = [args.database_url.split(":")[0].split("+")[0]] if args.database_url else args.backends.split(",")
    figures: dict = {"schools": args.schools, "areas": args.areas, "requests_each": args.requests,
                     "writes_per_s": args.writes_per_s, "backends": backends}
    load_before = round(os.getloadavg()[0], 1)
    for backend in backends:
        with ExitStack() as stack:
            if args.database_url:
                url = args.database_url
            elif backend == "sqlite":
                url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='dmcflow-dash-')) / 'app.sqlite'}"
            else:
                from bench.local_postgres import private_server

                url, _ = stack.enter_context(private_server())
            print(f"{backend}: {args.schools} schools …", flush=True)
            figures[backend] = await one_backend(url, args, random.Random(30000))
            print(json.dumps(figures[backend]), flush=True)
    figures["load_average"] = [load_before, round(os.getloadavg()[0], 1)]
    print(table(figures), flush=True)
    emit(figures, args.json)


if __name__ == "__main__":
    asyncio.run(main())
