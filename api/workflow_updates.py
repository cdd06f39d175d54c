"""Sending a decision to a school's workflow and turning Temporal's failures into refusals."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from domain.refusals import Refusal, refusal
from workflows.ids import school_round_id
from workflows.refusal_errors import refusal_from_failure


def refusal_from_update_failure(exc: WorkflowUpdateFailedError) -> Refusal:
    return refusal_from_failure(exc)


async def school_update(client: Client, round_id: str, school_code: str, update, arg: Any,
                        result_type: type | None = None):
    handle = client.get_workflow_handle(school_round_id(round_id, school_code))
    try:
        return await handle.execute_update(update, arg, result_type=result_type)
    except WorkflowUpdateFailedError as exc:
        raise refusal_from_update_failure(exc) from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND and "already completed" not in exc.message:
            raise refusal("round_not_started", f"ยังไม่ได้เริ่มรอบ {round_id} ของโรงเรียนนี้",
                          f"Round {round_id} has not been started for this school", 409) from None
        if "already completed" in exc.message:
            raise refusal("round_finished", "รอบของโรงเรียนนี้สิ้นสุดแล้ว (รับรองแล้วหรือปิดระบบแล้ว)",
                          "This school's round has ended (certified or closed)", 409) from None
        raise
