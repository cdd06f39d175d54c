"""Bare Temporal: the minimal workflows dmcflow is compared with, and their worker.

    python -m bench.bare --address 127.0.0.1:7233 --task-queue bench-bare

Each has the Temporal shape of its dmcflow counterpart and nothing else, with the SDK's defaults (the
workflow sandbox included, as dmcflow's workflows have it): `Approvable` takes the two
decisions as updates with a validator, each handler running one activity (dmcflow's handlers run one,
which writes the projection and the audit event); `StormSchool` sleeps to one instant and then runs one
activity (dmcflow's school workflow records its `late` transition). The activities do nothing.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime, timedelta

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

# As in dmcflow's workflow modules: whatever is not the workflow itself is passed through the sandbox,
# or every workflow instance would import its own copy of the client, the converter and the settings.
with workflow.unsafe.imports_passed_through():
    from temporalio.client import Client
    from temporalio.worker import Worker

    from dmcflow.settings import Settings
    from dmcflow.temporal_client import data_converter

ACTIVITY = {"start_to_close_timeout": timedelta(seconds=60)}


@activity.defn(name="bare_record")
def bare_record(_: str) -> None:
    return None


@workflow.defn
class Trivial:
    @workflow.run
    async def run(self, n: int) -> int:
        return n


@workflow.defn
class Approvable:
    def __init__(self) -> None:
        self.confirmed = self.certified = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.certified)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return "certified"

    @workflow.update
    async def confirm(self, who: str) -> bool:
        self.confirmed = True
        await workflow.execute_activity(bare_record, "confirm", **ACTIVITY)
        return True

    @confirm.validator
    def _confirm_ok(self, who: str) -> None:
        if self.confirmed:
            raise ApplicationError("already confirmed", non_retryable=True)

    @workflow.update
    async def certify(self, who: str) -> bool:
        if not self.confirmed:
            raise ApplicationError("not confirmed", non_retryable=True)
        await workflow.execute_activity(bare_record, "certify", **ACTIVITY)
        self.certified = True
        return True

    @certify.validator
    def _certify_ok(self, who: str) -> None:
        if not self.confirmed or self.certified:
            raise ApplicationError("not confirmed", non_retryable=True)


@workflow.defn
class StormSchool:
    @workflow.run
    async def run(self, cutoff: datetime) -> str:
        delay = cutoff - workflow.now()
        if delay.total_seconds() > 0:
            await workflow.sleep(delay)
        await workflow.execute_activity(bare_record, "late", **ACTIVITY)
        return "late"


@workflow.defn
class SchoolShaped:
    """A running workflow of a school's shape: its input (the state), asleep on one timer until the cutoff."""

    @workflow.run
    async def run(self, state: dict) -> str:
        await workflow.sleep(timedelta(days=2))
        return "late"


WORKFLOWS = [Trivial, SchoolShaped, Approvable, StormSchool]


# --- the HTTP front a user of raw Temporal would build (issue 18's approval path) ----------------------------

def bare_api():
    """A minimal FastAPI route that sends the decision as `execute_update`: the same HTTP clients, the same bearer
    header, the same Temporal client and data converter as dmcflow's API, and no database (the token is taken as
    the actor, unchecked). `uvicorn bench.bare:bare_api --factory`, with DMCFLOW_TEMPORAL_ADDRESS set."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, Header
    from fastapi.responses import JSONResponse
    from temporalio.client import WorkflowUpdateFailedError

    from dmcflow.temporal_client import connect

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.client = await connect(Settings())
        yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/approvals/{workflow_id}/{action}")
    async def decide(workflow_id: str, action: str, authorization: str = Header("")) -> JSONResponse:
        if not authorization.startswith("Bearer "):
            return JSONResponse({"code": "unauthenticated"}, status_code=401)
        update = {"confirmation": Approvable.confirm, "certification": Approvable.certify}.get(action)
        if update is None:
            return JSONResponse({"code": "not_found"}, status_code=404)
        try:
            await app.state.client.get_workflow_handle(workflow_id).execute_update(update, authorization[7:])
        except WorkflowUpdateFailedError as exc:
            return JSONResponse({"code": "refused", "message_en": str(exc.cause)}, status_code=409)
        return JSONResponse({"workflow_id": workflow_id, "action": action, "done": True})

    return app


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", required=True)
    ap.add_argument("--task-queue", default="bench-bare")
    args = ap.parse_args()
    client = await Client.connect(args.address, data_converter=data_converter(Settings()))
    from concurrent.futures import ThreadPoolExecutor

    # The same worker options as dmcflow's school worker (worker.py), so only the workflows differ.
    await Worker(client, task_queue=args.task_queue, workflows=WORKFLOWS, activities=[bare_record],
                 activity_executor=ThreadPoolExecutor(64), max_concurrent_activities=64,
                 max_concurrent_workflow_tasks=16, max_cached_workflows=Settings().workflow_cache_size).run()


if __name__ == "__main__":
    asyncio.run(main())
