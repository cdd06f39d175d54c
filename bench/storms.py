"""The last afternoon's two storms (issue 18): from the reminder instant until every school's reminder is in the
outbox, and from the cutoff until every school is `late` and every area's escalation is out, ÷ N bare workflows
with one timer and one activity each."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from temporalio.client import Client

from bench import bare, harness
from bench.round_steps import (
    START_CONCURRENCY, add_round, gather_limited, in_outbox, projected, sleep_until, start_dmcflow_round, wait_for,
)
from domain.rounds import RoundPolicy

# The storm's cutoff must come once every workflow has run its first task, or the storm's figure would
# include the start's backlog: started is not yet running. The start path measured how long N starts
# took until the stack was idle again; the storm leaves that much time and a margin before its cutoff.
READY_MARGIN = 1.3


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
