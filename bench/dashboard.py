"""Dashboard read latency for a national round: `area_dashboard`, `round_overview` and the page.

    python -m bench.dashboard --schools 30000 --areas 245 --requests 200 --concurrency 1,8
    python -m bench.dashboard --database-url postgresql://user:pw@host/db   # on PostgreSQL (an empty database)

The projection of a round of 30,000 schools in 245 areas is written straight into the app database
(with open ID corrections, dropouts and duplicate cases sprinkled over it): the dashboard reads only
the projection, so 30,000 running workflows are not needed to measure how fast it reads (starting
them is what `bench.start_round` measures). The API runs under uvicorn in its own process, as in
production, and is asked over real HTTP with several requests in flight at once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import httpx
from sqlalchemy import insert

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


async def measure(base: str, paths: list[tuple[str, dict]], concurrency: int) -> dict:
    gate = asyncio.Semaphore(concurrency)
    times: list[float] = []
    sizes: list[int] = []
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        async def one(path: str, headers: dict) -> None:
            async with gate:
                t0 = time.perf_counter()
                r = await http.get(path, headers=headers)
                times.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, (path, r.status_code, r.text[:300])
                sizes.append(len(r.content))

        t0 = time.perf_counter()
        await asyncio.gather(*(one(p, h) for p, h in paths))
        wall = time.perf_counter() - t0
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(percentile(times, 95), 1),
            "max_ms": round(max(times), 1), "requests": len(times), "per_s": round(len(times) / wall, 1),
            "bytes_avg": int(statistics.mean(sizes))}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--schools", type=int, default=30000)
    ap.add_argument("--areas", type=int, default=245)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=lambda v: [int(x) for x in v.split(",")], default=[1, 8],
                    help="requests in flight at once, e.g. 1,8 (each level is measured)")
    ap.add_argument("--database-url", help="default: a SQLite file in a temp dir; postgresql://... works too")
    ap.add_argument("--json", default="bench/results/dashboard.json")
    args = ap.parse_args()
    rng = random.Random(30000)
    tmp = Path(tempfile.mkdtemp(prefix="dmcflow-dash-"))
    url = args.database_url or f"sqlite:///{tmp / 'app.sqlite'}"
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

        def cookie(a: int) -> dict:
            return {"Cookie": f"dmcflow_token=bench-district-{a}"}

        admin = {"Authorization": "Bearer bench-admin"}
        warm = [(f"/rounds/{ROUND}/areas/{quote(area_name(a))}/dashboard", district(a)) for a in range(3)]
        await measure(base, warm + [(f"/rounds/{ROUND}/overview", admin)], 2)
        figures = {"schools": args.schools, "areas": args.areas, "database": url.split(":")[0],
                   "requests_each": args.requests, "seed_s": round(seeded, 1)}
        for concurrency in args.concurrency:
            areas = [rng.randrange(args.areas) for _ in range(args.requests)]
            figures[f"area_dashboard_c{concurrency}"] = await measure(
                base, [(f"/rounds/{ROUND}/areas/{quote(area_name(a))}/dashboard", district(a)) for a in areas],
                concurrency)
            figures[f"dashboard_page_c{concurrency}"] = await measure(
                base, [(f"/dashboard?round={ROUND}", cookie(a)) for a in areas], concurrency)
            figures[f"round_overview_c{concurrency}"] = await measure(
                base, [(f"/rounds/{ROUND}/overview", admin)] * args.requests, concurrency)
        figures["round_overview_uncached"] = uncached_overview(url, now)
        figures["load_average_1m"] = round(os.getloadavg()[0], 2)
    finally:
        server.terminate()
        server.wait(timeout=30)
    emit(figures, args.json)


if __name__ == "__main__":
    asyncio.run(main())
