"""What every phase of `python -m bench` does: start N things a bounded number at a time, add a round, count the
projection and the outbox, wait for a condition, and dmcflow's own start of a round until the stack is idle."""

from __future__ import annotations

import asyncio
import inspect
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import httpx
from sqlalchemy import func
from sqlmodel import select
from temporalio.client import Client

from bench import harness
from db.directory import create_round
from db.engine import session_scope
from db.models import OutboxMail, SchoolRound
from dmcflow import round_ops
from dmcflow.settings import Settings
from domain.rounds import RoundPolicy, RoundSpec

START_CONCURRENCY = 64

async def gather_limited(n: int, concurrency: int, one) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def run(i: int) -> None:
        async with gate:
            await one(i)

    await asyncio.gather(*(run(i) for i in range(n)))


def add_round(engine, round_id: str, opens: datetime, confirm_from: datetime, cutoff: datetime,
              policy: RoundPolicy | None = None) -> None:
    with session_scope(engine) as s:
        create_round(s, RoundSpec(id=round_id, academic_year=2566, opens_at=opens, confirm_from=confirm_from,
                                  cutoff_at=cutoff, policy=policy or RoundPolicy()))


def in_outbox(engine, prefix: str) -> int:
    with session_scope(engine) as s:
        return s.exec(select(func.count()).select_from(OutboxMail).where(OutboxMail.key.startswith(prefix))).one()


def projected(engine, round_id: str, stage: str | None = None) -> int:
    with session_scope(engine) as s:
        stmt = select(func.count()).select_from(SchoolRound).where(SchoolRound.round_id == round_id)
        if stage:
            stmt = stmt.where(SchoolRound.stage == stage)
        return s.exec(stmt).one()


async def wait_for(check, poll: float = 0.25, timeout: float = 7200) -> float:
    """Seconds (monotonic clock) at which `check()` first held. A blocking check (a database query) runs in a thread."""
    deadline = time.monotonic() + timeout
    while not (await check() if inspect.iscoroutinefunction(check) else await asyncio.to_thread(check)):
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        await asyncio.sleep(poll)
    return time.monotonic()


async def sleep_until(at: datetime) -> None:
    await asyncio.sleep(max(0.0, (at - datetime.now(timezone.utc)).total_seconds()))


# --- start path ---------------------------------------------------------------------------------

@dataclass
class RoundStarted:
    """`start_round` for N schools, from the call until the stack was idle again."""
    started_s: float  # the fan-out workflow done: every school's workflow started
    projected_s: float  # every school's row in the dashboard's projection
    settled_s: float  # every first workflow task run
    cpu: tuple[dict, dict]
    rss: tuple[tuple[float, float], tuple[float, float]]  # (worker, server) before and after

    def memory(self, n: int) -> dict:
        (w0, s0), (w1, s1) = self.rss
        return {"worker_rss_mb_per_1000": round((w1 - w0) / n * 1000, 1),
                "server_rss_mb_per_1000": round((s1 - s0) / n * 1000, 1),
                "worker_rss_mb": round(w1), "server_rss_mb": round(s1)}


async def start_dmcflow_round(client: Client, stack: harness.Stack, engine, n: int, round_id: str) -> RoundStarted:
    rss0 = harness.rss_mb(stack.worker_pid), harness.rss_mb(stack.server_pid)
    cpu0 = stack.cpu()
    t0 = time.perf_counter()
    operation, _ = await round_ops.start_round(engine, client, Settings(), round_id)
    await client.get_workflow_handle(operation).result()  # every page and every area's workflow
    # issue 18's moment: every school in the dashboard's projection and get_school_round answering for it
    await wait_for(lambda: projected(engine, round_id) >= n)
    await school_round_answers(stack, round_id, [f"{1000000000 + i}" for i in (0, n // 2, n - 1)])
    started_s = projected_s = time.perf_counter() - t0
    settled_s = time.perf_counter() - t0 + await stack.settle()
    return RoundStarted(started_s, projected_s, settled_s, (cpu0, stack.cpu()),
                        (rss0, (harness.rss_mb(stack.worker_pid), harness.rss_mb(stack.server_pid))))


async def school_round_answers(stack: harness.Stack, round_id: str, codes: list[str]) -> None:
    async with httpx.AsyncClient(base_url=stack.api, timeout=60) as http:
        for code in codes:
            r = await http.get(f"/rounds/{round_id}/schools/{code}", headers={"Authorization": "Bearer bench-admin"})
            if r.status_code != 200:
                raise RuntimeError(f"get_school_round {code}: {r.status_code} {r.text[:200]}")
