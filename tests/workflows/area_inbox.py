"""A stand-in for an area's round workflow that only records the `deadline_moved` signals its schools send it (an
extension moved a school's cutoff). Its own module: the workflow sandbox imports it alone."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.messages import DeadlineMoved


@workflow.defn(name="AreaRoundWorkflow")
class AreaInbox:
    def __init__(self) -> None:
        self.moved: list[DeadlineMoved] = []

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal
    def deadline_moved(self, moved: DeadlineMoved) -> None:
        self.moved.append(moved)

    @workflow.query
    def received(self) -> list[DeadlineMoved]:
        return self.moved
