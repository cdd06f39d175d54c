"""The start path (`start_round` for N schools ÷ N bare starts) and the approval path (confirmations and
certifications through the HTTP API ÷ bare Temporal's minimal route calling `execute_update`)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import httpx
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from bench import bare, harness
from bench.round_steps import START_CONCURRENCY, gather_limited, start_dmcflow_round
from domain.messages import SchoolRoundInput
from domain.rounds import Schedule
from domain.school_round import SchoolRoundState
from workflows import search_attributes as sa

# --- start path ---------------------------------------------------------------------------------
async def start_path(client: Client, stack: harness.Stack, engine, n: int, round_id: str) -> dict:
    prefix = uuid.uuid4().hex[:6]
    await stack.settle()
    cpu0 = stack.cpu()
    t0 = time.perf_counter()
    await gather_limited(n, START_CONCURRENCY, lambda i: client.start_workflow(
        bare.Trivial.run, i, id=f"bare-start-{prefix}-{i}", task_queue=stack.bare_queue))
    bare_s = time.perf_counter() - t0
    await stack.settle()  # every first task run: its server CPU is the start's
    cpu1 = stack.cpu()
    # the same starts for workflows of a school's shape: its input, three search attributes, one timer
    state = SchoolRoundInput(state=SchoolRoundState(
        round_id=round_id, school_code="1000000000", area="area-000",
        schedule=Schedule(opens_at=datetime.now(timezone.utc), confirm_from=datetime.now(timezone.utc),
                          cutoff_at=datetime.now(timezone.utc) + timedelta(days=2)))).model_dump(mode="json")
    t0 = time.perf_counter()
    await gather_limited(n, START_CONCURRENCY, lambda i: client.start_workflow(
        bare.SchoolShaped.run, state, id=f"bare-shaped-{prefix}-{i}", task_queue=stack.bare_queue,
        search_attributes=TypedSearchAttributes([SearchAttributePair(sa.ROUND, "bare"),
                                                 SearchAttributePair(sa.AREA, f"area-{i % 16:03d}"),
                                                 SearchAttributePair(sa.STAGE, "open")])))
    shaped_s = time.perf_counter() - t0
    shaped_settled_s = time.perf_counter() - t0 + await stack.settle()
    cpu_shaped = stack.cpu()
    ours = await start_dmcflow_round(client, stack, engine, n, round_id)
    return {
        "start_cpu_ms_server_bare": harness.cpu_ms_per(cpu0, cpu1, n, "server"),
        "start_shaped_per_s": round(n / shaped_s, 1), "start_ratio_vs_shaped": round(shaped_s / ours.started_s, 2),
        "start_cpu_ms_server_shaped": harness.cpu_ms_per(cpu1, cpu_shaped, n, "server"),
        "start_cpu_ms_server_dmcflow": harness.cpu_ms_per(*ours.cpu, n, "server"),
        "start_cpu_ms_total_bare": harness.cpu_ms_per(cpu0, cpu1, n, "server", "bare", "client"),
        "start_cpu_ms_total_dmcflow": harness.cpu_ms_per(*ours.cpu, n, "server", "worker", "client"),
        "start_bare_per_s": round(n / bare_s, 1), "start_round_per_s": round(n / ours.started_s, 1),
        "start_ratio": round(bare_s / ours.started_s, 2), "start_round_projected_s": round(ours.projected_s, 1),
        # until every first workflow task has run (the worker idle again), both sides
        "start_round_settled_s": round(ours.settled_s, 1), "start_shaped_settled_s": round(shaped_settled_s, 1),
    } | ours.memory(n)


# --- approval path -------------------------------------------------------------------------------

async def approval_path(client: Client, stack: harness.Stack, codes: list[str], round_id: str,
                        clients: int) -> dict:
    """Confirmations and certifications through HTTP, both sides with the same HTTP client, bearer header and
    concurrency: dmcflow's API, and bare Temporal's minimal route that calls `execute_update` (bench/bare.py).
    Neither side's workflow start is timed: the bare workflows are started beforehand, and each school's workflow
    starts on its first event, R11's existence marks, sent through the API before the decisions (as in a round)."""
    m = len(codes)
    prefix = uuid.uuid4().hex[:6]
    ids = [f"bare-approve-{prefix}-{i}" for i in range(m)]
    await gather_limited(m, START_CONCURRENCY, lambda i: client.start_workflow(
        bare.Approvable.run, id=ids[i], task_queue=stack.bare_queue))
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=clients)) as http:
        async def post(url: str, token: str, **kw) -> None:
            r = await http.post(url, headers={"Authorization": f"Bearer {token}"}, **kw)
            if r.status_code != 200:
                raise RuntimeError(f"{url}: {r.status_code} {r.text[:200]}")

        t0 = time.perf_counter()
        await gather_limited(m, clients, lambda i: post(
            f"{stack.api}/rounds/{round_id}/schools/{codes[i]}/existence/present", f"s-{codes[i]}", json={"all": True}))
        first_event_s = time.perf_counter() - t0
        await stack.settle()  # every bare workflow's first task and every school's first event done

        async def bare_one(i: int) -> None:
            await post(f"{stack.bare_api}/approvals/{ids[i]}/confirmation", f"s-{codes[i]}")
            await post(f"{stack.bare_api}/approvals/{ids[i]}/certification", f"d-{codes[i]}")

        async def api_one(i: int) -> None:
            for action, token in (("confirmation", f"s-{codes[i]}"), ("certification", f"d-{codes[i]}")):
                await post(f"{stack.api}/rounds/{round_id}/schools/{codes[i]}/{action}", token)

        # the two sides take turns, half of the schools at a time: a change in the machine's other load during the
        # phase (other processes share its cores) falls on both sides alike
        spent = {"bare": 0.0, "dmcflow": 0.0}
        cpu = {"bare": dict.fromkeys(stack.cpu(), 0.0), "dmcflow": dict.fromkeys(stack.cpu(), 0.0)}
        half = m // 2
        for part in (range(0, half), range(half, m)):
            for side, one in (("bare", bare_one), ("dmcflow", api_one)):
                before = stack.cpu()
                t0 = time.perf_counter()
                await gather_limited(len(part), clients, lambda k, part=part, one=one: one(part[k]))
                spent[side] += time.perf_counter() - t0
                await stack.settle()  # its backlog counts as its own
                after = stack.cpu()
                for p in after:
                    cpu[side][p] += after[p] - before[p]
    zero = dict.fromkeys(cpu["bare"], 0.0)

    def ms(side: str, *parts: str) -> float:
        return harness.cpu_ms_per(zero, cpu[side], 2 * m, *parts)

    return {"approval_cpu_ms_server_bare": ms("bare", "server"), "approval_cpu_ms_server_dmcflow": ms("dmcflow", "server"),
            "approval_cpu_ms_total_bare": ms("bare", "server", "bare", "bare_api", "client"),
            "approval_cpu_ms_total_dmcflow": ms("dmcflow", "server", "worker", "api", "client"),
            "approval_cpu_ms_worker_bare": ms("bare", "bare"), "approval_cpu_ms_api_bare": ms("bare", "bare_api"),
            "approval_cpu_ms_client_bare": ms("bare", "client"),
            "approval_cpu_ms_worker_dmcflow": ms("dmcflow", "worker"), "approval_cpu_ms_api_dmcflow": ms("dmcflow", "api"),
            "approval_cpu_ms_client_dmcflow": ms("dmcflow", "client"),
            "approval_schools": m, "approval_clients": clients,
            "approval_first_events_per_s": round(m / first_event_s, 1),
            "approval_api_updates_per_s": round(2 * m / spent["dmcflow"], 1),
            "approval_bare_updates_per_s": round(2 * m / spent["bare"], 1),
            "approval_ratio": round(spent["bare"] / spent["dmcflow"], 2),
            "approval_server_cpu_ratio": round(ms("dmcflow", "server") / max(ms("bare", "server"), 0.01), 2)}
