"""On a real Temporal dev server: the worker is SIGKILLed mid-round and restarted; nothing is lost.

Real time is used here (the dev server does not skip time), so the round lasts about half a minute.
The API under test talks to the same dev server as the worker process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import ActivityEnvironment

from activities.round_fanout import RoundFanoutActivities
from db.engine import session_scope
from db.models import Round, SchoolRound
from db.projection import insert_initial
from tests.payload_keys import DATA_CONVERTER
from domain.messages import AreaCutoffStep, SchoolRoundInput
from domain.rounds import RoundPolicy, Schedule
from domain.school_round import SchoolRoundState, Stage
from tests.stack import (
    AREA, OTHER_SCHOOL, READY_IDS, SCHOOL, SCHOOL_2, add_round, api_only, keep_history, make_ready, seed, unique_round,
)
from tests.timing import eventually
from worker import build_worker
from workflows import search_attributes as sa
from workflows.ids import school_round_id
from workflows.school_round import SchoolRoundWorkflow

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def start_worker(settings, address: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "DMCFLOW_DATABASE_URL": settings.database_url, "DMCFLOW_TEMPORAL_ADDRESS": address,
           "DMCFLOW_TASK_QUEUE": settings.task_queue, "DMCFLOW_SMTP_HOST": settings.smtp_host,
           "DMCFLOW_SMTP_PORT": str(settings.smtp_port), "DMCFLOW_SMTP_TLS": settings.smtp_tls,
           "DMCFLOW_PUBLIC_URL": settings.public_url}
    return subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)


async def until(instant: datetime) -> None:
    delay = (instant - datetime.now(timezone.utc)).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)  # the dev server runs on the wall clock: waiting is the scenario


async def test_worker_killed_and_restarted_mid_round(dev_env, engine, settings, smtp, tmp_path):
    address = dev_env.client.service_client.config.target_host
    now = datetime.now(timezone.utc)
    rid = unique_round()
    # Wide margins: a loaded CI machine restarts a worker in seconds, and a reminder whose moment passed
    # while no worker ran is rightly not sent once the school is late.
    confirm_from, cutoff = now + timedelta(seconds=10), now + timedelta(seconds=50)
    add_round(engine, rid, now - timedelta(seconds=1), confirm_from, cutoff,
              RoundPolicy(reminders_before_cutoff=[timedelta(seconds=20)]))
    log = tmp_path / "worker.log"
    worker = start_worker(settings, address, log)
    kills = 0
    try:
        async with api_only(dev_env.client, engine, settings, env=dev_env, timeout=30) as stack:
            http = stack.http
            await stack.start_round(rid)
            await make_ready(stack, rid, SCHOOL)

            worker.send_signal(signal.SIGKILL)  # dies with the confirm_from timer still ahead
            worker.wait()
            kills += 1
            await until(confirm_from + timedelta(seconds=1))
            worker = start_worker(settings, address, log)

            base = f"/rounds/{rid}/schools/{SCHOOL}"
            r = await http.post(f"{base}/confirmation", headers=stack.auth("staff"))
            assert r.status_code == 200 and r.json()["stage"] == "confirmed", r.text

            worker.send_signal(signal.SIGKILL)  # and again, between confirmation and certification
            worker.wait()
            kills += 1
            worker = start_worker(settings, address, log)
            r = await http.post(f"{base}/certification", headers=stack.auth("director"))
            assert r.status_code == 200 and r.json()["stage"] == "certified", r.text

            await until(cutoff + timedelta(seconds=35))  # the area's escalation settles 30 s after 16.30
            escalations = await eventually(
                lambda: [m for m in smtp.messages if "officer@sesao26.example" in m["X-Envelope-To"]], timeout=20)
            r = await http.get(f"/rounds/{rid}/schools/{SCHOOL_2}", headers=stack.auth("district"))
            assert r.json()["stage"] == "late"
            r = await http.get(base, headers=stack.auth("district"))
            assert r.json()["stage"] == "certified"
            r = await http.get(f"{base}/audit", headers=stack.auth("district"))
            assert [e["action"] for e in r.json()].count("confirm") == 1

            reminders = [m for m in smtp.messages if "register@banthodlong.ac.th" in m["X-Envelope-To"]]
            print(f"kills={kills} schools=3 reminders_to_{SCHOOL_2}={len(reminders)} "
                  f"escalations={len(escalations)} mails={len(smtp.messages)}")
            assert len(reminders) == 1, "one reminder, sent once despite the kills"
            assert len(escalations) == 1 and SCHOOL_2 in escalations[0].get_body(("plain",)).get_content()
            assert AREA in escalations[0]["Subject"]
            await keep_history(stack, f"school-round/{rid}/{SCHOOL}", "school_round_worker_killed")
    finally:
        worker.kill()
        worker.wait()


async def test_schools_first_run_after_a_boundary_is_projected_in_its_stage(dev_env, engine, settings):
    """A round started before issue 18 (every school's workflow started at once, each with its own timers; its
    fan-out may still be running after the upgrade) starts while the schools' worker is down (crashed, or far
    behind): the fan-out writes each row as `open`. The workflows first run after confirmation opened: the row
    and the DmcStage search attribute that the dashboard reads must say so (they stayed `open` until the next
    boundary, or for good when that first run came after the cutoff)."""
    now = datetime.now(timezone.utc)
    rid = unique_round()
    confirm_from = now + timedelta(seconds=4)
    add_round(engine, rid, now - timedelta(seconds=1), confirm_from, now + timedelta(hours=1))
    with session_scope(engine) as s:  # started before issue 18: no school queue, so the start stays eager
        s.get(Round, rid).started_at = now
    # its own connection: a worker set built but not run keeps its task queue registered on its client
    other = await Client.connect(dev_env.client.service_client.config.target_host, data_converter=DATA_CONVERTER)
    _, ops_only = build_worker(other, settings, engine=engine).workers
    async with api_only(dev_env.client, engine, settings, env=dev_env) as stack:
        async with ops_only:  # the fan-out runs; nobody serves the schools' own queue yet
            await stack.start_round(rid)
            await until(confirm_from + timedelta(seconds=1))
        assert projected_stage(engine, rid) == "open"
        async with build_worker(dev_env.client, settings, engine=engine):
            await eventually(lambda: projected_stage(engine, rid) == "confirmation_window")
            described = await dev_env.client.get_workflow_handle(school_round_id(rid, SCHOOL)).describe()
            assert described.typed_search_attributes.get(sa.STAGE) == "confirmation_window"


async def test_an_area_timed_round_starts_whole_while_the_schools_worker_is_down(dev_env, engine, settings):
    """Issue 18: the same outage at an area-timed round's start holds nothing back: every school is in the
    projection, and answers in its stage by the clock (confirmation opened meanwhile), with no school workflow."""
    now = datetime.now(timezone.utc)
    rid = unique_round()
    confirm_from = now + timedelta(seconds=2)
    add_round(engine, rid, now - timedelta(seconds=1), confirm_from, now + timedelta(hours=1))
    other = await Client.connect(dev_env.client.service_client.config.target_host, data_converter=DATA_CONVERTER)
    _, ops_only = build_worker(other, settings, engine=engine).workers
    async with api_only(dev_env.client, engine, settings, env=dev_env) as stack, ops_only:
        await stack.start_round(rid)
        await until(confirm_from + timedelta(seconds=1))
        for school, who in ((SCHOOL, "staff"), (SCHOOL_2, "staff2"), (OTHER_SCHOOL, "other_staff")):
            r = await stack.http.get(f"/rounds/{rid}/schools/{school}", headers=stack.auth(who))
            assert r.status_code == 200 and r.json()["stage"] == "confirmation_window", r.text
        assert (await dev_env.client.count_workflows(f'WorkflowId = "{school_round_id(rid, SCHOOL)}"')).count == 0


def projected_stage(engine, rid: str) -> str:
    with session_scope(engine) as s:
        return s.get(SchoolRound, (rid, SCHOOL)).stage


async def test_a_dropout_requested_while_the_worker_is_down_blocks_confirmation_at_once(dev_env, engine, settings,
                                                                                      tmp_path):
    """R8: once the request is answered 201, the school cannot confirm until the district decides, even
    when the consultation's workflow has not run yet (its worker crashed): the confirmation used to slip
    through before the workflow's own signal reached the school."""
    address = dev_env.client.service_client.config.target_host
    now = datetime.now(timezone.utc)
    rid = unique_round()
    confirm_from = now + timedelta(seconds=15)
    add_round(engine, rid, now - timedelta(seconds=1), confirm_from, now + timedelta(hours=1))
    log = tmp_path / "worker.log"
    worker = start_worker(settings, address, log)
    try:
        async with api_only(dev_env.client, engine, settings, env=dev_env, timeout=60) as stack:
            http = stack.http
            await stack.start_round(rid)
            await make_ready(stack, rid, SCHOOL)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            r = await http.post(f"/rounds/{rid}/schools/{SCHOOL}/dropouts", headers=stack.auth("staff"),
                                data={"student": READY_IDS[SCHOOL], "reason": "moved_home", "details": "ย้ายตามผู้ปกครอง"})
            assert r.status_code == 201, r.text
            await until(confirm_from + timedelta(seconds=1))
            worker = start_worker(settings, address, log)
            r = await http.post(f"/rounds/{rid}/schools/{SCHOOL}/confirmation", headers=stack.auth("staff"))
            assert r.status_code == 409 and r.json()["code"] == "blocking_cases", r.text
    finally:
        worker.kill()
        worker.wait()


