"""Fault: the outgoing SMTP server is down for a while, twice in a round.

The round of tests/faults/round.py runs; the SMTP server (the catcher) refuses connections over the
reminder instant and again over the areas' escalation, while decisions and their outcome mails go on.
Every mail due meanwhile must go out after the server returns, exactly once (the MAIL activities retry
with backoff: 2 s, doubling, at most 5 minutes), and nothing else may suffer.

Short form (CI): outages of 18 s and 12 s. Long form (`DMCFLOW_FAULTS=long`): three outages of 30 to
90 s at random moments of a longer round. A retry lands at most 5 minutes after the server returns, so
longer outages only make the test wait longer.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import select

from db.engine import session_scope
from db.models import OutboxMail
from tests.faults.round import RoundRun, long_form, report, until, utcnow

pytestmark = pytest.mark.slow


async def test_smtp_down_mails_go_out_once_when_it_returns(dev_env, engine, settings, smtp, tmp_path):
    async with RoundRun.start_with_worker("smtp-outage", engine=engine, settings=settings, client=dev_env.client,
                                          smtp=smtp, worker_log=tmp_path / "worker.log") as run:
        if long_form():
            starts = run.moments(3, run.confirm_from - timedelta(seconds=10), run.escalation_at, spacing_s=100)
            outages = [(at, run.rng.uniform(30, 90)) for at in starts]
        else:  # over the reminders, then over the escalations
            outages = [(run.reminder_at - timedelta(seconds=4), 18.0),
                       (run.escalation_at - timedelta(seconds=2), 12.0)]
        returned = []

        async def faults() -> None:
            for at, seconds in outages:
                await until(at)
                smtp.down()
                run.record_fault("SMTP server down", outage_s=round(seconds, 1))
                await asyncio.sleep(seconds)
                smtp.up()
                returned.append(utcnow())
                run.record_fault("SMTP server back")

        summary = await run.play(faults())
    with session_scope(engine) as s:
        retried = [r for r in s.exec(select(OutboxMail)) if r.attempts > 1]
    # the mails the outages held back: each sent after a return, and not long after it
    late_by = [min((r.sent_at - back).total_seconds() for back in returned if back <= r.sent_at)
               for r in retried if any(back <= r.sent_at for back in returned)]
    summary["found"]["emails"]["held_back_by_the_outages"] = len(retried)
    summary["found"]["emails"]["held_back_sent_after_return_s_max"] = round(max(late_by, default=0), 1)
    report(summary)
    assert summary["problems"] == []
    assert retried, "the outages held no mail back: they missed the reminders and the escalations"
    assert len(late_by) == len(retried), "a held-back mail was marked sent while the server was down"
