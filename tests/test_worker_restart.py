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

import httpx
import pytest

from api.app import create_app
from domain.rounds import RoundPolicy
from tests.stack import (
    AREA, SCHOOL, SCHOOL_2, Stack, add_round, keep_history, make_ready, seed, unique_round,
)
from tests.timing import eventually

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def start_worker(settings, address: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "DMCFLOW_DATABASE_URL": settings.database_url, "DMCFLOW_TEMPORAL_ADDRESS": address,
           "DMCFLOW_TASK_QUEUE": settings.task_queue, "DMCFLOW_SMTP_HOST": settings.smtp_host,
           "DMCFLOW_SMTP_PORT": str(settings.smtp_port), "DMCFLOW_PUBLIC_URL": settings.public_url}
    return subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)


async def until(instant: datetime) -> None:
    delay = (instant - datetime.now(timezone.utc)).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay)  # the dev server runs on the wall clock: waiting is the scenario


async def test_worker_killed_and_restarted_mid_round(dev_env, engine, settings, smtp, tmp_path):
    tokens: dict[str, str] = {}
    seed(engine, tokens)
    address = dev_env.client.service_client.config.target_host
    now = datetime.now(timezone.utc)
    rid = unique_round()
    # Wide margins: a loaded CI machine restarts a worker in seconds, and a reminder whose moment passed
    # while no worker ran is rightly not sent once the school is late.
    confirm_from, cutoff = now + timedelta(seconds=10), now + timedelta(seconds=50)
    add_round(engine, rid, now - timedelta(seconds=1), confirm_from, cutoff,
              RoundPolicy(reminders_before_cutoff=[timedelta(seconds=20)]))
    app = create_app(settings, engine=engine, temporal=dev_env.client)
    log = tmp_path / "worker.log"
    worker = start_worker(settings, address, log)
    kills = 0
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api",
                                     timeout=30) as http:
            stack = Stack(http=http, client=dev_env.client, engine=engine, settings=settings, env=dev_env,
                          tokens=tokens)
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
