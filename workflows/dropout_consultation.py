"""DropoutConsultationWorkflow (R8): one school's request to record a student as dropped out.

It blocks the school's confirmation while open (signals to the school's round workflow), keeps the
working-day clock (a reminder to whichever side is awaited, once per wait; the area administrator after
five working days) and closes undecided at the school's cutoff, or when the school withdraws its request.
Only an approval changes the roster.
Issue 16 (patch "dropout-held-past-cutoff"): a request the school has excused under R11 when its cutoff passes does
not expire: it stays open for the district until the round's late grace ends (domain.dropouts), the district is
told, and a decision then is applied after the cutoff, the audit trail saying so.
The thread's text stays in the database: updates carry the id of an entry the API staged there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.actor_scope import SCHOOL_ROLES, check_actor_scope
    from domain.dropouts import (
        CommentDropout, DecideDropout, DropoutCalendar, DropoutInput, DropoutState, OpenDropout, ThreadEntry,
        WithdrawDropout, apply_comment, check_comment, check_decide, check_withdraw, closes_at, next_due,
    )
    from domain.refusals import Refusal, refusal
    from domain.school_round import BlockingCase
    from workflows import activity_calls as calls
    from workflows.ids import school_round_id
    from workflows.school_round import SchoolRoundWorkflow
    from workflows.refusal_errors import as_application_error

# Issue 16: at the cutoff, a request excused under R11 is held open for the district instead of expiring.
HELD_PAST_CUTOFF = "dropout-held-past-cutoff"
# Issue 19: a request opened by update-with-start whose update was refused (or never came) is left to the API, which
# removes it; the workflow ends without touching it.


@workflow.defn
class DropoutConsultationWorkflow:
    @workflow.init
    def __init__(self, inp: DropoutInput) -> None:
        self.inp = inp
        now = workflow.now()
        self.state = DropoutState(opened_at=now, waiting_since=now)
        self.calendar: DropoutCalendar | None = None
        self._closing = False  # a decision or the expiry is being applied: no more entries
        self._wake = False
        self._lock = asyncio.Lock()  # entries and the decision are applied one at a time, in order
        self._school_blocked = False  # the school's confirmation is held back: the request is open for all

    @workflow.run
    async def run(self, inp: DropoutInput) -> str:
        await calls.open_dropout(inp.request_id)
        self.calendar = await self._load_calendar()
        await self._tell_school(SchoolRoundWorkflow.case_opened, BlockingCase(kind="dropout", ref=inp.request_id))
        self._school_blocked = True
        await self._notify("requested")
        while not self._closing:
            at, what = next_due(self.state, self.calendar)
            delay = at - workflow.now()
            if delay.total_seconds() > 0:
                self._wake = False
                try:
                    await workflow.wait_condition(lambda: self._wake or self._closing, timeout=delay)
                except asyncio.TimeoutError:
                    pass
                continue
            await self._on_due(what)
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._tell_school(SchoolRoundWorkflow.case_closed, inp.request_id)
        await self._notify(self.state.status)
        return self.state.status

    async def _on_due(self, what: str) -> None:
        if what == "cutoff":
            self.calendar = await self._load_calendar()  # the school's cutoff may have been extended
            if workflow.now() < closes_at(self.state, self.calendar.cutoff_at):
                return
            async with self._lock:
                if self._closing:
                    return
                if self.state.held_until is None and workflow.patched(HELD_PAST_CUTOFF):
                    held = await calls.hold_dropout_past_cutoff(self.inp.request_id, workflow.now())
                    if held is not None and held > workflow.now():
                        self.state.held_until = held
                if self.state.held_until is None or workflow.now() >= self.state.held_until:
                    self._closing = True
                    self.state.status = await calls.settle_dropout(self.inp.request_id, "expire", None,
                                                                   workflow.now(), None)
                    return
            await self._notify("held")  # outside the lock: a decision need not wait for the mail
        elif what == "escalate":
            self.state.escalated_at = workflow.now()
            await self._notify("escalate")
        else:
            self.state.reminded_wait = self.state.waits
            await self._notify(what, str(self.state.waits))

    async def _load_calendar(self) -> DropoutCalendar:
        return await calls.dropout_calendar(self.inp.request_id)

    async def _notify(self, event: str, ref: str = "") -> None:
        await calls.notify_dropout(self.inp.request_id, event, ref)

    async def _tell_school(self, signal: Callable[..., Awaitable[None]], arg: BlockingCase | str) -> None:
        if workflow.patched("tell-school-by-activity"):
            # issue 18: the school of an area-timed round may have no workflow yet; the activity starts it with the
            # block (signal-with-start), which a workflow cannot do
            await calls.tell_school(self.inp.round_id, self.inp.school_code, signal, arg)
            return
        handle = workflow.get_external_workflow_handle(school_round_id(self.inp.round_id, self.inp.school_code))
        try:
            await handle.signal(signal, arg)
        except Exception:  # noqa: BLE001  the school's round has ended: nothing left to block
            workflow.logger.info("school round %s not running; %s not delivered", self.inp.school_code,
                                 calls.signal_name(signal))

    # --- the conversation ----------------------------------------------------------------------

    @workflow.update
    async def open_request(self, o: OpenDropout) -> DropoutState:
        """Issue 19: the API's update-with-start. The workflow opens the staged request on its own (a start is durable,
        so a request answered while no worker runs is still opened when one does); this update answers once it is
        open and the school's confirmation held back, so the API does not poll (the mail to the district follows)."""
        await workflow.wait_condition(lambda: self._school_blocked)
        return self.state

    @open_request.validator
    def _validate_open_request(self, o: OpenDropout) -> None:
        self._check_actor_scope(o.actor, "staff")
        if self._closing:
            raise as_application_error(refusal(
                "dropout_closed", f"คำขอ {self.inp.request_id} ได้ข้อยุติแล้ว", f"Request {self.inp.request_id} is settled"))

    @workflow.update
    async def comment(self, c: CommentDropout) -> DropoutState:
        async with self._lock:
            kind = self._comment_kind(c)  # again under the lock: a decision may have come first
            entry = ThreadEntry(message_id=c.message_id, kind=kind, side="district" if kind == "question" else "school",
                                by=c.actor.user_id, at=workflow.now())
            apply_comment(self.state, entry)
            await calls.post_dropout_message(self.inp.request_id, c.message_id, kind, self.state.status, entry.at)
            if kind != "note":
                await self._notify(kind, str(c.message_id))
            self._wake = True  # a new wait: the clock's next instant moved
        return self.state

    @comment.validator
    def _validate_comment(self, c: CommentDropout) -> None:
        self._comment_kind(c)
        self._check_actor_scope(c.actor, "district", *SCHOOL_ROLES)

    def _comment_kind(self, c: CommentDropout) -> str:
        try:
            self._check_not_closing()
            return check_comment(self.inp, self.state, c, workflow.now(), self._cutoff())
        except Refusal as r:
            raise as_application_error(r) from None

    @workflow.update
    async def decide(self, d: DecideDropout) -> DropoutState:
        async with self._lock:
            self._validate_decide(d)
            self._closing = True
            now = workflow.now()
            self.state.thread.append(ThreadEntry(message_id=d.message_id, kind="approve" if d.approve else "reject",
                                                 side="district", by=d.actor.user_id, at=now))
            self.state.decided_by, self.state.decided_at = d.actor.user_id, now
            self.state.status = await calls.settle_dropout(
                self.inp.request_id, "approve" if d.approve else "reject", d.actor.user_id, now, d.message_id)
        return self.state

    @decide.validator
    def _validate_decide_update(self, d: DecideDropout) -> None:
        self._validate_decide(d)
        self._check_actor_scope(d.actor, "district")

    def _validate_decide(self, d: DecideDropout) -> None:
        try:
            self._check_not_closing()
            check_decide(self.inp, self.state, d, workflow.now(), self._cutoff())
        except Refusal as r:
            raise as_application_error(r) from None

    @workflow.update
    async def withdraw(self, w: WithdrawDropout) -> DropoutState:
        """Issue 16: the school takes its request back; the run then closes the school's blocking case.
        A new update: no running consultation's history holds one, so none replays differently."""
        async with self._lock:
            self._validate_withdraw(w)
            self._closing = True
            now = workflow.now()
            self.state.thread.append(ThreadEntry(message_id=w.message_id, kind="withdrawn", side="school",
                                                 by=w.actor.user_id, at=now))
            self.state.status = await calls.settle_dropout(self.inp.request_id, "withdraw", w.actor.user_id, now,
                                                           w.message_id)
        return self.state

    @withdraw.validator
    def _validate_withdraw_update(self, w: WithdrawDropout) -> None:
        self._validate_withdraw(w)
        self._check_actor_scope(w.actor, "staff")

    def _validate_withdraw(self, w: WithdrawDropout) -> None:
        try:
            self._check_not_closing()
            check_withdraw(self.inp, self.state, w, workflow.now(), self._cutoff())
        except Refusal as r:
            raise as_application_error(r) from None

    def _check_actor_scope(self, actor, *roles: str) -> None:
        """The actor's own school or area, not only the `area`/`school_code` beside it in the message. In the
        validators only: a refused update never enters history, and the scope cannot change before the handler."""
        try:
            check_actor_scope(actor, school_code=self.inp.school_code, area=self.inp.area, roles=roles)
        except Refusal as r:
            raise as_application_error(r) from None

    def _check_not_closing(self) -> None:
        if self._closing or self.calendar is None:
            raise refusal("dropout_closed" if self._closing else "dropout_starting",
                          f"คำขอ {self.inp.request_id} " + ("ได้ข้อยุติแล้ว" if self._closing else "กำลังเปิดเรื่อง ลองใหม่อีกครั้ง"),
                          f"Request {self.inp.request_id} " + ("is settled" if self._closing else
                                                               "is still opening; try again"))

    def _cutoff(self) -> datetime:
        return self.calendar.cutoff_at

    @workflow.query
    def status(self) -> DropoutState:
        return self.state
