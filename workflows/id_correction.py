"""IdCorrectionWorkflow (R4): one requested national-ID correction, from acknowledged to decided.

It waits for a district officer of the school's area; an approval changes the student's ID (checked
for uniqueness again at that moment; after the school certified, the change waits for the next round); a
request still undecided at the school's cutoff expires. The cutoff is the school's current one: when the
timer fires, the request reads it again, so an extension of the school reaches its open requests. The
school is told the outcome by email.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.actor_scope import check_actor_scope
    from domain.id_corrections import DecideIdCorrection, IdCorrectionInput, IdCorrectionState, check_decision
    from domain.refusals import Refusal, refusal
    from workflows import activity_calls as calls
    from workflows.refusal_errors import as_application_error


@workflow.defn
class IdCorrectionWorkflow:
    @workflow.init
    def __init__(self, inp: IdCorrectionInput) -> None:
        self.inp = inp
        self.state = IdCorrectionState()
        self._decided = False
        self.cutoff_at = inp.cutoff_at  # moved later when the school's deadline is extended

    @workflow.run
    async def run(self, inp: IdCorrectionInput) -> str:
        delay = inp.cutoff_at - workflow.now()
        # Started after the cutoff (the intake or the worker was down when the request came in on time):
        # nobody may decide it any more, so it expires at once instead of waiting for a decision forever.
        if delay.total_seconds() > 0 or not workflow.patched("expire-when-started-after-cutoff"):
            while True:
                try:
                    await workflow.wait_condition(lambda: self._decided,
                                                  timeout=delay if delay.total_seconds() > 0 else None)
                except asyncio.TimeoutError:
                    pass
                if self._decided or not workflow.patched("id-correction-follows-school-cutoff"):
                    break
                # R4 follows the school's current cutoff (issue 16): an extension since the request came in
                # keeps it open until the new cutoff, as a resent copy would be
                cutoff = await calls.id_correction_cutoff(inp.ref)
                if self._decided or cutoff <= workflow.now():
                    break
                self.cutoff_at, delay = cutoff, cutoff - workflow.now()
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self.state.status == "pending":
            self.state.status = "expired"
            await calls.settle_id_correction(inp.ref, "expired", None, workflow.now(), None)
        await calls.notify_id_correction(inp.ref)
        return self.state.status

    @workflow.update
    async def decide(self, d: DecideIdCorrection) -> IdCorrectionState:
        self._validate(d)
        self._decided = True  # from here the request is the officer's: the cutoff no longer expires it
        self.state.decided_by, self.state.decided_at, self.state.reason = d.actor.user_id, workflow.now(), d.reason
        if d.approve:
            self.state.status = await calls.apply_id_correction(self.inp.ref, d.actor.user_id, workflow.now())
        else:
            self.state.status = await calls.settle_id_correction(self.inp.ref, "rejected", d.actor.user_id,
                                                                 workflow.now(), d.reason)
        return self.state

    @decide.validator
    def _validate_update(self, d: DecideIdCorrection) -> None:
        self._validate(d)
        try:  # the actor's own area, in the validator only: a refused update never enters history
            check_actor_scope(d.actor, school_code=self.inp.school_code, area=self.inp.area, roles=("district",))
        except Refusal as r:
            raise as_application_error(r) from None

    def _validate(self, d: DecideIdCorrection) -> None:
        try:
            if self._decided:  # a decision is being applied: the request is no longer open
                raise refusal("already_decided", f"คำขอ {self.inp.ref} มีผู้พิจารณาแล้ว",
                              f"Request {self.inp.ref} has already been decided")
            check_decision(self.inp, self.state, d, workflow.now(), self.cutoff_at)
        except Refusal as r:
            raise as_application_error(r) from None

    @workflow.query
    def status(self) -> IdCorrectionState:
        return self.state
