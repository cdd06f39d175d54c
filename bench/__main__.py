"""Every benchmark in one command, dmcflow side by side with bare Temporal in the same run.

    python -m bench                 # N = 2,000 schools, about 16 minutes on 2 cores
    python -m bench --national      # N = 30,000: the start path and the cutoff storm only (see `national`)
    python -m bench --quick         # N = 300, a smoke run of the harness (about 3 minutes)

One local Temporal dev server on its SQLite file, the dmcflow worker and API in their own processes,
the bare worker in its own (bench/harness.py). Prints a table of ratios and writes bench/results/all.json.

- start path: `start_round` for N schools, until every school is in the dashboard's projection and
  get_school_round answers, ÷ bare `start_workflow` of N trivial workflows (goal ≥ 5, issue 18);
- approval path: confirmations and certifications per second through the HTTP API (bearer auth, C
  concurrent clients) ÷ the same updates through bare Temporal's minimal HTTP route calling
  `execute_update` on workflows of the same shape (≥ 0.8), and the server's CPU per update (≤ 1.1×);
- the two storms of the last afternoon (issue 18: the round's time is its areas'): from the 15.30 reminder
  until every uncertified school's reminder is in the outbox, and from the 16.30 cutoff until every school
  is `late` in the dashboard's projection and every area's escalation is in the outbox, each ÷ N bare
  workflows with one timer and one activity each (the same bare storm for both; goal ≤ 0.25);
- memory: worker RSS per cached school workflow (N started as a first event starts them) against the bare
  worker's per cached school-shaped workflow; goal ≤ 80 KB;
- intake and import: their own benchmarks at a bounded size, figures in the same table.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
from sqlalchemy import func
from sqlmodel import select
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from bench import bare, harness
from bench.report import emit
from db.directory import create_round
from db.engine import make_engine, session_scope
from db.migrate import upgrade
from db.models import OutboxMail, SchoolRound
from dmcflow import round_ops
from dmcflow.settings import Settings
from bench.payload_keys import bench_converter
from domain.messages import SchoolRoundInput
from domain.rounds import RoundPolicy, RoundSpec, Schedule
from domain.school_round import SchoolRoundState
from dmcflow import lazy_start
from workflows import search_attributes as sa
from workflows.school_round import SchoolRoundWorkflow

START_CONCURRENCY = 64
# The storm's cutoff must come once every workflow has run its first task, or the storm's figure would
# include the start's backlog: started is not yet running. The start path measured how long N starts
# took until the stack was idle again; the storm leaves that much time and a margin before its cutoff.
READY_MARGIN = 1.3

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


async def storm_until_late(stack: harness.Stack, engine, n: int, round_id: str, cutoff: datetime, areas: int):
    """Seconds from the round's cutoff until all N schools are `late` in the projection and every area's
    escalation is in the outbox, and the CPU counters at both ends."""
    await sleep_until(cutoff)
    cpu0 = stack.cpu()
    at_cutoff = time.monotonic()
    done = await wait_for(lambda: projected(engine, round_id, "late") >= n
                          and in_outbox(engine, f"escalation/{round_id}/") >= areas)
    return done - at_cutoff, (cpu0, stack.cpu())


async def storm_until_reminded(stack: harness.Stack, engine, n: int, round_id: str, at: datetime):
    """Seconds from the reminder instant until all N (uncertified) schools' reminders are in the outbox."""
    await sleep_until(at)
    cpu0 = stack.cpu()
    at_instant = time.monotonic()
    done = await wait_for(lambda: in_outbox(engine, f"reminder/{round_id}/") >= n)
    return done - at_instant, (cpu0, stack.cpu())


@dataclass
class BareStorm:
    """N bare `StormSchool` workflows started, asleep until one cutoff, then each running one activity."""
    started_s: float
    settled_s: float
    storm_s: float  # from the cutoff until all N completed
    start_cpu: tuple[dict, dict]
    storm_cpu: tuple[dict, dict]


