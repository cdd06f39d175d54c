"""An area-timed school started with local records (issue 18, `SchoolRoundInput.local_records`, as
dmcflow/lazy_start.py starts it now): a decision is written inside its update's own workflow task, with stub
activities under time skipping (tests/workflows/stub_worker.py).

The server's cost of an approval is what this is about: a staff decision adds no activity task and no second
workflow task to the school's history. A certification keeps its regular activity and search attribute (its
acceptance must be durable before its row says certified: workflows/school_round.py `certify`). A write that fails
is the decision's refusal, and the workflow is left as it was before it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError

from dmcflow import lazy_start
from domain.messages import SchoolRoundInput
from domain.refusals import Refusal, refusal
from domain.rounds import RoundPolicy, Schedule
from domain.school_round import Actor, GateProgress, SchoolRoundState, Stage
from tests.timing import bangkok_on_day
from tests.workflows.stub_worker import Calls, stub, stub_worker
from workflows import activity_calls as calls
from workflows.ids import school_round_id
from workflows.refusal_errors import as_application_error, refusal_from_failure
from workflows.school_round import SchoolRoundWorkflow

ROUND, AREA, SCHOOL = "r-local", "สพม.ทดสอบ", "1044449001"
STAFF = Actor(user_id="u-staff", role="staff", school_code=SCHOOL)
DIRECTOR = Actor(user_id="u-director", role="director", school_code=SCHOOL)
READY = GateProgress(students=2, results=2, present=2)


class Db:
    """The stub projection write: records each change; `refuse` makes it refuse (as a write may, e.g. a batch that
    is not this school's), `down` answers as a database that does not answer."""

    def __init__(self) -> None:
        self.log = Calls()
        self.refuse = self.down = False
        self.schedule: Schedule | None = None

    def write(self, change: dict) -> None:
        if self.down:
            raise RuntimeError("connection refused")
        if self.refuse:
            raise as_application_error(refusal("write_refused", "ไม่รับการบันทึก", "The write was refused", 409))


@pytest.fixture
async def school(time_env, monkeypatch):
    db = Db()
    activities = [stub(db.log, calls.RECORD_CHANGE, db.write), stub(db.log, calls.LOAD_GATE, READY)]
    async with stub_worker(time_env, [SchoolRoundWorkflow], activities) as queue:
        # the window open from the start, no time skipped: a local activity's bound runs on the worker's own clock
        now = await time_env.get_current_time()
        db.schedule = Schedule(opens_at=now - timedelta(hours=1), confirm_from=now - timedelta(minutes=1),
                               cutoff_at=bangkok_on_day(now, 16, 30) + timedelta(days=1))
        state = SchoolRoundState(round_id=ROUND, school_code=SCHOOL, area=AREA, gate=READY, schedule=db.schedule,
                                 policy=RoundPolicy(late_grace=timedelta(days=2)))
        inp = SchoolRoundInput(state=state, projected=True, projected_stage=Stage.open, area_timed=True,
                               local_records=True)
        monkeypatch.setattr(lazy_start, "start_input", lambda engine, round_id, code: (inp, queue))
        db.env = time_env
        yield db


async def decide(db: Db, update, actor: Actor):
    """The decision's answer, or the Refusal the API would answer."""
    try:
        return await lazy_start.update_school(db.env.client, "projection", ROUND, SCHOOL, update, actor)
    except WorkflowUpdateFailedError as exc:
        return refusal_from_failure(exc)


async def events(db: Db) -> list[int]:
    history = await db.env.client.get_workflow_handle(school_round_id(ROUND, SCHOOL)).fetch_history()
    return [e.event_type for e in history.events]


async def snapshot(db: Db) -> SchoolRoundState:
    return await db.env.client.get_workflow_handle(school_round_id(ROUND, SCHOOL)).query(SchoolRoundWorkflow.snapshot)


async def test_a_staff_decision_costs_one_workflow_task_and_no_activity_task(school):
    confirmed = await decide(school, SchoolRoundWorkflow.confirm, STAFF)  # also starts the workflow
    assert confirmed.stage is Stage.confirmed
    kinds = await events(school)
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds
    assert kinds.count(EventType.EVENT_TYPE_MARKER_RECORDED) == 1  # the write, in its decision's workflow task
    tasks = kinds.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    withdrawn = await decide(school, SchoolRoundWorkflow.withdraw_confirmation, STAFF)
    assert withdrawn.stage is Stage.confirmation_window
    kinds = await events(school)
    assert kinds.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) == tasks + 1
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in kinds

    assert (await decide(school, SchoolRoundWorkflow.confirm, STAFF)).stage is Stage.confirmed
    certified = await decide(school, SchoolRoundWorkflow.certify, DIRECTOR)
    assert certified.stage is Stage.certified and certified.certified.by == DIRECTOR.user_id
    kinds = await events(school)  # durable first: the search attribute, then the row by a regular activity
    assert kinds.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) == 1
    assert kinds.count(EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES) == 1
    changes = [args[0]["fields"] for args in school.log.of(calls.RECORD_CHANGE)]
    assert changes == [["confirmed"], ["confirmed"], ["confirmed"], ["certified"]]


async def test_a_decision_refused_by_its_write_is_refused_and_undone(school):
    assert (await decide(school, SchoolRoundWorkflow.confirm, STAFF)).stage is Stage.confirmed
    school.refuse = True
    refused = await decide(school, SchoolRoundWorkflow.withdraw_confirmation, STAFF)
    assert isinstance(refused, Refusal) and (refused.code, refused.status) == ("write_refused", 409)
    state = await snapshot(school)
    assert state.confirmed.by == STAFF.user_id  # as before the withdrawal

    school.refuse = False
    withdrawn = await decide(school, SchoolRoundWorkflow.withdraw_confirmation, STAFF)
    assert withdrawn.stage is Stage.confirmation_window
    last = school.log.of(calls.RECORD_CHANGE)[-1][0]
    assert last["fields"] == ["confirmed", "certified", "cutoff_at", "gate", "blocking"]  # every field, once again
    assert last["certified"] is None and last["confirmed"] is None


async def test_a_database_that_stays_down_ends_the_decision_with_a_clear_refusal(school):
    school.down = True  # (the write's retries are the worker's, in real time: about 6 s)
    refused = await decide(school, SchoolRoundWorkflow.confirm, STAFF)
    assert isinstance(refused, Refusal) and (refused.code, refused.status) == ("database_unavailable", 503)
    assert "ยังไม่ถูกบันทึก" in refused.message_th
    attempts = calls.DATABASE_LOCAL["retry_policy"].maximum_attempts
    assert len(school.log.of(calls.RECORD_CHANGE)) == attempts  # retried within its bound, then given up
    assert (await snapshot(school)).confirmed is None

    school.down = False
    assert (await decide(school, SchoolRoundWorkflow.confirm, STAFF)).stage is Stage.confirmed
