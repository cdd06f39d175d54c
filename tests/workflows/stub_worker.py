"""A worker for one workflow type with stub activities, on the time-skipping test server: a workflow's own
decisions (timers, validators, order of effects) tested in seconds, without a database or SMTP
(as `samples-python`'s test_mock_activity). The full-stack tests beside them check the real activities."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from typing import Any

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker


class Calls:
    """What the stub activities were asked, in order: (activity name, args)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, tuple]] = []

    def of(self, name: str) -> list[tuple]:
        return [args for n, args in self.log if n == name]

    def names(self) -> list[str]:
        return [n for n, _ in self.log]


def stub(calls: Calls, name: str, answer: Any = None):
    """An activity registered under `name` that records its arguments and answers `answer` (a value, or a
    function of the arguments)."""

    @activity.defn(name=name)
    async def run(*args) -> Any:
        calls.log.append((name, args))
        return answer(*args) if callable(answer) else answer

    return run


@asynccontextmanager
async def stub_worker(env: WorkflowEnvironment, workflows: list, activities: list):
    queue = f"fast-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=queue, workflows=workflows, activities=activities):
        yield queue
