"""Sending a decision to a school's workflow and turning Temporal's failures into refusals."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from dmcflow.lazy_start import update_school
from domain.refusals import Refusal, refusal


def refusal_from_update_failure(exc: WorkflowUpdateFailedError) -> Refusal:
    cause = exc.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.__cause__
    if isinstance(cause, ApplicationError) and cause.details and isinstance(cause.details[0], dict):
        d = dict(cause.details[0])
        code, th, en, status = d.pop("code"), d.pop("message_th"), d.pop("message_en"), int(d.pop("status", 409))
        return Refusal(code, th, en, status, details=d)
    return refusal("refused", "ระบบปฏิเสธคำขอนี้", f"Refused: {cause or exc}")


async def school_update(client: Client, round_id: str, school_code: str, update, arg: Any,
                        result_type: type | None = None, *, engine: Engine | None = None):
    """The school's update, its refusal as the domain's Refusal. With `engine`, a school of an area-timed round
    that has no workflow yet gets one, started by this very update (dmcflow/lazy_start.py)."""
    try:
        return await update_school(client, engine, round_id, school_code, update, arg, result_type)
    except WorkflowUpdateFailedError as exc:
        raise refusal_from_update_failure(exc) from None
