"""Fault: the Temporal dev server is stopped mid-round and started again on its SQLite file.

The round of tests/faults/round.py runs on a dev server of its own (`temporal server start-dev` on a SQLite
file in WAL mode, as `dmcflow dev` runs it). The server goes away over the reminder instant (SIGTERM) and
again over the cutoff (SIGKILL: a crash), and comes back on the same file and port. Timers due while it was
down must fire once it is back (reminders, the cutoff, the escalation), the worker and the API must
reconnect by themselves, and nothing may be lost or doubled. Users whose request failed meanwhile try again.

Short form (CI): two outages of 8 and 6 s. Long form (`DMCFLOW_FAULTS=long`): four outages of 5 to 20 s at
random moments, each a SIGTERM or a SIGKILL.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta

import pytest
from sqlmodel import select
from temporalio.client import Client

from db.engine import session_scope
from db.models import OutboxMail, SchoolRound
from tests.payload_keys import DATA_CONVERTER
from tests.conftest import free_port
from tests.faults.processes import DevServer
from tests.faults.round import RoundRun, long_form, report, until, utcnow

pytestmark = pytest.mark.slow


async def test_server_restarted_on_its_file_timers_fire_and_work_resumes(engine, settings, smtp, tmp_path):
    server = DevServer(tmp_path, free_port())
    await server.start()
    try:
        client = await Client.connect(server.address, data_converter=DATA_CONVERTER)
        async with RoundRun.start_with_worker("server-restart", engine=engine, settings=settings, client=client,
                                              smtp=smtp, worker_log=tmp_path / "worker.log") as run:
            if long_form():
                starts = run.moments(4, run.confirm_from - timedelta(seconds=5), run.escalation_at, spacing_s=30)
                outages = [(at, run.rng.choice([signal.SIGTERM, signal.SIGKILL]), run.rng.uniform(5, 20))
                           for at in starts]
            else:  # the reminder's timers, then the cutoff's, come due while the server is away
                outages = [(run.reminder_at - timedelta(seconds=5), signal.SIGTERM, 8.0),
                           (run.cutoff - timedelta(seconds=3), signal.SIGKILL, 6.0)]
            back: list = []

            async def faults() -> None:
                for at, sig, seconds in outages:
                    await until(at)
                    await server.stop(sig)
                    run.record_fault(f"Temporal server stopped ({signal.Signals(sig).name})",
                                     down_s=round(seconds, 1))
                    await asyncio.sleep(seconds)
                    took = await server.start()
                    back.append(utcnow())
                    run.record_fault("Temporal server started on the same file", serving_after_s=round(took, 1))

            summary = await run.play(faults())
    finally:
        await server.stop()
    with session_scope(engine) as s:
        reminders = [r.created_at for r in s.exec(select(OutboxMail).where(OutboxMail.kind == "reminder"))]
        late_rows = [r.updated_at for r in s.exec(select(SchoolRound).where(SchoolRound.stage == "late"))]
    found = summary["found"]
    found["timers_fired_after_a_restart"] = {
        "reminders": sum(any(b <= at for b in back) for at in reminders),
        "late_stages_recorded": sum(any(b <= at for b in back) for at in late_rows)}
    found["worker_starts"] = run.worker.starts
    report(summary)
    assert summary["problems"] == []
    if not long_form():  # the outages covered the reminder instant and the cutoff: their timers fired after
        assert found["timers_fired_after_a_restart"]["reminders"] > 0
        assert found["timers_fired_after_a_restart"]["late_stages_recorded"] == found["stages"].get("late", 0)
