"""Sending a decision to a school's workflow and turning Temporal's failures into refusals."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from dmcflow.lazy_start import update_school
from domain.refusals import Refusal
from workflows.refusal_errors import refusal_from_failure


def refusal_from_update_failure(exc: WorkflowUpdateFailedError) -> Refusal:
    return refusal_from_failure(exc)


async def school_update(client: Client, round_id: str, school_code: str, update, arg: Any,
                        result_type: type | None = None, *, engine: Engine | None = None):
    """The school's update, its refusal as the domain's Refusal. With `engine`, a school of an area-timed round
    that has no workflow yet gets one, started by this very update (dmcflow/lazy_start.py)."""
    try:
        return await update_school(client, engine, round_id, school_code, update, arg, result_type)
    except WorkflowUpdateFailedError as exc:
        raise refusal_from_update_failure(exc) from None


async def case_update(client: Client, workflow_id: str, update, arg: Any, closed: Refusal):
    """A case workflow's update (a dropout consultation's, a duplicate case's), answered once settled by the
    workflow itself: its refusal as the domain's Refusal, and `closed` when the workflow has ended."""
    try:
        return await client.get_workflow_handle(workflow_id).execute_update(update, arg)
    except WorkflowUpdateFailedError as exc:
        raise refusal_from_update_failure(exc) from None
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise  # Temporal unreachable: a 503 to retry, not an answer about the case
        raise closed from None
