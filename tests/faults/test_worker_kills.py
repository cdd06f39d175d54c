"""Fault: the worker is SIGKILLed at random moments of a whole round and started again.

A round of 200 schools (tests/faults/round.py) runs on the session's Temporal dev server: confirmations,
certifications, ID corrections and dropout consultations in flight, a reminder, the cutoff and the areas'
escalations. The worker (`python worker.py`, a subprocess) is killed with SIGKILL at random moments from
the confirmation window to the escalation, and started again after a random pause. Afterwards every school
must be in the stage its accepted decisions call for, no decision lost or doubled, every mail sent once.

Short form (CI): 3 kills in a round of about 1.5 minutes. Long form (`DMCFLOW_FAULTS=long`): 10 kills in a
round of 400 schools and about 5 minutes, from the fan-out on. `DMCFLOW_FAULTS_SEED` replays the moments.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.faults.round import RoundRun, long_form, report, until

pytestmark = pytest.mark.slow


async def test_worker_killed_at_random_moments(dev_env, engine, settings, smtp, tmp_path):
    async with RoundRun.start_with_worker("worker-kills", engine=engine, settings=settings, client=dev_env.client,
                                          smtp=smtp, worker_log=tmp_path / "worker.log") as run:
        run.gap_faults = True
        kills = 10 if long_form() else 3
        first = run.t0 + timedelta(seconds=1) if long_form() else run.confirm_from - timedelta(seconds=3)
        planned = run.moments(kills, first, run.escalation_at + timedelta(seconds=5))

        async def faults() -> None:
            for at in planned:
                await until(at)
                pause = round(run.rng.uniform(0.2, 3.0), 1)
                run.worker.kill()
                run.record_fault("SIGKILL worker", restart_after_s=pause)
                await asyncio.sleep(pause)
                run.worker.start()

        summary = await run.play(faults())
    summary["found"]["worker_starts"] = run.worker.starts
    report(summary)
    assert len(summary["tried"]) == kills
    assert summary["problems"] == []
