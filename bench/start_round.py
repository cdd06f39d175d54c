"""Start path: `start_round` for N schools vs bare `start_workflow` of N trivial workflows.

    python -m bench.start_round --schools 30000

Both run against the same local dev server (SQLite file) in the same run. "started" is when the
round's fan-out has started every school's workflow; "projected" is when every school's workflow has
also loaded its gate and written its projection row (what the dashboard reads).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func
from sqlmodel import select
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from bench.local_temporal import dev_server
from bench.report import emit
from db.directory import create_round
from db.engine import make_engine, session_scope
from db.migrate import upgrade
from db.models import Area, School, SchoolRound
from dmcflow import round_ops
from dmcflow.settings import Settings
from bench.payload_keys import bench_converter
from domain.rounds import RoundSpec
from worker import build_worker


@workflow.defn(sandboxed=False)
class Trivial:
    @workflow.run
    async def run(self, n: int) -> int:
        return n


def seed(engine, schools: int, areas: int) -> None:
    with session_scope(engine) as s:
        for a in range(areas):
            s.add(Area(name=f"area-{a:03d}"))
        s.flush()
        s.bulk_save_objects([School(code=f"{1000000000 + i}", name=f"school {i}", area=f"area-{i % areas:03d}")
                             for i in range(schools)])


async def bare_starts(client: Client, n: int, task_queue: str, concurrency: int = 64) -> float:
    gate = asyncio.Semaphore(concurrency)
    prefix = uuid.uuid4().hex[:8]

    async def one(i: int) -> None:
        async with gate:
            await client.start_workflow(Trivial.run, i, id=f"bare-{prefix}-{i}", task_queue=task_queue)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - t0


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--schools", type=int, default=2000)
    ap.add_argument("--areas", type=int, default=245)
    ap.add_argument("--json", default="bench/results/start_round.json")
    ap.add_argument("--skip-bare", action="store_true", help="only start_round (the national run takes long enough)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dmcflow-start-"))
    url = f"sqlite:///{tmp / 'app.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    seed(engine, args.schools, args.areas)
    now = datetime.now(timezone.utc)
    with session_scope(engine) as s:
        create_round(s, RoundSpec(id="bench", academic_year=2566, opens_at=now, confirm_from=now + timedelta(days=1),
                                  cutoff_at=now + timedelta(days=1, hours=8)))
    async with dev_server(tmp) as (address, server_pid):
        client = await Client.connect(address, data_converter=bench_converter())
        settings = Settings(database_url=url, temporal_address=address, task_queue="bench")
        async with build_worker(client, settings, engine=engine), \
                Worker(client, task_queue="bench-bare", workflows=[Trivial]):
            bare = None if args.skip_bare else await bare_starts(client, args.schools, "bench-bare")
            t0 = time.perf_counter()
            operation, _ = await round_ops.start_round(engine, client, settings, "bench")
            result = await client.get_workflow_handle(operation).result()
            started = time.perf_counter() - t0
            while True:
                with session_scope(engine) as s:
                    projected_rows = s.exec(select(func.count()).select_from(SchoolRound)).one()
                if projected_rows >= args.schools:
                    break
                await asyncio.sleep(0.2)
            projected = time.perf_counter() - t0
            rss_worker = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            rss_server = int(open(f"/proc/{server_pid}/status").read().split("VmRSS:")[1].split()[0]) / 1024
    figures = {
        "schools": args.schools, "areas": args.areas, "fanout": result,
        "bare_start_s": round(bare, 2) if bare else None, "start_round_started_s": round(started, 2),
        "start_round_projected_s": round(projected, 2),
        "bare_starts_per_s": round(args.schools / bare, 1) if bare else None,
        "start_round_starts_per_s": round(args.schools / started, 1),
        "ratio_start_round_vs_bare": round(bare / started, 2) if bare else None,
        "worker_max_rss_mb": round(rss_worker), "server_rss_mb": round(rss_server),
    }
    emit(figures, args.json)


if __name__ == "__main__":
    asyncio.run(main())
