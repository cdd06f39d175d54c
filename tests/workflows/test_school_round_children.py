"""A roster change that finds a duplicate (R3) starts the case as its own workflow, a child of the school's that
outlives it; found again (a re-import), the running case is not started twice. With stub activities under time
skipping (tests/workflows/stub_worker.py); the case is a stand-in that only holds its input."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.api.enums.v1 import EventType

from domain.duplicates import DuplicateCaseInput
from domain.messages import ApplyRosterBatch, BatchOutcome, SchoolRoundInput
from domain.rounds import RoundPolicy, Schedule
from domain.school_round import Actor, GateProgress, SchoolRoundState, Stage
from tests.workflows.stub_worker import Calls, stub, stub_worker
from workflows import activity_calls as calls
from workflows.ids import duplicate_case_id, school_round_id
from workflows.school_round import SchoolRoundWorkflow

ROUND, AREA, SCHOOL = "r-child", "สพม.ทดสอบ", "1044449001"
STAFF = Actor(user_id="u-staff", role="staff", school_code=SCHOOL)
GATE = GateProgress(students=2, results=1, present=1)
CASE = DuplicateCaseInput(case_id="dup-child-1", round_id=ROUND, kind="obec", parties=["1044449002", SCHOOL],
                          areas=[AREA])


@workflow.defn(name="DuplicateCaseWorkflow")
class CaseStandIn:
    @workflow.run
    async def run(self, inp: DuplicateCaseInput) -> str:
        await workflow.wait_condition(lambda: False)
        return inp.case_id


async def test_a_duplicate_found_by_a_roster_change_becomes_its_own_case_once(time_env):
    log = Calls()
    outcome = BatchOutcome(batch_id="b", applied=1, gate=GATE, cases=[CASE])
    activities = [stub(log, calls.RECORD_CHANGE), stub(log, calls.APPLY_ROSTER_BATCH, outcome.model_dump(mode="json"))]
    async with stub_worker(time_env, [SchoolRoundWorkflow, CaseStandIn], activities) as queue:
        now = await time_env.get_current_time()
        state = SchoolRoundState(round_id=ROUND, school_code=SCHOOL, area=AREA, gate=GATE,
                                 schedule=Schedule(opens_at=now - timedelta(hours=1), confirm_from=now + timedelta(hours=1),
                                                   cutoff_at=now + timedelta(days=1)),
                                 policy=RoundPolicy(late_grace=timedelta(days=2)))
        school = await time_env.client.start_workflow(
            SchoolRoundWorkflow.run, SchoolRoundInput(state=state, projected=True, projected_stage=Stage.open,
                                                      area_timed=True),
            id=school_round_id(ROUND, SCHOOL), task_queue=queue)
        for batch_id in ("b1", "b2"):  # the same duplicate found again by a re-import
            answer = await school.execute_update(SchoolRoundWorkflow.apply_roster_batch,
                                                 ApplyRosterBatch(batch_id=batch_id, kind="import", actor=STAFF))
            assert answer.cases == [CASE]

        case = time_env.client.get_workflow_handle(duplicate_case_id(CASE.case_id))
        assert (await case.describe()).workflow_type == "DuplicateCaseWorkflow"
        started = [e for e in (await school.fetch_history()).events
                   if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED]
        assert [e.start_child_workflow_execution_initiated_event_attributes.workflow_id for e in started] == \
            [duplicate_case_id(CASE.case_id)] * 2  # the second start is refused by the server, and ignored
