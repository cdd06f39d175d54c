"""`python -m bench --national`: the start path and the storms at N = 30,000 on the same workflows."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from temporalio.client import Client

from bench import harness
from bench.round_steps import add_round, start_dmcflow_round
from bench.storms import bare_storm, reminder_lead, storm_figures, storm_until_late, storm_until_reminded
from domain.rounds import RoundPolicy

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
