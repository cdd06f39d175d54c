"""SchoolRoundWorkflow in an area-timed round (issue 18) with stub activities under time skipping
(tests/workflows/stub_worker.py): the school's decisions, its windows to the second, an extension told to its area,
and its end. Started as dmcflow/lazy_start.py starts it, by the first decision (update-with-start); the projection
row it would read is the input each test sets."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from dmcflow import lazy_start
from domain.messages import ExtendDeadline, SchoolRoundInput, SchoolRoundResult
from domain.refusals import Refusal
from domain.rounds import RoundPolicy, Schedule
from domain.school_round import Actor, GateProgress, SchoolRoundState, Stage
from domain.thai_time import thai_datetime
from tests.timing import bangkok_on_day
from tests.workflows.area_inbox import AreaInbox
from tests.workflows.stub_worker import Calls, stub, stub_worker
from workflows import activity_calls as calls
from workflows.ids import area_round_id, school_round_id
from workflows.refusal_errors import refusal_from_failure
from workflows.school_round import SchoolRoundWorkflow

ROUND, AREA, SCHOOL = "r-fast", "สพม.ทดสอบ", "1044449001"
STAFF = Actor(user_id="u-staff", role="staff", school_code=SCHOOL)
DIRECTOR = Actor(user_id="u-director", role="director", school_code=SCHOOL)
DISTRICT = Actor(user_id="u-district", role="district", area=AREA)
READY = GateProgress(students=2, results=2, present=2)  # R10's menus and R11's marks complete
GRACE = timedelta(days=2)


def activities(log: Calls):
    return [stub(log, calls.LOAD_GATE, READY), stub(log, calls.RECORD_CHANGE)]


class School:
    """One school of a round like the letter's on Temporal's tomorrow (confirmation 08.30, cutoff 16.30 Bangkok),
    reached as the API reaches it (dmcflow.lazy_start): the first decision starts its workflow."""

    def __init__(self, env, queue: str, log: Calls, now: datetime, monkeypatch) -> None:
        self.env, self.queue, self.log = env, queue, log
        self.confirm_from, self.cutoff = bangkok_on_day(now, 8, 30), bangkok_on_day(now, 16, 30)
        state = SchoolRoundState(round_id=ROUND, school_code=SCHOOL, area=AREA, gate=READY,
                                 schedule=Schedule(opens_at=now, confirm_from=self.confirm_from, cutoff_at=self.cutoff),
                                 policy=RoundPolicy(late_grace=GRACE))
        inp = SchoolRoundInput(state=state, projected=True, projected_stage=Stage.open, area_timed=True,
                               local_records=True)
        # the projection row lazy_start would read: this school of an area-timed round, on the stub worker's queue
        monkeypatch.setattr(lazy_start, "start_input", lambda engine, round_id, code: (inp, queue))

    async def skip_to(self, instant: datetime) -> None:
        delta = instant - await self.env.get_current_time()
        if delta > timedelta(0):
            await self.env.sleep(delta)

    async def decide(self, update, arg):
        """The decision's answer, or the Refusal the API would answer."""
        try:
            # any engine but None: lazy_start then asks start_input (the projection row, patched above)
            return await lazy_start.update_school(self.env.client, "engine", ROUND, SCHOOL, update, arg)
        except WorkflowUpdateFailedError as exc:
            return refusal_from_failure(exc)
        except Refusal as r:  # lazy_start's own: round_finished
            return r

    async def result(self, closes_at: datetime | None = None) -> SchoolRoundResult:
        """The workflow's result, once time has skipped to `closes_at` (a handle not from start_workflow does not
        skip time by itself)."""
        if closes_at is not None:
            await self.skip_to(closes_at)
        handle = self.env.client.get_workflow_handle(school_round_id(ROUND, SCHOOL), result_type=SchoolRoundResult)
        return await handle.result()


def code(answer) -> str:
    assert isinstance(answer, Refusal), answer
    return answer.code


@pytest.fixture
async def school(time_env, monkeypatch):
    log = Calls()
    async with stub_worker(time_env, [SchoolRoundWorkflow, AreaInbox], activities(log)) as queue:
        yield School(time_env, queue, log, await time_env.get_current_time(), monkeypatch)


