"""Fault: the application's PostgreSQL is stopped mid-round (its connections cut) and started again.

The round of tests/faults/round.py runs on the PostgreSQL backend (the server scripts/test.sh starts; its
data directory and options come from DMCFLOW_TEST_POSTGRES_DATA, _BIN and _OPTIONS). The server is stopped
with `pg_ctl -m fast` (every connection cut, as in a crash or a failover) during the decisions and again
over the reminders, and started again after a pause. Activities must retry until it is back, users whose
request failed try again, and nothing may be half-written: every accepted decision in the projection and
the audit trail once, projection versions consistent with the audit, every mail sent once.

The test server runs with fsync and synchronous_commit off (speed); this scenario's database commits
synchronously, as production does, so that a stop in `immediate` mode (the server process crashing, with a
crash recovery at the next start) loses nothing that was committed; asynchronous commits would lose the
last ones, and the scenario would report mails and rows that never existed.

Skipped without PostgreSQL, except under CI (CI set), where that is a failure as for the other PostgreSQL
tests. Short form (CI): two outages of 8 s (`fast`) and 6 s (`immediate`). Long form
(`DMCFLOW_FAULTS=long`): four outages of 5 to 20 s at random moments, `fast` or `immediate`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from tests.db_backends import in_ci
from tests.faults.processes import Postgres
from tests.faults.round import RoundRun, long_form, report, until

pytestmark = [pytest.mark.slow, pytest.mark.postgres,
              pytest.mark.parametrize("backend", ["postgresql"], indirect=True)]


@pytest.fixture
def postgres() -> Postgres:
    if not Postgres.available():
        reason = "the PostgreSQL server's data directory is unknown: run the tests with scripts/test.sh"
        if in_ci():
            pytest.fail(f"CI is set but {reason}", pytrace=False)
        pytest.skip(reason)
    return Postgres()


async def test_postgres_restarted_activities_retry_nothing_half_written(postgres, dev_env, db_url, engine, settings,
                                                                        smtp, tmp_path):
    with psycopg.connect(make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False),
                         autocommit=True) as conn:  # durable commits for this database, as in production
        conn.execute(sql.SQL("ALTER DATABASE {} SET synchronous_commit = on").format(
            sql.Identifier(make_url(db_url).database)))
    engine.dispose()
    async with RoundRun.start_with_worker("postgres-restart", engine=engine, settings=settings, client=dev_env.client,
                                          smtp=smtp, worker_log=tmp_path / "worker.log") as run:
        if long_form():
            starts = run.moments(4, run.confirm_from - timedelta(seconds=5), run.escalation_at, spacing_s=30)
            outages = [(at, run.rng.choice(["fast", "immediate"]), run.rng.uniform(5, 20)) for at in starts]
        else:  # amid the confirmations, then over the reminders
            outages = [(run.confirm_from + timedelta(seconds=run.rng.uniform(4, 9)), "fast", 8.0),
                       (run.reminder_at - timedelta(seconds=2), "immediate", 6.0)]

        async def faults() -> None:
            for at, mode, seconds in outages:
                await until(at)
                await asyncio.to_thread(postgres.stop, mode)
                run.record_fault(f"PostgreSQL stopped (-m {mode})", down_s=round(seconds, 1))
                await asyncio.sleep(seconds)
                await asyncio.to_thread(postgres.start)
                run.record_fault("PostgreSQL started")

        try:
            summary = await run.play(faults())
            survived = run.worker.proc.poll() is None
        finally:
            await asyncio.to_thread(postgres.ensure_running)
    summary["found"]["worker_survived"] = survived
    report(summary)
    assert summary["problems"] == []
    assert survived, "the worker process died with the database"
