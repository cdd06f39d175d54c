"""SchoolRoundWorkflow: one school's round-3 lifecycle, from `not_open` to `certified` or `late`.

Time, in an area-timed round (issue 18, `SchoolRoundInput.area_timed`): the area's workflow sends the
reminders and moves the school to `late` (workflows/area_round.py); the school waits for events, with one
timer, closing after the late grace, and tells its area when an extension moved its cutoff. Stages need no
timer: they are a pure function of time and decisions (`stage_at`), and the validators refuse at the cutoff.
Time, in a round started before (every stored history): one durable timer at a time, always aimed at the
next instant that matters (opening, confirmation window, a reminder, the cutoff); an extension wakes the
loop so the timer is re-armed.
Humans: confirmation, withdrawal, certification, extension and roster changes are updates whose
validators answer at once with the domain's refusal. A school started with local records
(`SchoolRoundInput.local_records`, every lazily started one) writes a decision by a local activity in the
update's own workflow task: one workflow task per decision, no activity task, no search attribute.
"""

from __future__ import annotations

import asyncio
from contextlib import nullcontext
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from domain.messages import (
        ApplyRosterBatch, AuditEntry, BatchOutcome, DeadlineMoved, ExtendDeadline, ReminderRequest, SchoolChange,
        SchoolDecided, SchoolRoundInput, SchoolRoundResult, Transition,
    )
    from domain.actor_scope import check_actor_scope, role_refused
    from domain.refusals import Refusal
    from domain.end_of_year import check_step_order
    from domain.school_round import (
        Actor, BlockingCase, Decision, SchoolRoundState, Stage, check_can_certify,
        check_can_confirm, check_can_withdraw, check_extension, check_roster_editable, decision_not_recorded,
    )
    from workflows import activity_calls as calls
    from workflows import search_attributes as sa
    from workflows.area_round import AreaRoundWorkflow
    from workflows.ids import area_round_id, duplicate_case_id
    from workflows.refusal_errors import as_application_error

# A reminder whose instant passed more than this long ago (the round started late, or the worker was
# down for hours) is skipped rather than sent out of its moment.
REMINDER_TOLERANCE = timedelta(minutes=15)
HISTORY_LIMIT = 4000
ALL_FIELDS = ("confirmed", "certified", "cutoff_at", "gate", "blocking")  # an area-timed school's first write


def _require_role(actor: Actor, *roles: str) -> None:
    if actor.role not in roles:
        raise as_application_error(role_refused(roles))


def _batch_roles(kind: str) -> tuple[str, ...]:
    """Who may send a roster batch of this kind."""
    if kind == "existence":  # R11: existence is confirmed by the school's own staff (เจ้าหน้าที่/บุคลากร ระดับโรงเรียน)
        return ("staff",)
    # removing a record from the roster is the district's (issue 16): no stored history holds a `removal` batch
    # (none was ever sent), so every other kind replays as before
    if kind == "removal":
        return ("district", "admin")
    return ("staff", "admin")