async def bare_storm(client: Client, stack: harness.Stack, n: int, cutoff: datetime) -> BareStorm:
    prefix = uuid.uuid4().hex[:6]
    cpu0 = stack.cpu()
    t0 = time.perf_counter()
    await gather_limited(n, START_CONCURRENCY, lambda i: client.start_workflow(
        bare.StormSchool.run, cutoff, id=f"bare-storm-{prefix}-{i}", task_queue=stack.bare_queue))
    started_s = time.perf_counter() - t0
    settled_s = time.perf_counter() - t0 + await stack.settle()  # the figure is the storm's, not the start's
    cpu1 = stack.cpu()
    if datetime.now(timezone.utc) >= cutoff:
        raise RuntimeError(f"the bare workflows took {settled_s:.0f} s to start: past their cutoff")
    print(json.dumps({"bare_started_s": round(started_s, 1), "bare_settled_s": round(settled_s, 1)}), flush=True)
    await sleep_until(cutoff)
    query = ("WorkflowType = 'StormSchool' AND ExecutionStatus = 'Completed' "
             f"AND WorkflowId STARTS_WITH 'bare-storm-{prefix}'")

    async def all_completed() -> bool:
        return (await client.count_workflows(query)).count >= n

    cpu2 = stack.cpu()
    at_cutoff = time.monotonic()
    storm_s = await wait_for(all_completed) - at_cutoff
    print(json.dumps({"bare_storm_s": round(storm_s, 1)}), flush=True)
    return BareStorm(started_s, settled_s, storm_s, (cpu0, cpu1), (cpu2, stack.cpu()))


def storm_figures(n: int, theirs: BareStorm, storm_s: float, storm_cpu: tuple[dict, dict], ready_s: float,
                  reminders: tuple[float, tuple[dict, dict]] | None = None) -> dict:
    figures = {"storm_cpu_ms_server_bare": harness.cpu_ms_per(*theirs.storm_cpu, n, "server"),
               "storm_cpu_ms_server_dmcflow": harness.cpu_ms_per(*storm_cpu, n, "server"),
               "storm_cpu_ms_total_bare": harness.cpu_ms_per(*theirs.storm_cpu, n, "server", "bare"),
               "storm_cpu_ms_total_dmcflow": harness.cpu_ms_per(*storm_cpu, n, "server", "worker"),
               "storm_schools": n, "storm_dmcflow_s": round(storm_s, 1), "storm_bare_s": round(theirs.storm_s, 1),
               "storm_ratio": round(storm_s / theirs.storm_s, 2), "storm_round_ready_s": round(ready_s, 1)}
    if reminders is not None:
        reminder_s, cpu = reminders
        figures |= {"reminder_storm_dmcflow_s": round(reminder_s, 1),
                    "reminder_storm_ratio": round(reminder_s / theirs.storm_s, 2),
                    "reminder_storm_cpu_ms_server_dmcflow": harness.cpu_ms_per(*cpu, n, "server"),
                    "reminder_storm_cpu_ms_total_dmcflow": harness.cpu_ms_per(*cpu, n, "server", "worker"),
                    "reminder_storm_cpu_ms_server_bare": figures["storm_cpu_ms_server_bare"],
                    "reminder_storm_cpu_ms_total_bare": figures["storm_cpu_ms_total_bare"]}
    return figures


def reminder_lead(n: int) -> timedelta:
    """The storm round's one reminder comes this long before its cutoff: long enough for the reminder storm to
    be over before the cutoff's begins (a minute at 2,000 schools, five at 30,000)."""
    return timedelta(seconds=max(60.0, n * 0.01))

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


# --- cutoff storm ------------------------------------------------------------------------------

