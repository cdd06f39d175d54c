"""AreaCutoffWorkflow: at each cutoff of an area's schools, tell the area's district officers who is late.

One per round and area (245 areas, not 30,000 schools): it sleeps until the next cutoff among the
area's schools, lets the schools' own cutoff timers settle, then sends one email listing every school
that passed its cutoff uncertified. A deadline extension signals it to recompute its next instant.
Rounds started before issue 18 only (their schools keep their own timers); an area-timed round has an
AreaRoundWorkflow per area instead (workflows/area_round.py).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.messages import AreaCutoffInput, AreaCutoffStep
    from workflows import activity_calls as calls
    from workflows.timers import RearmableTimer

SETTLE = timedelta(seconds=30)  # certifications at 16:29:59 reach the projection well within this
IDLE_CLOSE = timedelta(days=30)  # with no school left open, wait this long for an extension, then end


@workflow.defn
class AreaCutoffWorkflow:
    def __init__(self) -> None:
        self._timer = RearmableTimer()
        self.escalations = 0

    @workflow.run
    async def run(self, inp: AreaCutoffInput) -> int:
        for _ in range(200):  # bounded history; continue-as-new carries on
            status = await calls.area_cutoff_step(AreaCutoffStep(round_id=inp.round_id, area=inp.area,
                                                                 now=workflow.now()))
            self.escalations += 1 if status.escalated else 0
            if status.next_cutoff is None:
                if not await self._timer.sleep(IDLE_CLOSE):  # a month and no extension: the area is done
                    return self.escalations
                continue
            await self._timer.sleep(status.next_cutoff + SETTLE - workflow.now())
        workflow.continue_as_new(inp)

    @workflow.signal
    def deadline_moved(self) -> None:
        self._timer.wake()