async def test_the_escalation_leaves_out_a_school_certified_whose_projection_has_not_landed(dev_env, engine, settings,
                                                                                          smtp):
    """The director certified at 16.29; the worker died before the projection write committed (the retry
    waits out the activity's timeout), so at the escalation the row still says uncertified. Temporal's
    visibility already has the stage (upserted when the certification was accepted): the district is not
    told that a certified school is late."""
    tokens: dict[str, str] = {}
    seed(engine, tokens)
    now = datetime.now(timezone.utc)
    rid = unique_round()
    spec = add_round(engine, rid, now - timedelta(hours=2), now - timedelta(hours=1), now - timedelta(minutes=1))
    schedule = Schedule(opens_at=spec.opens_at, confirm_from=spec.confirm_from, cutoff_at=spec.cutoff_at)
    states = [SchoolRoundState(round_id=rid, school_code=code, area=AREA, schedule=schedule, policy=spec.policy)
              for code in (SCHOOL, SCHOOL_2)]
    with session_scope(engine) as s:
        insert_initial(s, states, [Stage.confirmed, Stage.confirmation_window])
    await dev_env.client.start_workflow(  # nobody serves this queue: only its search attributes matter here
        SchoolRoundWorkflow.run, SchoolRoundInput(state=states[0], projected=True), id=school_round_id(rid, SCHOOL),
        task_queue=f"{settings.task_queue}-idle", search_attributes=TypedSearchAttributes([
            SearchAttributePair(sa.ROUND, rid), SearchAttributePair(sa.AREA, AREA),
            SearchAttributePair(sa.STAGE, Stage.certified.value)]))
    for _ in range(50):  # visibility is indexed asynchronously
        if (await dev_env.client.count_workflows(f'WorkflowId = "{school_round_id(rid, SCHOOL)}"')).count:
            break
        await asyncio.sleep(0.1)
    step = AreaCutoffStep(round_id=rid, area=AREA, now=datetime.now(timezone.utc))
    status = await ActivityEnvironment().run(
        RoundFanoutActivities(engine, settings, dev_env.client).area_cutoff_step, step)
    [mail] = [m for m in smtp.messages if "officer@sesao26.example" in m["X-Envelope-To"]]
    text = mail.get_body(("plain",)).get_content()
    assert status.escalated == 1 and SCHOOL_2 in text and SCHOOL not in text.replace(SCHOOL_2, "")
    await dev_env.client.get_workflow_handle(school_round_id(rid, SCHOOL)).terminate()
