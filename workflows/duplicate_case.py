"""DuplicateCaseWorkflow (R3): one student counted twice, until the schools (or the district) settle it.

It blocks every party school's confirmation from the moment it opens (a signal to each school's
round workflow) until its outcome is applied to the rosters.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.duplicates import (
        CaseState, DecideIn, Decision, Declaration, DeclareIn, DuplicateCaseInput, check_decide, check_declare,
    )
    from domain.refusals import Refusal
    from domain.school_round import BlockingCase
    from workflows import activity_calls as calls
    from workflows.ids import school_round_id
    from workflows.refusal_errors import as_application_error


@workflow.defn
class DuplicateCaseWorkflow:
    @workflow.init
    def __init__(self, inp: DuplicateCaseInput) -> None:
        self.state = CaseState(inp=inp)

    @workflow.run
    async def run(self, inp: DuplicateCaseInput) -> str:
        await self._tell_schools("case_opened", BlockingCase(kind="duplicate", ref=inp.case_id))
        await workflow.execute_activity(calls.NOTIFY_DUPLICATE, args=[inp.case_id, "opened"], **calls.MAIL)
        await workflow.wait_condition(lambda: self.state.resolved)
        outcome = self.state.outcome()
        await workflow.execute_activity(calls.RESOLVE_DUPLICATE, args=[inp.case_id, outcome, workflow.now()],
                                        **calls.DATABASE)
        await self._tell_schools("case_closed", inp.case_id)
        await workflow.execute_activity(calls.NOTIFY_DUPLICATE, args=[inp.case_id, "resolved"], **calls.MAIL)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return outcome

    async def _tell_schools(self, signal: str, arg) -> None:
        for school in self.state.inp.parties:
            handle = workflow.get_external_workflow_handle(school_round_id(self.state.inp.round_id, school))
            try:
                await handle.signal(signal, arg)
            except Exception:  # noqa: BLE001  the school's round has ended: nothing left to block
                workflow.logger.info("school round %s not running; %s not delivered", school, signal)

    async def _record(self) -> None:
        await workflow.execute_activity(
            calls.RECORD_DUPLICATE_DECLARATIONS,
            args=[self.state.inp.case_id, {k: v.model_dump(mode="json") for k, v in self.state.declarations.items()},
                  self.state.decision.model_dump(mode="json") if self.state.decision else None],
            **calls.DATABASE)

    @workflow.update
    async def declare(self, d: DeclareIn) -> CaseState:
        self._validate_declare(d)
        self.state.declarations[d.school] = Declaration(school=d.school, claim=d.claim, by=d.actor.user_id,
                                                        at=workflow.now(), evidence=d.evidence, note=d.note)
        await self._record()
        if self.state.needs_district():
            await workflow.execute_activity(calls.NOTIFY_DUPLICATE, args=[self.state.inp.case_id, "to_district"],
                                            **calls.MAIL)
        return self.state

    @declare.validator
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
        return self.state

    @decide.validator
    def _validate_decide(self, d: DecideIn) -> None:
        try:
            check_decide(self.state, d)
        except Refusal as r:
            raise as_application_error(r) from None

    @workflow.query
    def status(self) -> CaseState:
        return self.state