async def test_staff_confirm_then_the_director_certifies_and_the_schools_round_ends(school):
    await school.skip_to(school.confirm_from - timedelta(minutes=1))
    early = await school.decide(SchoolRoundWorkflow.confirm, STAFF)  # this first decision starts the workflow
    assert code(early) == "window_not_open" and thai_datetime(school.confirm_from) in early.message_th

    await school.skip_to(school.confirm_from)
    assert code(await school.decide(SchoolRoundWorkflow.certify, DIRECTOR)) == "not_confirmed"
    assert code(await school.decide(SchoolRoundWorkflow.confirm, DIRECTOR)) == "forbidden"  # the staff's, not his
    confirmed = await school.decide(SchoolRoundWorkflow.confirm, STAFF)
    assert confirmed.stage is Stage.confirmed and confirmed.confirmed.by == STAFF.user_id
    certified = await school.decide(SchoolRoundWorkflow.certify, DIRECTOR)
    assert certified.stage is Stage.certified and certified.certified.by == DIRECTOR.user_id

    result = await school.result()  # certification ends the workflow at once
    assert (result.stage, result.confirmed_by, result.certified_by) == (Stage.certified, "u-staff", "u-director")
    assert code(await school.decide(SchoolRoundWorkflow.confirm, STAFF)) == "round_finished"
    # each accepted decision projected once, with only what it changed (the row was there before the workflow)
    assert [c[0]["fields"] for c in school.log.of(calls.RECORD_CHANGE)] == [["confirmed"], ["certified"]]


async def test_decisions_are_refused_from_1630_to_the_second_and_the_school_closes_after_its_grace(school):
    await school.skip_to(school.cutoff - timedelta(seconds=2))
    assert (await school.decide(SchoolRoundWorkflow.confirm, STAFF)).stage is Stage.confirmed  # 16.29.58: in time

    await school.skip_to(school.cutoff)
    late = await school.decide(SchoolRoundWorkflow.certify, DIRECTOR)
    assert code(late) == "round_closed" and "16.30 น." in late.message_th
    assert code(await school.decide(SchoolRoundWorkflow.withdraw_confirmation, STAFF)) == "round_closed"

    result = await school.result(closes_at=school.cutoff + GRACE)  # still open for an extension until then
    assert result.stage is Stage.late and result.certified_by is None
    assert code(await school.decide(SchoolRoundWorkflow.confirm, STAFF)) == "round_finished"


async def test_an_extension_moves_the_cutoff_and_tells_the_area(school):
    area = await school.env.client.start_workflow(AreaInbox.run, id=area_round_id(ROUND, AREA), task_queue=school.queue)
    later = school.cutoff + timedelta(days=1)
    await school.skip_to(school.confirm_from)

    other = Actor(user_id="u-other", role="district", area="สพป.อื่น")
    assert code(await school.decide(SchoolRoundWorkflow.extend_deadline,
                                    ExtendDeadline(cutoff_at=later, reason="น้ำท่วม", actor=other))) == "out_of_scope"
    earlier = ExtendDeadline(cutoff_at=school.cutoff - timedelta(hours=1), reason="ผิด", actor=DISTRICT)
    assert code(await school.decide(SchoolRoundWorkflow.extend_deadline, earlier)) == "extension_not_later"
    moved = await school.decide(SchoolRoundWorkflow.extend_deadline,
                                ExtendDeadline(cutoff_at=later, reason="น้ำท่วม", actor=DISTRICT))
    assert moved.cutoff_at == later
    told = await area.query(AreaInbox.received)
    assert [(m.school_code, m.cutoff_at) for m in told] == [(SCHOOL, later)]

    await school.skip_to(school.cutoff + timedelta(hours=1))  # past the old cutoff: still in time
    assert (await school.decide(SchoolRoundWorkflow.confirm, STAFF)).stage is Stage.confirmed
    await school.skip_to(later)
    assert code(await school.decide(SchoolRoundWorkflow.certify, DIRECTOR)) == "round_closed"
    await school.skip_to(school.cutoff + GRACE + timedelta(hours=1))  # the old cutoff's grace is over: still open
    assert code(await school.decide(SchoolRoundWorkflow.confirm, STAFF)) == "round_closed"
    result = await school.result(closes_at=later + GRACE)  # closes after the new cutoff's grace
    assert result.stage is Stage.late
    assert [c[0]["fields"] for c in school.log.of(calls.RECORD_CHANGE)] == [["cutoff_at"], ["confirmed"]]
