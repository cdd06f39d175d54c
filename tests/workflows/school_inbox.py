"""A stand-in for a school's round workflow that only records the signals side processes send it: which school
a case blocks, and when it lets go. Its own module: the workflow sandbox imports it alone."""

from collections.abc import Sequence

from temporalio import workflow
from temporalio.common import RawValue


@workflow.defn(name="SchoolRoundWorkflow")
class SchoolInbox:
    def __init__(self) -> None:
        self.signals: list[str] = []

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal(dynamic=True)
    def any_signal(self, name: str, args: Sequence[RawValue]) -> None:
        self.signals.append(name)

    @workflow.query
    def received(self) -> list[str]:
        return self.signals
