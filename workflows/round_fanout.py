"""RoundFanoutWorkflow: a round-wide operation (start every school, extend every deadline) page by page.

Each page is one activity that talks to Temporal for up to `page_size` schools, so a round of 30,000
schools is 60 activities, not 30,000 children; continue-as-new keeps even that history short.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.actor_scope import check_actor_scope, role_refused
    from domain.messages import FanoutInput, FanoutPage
    from domain.refusals import Refusal
    from workflows import activity_calls as calls
    from workflows.refusal_errors import as_application_error

PAGES_PER_RUN = 50


@workflow.defn
class RoundFanoutWorkflow:
    def __init__(self) -> None:
        self.progress = {"done": 0, "skipped": 0, "finished": False}

    @workflow.run
    async def run(self, inp: FanoutInput) -> dict:
        if inp.extension is not None and inp.after is None and workflow.patched("extension-actor-scope"):
            _check_extension_scope(inp)  # before any page: each school would refuse it too, one by one
        after, done, skipped = inp.after, inp.done, inp.skipped
        for _ in range(PAGES_PER_RUN):
            page = await calls.fanout_page(FanoutPage(round_id=inp.round_id, operation=inp.operation, area=inp.area,
                                                      extension=inp.extension, after=after, limit=inp.page_size))
            done, skipped = done + page.done, skipped + page.skipped
            self.progress.update(done=done, skipped=skipped)
            if page.last is None:
                self.progress["finished"] = True
                return dict(self.progress)
            after = page.last
        workflow.continue_as_new(inp.model_copy(update={"after": after, "done": done, "skipped": skipped}))

    @workflow.query
    def status(self) -> dict:
        return dict(self.progress)


def _check_extension_scope(inp: FanoutInput) -> None:
    """A district extends its own area only; the whole round is the admin's."""
    try:
        if inp.area is None:
            if inp.extension.actor.role != "admin":
                raise role_refused(("admin",))
        else:
            check_actor_scope(inp.extension.actor, school_code=None, area=inp.area, roles=("admin", "district"))
    except Refusal as r:
        raise as_application_error(r) from None
