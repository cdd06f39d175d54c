"""InboundIntakeWorkflow: every received email of a task queue, from stored to replied, in batches.

The intake signals each stored message's hash to this one workflow (signal-with-start; its id names the
task queue). It takes the waiting messages in batches: one activity decides a batch (each message in its
own transaction), one more sends the batch's replies over one SMTP connection. A request's own workflow
(IdCorrectionWorkflow) starts with its first decision; one never decided is started at its school's
cutoff by this workflow, which keeps the next such cutoff, and expires at once. Per message, a workflow
of its own and one per request cost more server and worker time than the rest of the intake together
(issue 18's profile); the time a request waits for its decision needs no workflow.

Exactly one reply: a message is in one batch at a time (a hash signalled again while it is in flight is
dropped), and a message processed before answers its first outcome and finds its reply sent (the
outbox). Only hashes cross this workflow, never the mail's content.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError, CancelledError

with workflow.unsafe.imports_passed_through():
    from domain.intake_messages import InboundBatch, IntakeRun
    from workflows import activity_calls as calls

BATCH_SIZE = 50  # messages per activity: a few seconds of work at most


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


@workflow.defn
class InboundIntakeWorkflow:
    @workflow.init
    def __init__(self, run: IntakeRun) -> None:
        # dicts, not sets: their order is the order of arrival, the same on every replay
        self.waiting: dict[str, None] = dict.fromkeys(run.waiting)
        self.in_flight: dict[str, None] = dict.fromkeys(run.unsent)  # taken, not yet replied to
        self.alone: dict[str, None] = {}  # failed in their batch, being decided on their own (retried)
        self.unsent: dict[str, str] = {}  # replies held back for the next run (continue-as-new)
        self.deciding = False  # one batch at a time: no two messages race for one new ID or evidence file
        self.sending: list[workflow.ActivityHandle] = []
        self.closing = False
        self.next_cutoff = run.next_cutoff  # the earliest cutoff of an open request, when it must expire
        self.expiring = not run.carried  # a fresh start looks the next cutoff up first
        self.noted: datetime | None = None  # cutoffs of requests opened while the expiry step runs
        self.rearm = False  # the next cutoff moved: the wait for it is set again
        self.history_limit = run.history_limit

    @workflow.signal
    def received(self, shas: list[str]) -> None:
        for sha in shas:
            if sha not in self.in_flight:
                self.waiting[sha] = None

    @workflow.run
    async def run(self, run: IntakeRun) -> None:
        if run.unsent:
            asyncio.create_task(self._reply(dict(run.unsent)))
        if self.expiring:
            asyncio.create_task(self._expire())
        while not self._time_to_continue():
            if self._cutoff_passed():
                self.expiring = True
                asyncio.create_task(self._expire())
            wait = None if self.expiring or self.next_cutoff is None else self.next_cutoff - workflow.now()
            self.rearm = False
            try:
                await workflow.wait_condition(lambda: self.rearm or self._time_to_continue() or self._cutoff_passed()
                                              or (bool(self.waiting) and not self.deciding), timeout=wait)
            except asyncio.TimeoutError:
                continue  # a request's cutoff
            if self.waiting and not self.deciding and not self._time_to_continue():
                batch = list(self.waiting)[:BATCH_SIZE]
                for sha in batch:
                    del self.waiting[sha]
                    self.in_flight[sha] = None
                self.deciding = True
                asyncio.create_task(self._batch(batch))
        # Continue as new once what is in flight has landed. Replies waiting for the SMTP server are cancelled
        # between two attempts (never during one: no reply goes twice) and go along; so does a message failing
        # again and again on its own (deciding it is idempotent, and its reply was not sent).
        self.closing = True
        for handle in self.sending:
            handle.cancel()
        await workflow.wait_condition(lambda: not self.expiring and not self.deciding and not self.sending and all(
            sha in self.alone or sha in self.unsent for sha in self.in_flight) and workflow.all_handlers_finished())
        workflow.continue_as_new(IntakeRun(
            waiting=list(self.waiting) + [sha for sha in self.alone if sha not in self.waiting], unsent=self.unsent,
            next_cutoff=self.next_cutoff, carried=True, history_limit=self.history_limit))

    def _time_to_continue(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() > self.history_limit

    def _cutoff_passed(self) -> bool:
        return not self.expiring and self.next_cutoff is not None and self.next_cutoff <= workflow.now()

    async def _expire(self) -> None:
        self.noted = None
        found = await calls.expire_id_corrections(workflow.now())
        self.next_cutoff, self.expiring, self.rearm = _earliest(found, self.noted), False, True

    def _note(self, cutoff: datetime | None) -> None:
        earliest = _earliest(self.next_cutoff, cutoff)
        self.rearm = self.rearm or earliest != self.next_cutoff
        self.next_cutoff, self.noted = earliest, _earliest(self.noted, cutoff)

    async def _batch(self, shas: list[str]) -> None:
        try:
            result = await calls.process_inbound_batch(shas, False)
        except ActivityError:  # not retried any more (it is, without end): each message goes on its own
            result = InboundBatch(failed=shas)
        finally:
            self.deciding = False
        self._note(result.next_cutoff)
        for sha in result.failed:
            self.alone[sha] = None
            asyncio.create_task(self._alone(sha))
        for sha in shas:
            if sha not in self.alone and sha not in result.replies:
                del self.in_flight[sha]  # refused at the door, a duplicate: nobody to answer
        await self._reply({sha: key for sha, key in result.replies.items() if sha not in self.alone})

    async def _alone(self, sha: str) -> None:
        result = await calls.process_inbound_batch([sha], True)
        del self.alone[sha]
        self._note(result.next_cutoff)
        if sha not in result.replies:
            del self.in_flight[sha]
        await self._reply(result.replies)

    async def _reply(self, replies: dict[str, str]) -> None:
        """The replies over one SMTP connection (retried for a day while the server is down; the outbox never
        sends one twice). Their messages stay in flight until then, so that a copy of one is not decided again."""
        if not replies:
            return
        if self.closing:
            self.unsent.update(replies)
            return
        handle = calls.start_deliver_mails(list(replies.values()))
        self.sending.append(handle)
        try:
            await handle
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):  # continuing as new: they go along
                self.unsent.update(replies)
            else:  # a day without the SMTP server: left in the outbox, pending, for the administrator
                workflow.logger.error("intake: %d replies not sent: %s", len(replies), err.cause)
        finally:
            self.sending.remove(handle)
        for sha in replies:
            if sha not in self.unsent:
                del self.in_flight[sha]
