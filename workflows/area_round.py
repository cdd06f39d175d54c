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
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.messages import AreaInstant, AreaRoundInput, AreaSchedule, DeadlineMoved
    from workflows import activity_calls as calls
    from workflows.timers import RearmableTimer

# A certification accepted at 16:29:59 is projected within milliseconds; the late step also leaves out any
# school whose certification visibility already shows (its projection write may be retrying).
SETTLE = timedelta(seconds=2)
STEPS_PER_RUN = 150  # about ten events a step: continue-as-new well before the history grows long


@workflow.defn
class AreaRoundWorkflow:
    def __init__(self) -> None:
        self._timer = RearmableTimer()
        self._mailing: list[asyncio.Task] = []
        self.counts = {"reminded": 0, "late": 0}

    @workflow.run
    async def run(self, inp: AreaRoundInput) -> dict:
        reminded_through = inp.reminded_through
        plan = await self._step(calls.area_schedule, inp, reminded_through)
        for _ in range(STEPS_PER_RUN):
            now = workflow.now()
            if plan.close_at is None or now >= plan.close_at:
                # every school certified, or past its late grace (its workflow has closed: no extension can come)
                await self._mail_sent()
                return dict(self.counts)
            wake = min(i for i in (plan.next_reminder, plan.next_cutoff and plan.next_cutoff + SETTLE,
                                   plan.close_at) if i is not None)
            if await self._timer.sleep(wake - now):
                plan = await self._step(calls.area_schedule, inp, reminded_through)  # an extension moved a cutoff
                continue
            now = workflow.now()
            if plan.next_cutoff is not None and plan.next_cutoff + SETTLE <= now:
                plan = await self._step(calls.area_late, inp, reminded_through)
                self.counts["late"] += plan.late
            if plan.next_reminder is not None and plan.next_reminder <= now:
                plan = await self._step(calls.area_reminders, inp, reminded_through)
                reminded_through = now
                self.counts["reminded"] += plan.reminded
            if workflow.info().is_continue_as_new_suggested():
                break
        await self._mail_sent()
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(AreaRoundInput(round_id=inp.round_id, area=inp.area,
                                                reminded_through=reminded_through))

    async def _step(self, step: Callable[[AreaInstant], Awaitable[AreaSchedule]], inp: AreaRoundInput,
                    since: datetime | None) -> AreaSchedule:
        plan = await step(AreaInstant(round_id=inp.round_id, area=inp.area, at=workflow.now(), since=since))
        if plan.mail:  # delivered beside the loop: a mail server that is down holds back no cutoff
            self._mailing.append(asyncio.create_task(calls.area_deliver(plan.mail)))
        return plan

    async def _mail_sent(self) -> None:
        if self._mailing:
            await asyncio.gather(*self._mailing)
            self._mailing.clear()

    @workflow.signal
    def deadline_moved(self, moved: DeadlineMoved | None = None) -> None:
        self._timer.wake()

    @workflow.query
    def status(self) -> dict:
        return dict(self.counts)
