"""RoundFanoutWorkflow (a round-wide operation, page by page) and AreaCutoffWorkflow (a round started before issue
18: the district told of its late schools at each cutoff) with stub activities under time skipping
(tests/workflows/stub_worker.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from temporalio.client import WorkflowFailureError

from domain.messages import (
    AreaCutoffInput, AreaCutoffStatus, AreaCutoffStep, ExtendDeadline, FanoutInput, FanoutPage, FanoutPageResult,
)
from domain.school_round import Actor
from tests.workflows.stub_worker import Calls, stub, stub_worker
from workflows import activity_calls as calls
from workflows.area_cutoff import IDLE_CLOSE, SETTLE, AreaCutoffWorkflow
from workflows.refusal_errors import refusal_from_failure
from workflows.round_fanout import PAGES_PER_RUN, RoundFanoutWorkflow

AREA = "สพม.ทดสอบ"
SCHOOLS = [f"10444{n:05d}" for n in range(PAGES_PER_RUN + 10)]


def page_of(schools: list[str]):
    """The FANOUT_PAGE activity's answer: the next `limit` schools after `after`, each started (or extended)."""
    def answer(page: dict) -> FanoutPageResult:
        page = FanoutPage.model_validate(page)
        rest = [c for c in schools if page.after is None or c > page.after][:page.limit]
        return FanoutPageResult(done=len(rest), skipped=0, last=rest[-1] if rest else None)
    return answer


async def test_a_round_start_reaches_every_school_once_across_continue_as_new(time_env):
    log = Calls()
    async with stub_worker(time_env, [RoundFanoutWorkflow], [stub(log, calls.FANOUT_PAGE, page_of(SCHOOLS))]) as queue:
        handle = await time_env.client.start_workflow(
            RoundFanoutWorkflow.run, FanoutInput(round_id="r", operation="start", page_size=1), id="fast-fanout",
            task_queue=queue)
        assert await handle.result() == {"done": len(SCHOOLS), "skipped": 0, "finished": True}
    afters = [FanoutPage.model_validate(args[0]).after for args in log.of(calls.FANOUT_PAGE)]
    assert afters == [None, *SCHOOLS]  # each page resumes after the last: no school twice, none left out


@pytest.mark.parametrize("area, code", [(None, "forbidden"),  # the whole round is the admin's
                                        ("สพป.อื่น", "out_of_scope")])
async def test_an_extension_beyond_the_districts_own_area_is_refused_before_any_page(time_env, area, code):
    actor = Actor(user_id="u-d", role="district", area=AREA)
    log = Calls()
    change = ExtendDeadline(cutoff_at=datetime(2030, 1, 1, 9, 30), reason="น้ำท่วม", actor=actor, scope="round")
    async with stub_worker(time_env, [RoundFanoutWorkflow], [stub(log, calls.FANOUT_PAGE, page_of(SCHOOLS))]) as queue:
        handle = await time_env.client.start_workflow(
            RoundFanoutWorkflow.run, FanoutInput(round_id="r", operation="extend", area=area, extension=change),
            id="fast-fanout-extend", task_queue=queue)
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
    assert refusal_from_failure(failed.value).code == code
    assert log.of(calls.FANOUT_PAGE) == []


class Cutoffs:
    """The AREA_CUTOFF_STEP activity over the area's schools' cutoffs: each school past its cutoff is escalated once."""

    def __init__(self, cutoffs: dict[str, datetime]) -> None:
        self.cutoffs, self.escalated = cutoffs, []

    def step(self, step: dict) -> AreaCutoffStatus:
        step = AreaCutoffStep.model_validate(step)
        late = sorted(c for c, at in self.cutoffs.items() if at <= step.now and c not in self.escalated)
        self.escalated += late
        waiting = [at for c, at in self.cutoffs.items() if c not in self.escalated]
        return AreaCutoffStatus(escalated=len(late), next_cutoff=min(waiting, default=None))


async def test_the_district_is_told_at_each_cutoff_and_an_extension_moves_its_moment(time_env):
    log = Calls()
    now = await time_env.get_current_time()
    cutoff, extended = now + timedelta(hours=8), now + timedelta(days=2)
    area = Cutoffs({"1044449001": cutoff, "1044449002": cutoff})
    async with stub_worker(time_env, [AreaCutoffWorkflow], [stub(log, calls.AREA_CUTOFF_STEP, area.step)]) as queue:
        handle = await time_env.client.start_workflow(
            AreaCutoffWorkflow.run, AreaCutoffInput(round_id="r", area=AREA), id="fast-area-cutoff", task_queue=queue)
        await time_env.sleep(timedelta(hours=1))
        area.cutoffs["1044449002"] = extended  # its extension, projected; then the school tells the area
        await handle.signal(AreaCutoffWorkflow.deadline_moved)
        escalations = await handle.result()  # time skips to each cutoff, then a month with no extension
    steps = [AreaCutoffStep.model_validate(args[0]).now for args in log.of(calls.AREA_CUTOFF_STEP)]
    at_cutoffs = [at for at in steps if at >= cutoff]  # each step after its cutoff's settling seconds, not before
    assert len(at_cutoffs) == 2 and all(timedelta(0) <= at - due - SETTLE < timedelta(seconds=5)
                                        for at, due in zip(at_cutoffs, [cutoff, extended], strict=True))
    assert area.escalated == ["1044449001", "1044449002"] and escalations == 2
    assert await time_env.get_current_time() >= extended + SETTLE + IDLE_CLOSE