async def cutoff_storm(client: Client, stack: harness.Stack, engine, n: int, round_id: str,
                       dmcflow_ready_s: float, bare_ready_s: float, areas: int) -> dict:
    # bare: N workflows asleep until one instant, then one activity each (the cutoff leaves time to start them)
    cutoff = datetime.now(timezone.utc) + timedelta(seconds=bare_ready_s * READY_MARGIN + 20)
    theirs = await bare_storm(client, stack, n, cutoff)

    # dmcflow: a round whose reminder comes once all N schools are in the projection and every area's workflow
    # runs, and whose cutoff comes `reminder_lead` later; no school acts, so all are reminded and all are late
    now = datetime.now(timezone.utc)
    lead = reminder_lead(n)
    reminder_at = now + timedelta(seconds=dmcflow_ready_s * READY_MARGIN + 20)
    add_round(engine, round_id, now, now, reminder_at + lead, RoundPolicy(reminders_before_cutoff=[lead]))
    ready_s = (await start_dmcflow_round(client, stack, engine, n, round_id)).settled_s
    if datetime.now(timezone.utc) >= reminder_at:
        raise RuntimeError(f"the round took {ready_s:.0f} s to start: past its reminder")
    reminders = await storm_until_reminded(stack, engine, n, round_id, reminder_at)
    print(json.dumps({"reminder_storm_dmcflow_s": round(reminders[0], 1)}), flush=True)
    storm_s, cpu = await storm_until_late(stack, engine, n, round_id, reminder_at + lead, areas)
    return storm_figures(n, theirs, storm_s, cpu, ready_s, reminders)


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


# --- national: each side starts its N once, and its storm runs on those workflows ---------------

# A bare storm workflow's timer is set when it starts, so its cutoff must be chosen before the starts:
# this much time per workflow, which is half again what 30,000 bare starts took to settle on 2 cores.
NATIONAL_LEAD_S_PER_SCHOOL = 0.06
# The storm round's reminder comes this long per school after its start begins (10 minutes at 30,000): an
# area-timed start is a bulk insert and 245 area workflows, a small part of that.
NATIONAL_START_S_PER_SCHOOL = 0.02


async def national(client: Client, stack: harness.Stack, engine, n: int, round_id: str, areas: int,
                   lead_s_per_school: float = NATIONAL_LEAD_S_PER_SCHOOL) -> dict:
    """The start path and the storm at N = 30,000 in half the time of running them apart: starting N
    workflows and waiting for their first tasks is most of each phase, so each side does it once. The
    bare side's start path then starts `StormSchool` workflows (one timer, one activity) rather than
    `Trivial` ones; the round's cutoff comes once the bare side's settle time, with a margin, has passed."""
    await stack.settle()
    theirs = await bare_storm(client, stack, n, datetime.now(timezone.utc) + timedelta(seconds=n * lead_s_per_school))
    await stack.settle()
    now = datetime.now(timezone.utc)
    # an area-timed start is a bulk insert and one workflow per area: its reminder leaves it NATIONAL_START_S_PER_SCHOOL
    lead = reminder_lead(n)
    reminder_at = now + timedelta(seconds=max(120.0, n * NATIONAL_START_S_PER_SCHOOL))
    add_round(engine, round_id, now, now, reminder_at + lead, RoundPolicy(reminders_before_cutoff=[lead]))
    ours = await start_dmcflow_round(client, stack, engine, n, round_id)
    # Past the reminder, the storms' figures include the start's backlog: against dmcflow, so the run goes on
    late_start = datetime.now(timezone.utc) >= reminder_at
    print(json.dumps({"start_round_s": round(ours.started_s, 1), "start_round_settled_s": round(ours.settled_s, 1)}),
          flush=True)
    reminders = await storm_until_reminded(stack, engine, n, round_id, reminder_at)
    print(json.dumps({"reminder_storm_dmcflow_s": round(reminders[0], 1)}), flush=True)
    storm_s, storm_cpu = await storm_until_late(stack, engine, n, round_id, reminder_at + lead, areas)
    return {
        "national_bare_start_workflow": "StormSchool",
        "start_bare_per_s": round(n / theirs.started_s, 1), "start_round_per_s": round(n / ours.started_s, 1),
        "start_ratio": round(theirs.started_s / ours.started_s, 2), "start_round_projected_s": round(ours.projected_s, 1),
        "start_round_settled_s": round(ours.settled_s, 1), "start_bare_settled_s": round(theirs.settled_s, 1),
        "start_cpu_ms_server_bare": harness.cpu_ms_per(*theirs.start_cpu, n, "server"),
        "start_cpu_ms_server_dmcflow": harness.cpu_ms_per(*ours.cpu, n, "server"),
        "start_cpu_ms_total_bare": harness.cpu_ms_per(*theirs.start_cpu, n, "server", "bare", "client"),
        "start_cpu_ms_total_dmcflow": harness.cpu_ms_per(*ours.cpu, n, "server", "worker", "client"),
        "storm_round_started_past_cutoff": late_start,
    } | storm_figures(n, theirs, storm_s, storm_cpu, ours.settled_s, reminders)


