"""Worker RSS per cached school workflow (issue 18's goal: ≤ 80 KB), against the bare worker's per cached
school-shaped workflow."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

from temporalio.client import Client

from bench import bare, harness
from bench.round_steps import START_CONCURRENCY, add_round, gather_limited
from dmcflow import lazy_start, round_ops
from dmcflow.settings import Settings
from workflows.school_round import SchoolRoundWorkflow

# --- worker memory ---------------------------------------------------------------------------------

async def memory_per_workflow(client: Client, stack: harness.Stack, engine, n: int, round_id: str) -> dict:
    """Worker RSS per cached school workflow: N schools' workflows started with the input their first event starts
    them with (dmcflow/lazy_start.py), against N bare `SchoolShaped` workflows (a school's input, one timer) on the
    bare worker; each worker caches all of them (both have the same cache size, at least N)."""
    now = datetime.now(timezone.utc)
    add_round(engine, round_id, now, now, now + timedelta(days=2))
    operation, _ = await round_ops.start_round(engine, client, Settings(), round_id)
    await client.get_workflow_handle(operation).result()
    codes = [f"{1000000000 + i}" for i in range(n)]
    inputs = await asyncio.gather(*(asyncio.to_thread(lazy_start.start_input, engine, round_id, c) for c in codes))
    await stack.settle()
    state = inputs[0][0].model_dump(mode="json")
    prefix = uuid.uuid4().hex[:6]
    rss0 = harness.rss_mb(stack.bare_pid)
    await gather_limited(n, START_CONCURRENCY, lambda i: client.start_workflow(
        bare.SchoolShaped.run, state, id=f"bare-memory-{prefix}-{i}", task_queue=stack.bare_queue))
    await stack.settle()
    bare_kb = (harness.rss_mb(stack.bare_pid) - rss0) * 1024 / n
    rss0 = harness.rss_mb(stack.worker_pid)
    await gather_limited(n, START_CONCURRENCY, lambda i: client.start_workflow(
        SchoolRoundWorkflow.run, inputs[i][0], **lazy_start._start_options(*inputs[i])))
    await stack.settle()
    ours_kb = (harness.rss_mb(stack.worker_pid) - rss0) * 1024 / n
    return {"memory_workflows": n, "memory_kb_per_workflow_dmcflow": round(ours_kb, 1),
            "memory_kb_per_workflow_bare": round(bare_kb, 1), "memory_ratio": round(ours_kb / max(bare_kb, 0.1), 2),
            "worker_rss_mb_after_memory": round(harness.rss_mb(stack.worker_pid))}
