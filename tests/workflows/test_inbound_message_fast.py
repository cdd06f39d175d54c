"""InboundMessageWorkflow (the per-message intake of rounds before the batched InboundIntakeWorkflow; kept for the
messages still in flight) with stub activities and a stub request workflow, under time skipping: exactly one
reply, one request workflow per accepted request even when a request is already being followed, and the message
ends only when every request is settled."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from temporalio import workflow

from domain.id_corrections import IdCorrectionInput
from domain.intake_messages import InboundOutcome
from tests.workflows.stub_worker import Calls, stub, stub_worker
from workflows import activity_calls as calls
from workflows.ids import id_correction_id
from workflows.inbound_message import InboundMessageWorkflow

@workflow.defn(name="IdCorrectionWorkflow")
class SettlesAfterADay:
    """Stands in for IdCorrectionWorkflow: a request settled (decided or expired) a day after it was opened."""

    @workflow.run
    async def run(self, inp: IdCorrectionInput) -> str:
        await workflow.sleep(timedelta(days=1))
        return "approved"


def request(ref: str) -> IdCorrectionInput:
    return IdCorrectionInput(ref=ref, round_id="r", school_code="1044449001", area="สพม.ทดสอบ",
                             cutoff_at=datetime(2030, 4, 30, 9, 30, tzinfo=timezone.utc))


async def test_one_reply_and_the_message_ends_when_its_requests_are_settled(time_env):
    log = Calls()
    refs = [f"IDC-{uuid.uuid4().hex[:6]}", f"IDC-{uuid.uuid4().hex[:6]}"]
    outcome = InboundOutcome(outcome="accepted", requests=[request(r) for r in refs], reply_key="reply/m1")
    activities = [stub(log, calls.PROCESS_INBOUND, outcome), stub(log, calls.DELIVER_MAIL, True)]
    async with stub_worker(time_env, [InboundMessageWorkflow, SettlesAfterADay], activities) as queue:
        # the first request is already followed (its message came twice): it is not started a second time
        await time_env.client.start_workflow(SettlesAfterADay.run, request(refs[0]), id=id_correction_id(refs[0]),
                                             task_queue=queue)
        handle = await time_env.client.start_workflow(InboundMessageWorkflow.run, "sha-m1", id=f"m-{uuid.uuid4()}",
                                                      task_queue=queue)
        assert await handle.result() == "accepted"
        history = (await handle.fetch_history()).events
        for ref in refs:  # each request followed by one workflow, settled
            described = await time_env.client.get_workflow_handle(id_correction_id(ref)).describe()
            assert described.status.name == "COMPLETED"
    started = [e for e in history if e.HasField("child_workflow_execution_started_event_attributes")]
    refused = [e for e in history if e.HasField("start_child_workflow_execution_failed_event_attributes")]
    assert len(started) == 1 and len(refused) == 1  # the one already followed is not started a second time
    # the message ends once its request has settled, a day later
    assert history[-1].event_time.ToDatetime() - history[0].event_time.ToDatetime() >= timedelta(days=1)
    assert log.names() == [calls.PROCESS_INBOUND, calls.DELIVER_MAIL]  # one reply
    assert log.of(calls.DELIVER_MAIL) == [("reply/m1",)]


async def test_a_refused_message_gets_its_reply_and_opens_nothing(time_env):
    log = Calls()
    outcome = InboundOutcome(outcome="refused:no_request_block", reply_key="reply/m2")
    activities = [stub(log, calls.PROCESS_INBOUND, outcome), stub(log, calls.DELIVER_MAIL, True)]
    async with stub_worker(time_env, [InboundMessageWorkflow, SettlesAfterADay], activities) as queue:
        handle = await time_env.client.start_workflow(InboundMessageWorkflow.run, "sha-m2", id=f"m-{uuid.uuid4()}",
                                                      task_queue=queue)
        assert await handle.result() == "refused:no_request_block"
        children = [e for e in (await handle.fetch_history()).events if e.HasField(
            "start_child_workflow_execution_initiated_event_attributes")]
    assert children == []
    assert log.of(calls.DELIVER_MAIL) == [("reply/m2",)]