# --- the other benchmarks, at a bounded size -----------------------------------------------------

def other_bench(module: str, *args: str) -> dict:
    out = Path(tempfile.mkdtemp(prefix="dmcflow-bench-")) / "figures.json"
    subprocess.run([sys.executable, "-m", module, *args, "--json", str(out)], check=True, cwd=harness.ROOT,
                   stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


# --- the table -----------------------------------------------------------------------------------

def table(f: dict) -> str:
    rows = [
        # issue 18: to every school in the dashboard and get_school_round answering, vs N bare trivial starts
        ("start path (schools/s)", f.get("start_round_per_s"), f.get("start_bare_per_s"), f.get("start_ratio"), "≥ 5",
         lambda r: r >= 5),
        ("start path vs school-shaped", f.get("start_round_per_s"), f.get("start_shaped_per_s"),
         f.get("start_ratio_vs_shaped"), "(info)", lambda r: True),
        ("approval path (updates/s)", f.get("approval_api_updates_per_s"), f.get("approval_bare_updates_per_s"),
         f.get("approval_ratio"), "≥ 0.8", lambda r: r >= 0.8),
        ("approval server CPU ms/update", f.get("approval_cpu_ms_server_dmcflow"), f.get("approval_cpu_ms_server_bare"),
         f.get("approval_server_cpu_ratio"), "≤ 1.1", lambda r: r <= 1.1),
        # issue 18: bare = one timer and one activity per school (the same bare storm for both)
        ("reminder storm (s to outbox)", f.get("reminder_storm_dmcflow_s"), f.get("storm_bare_s"),
         f.get("reminder_storm_ratio"), "≤ 0.25", lambda r: r <= 0.25),
        ("cutoff storm (s, late+escal.)", f.get("storm_dmcflow_s"), f.get("storm_bare_s"), f.get("storm_ratio"),
         "≤ 0.25", lambda r: r <= 0.25),
        ("memory (KB/cached workflow)", f.get("memory_kb_per_workflow_dmcflow"), f.get("memory_kb_per_workflow_bare"),
         f.get("memory_ratio"), "≤ 80 KB",
         lambda r: f.get("memory_kb_per_workflow_dmcflow", 1e9) <= 80),
        # bench/live_feed.py: SQL statements per area per tick with 200 watchers (left) and 1 (right): 1 and equal
        ("live q/area/tick (200w vs 1w)", f.get("live_queries_per_area_tick_most"),
         f.get("live_queries_per_area_tick_fewest"), f.get("live_ratio_most_to_fewest"), "= 1",
         lambda r: r == 1 and f.get("live_queries_per_area_tick_most") == 1),
    ]
    lines = [f"{'figure':<30} {'dmcflow':>10} {'bare':>10} {'ratio':>7}  goal    met", "-" * 72]
    if f.get("national_bare_start_workflow"):
        lines.append(f"(national: the bare start path started {f['national_bare_start_workflow']} workflows, "
                     "whose storm it then measured)")
    for name, ours, theirs, ratio, goal, ok in rows:
        if ratio is None:
            continue
        lines.append(f"{name:<30} {ours:>10} {theirs:>10} {ratio:>7}  {goal:<7} {'yes' if ok(ratio) else 'NO'}")
    lines.append("-" * 72)
    lines.append("CPU per operation, ms (from /proc; the machine's other load does not inflate it)")
    for name, key in (("start: server", "start_cpu_ms_server"), ("start: all processes", "start_cpu_ms_total"),
                      ("approval: server", "approval_cpu_ms_server"), ("approval: all", "approval_cpu_ms_total"),
                      ("reminder storm: server", "reminder_storm_cpu_ms_server"),
                      ("reminder storm: all", "reminder_storm_cpu_ms_total"),
                      ("cutoff storm: server", "storm_cpu_ms_server"), ("cutoff storm: all", "storm_cpu_ms_total")):
        ours, theirs = f.get(f"{key}_dmcflow"), f.get(f"{key}_bare")
        if ours is not None and theirs:
            lines.append(f"  {name:<28} {ours:>10} {theirs:>10} {round(ours / theirs, 2):>7}  (dmcflow ÷ bare)")
    if f.get("approval_cpu_ms_api_dmcflow") is not None:
        lines.append(f"  approval, dmcflow's share: API {f['approval_cpu_ms_api_dmcflow']}, worker "
                     f"{f['approval_cpu_ms_worker_dmcflow']}, HTTP clients {f['approval_cpu_ms_client_dmcflow']} "
                     f"(bare: API {f.get('approval_cpu_ms_api_bare')}, worker {f['approval_cpu_ms_worker_bare']}, "
                     f"client {f['approval_cpu_ms_client_bare']})")
    lines.append("-" * 72)
    for key in ("approval_first_events_per_s", "worker_rss_mb_per_1000", "server_rss_mb_per_1000",
                "intake_acknowledged_per_s", "import_rows_per_s", "import_reimport_rows_per_s"):
        if f.get(key) is not None:
            lines.append(f"{key:<30} {f[key]:>10}")
    for database in ("sqlite", "postgresql"):  # a 60,000-row area export (bench/import_students.py)
        for key, goal in (("import_first_s", 10), ("import_again_s", 5)):
            if (seconds := f.get(f"{key}_{database}")) is not None:
                lines.append(f"{f'{key} ({database})':<30} {seconds:>10} {'':>10} {seconds / goal:>7.2f}  "
                             f"{f'< {goal} s':<7} {'yes' if seconds < goal else 'NO'}")
    for database in ("sqlite", "postgresql"):  # 200 messages of the samples' shapes (bench/intake.py)
        if (rate := f.get(f"intake_per_s_{database}")) is not None:
            lines.append(f"{f'intake msg/s ({database})':<30} {rate:>10} {'':>10} {rate / 50:>7.2f}  "
                         f"{'≥ 50':<7} {'yes' if rate >= 50 else 'NO'}")
    for database in ("sqlite", "postgresql"):  # 30,000 schools, 8 requests in flight (bench/dashboard.py)
        for name, label in (("area_dashboard", "area p95 ms"), ("dashboard_page", "page p95 ms"),
                            ("area_dashboard_first_look", "1st look p95")):
            if (p95 := f.get(f"{name}_p95_ms_{database}")) is not None:
                lines.append(f"{f'{label} ({database})':<30} {p95:>10} {'':>10} {p95 / 150:>7.2f}  "
                             f"{'< 150':<7} {'yes' if p95 < 150 else 'NO'}")
    return "\n".join(lines)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schools", type=int, default=None, help="N for the start path and the cutoff storm "
                                                              "(default 2,000; 30,000 with --national)")
    ap.add_argument("--approvals", type=int, default=1000, help="schools confirmed and certified")
    ap.add_argument("--clients", type=int, default=32, help="concurrent API clients / bare client calls")
    ap.add_argument("--areas", type=int, default=None, help="default: as in the country, one per 122 schools")
    ap.add_argument("--national", action="store_true",
                    help="N = 30,000; the start path and the storm on the same workflows, nothing else")
    ap.add_argument("--lead-ms", type=float, default=NATIONAL_LEAD_S_PER_SCHOOL * 1000,
                    help="--national: ms per school between the bare starts and their cutoff")
    ap.add_argument("--quick", action="store_true", help="N = 300, 150 approvals, no intake/import")
    ap.add_argument("--skip-others", action="store_true", help="without the intake and import benchmarks")
    ap.add_argument("--only", default="start,approval,memory,storm,others",
                    help="a comma-separated subset (not with --national)")
    ap.add_argument("--json", default="bench/results/all.json")
    args = ap.parse_args()
    args.schools = args.schools or (30000 if args.national else 2000)
    if args.national:  # the approval path, intake and import do not depend on N: the default run has them
        args.approvals, args.skip_others = 0, True
    if args.quick:
        args.schools, args.approvals, args.skip_others = 300, 150, True
    args.approvals = min(args.approvals, args.schools)
    args.areas = args.areas or max(1, round(args.schools * 245 / 30000))
    only = set(args.only.split(","))  # the start path always runs: the others use its round

    began = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="dmcflow-bench-"))
    url = f"sqlite:///{tmp / 'app.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    now = datetime.now(timezone.utc)
    add_round(engine, "bench", now, now, now + timedelta(days=2))
    codes = harness.seed(engine, schools=args.schools, areas=args.areas,
                         ready_round=None if args.national else "bench", approvers=args.approvals, now=now)
    figures: dict = {"schools": args.schools, "areas": args.areas,
                     "workflow_cache_size": Settings().workflow_cache_size}  # both workers: see bench/bare.py
    converter = bench_converter()  # before the processes start: they take the run's key from the environment
    async with harness.running(tmp, url) as stack:
        client = await Client.connect(stack.address, data_converter=converter)
        if args.national:
            print(f"national: start path and cutoff storm, {args.schools} schools …", flush=True)
            figures |= await national(client, stack, engine, args.schools, "bench-national", args.areas,
                                      args.lead_ms / 1000)
        else:
            print(f"start path, {args.schools} schools …", flush=True)
            figures |= await start_path(client, stack, engine, args.schools, "bench")
            print(json.dumps(figures), flush=True)  # each phase's figures as it ends
            if "approval" in only:
                print(f"approval path, {args.approvals} schools …", flush=True)
                figures |= await approval_path(client, stack, codes[:args.approvals], "bench", args.clients)
                print(json.dumps(figures), flush=True)
            if "memory" in only:
                print(f"worker memory, {args.schools} school workflows …", flush=True)
                figures |= await memory_per_workflow(client, stack, engine, args.schools, "bench-memory")
                print(json.dumps(figures), flush=True)
            if "storm" in only:
                print(f"reminder and cutoff storms, {args.schools} schools …", flush=True)
                figures |= await cutoff_storm(client, stack, engine, args.schools, "bench-storm",
                                              figures["start_round_settled_s"], figures["start_shaped_settled_s"],
                                              args.areas)
    if "others" in only and not args.skip_others:
        print("intake and import …", flush=True)
        intake = other_bench("bench.intake", "--messages", "200")  # SQLite, then PostgreSQL
        for database in intake["backends"]:  # from SMTP receipt until the last reply was sent
            figures[f"intake_per_s_{database}"] = intake[database]["receipt_to_sent_per_s"]
        imported = other_bench("bench.import_students", "--rows", "60000", "--schools", "70")  # SQLite, PostgreSQL
        for database in ("sqlite", "postgresql"):
            for label, key in (("first_csv", "import_first_s"), ("again_csv", "import_again_s")):
                if database in imported:
                    figures[f"{key}_{database}"] = imported[database][label]["seconds"]
        live = other_bench("bench.live_feed", "--ticks", "8")  # 1, 20 and 200 SSE watchers, one area then four
        figures |= {k: v for k, v in live.items() if k.startswith("live_")}
        dashboard = other_bench("bench.dashboard")  # 30,000 schools in 245 areas, 8 in flight; SQLite, PostgreSQL
        for database in dashboard["backends"]:
            for name in ("area_dashboard", "dashboard_page", "area_dashboard_first_look"):
                figures[f"{name}_p95_ms_{database}"] = dashboard[database][f"{name}_goal"]["p95_ms"]
    figures["bench_duration_s"] = round(time.perf_counter() - began)
    print(table(figures), flush=True)
    emit(figures, args.json)


if __name__ == "__main__":
    asyncio.run(main())
