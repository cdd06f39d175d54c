"""AreaRoundWorkflow: an area-timed round's time, for all of the area's schools at once (issue 18).

One per round and area (245, not 30,000 schools): it sleeps until the next instant among its schools (a
reminder, a cutoff), then does that instant's work for every school it concerns in one activity: the
reminders of the schools not yet certified in one outbox batch; at a cutoff, every uncertified school whose
cutoff passed moved to `late` in the projection in one statement, their audit events in one batch, and the
district's escalation. Mail goes out beside the loop, so an SMTP outage never holds a cutoff back. An
extension's school signals `deadline_moved` once its new cutoff is projected: the area then looks again.
The schools' own workflows keep no timer for any of this (`SchoolRoundInput.area_timed`).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.messages import AreaInstant, AreaRoundInput, AreaSchedule, DeadlineMoved
    from workflows import activity_calls as calls

# A certification accepted at 16:29:59 is projected within milliseconds; the late step also leaves out any
# school whose certification visibility already shows (its projection write may be retrying).
SETTLE = timedelta(seconds=2)
STEPS_PER_RUN = 150  # about ten events a step: continue-as-new well before the history grows long


@workflow.defn
class AreaRoundWorkflow:
    def __init__(self) -> None:
        self._moved = False
        self._mailing: list[asyncio.Task] = []
        self.counts = {"reminded": 0, "late": 0}

    @workflow.run
    async def run(self, inp: AreaRoundInput) -> dict:
        reminded_through = inp.reminded_through
        plan = await self._step(calls.AREA_SCHEDULE, inp, reminded_through)
        for _ in range(STEPS_PER_RUN):
            now = workflow.now()
            if plan.close_at is None or now >= plan.close_at:
                # every school certified, or past its late grace (its workflow has closed: no extension can come)
                await self._mail_sent()
                return dict(self.counts)
            wake = min(i for i in (plan.next_reminder, plan.next_cutoff and plan.next_cutoff + SETTLE,
                                   plan.close_at) if i is not None)
            if await self._wait(wake - now):
                plan = await self._step(calls.AREA_SCHEDULE, inp, reminded_through)  # an extension moved a cutoff
                continue
            now = workflow.now()
            if plan.next_cutoff is not None and plan.next_cutoff + SETTLE <= now:
                plan = await self._step(calls.AREA_LATE, inp, reminded_through)
                self.counts["late"] += plan.late
            if plan.next_reminder is not None and plan.next_reminder <= now:
                plan = await self._step(calls.AREA_REMINDERS, inp, reminded_through)
                reminded_through = now
                self.counts["reminded"] += plan.reminded
            if workflow.info().is_continue_as_new_suggested():
                break
        await self._mail_sent()
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(AreaRoundInput(round_id=inp.round_id, area=inp.area,
                                                reminded_through=reminded_through))

    async def _step(self, activity: str, inp: AreaRoundInput, since: datetime | None) -> AreaSchedule:
        plan = await workflow.execute_activity(
            activity, AreaInstant(round_id=inp.round_id, area=inp.area, at=workflow.now(), since=since),
            result_type=AreaSchedule, **calls.DATABASE)
        if plan.mail:  # delivered beside the loop: a mail server that is down holds back no cutoff
            self._mailing.append(asyncio.create_task(workflow.execute_activity(
                calls.AREA_DELIVER, plan.mail, result_type=int, **calls.MAIL)))
        return plan

    async def _mail_sent(self) -> None:
        if self._mailing:
            await asyncio.gather(*self._mailing)
            self._mailing.clear()

    async def _wait(self, delay: timedelta) -> bool:
        """True when woken by a deadline change, False when the delay ran out."""
        try:
            if delay > timedelta(0) or self._moved:
                await workflow.wait_condition(lambda: self._moved, timeout=max(delay, timedelta(0)) or None)
                return True
            return False
        except asyncio.TimeoutError:
            return False
        finally:
            self._moved = False

    @workflow.signal
    def deadline_moved(self, moved: DeadlineMoved | None = None) -> None:
        self._moved = True

    @workflow.query
    def status(self) -> dict:
        return dict(self.counts)
