"""AreaCutoffWorkflow: at each cutoff of an area's schools, tell the area's district officers who is late.

One per round and area (245 areas, not 30,000 schools): it sleeps until the next cutoff among the
area's schools, lets the schools' own cutoff timers settle, then sends one email listing every school
that passed its cutoff uncertified. A deadline extension signals it to recompute its next instant.
Rounds started before issue 18 only (their schools keep their own timers); an area-timed round has an
AreaRoundWorkflow per area instead (workflows/area_round.py).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.messages import AreaCutoffInput, AreaCutoffStatus, AreaCutoffStep
    from workflows import activity_calls as calls

SETTLE = timedelta(seconds=30)  # certifications at 16:29:59 reach the projection well within this
IDLE_CLOSE = timedelta(days=30)  # with no school left open, wait this long for an extension, then end


@workflow.defn
class AreaCutoffWorkflow:
    def __init__(self) -> None:
        self._moved = False
        self.escalations = 0

    @workflow.run
    async def run(self, inp: AreaCutoffInput) -> int:
        for _ in range(200):  # bounded history; continue-as-new carries on
            status = await workflow.execute_activity(
                calls.AREA_CUTOFF_STEP, AreaCutoffStep(round_id=inp.round_id, area=inp.area, now=workflow.now()),
                result_type=AreaCutoffStatus, **calls.MAIL)
            self.escalations += 1 if status.escalated else 0
            if status.next_cutoff is None:
                if not await self._wait(IDLE_CLOSE):
                    return self.escalations
                continue
            await self._wait(status.next_cutoff + SETTLE - workflow.now())
        workflow.continue_as_new(inp)

    async def _wait(self, delay: timedelta) -> bool:
        """True when woken by a deadline change, False when the delay ran out."""
        try:
            if delay > timedelta(0):
                await workflow.wait_condition(lambda: self._moved, timeout=delay)
                return True
            return False
        except asyncio.TimeoutError:
            return False
        finally:
            self._moved = False

    @workflow.signal
    def deadline_moved(self) -> None:
        self._moved = True
