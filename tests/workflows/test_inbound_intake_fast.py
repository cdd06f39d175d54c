"""InboundIntakeWorkflow with stub activities under time skipping (tests/workflows/stub_worker.py): batches, one
reply per message, a failing message on its own, the requests' cutoffs, continue-as-new."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.exceptions import ApplicationError

from domain.intake_messages import InboundBatch, IntakeRun
from tests.timing import eventually
from tests.workflows.stub_worker import Calls, stub_worker
from workflows import activity_calls as calls
from workflows.inbound_intake import BATCH_SIZE, InboundIntakeWorkflow


class Stubs:
    """The intake's activities as the database would answer: `failing` messages raise (in a batch: named as
    failed) `failures` times in all; each batch opens requests with `cutoff` (or none)."""

    def __init__(self, failing: set[str] = frozenset(), failures: int = 0, cutoff: datetime | None = None,
                 expiries: list[datetime | None] | None = None) -> None:
        self.log, self.failing, self.failures, self.cutoff = Calls(), set(failing), failures, cutoff
        self.expiries = list(expiries or [None])
        self.deciding, self.most_deciding = 0, 0
        self.smtp_down, self.sent, self.sending = False, [], set()

    def activities(self) -> list:
        @activity.defn(name=calls.PROCESS_INBOUND_BATCH)
        async def process(shas: list[str], strict: bool) -> InboundBatch:
            self.log.log.append((calls.PROCESS_INBOUND_BATCH, (list(shas), strict)))
            self.deciding += 1
            self.most_deciding = max(self.most_deciding, self.deciding)
            await asyncio.sleep(0.02)
            self.deciding -= 1
            failed = [sha for sha in shas if sha in self.failing and self.failures > 0]
            if failed:
                self.failures -= 1
                if strict:
                    raise ApplicationError("database said no")
            return InboundBatch(replies={sha: f"reply/{sha}" for sha in shas if sha not in failed}, failed=failed,
                                next_cutoff=self.cutoff)

        @activity.defn(name=calls.EXPIRE_ID_CORRECTIONS)
        async def expire(now: datetime) -> datetime | None:
            self.log.log.append((calls.EXPIRE_ID_CORRECTIONS, (now,)))
            return self.expiries.pop(0) if len(self.expiries) > 1 else self.expiries[0]

        @activity.defn(name=calls.DELIVER_MAILS)
        async def deliver(keys: list[str]) -> int:
            self.log.log.append((calls.DELIVER_MAILS, (keys,)))
            assert not self.sending & set(keys), "two attempts at once for one reply"
            self.sending |= set(keys)
            await asyncio.sleep(0.01)
            self.sending -= set(keys)
            if self.smtp_down:
                raise ApplicationError("SMTP server unreachable")
            self.sent += keys
            return len(keys)

        return [process, expire, deliver]

    def replied(self) -> list[str]:
        return list(self.sent)


async def start(env, queue: str, *shas: str, history_limit: int = 10_000):
    wid = f"fast-intake-{uuid.uuid4().hex[:8]}"
    return await env.client.start_workflow(InboundIntakeWorkflow.run, IntakeRun(history_limit=history_limit),
                                           id=wid, task_queue=queue, start_signal="received",
                                           start_signal_args=[list(shas)])


async def test_messages_are_decided_a_batch_at_a_time_and_each_replied_once(time_env):
    stubs = Stubs()
    shas = [f"m{i:03d}" for i in range(120)]
    async with stub_worker(time_env, [InboundIntakeWorkflow], stubs.activities()) as queue:
        handle = await start(time_env, queue, *shas[:40])
        await handle.signal(InboundIntakeWorkflow.received, shas[40:])
        await handle.signal(InboundIntakeWorkflow.received, shas[:10])  # delivered again, perhaps while in flight
        await eventually(lambda: set(stubs.replied()) == {f"reply/{sha}" for sha in shas})
        await asyncio.sleep(0.5)
    batches = [b for b, _ in stubs.log.of(calls.PROCESS_INBOUND_BATCH)]
    assert all(len(b) <= BATCH_SIZE for b in batches) and stubs.most_deciding == 1
    assert len(batches) < len(shas) / 4  # batched, not one message at a time
    assert [sha for b in batches for sha in b][:len(shas)] == shas  # in the order received
    replied = stubs.replied()
    # a message decided again (its copy came after it had left) answers again, but the outbox sends it once
    assert len([k for k in replied if k not in {f"reply/{s}" for s in shas[:10]}]) == 110


async def test_a_message_failing_in_its_batch_is_tried_alone_and_holds_up_no_one(time_env):
    stubs = Stubs(failing={"m005"}, failures=3)
    shas = [f"m{i:03d}" for i in range(20)]
    async with stub_worker(time_env, [InboundIntakeWorkflow], stubs.activities()) as queue:
        await start(time_env, queue, *shas)
        await eventually(lambda: set(stubs.replied()) >= {f"reply/{sha}" for sha in shas if sha != "m005"})
        await eventually(lambda: "reply/m005" in stubs.replied(), timeout=30)  # after its retries
    alone = [b for b, strict in stubs.log.of(calls.PROCESS_INBOUND_BATCH) if strict]
    assert alone and all(b == ["m005"] for b in alone)
    assert stubs.replied().count("reply/m005") == 1


async def test_an_undecided_request_is_handed_to_its_workflow_at_its_schools_cutoff(time_env):
    now = await time_env.get_current_time()
    cutoff, extended = now + timedelta(hours=2), now + timedelta(days=1)
    stubs = Stubs(cutoff=cutoff, expiries=[None, extended, None])  # fresh start; at the cutoff: extended
    async with stub_worker(time_env, [InboundIntakeWorkflow], stubs.activities()) as queue:
        await start(time_env, queue, "m1")
        await eventually(lambda: stubs.replied() == ["reply/m1"])
        assert len(stubs.log.of(calls.EXPIRE_ID_CORRECTIONS)) == 1  # a fresh start looks the next cutoff up
        await time_env.sleep(timedelta(hours=2, minutes=1))
        await eventually(lambda: len(stubs.log.of(calls.EXPIRE_ID_CORRECTIONS)) == 2)
        assert stubs.log.of(calls.EXPIRE_ID_CORRECTIONS)[1][0] >= cutoff
        await time_env.sleep(timedelta(hours=22))  # the school's extended cutoff, which the database answered
        await eventually(lambda: len(stubs.log.of(calls.EXPIRE_ID_CORRECTIONS)) == 3)
        assert stubs.log.of(calls.EXPIRE_ID_CORRECTIONS)[2][0] >= extended


async def test_it_continues_as_new_with_the_waiting_messages_and_the_next_cutoff(time_env):
    now = await time_env.get_current_time()
    stubs = Stubs(cutoff=now + timedelta(hours=1))
    shas = [f"m{i:03d}" for i in range(60)]
    async with stub_worker(time_env, [InboundIntakeWorkflow], stubs.activities()) as queue:
        first = await start(time_env, queue, shas[0], history_limit=20)
        latest = time_env.client.get_workflow_handle(first.id)
        for sha in shas[1:]:
            await latest.signal(InboundIntakeWorkflow.received, [sha])
        await eventually(lambda: set(stubs.replied()) == {f"reply/{sha}" for sha in shas})
        first_run = time_env.client.get_workflow_handle(first.id, run_id=first.result_run_id)
        for _ in range(100):  # its last workflow task may still be completing
            last = (await first_run.fetch_history()).events[-1].event_type
            if last == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                break
            await asyncio.sleep(0.05)
        assert last == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        assert len(stubs.log.of(calls.EXPIRE_ID_CORRECTIONS)) == 1  # the next cutoff went along, not looked up
        await time_env.sleep(timedelta(hours=1, minutes=1))
        await eventually(lambda: len(stubs.log.of(calls.EXPIRE_ID_CORRECTIONS)) == 2)
    assert sorted(stubs.replied()) == sorted(f"reply/{sha}" for sha in shas)


async def test_replies_waiting_for_the_smtp_server_go_along_when_it_continues_as_new(time_env):
    stubs = Stubs()
    stubs.smtp_down = True
    shas = [f"m{i:03d}" for i in range(40)]
    async with stub_worker(time_env, [InboundIntakeWorkflow], stubs.activities()) as queue:
        first = await start(time_env, queue, shas[0], history_limit=30)
        latest = time_env.client.get_workflow_handle(first.id)
        for sha in shas[1:]:
            await latest.signal(InboundIntakeWorkflow.received, [sha])
        await eventually(lambda: {sha for b, _ in stubs.log.of(calls.PROCESS_INBOUND_BATCH) for sha in b} == set(shas))
        first_run = time_env.client.get_workflow_handle(first.id, run_id=first.result_run_id)
        for _ in range(100):  # decided, their replies waiting for the SMTP server: it continues as new all the same
            if (await first_run.fetch_history()).events[-1].event_type == \
                    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                break
            await time_env.sleep(timedelta(seconds=30))
        assert (await first_run.fetch_history()).events[-1].event_type == \
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        assert stubs.sent == []
        stubs.smtp_down = False
        await time_env.sleep(timedelta(minutes=10))
        await eventually(lambda: sorted(stubs.sent) == sorted(f"reply/{sha}" for sha in shas))
        await time_env.sleep(timedelta(minutes=10))
    assert sorted(stubs.sent) == sorted(f"reply/{sha}" for sha in shas)  # each once