@workflow.defn
class SchoolRoundWorkflow:
    @workflow.init
    def __init__(self, inp: SchoolRoundInput) -> None:
        self.state: SchoolRoundState = inp.state
        self.version = inp.version
        self._wake = False
        self._lock = asyncio.Lock()  # roster changes and decisions never interleave
        self._recorded: Stage | None = None  # the stage the last projection write carried
        self._area_timed = inp.area_timed
        self._local_records = inp.local_records
        self._resync = False  # a decision's write failed and was undone: the next write carries every field

    # --- the lifecycle ------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: SchoolRoundInput) -> SchoolRoundResult:
        if not inp.continued and not inp.projected:
            self.state.gate = await calls.load_gate(self.state.round_id, self.state.school_code)
            async with self._signal_lock():
                await self._record(None, *ALL_FIELDS)
        if inp.area_timed:
            await self._wait_for_events()
        else:
            await self._keep_own_time(inp)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return SchoolRoundResult(
            stage=self.state.stage(workflow.now()),
            confirmed_by=self.state.confirmed.by if self.state.confirmed else None,
            certified_by=self.state.certified.by if self.state.certified else None,
        )

    async def _wait_for_events(self) -> None:
        """Area-timed: decisions, roster changes and case signals come as they come; the one timer closes the
        workflow after the late grace (an extension re-arms it), a certification ends it at once."""
        while self.state.certified is None:
            close_at = self.state.schedule.cutoff_at + self.state.policy.late_grace
            if workflow.now() >= close_at:
                return
            await self._sleep_until(close_at)
            if self._history_is_long():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(SchoolRoundInput(state=self.state, version=self.version, continued=True,
                                                          area_timed=True, local_records=self._local_records))

    async def _keep_own_time(self, inp: SchoolRoundInput) -> None:
        """A round started before issue 18: the school's own timers for its stages and reminders."""
        projected = inp.projected_stage or self.state.stage(workflow.now())
        while True:
            now = workflow.now()
            stage = self.state.stage(now)
            if stage is not projected:
                if stage is not self._recorded or not workflow.patched("record-each-stage-once"):
                    await self._record(None)  # a timer moved the stage: keep projection and search attribute true
                # else a decision's update wrote this very stage already (confirm, certify, an extension):
                # a second write would cost an activity per school on the busiest afternoon
                projected = stage
            if stage is Stage.certified:
                return
            if stage is Stage.late:
                close_at = self.state.schedule.cutoff_at + self.state.policy.late_grace
                if now >= close_at:
                    return
                await self._sleep_until(close_at)  # an extension may still reopen the school
                continue
            await self._send_due_reminders(now)
            await self._sleep_until(self._next_instant(workflow.now()))
            if self._history_is_long():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(SchoolRoundInput(state=self.state, version=self.version, continued=True,
                                                          projected_stage=projected))

    def _next_instant(self, now: datetime) -> datetime:
        s = self.state.schedule
        if any(i <= now for i in self._pending_reminders()) and workflow.patched("remind-what-fell-due-meanwhile"):
            # a reminder fell due while this turn of the loop waited on an activity (a mail retried while
            # SMTP was down, a worker crash): go round again and send it, rather than sleep past it
            return now
        candidates = [s.opens_at, s.confirm_from, s.cutoff_at, *self._pending_reminders()]
        return min((c for c in candidates if c > now), default=s.cutoff_at)

    def _pending_reminders(self) -> list[datetime]:
        return [i for i in self.state.schedule.reminder_instants(self.state.policy) if i not in self.state.reminders_sent]

    async def _send_due_reminders(self, now: datetime) -> None:
        for due in self._pending_reminders():
            if due > now:
                continue
            self.state.reminders_sent.append(due)  # marked first: a reminder is never sent twice
            if now - due > REMINDER_TOLERANCE:
                continue
            await calls.send_school_reminder(
                ReminderRequest(round_id=self.state.round_id, school_code=self.state.school_code,
                                stage=self.state.stage(now), cutoff_at=self.state.schedule.cutoff_at, due_at=due))

    async def _tell_area(self, cutoff_at: datetime) -> None:
        """The area keeps this school's reminders and cutoff: it looks again once the new cutoff is projected."""
        area = workflow.get_external_workflow_handle(area_round_id(self.state.round_id, self.state.area))
        try:
            await area.signal(AreaRoundWorkflow.deadline_moved,
                              DeadlineMoved(school_code=self.state.school_code, cutoff_at=cutoff_at))
        except FailureError:
            # no area workflow any more: it ends only after the last late grace, when this school has closed too
            workflow.logger.warning("area workflow of round %s not reachable", self.state.round_id)

    async def _sleep_until(self, instant: datetime) -> None:
        delay = instant - workflow.now()
        if delay > timedelta(0):
            try:
                await workflow.wait_condition(lambda: self._wake, timeout=delay)
            except asyncio.TimeoutError:
                pass
        self._wake = False

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() > HISTORY_LIMIT

    async def _record(self, audit: AuditEntry | None, *fields: str, undo: dict | None = None) -> None:
        """Project the state (database row and search attribute) and write the audit event, once.

        Area-timed, the write carries only `fields`, what changed (the row is there from the round's start, and
        every write is made under the lock, one after the other); the DmcStage search attribute is set only on
        certification, the one stage a reader of visibility asks for (the area's late step): each upsert costs
        the server about 40 % of an update's CPU. With local records (`SchoolRoundInput.local_records`) a
        decision passed with `undo` (the state's values before it: confirm, withdraw, extend) is written by a local
        activity in its update's own workflow task, so the update answers once the row holds it. A certification
        is not: a local activity's write commits before the update's acceptance is in the history, and a worker
        lost in between at 16.29.59 would leave the row certified and the update, delivered again, refused."""
        self.version += 1
        stage = self.state.stage(workflow.now())
        recorded, self._recorded = self._recorded, stage
        if not self._area_timed:
            workflow.upsert_search_attributes([sa.STAGE.value_set(stage.value)])
            await calls.record_transition(Transition(state=self.state, stage=stage, version=self.version, audit=audit))
        else:
            local = undo is not None and self._local_records
            if stage is Stage.certified:
                workflow.upsert_search_attributes([sa.STAGE.value_set(stage.value)])
            s = self.state
            fields = ALL_FIELDS if self._resync else fields
            change = SchoolChange(round_id=s.round_id, school_code=s.school_code, version=self.version, stage=stage,
                                  fields=list(fields), audit=audit,
                                  **{f: getattr(s, f) if f != "cutoff_at" else s.schedule.cutoff_at for f in fields})
            if local:
                await self._record_decision(change, undo, recorded)
            else:
                await calls.record_school_change(change)
            self._resync = False
        if self._history_is_long():
            self._wake = True  # many roster changes on one day: let the loop continue as new

    async def _record_decision(self, change: SchoolChange, undo: dict, recorded: Stage | None) -> None:
        """A decision's write as a local activity. When it fails (refused: the area marked the school late first; or
        the database stayed down past its bound) the decision is undone, so its update answers the refusal and the
        workflow is as before it; the version stays spent and the next write carries every field, since an attempt
        whose answer was lost may have committed."""
        try:
            await calls.record_school_change_locally(change)
        except FailureError as failed:
            for name, value in undo.items():
                setattr(self.state, name, value)
            self._recorded, self._resync = recorded, True
            # a local activity's failure comes as the activity's own error (no ActivityError around it)
            cause = failed.cause if isinstance(failed, ActivityError) else failed
            if isinstance(cause, ApplicationError) and cause.non_retryable:
                raise cause from None  # a refusal: the update's caller gets its code and status
            workflow.logger.warning("decision of round %s not recorded: %r", self.state.round_id, failed)
            raise as_application_error(decision_not_recorded()) from None

    def _patched(self, patch_id: str) -> bool:
        """An area-timed workflow runs today's code only: every patch is on, and asking would cost a marker event and
        a visibility write (the SDK's TemporalChangeVersion upsert) the first time each is asked."""
        return self._area_timed or workflow.patched(patch_id)

    def _decided(self) -> SchoolRoundState | SchoolDecided:
        """An update's answer: area-timed, what the API shows of the decision (not the whole state)."""
        if not self._area_timed:
            return self.state
        s = self.state
        return SchoolDecided(stage=s.stage(workflow.now()), version=self.version, cutoff_at=s.schedule.cutoff_at,
                             confirmed=s.confirmed, certified=s.certified)

    def _signal_lock(self):
        """Area-timed, signals write under the lock too (partial writes must land in order); a round started before
        keeps its histories' interleaving."""
        return self._lock if self._area_timed else nullcontext()

    def _audit(self, actor: str, action: str, before: dict | None = None, after: dict | None = None,
               reason: str | None = None) -> AuditEntry:
        return AuditEntry(
            key=f"{workflow.info().workflow_id}/{workflow.info().run_id}/{self.version + 1}", at=workflow.now(),
            actor=actor, action=action, round_id=self.state.round_id, school_code=self.state.school_code,
            area=self.state.area, before=before, after=after, reason=reason)

    def _require_actor(self, actor: Actor, *roles: str) -> None:
        """The role, and the actor's own school or area against this school's: a decision captured from another
        school and replayed here is refused. Validators only: a refused update never enters history, and the
        scope cannot change between a validator and its handler."""
        self._check(lambda: check_actor_scope(actor, school_code=self.state.school_code, area=self.state.area,
                                              roles=roles))

    @staticmethod
    def _check(rule, *args) -> None:
        try:
            rule(*args)
        except Refusal as r:
            raise as_application_error(r) from None

    # --- decisions (updates) ------------------------------------------------------------------

    @workflow.update
    async def confirm(self, actor: Actor) -> SchoolRoundState | SchoolDecided:
        async with self._lock:
            # R11 "every record": confirmations accepted before existence marks existed replay without them
            every_record = self._patched("r11-existence-marks")
            # again under the lock: the gate may have moved meanwhile
            self._check(lambda: check_can_confirm(self.state, workflow.now(), existence=every_record))
            counts = self.state.gate.existence if every_record else None
            undo = {"confirmed": self.state.confirmed}
            self.state.confirmed = Decision(by=actor.user_id, at=workflow.now(), counts=counts)
            after = {"stage": Stage.confirmed.value, **({"existence": counts.model_dump()} if counts else {})}
            await self._record(self._audit(actor.user_id, "confirm", after=after), "confirmed", undo=undo)
            return self._decided()

    @confirm.validator
    def _validate_confirm(self, actor: Actor) -> None:
        self._require_actor(actor, "staff")
        self._check(check_can_confirm, self.state, workflow.now())

    @workflow.update
    async def withdraw_confirmation(self, actor: Actor) -> SchoolRoundState | SchoolDecided:
        async with self._lock:
            self._check(check_can_withdraw, self.state, workflow.now())
            before = self.state.confirmed.model_dump(mode="json") if self.state.confirmed else None
            undo = {"confirmed": self.state.confirmed}
            self.state.confirmed = None
            await self._record(self._audit(actor.user_id, "withdraw_confirmation", before=before), "confirmed",
                               undo=undo)
            return self._decided()

    @withdraw_confirmation.validator
    def _validate_withdraw(self, actor: Actor) -> None:
        self._require_actor(actor, "staff")
        self._check(check_can_withdraw, self.state, workflow.now())

    @workflow.update
    async def certify(self, actor: Actor) -> SchoolRoundState | SchoolDecided:
        async with self._lock:
            self._check(check_can_certify, self.state, workflow.now())
            self.state.certified = Decision(by=actor.user_id, at=workflow.now())
            # not a local activity: its write would commit before the acceptance is durable, and a worker lost in
            # between at 16.29.59 would leave the row certified and the update, delivered again, refused
            await self._record(self._audit(actor.user_id, "certify", after={"stage": Stage.certified.value}),
                               "certified")
            self._wake = True  # certified is final: let the loop finish
            return self._decided()

    @certify.validator
    def _validate_certify(self, actor: Actor) -> None:
        self._require_actor(actor, "director")
        self._check(check_can_certify, self.state, workflow.now())

    @workflow.update
    async def extend_deadline(self, change: ExtendDeadline) -> SchoolRoundState | SchoolDecided:
        async with self._lock:
            # an extension that shortened a cutoff was accepted before the only-later rule: replay it as it was
            only_later = self._patched("extension-only-later")
            self._check(lambda: check_extension(self.state, workflow.now(), change.cutoff_at, only_later=only_later))
            before = {"cutoff_at": self.state.schedule.cutoff_at.isoformat()}
            undo = {"schedule": self.state.schedule}
            self.state.schedule = self.state.schedule.with_cutoff(change.cutoff_at)
            await self._record(self._audit(change.actor.user_id, "extend_deadline", before=before,
                                           after={"cutoff_at": change.cutoff_at.isoformat(), "scope": change.scope},
                                           reason=change.reason), "cutoff_at", undo=undo)
            self._wake = True  # re-arm the timers against the new cutoff
            if self._area_timed:
                await self._tell_area(change.cutoff_at)
            return self._decided()

    @extend_deadline.validator
    def _validate_extend(self, change: ExtendDeadline) -> None:
        self._require_actor(change.actor, "admin", "district")
        self._check(check_extension, self.state, workflow.now(), change.cutoff_at)

    @workflow.update
    async def apply_roster_batch(self, batch: ApplyRosterBatch) -> BatchOutcome:
        async with self._lock:
            self._check_batch(batch)  # the gate and the window may have moved while it waited for the lock
            outcome = await calls.apply_roster_batch(batch, self.state.round_id, self.state.school_code)
            if outcome.gate != self.state.gate:
                self.state.gate = outcome.gate
                await self._record(None, "gate")
            for case in outcome.cases:  # R3: a duplicate found by this change becomes its own process
                with workflow.unsafe.imports_passed_through():  # here, not above: that module imports this one
                    from workflows.duplicate_case import DuplicateCaseWorkflow
                try:
                    await workflow.start_child_workflow(
                        DuplicateCaseWorkflow.run, case, id=duplicate_case_id(case.case_id),
                        parent_close_policy=ParentClosePolicy.ABANDON)
                except WorkflowAlreadyStartedError:
                    pass  # the same duplicate found again (a re-import): its case is already running
            return outcome

    @apply_roster_batch.validator
    def _validate_batch(self, batch: ApplyRosterBatch) -> None:
        self._require_actor(batch.actor, *_batch_roles(batch.kind))
        self._check_batch(batch)

    def _check_batch(self, batch: ApplyRosterBatch) -> None:
        _require_role(batch.actor, *_batch_roles(batch.kind))
        self._check(check_roster_editable, self.state, workflow.now())
        if batch.kind == "end_of_year" and batch.step:
            self._check(check_step_order, batch.step, self.state.gate)

    # --- side processes (signals: fire-and-forget from their own workflows) --------------------

    @workflow.signal
    async def case_opened(self, case: BlockingCase) -> None:
        async with self._signal_lock():
            if all(c.ref != case.ref for c in self.state.blocking):
                self.state.blocking.append(case)
                await self._record(None, "blocking")

    @workflow.signal
    async def case_closed(self, ref: str) -> None:
        async with self._signal_lock():
            if any(c.ref == ref for c in self.state.blocking):
                self.state.blocking = [c for c in self.state.blocking if c.ref != ref]
                if self._patched("gate-reload-on-case-close"):
                    # the case's outcome may have added or removed a student: count the gate again
                    self.state.gate = await calls.load_gate(self.state.round_id, self.state.school_code)
                await self._record(None, "blocking", "gate")

    @workflow.signal
    async def roster_changed(self, ref: str) -> None:
        """A case that no longer blocked this school (it had declared its part, issue 16) changed its roster when
        it closed: count the gate again, as `case_closed` does for a blocked school. A new signal: no stored
        history holds one."""
        async with self._signal_lock():
            gate = await calls.load_gate(self.state.round_id, self.state.school_code)
            if gate != self.state.gate:
                self.state.gate = gate
                await self._record(None, "gate")

    @workflow.query
    def snapshot(self) -> SchoolRoundState:
        return self.state
