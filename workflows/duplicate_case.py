"""DuplicateCaseWorkflow (R3): one student counted twice, until the schools (or the district) settle it.

It blocks every party school's confirmation from the moment it opens (a signal to each school's
round workflow) until its outcome is applied to the rosters. A school's claim on a student held by another
school (an "obec" case) first waits for the district of the holder's area, which opens it as a case or
dismisses it: until then only the claimant is blocked, and the holder is neither blocked nor told.
A school that declares the student present with evidence is unblocked at once; a case still open at the first
party's cutoff goes to the district, which may then decide on what the schools declared (issue 16).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.actor_scope import SCHOOL_ROLES, check_actor_scope, out_of_scope
    from domain.duplicates import (
        CaseState, ClaimReviewIn, DecideIn, Decision, Declaration, DeclareIn, DuplicateCaseInput, check_decide,
        check_declare, check_review, unblocks,
    )
    from domain.refusals import Refusal
    from domain.school_round import BlockingCase
    from workflows import activity_calls as calls
    from workflows.ids import school_round_id
    from workflows.school_round import SchoolRoundWorkflow
    from workflows.refusal_errors import as_application_error

# Issue 19: an update that resolves the case answers once the outcome is on the rosters (the API no longer polls).
ANSWER_WHEN_APPLIED = "duplicate-answer-when-applied"


@workflow.defn
class DuplicateCaseWorkflow:
    @workflow.init
    def __init__(self, inp: DuplicateCaseInput) -> None:
        self.state = CaseState(inp=inp)
        self._unblocked: list[str] = []  # parties told `case_closed` when they declared their part
        self._applied = False  # the outcome is on the rosters

    @workflow.run
    async def run(self, inp: DuplicateCaseInput) -> str:
        blocking = BlockingCase(kind="duplicate", ref=inp.case_id)
        dismissed = False
        if inp.kind == "obec" and workflow.patched("district-opens-claims"):
            # issue 15, finding 3: a bare claim must not let any school look up, or block, another's student
            holder, claimant = inp.parties[:1], inp.parties[1:]
            self.state.awaiting_district = True
            await self._tell_schools(SchoolRoundWorkflow.case_opened, blocking, claimant)
            await calls.notify_duplicate(inp.case_id, "claimed")
            await workflow.wait_condition(lambda: not self.state.awaiting_district)
            dismissed = self.state.decision is not None and self.state.decision.claim_dismissed
            if not dismissed:
                await self._tell_schools(SchoolRoundWorkflow.case_opened, blocking, holder)
                await calls.notify_duplicate(inp.case_id, "opened")
        else:
            await self._tell_schools(SchoolRoundWorkflow.case_opened, blocking)
            await calls.notify_duplicate(inp.case_id, "opened")
        if workflow.patched("duplicate-cutoff-to-district"):
            await self._wait_for_outcome_or_cutoff()
        await workflow.wait_condition(lambda: self.state.resolved)
        outcome = self.state.outcome()
        await calls.resolve_duplicate(inp.case_id, outcome, workflow.now())
        self._applied = True
        if dismissed:  # the holder never knew of it: only the claimant is unblocked and told
            await self._tell_schools(SchoolRoundWorkflow.case_closed, inp.case_id, inp.parties[1:])
            await calls.notify_duplicate(inp.case_id, "dismissed")
        else:
            await self._tell_schools(SchoolRoundWorkflow.case_closed, inp.case_id)
            if self._unblocked and workflow.patched("recount-unblocked-parties"):
                # their block is gone already, so `case_closed` no longer counts their gate: the outcome may have
                # added or removed a student there
                await self._tell_schools(SchoolRoundWorkflow.roster_changed, inp.case_id, self._unblocked)
            await calls.notify_duplicate(inp.case_id, "resolved")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return outcome

    async def _wait_for_outcome_or_cutoff(self) -> None:
        """Until resolved, or until the first party's cutoff (read again after each wait: an extension moves it),
        when the case goes to the district with the schools' declarations."""
        case_id = self.state.inp.case_id
        while not self.state.resolved:
            cutoffs = await calls.duplicate_cutoffs(case_id)
            if not cutoffs:
                return  # no party's round is running: nothing to hand over at a cutoff
            delay = min(cutoffs) - workflow.now()
            if delay.total_seconds() > 0:
                try:
                    await workflow.wait_condition(lambda: self.state.resolved, timeout=delay)
                except asyncio.TimeoutError:
                    pass
                continue
            self.state.at_district_since = workflow.now()
            await calls.hand_duplicate_to_district(case_id, workflow.now())
            return

    async def _tell_schools(self, signal: Callable[..., Awaitable[None]], arg: BlockingCase | str,
                            schools: list[str] | None = None) -> None:
        for school in self.state.inp.parties if schools is None else schools:
            if workflow.patched("tell-school-by-activity"):
                # issue 18: a party of an area-timed round may have no workflow yet; the activity starts it with
                # the block (signal-with-start), which a workflow cannot do
                await calls.tell_school(self.state.inp.round_id, school, signal, arg)
                continue
            handle = workflow.get_external_workflow_handle(school_round_id(self.state.inp.round_id, school))
            try:
                await handle.signal(signal, arg)
            except Exception:  # noqa: BLE001  the school's round has ended: nothing left to block
                workflow.logger.info("school round %s not running; %s not delivered", school, calls.signal_name(signal))

    async def _answer(self) -> CaseState:
        """The state once settled: a resolving update waits for the run to apply the outcome (a running case's
        history answered before: the patch keeps its replay)."""
        if self.state.resolved and workflow.patched(ANSWER_WHEN_APPLIED):
            await workflow.wait_condition(lambda: self._applied)
        return self.state

    async def _record(self) -> None:
        await calls.record_duplicate_declarations(
            self.state.inp.case_id, {k: v.model_dump(mode="json") for k, v in self.state.declarations.items()},
            self.state.decision.model_dump(mode="json") if self.state.decision else None)

    @workflow.update
    async def declare(self, d: DeclareIn) -> CaseState:
        self._validate_declare(d)
        self.state.declarations[d.school] = Declaration(school=d.school, claim=d.claim, by=d.actor.user_id,
                                                        at=workflow.now(), evidence=d.evidence, note=d.note)
        await self._record()
        if self.state.both_claim():
            await calls.notify_duplicate(self.state.inp.case_id, "to_district")
        if not self.state.resolved and unblocks(d) and workflow.patched("present-unblocks-declarer"):
            # its part is done: the case no longer keeps this school from confirming (the others' blocks stay)
            self._unblocked.append(d.school)
            await self._tell_schools(SchoolRoundWorkflow.case_closed, self.state.inp.case_id, [d.school])
        return await self._answer()

    @declare.validator
    def _validate_declare_update(self, d: DeclareIn) -> None:
        # the actor's scope is checked here only: a refused update never enters history, so the handler's
        # re-check (and the replay of running cases) stays as it was
        self._validate_declare(d)
        try:
            check_actor_scope(d.actor, school_code=d.school, area=None, roles=SCHOOL_ROLES)  # its own school only
        except Refusal as r:
            raise as_application_error(r) from None

    def _validate_declare(self, d: DeclareIn) -> None:
        try:
            check_declare(self.state, d)
        except Refusal as r:
            raise as_application_error(r) from None

    @workflow.update
    async def decide(self, d: DecideIn) -> CaseState:
        self._validate_decide(d)
        self.state.decision = Decision(keep_school=d.keep_school, by=d.actor.user_id, at=workflow.now(),
                                       reason=d.reason)
        await self._record()
        return await self._answer()

    @decide.validator
    def _validate_decide_update(self, d: DecideIn) -> None:
        self._validate_decide(d)
        try:
            self._check_decider_area(d)
        except Refusal as r:
            raise as_application_error(r) from None

    def _validate_decide(self, d: DecideIn) -> None:
        try:
            check_decide(self.state, d)
        except Refusal as r:
            raise as_application_error(r) from None

    def _check_decider_area(self, d: DecideIn) -> None:
        """Finding 4: only the district of the holder school's area decides. A case opened before the input
        named that area knows it only when both schools share one; otherwise a district of either party's."""
        inp = self.state.inp
        holder_area = inp.holder_area or (inp.areas[0] if len(inp.areas) == 1 else None)
        if holder_area is not None:
            check_actor_scope(d.actor, school_code=None, area=holder_area, roles=("district",))
        elif d.actor.area not in inp.areas:
            raise out_of_scope()

    @workflow.update
    async def open_case(self, d: ClaimReviewIn) -> CaseState:
        self._validate_open(d)
        self.state.awaiting_district = False  # first: a second request while the row is written is refused
        await calls.open_duplicate_case(self.state.inp.case_id, d.actor.user_id, workflow.now())
        return self.state

    @open_case.validator
    def _validate_open(self, d: ClaimReviewIn) -> None:
        try:
            check_review(self.state, d, dismiss=False)
        except Refusal as r:
            raise as_application_error(r) from None

    @workflow.update
    async def dismiss_claim(self, d: ClaimReviewIn) -> CaseState:
        """The claim was not a duplicate (a typing error, a probe): the holder keeps the student, unaware."""
        self._validate_dismiss(d)
        self.state.awaiting_district = False
        self.state.decision = Decision(keep_school=self.state.inp.parties[0], by=d.actor.user_id, at=workflow.now(),
                                       reason=d.reason, claim_dismissed=True)
        await self._record()
        return await self._answer()

    @dismiss_claim.validator
    def _validate_dismiss(self, d: ClaimReviewIn) -> None:
        try:
            check_review(self.state, d, dismiss=True)
        except Refusal as r:
            raise as_application_error(r) from None

    @workflow.query
    def status(self) -> CaseState:
        return self.state
