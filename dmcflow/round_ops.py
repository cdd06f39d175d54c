"""Round operations shared by the API and the console command."""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Engine
from sqlmodel import func, select
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from db.engine import session_scope
from db.models import Round, School, utcnow
from domain.messages import FanoutInput
from domain.refusals import not_found
from workflows.ids import fanout_id
from workflows.round_fanout import RoundFanoutWorkflow


def _mark_started(engine: Engine, round_id: str) -> int:
    with session_scope(engine) as session:
        row = session.get(Round, round_id)
        if row is None:
            raise not_found("รอบ", "round", round_id)
        row.started_at = row.started_at or utcnow()
        session.add(row)
        return session.exec(select(func.count()).select_from(School)).one()


async def start_round(engine: Engine, client: Client, task_queue: str, round_id: str) -> tuple[str, int]:
    """Start (or resume) the round's start fan-out; answers its operation id and the number of schools."""
    schools = await asyncio.to_thread(_mark_started, engine, round_id)
    operation = fanout_id(round_id, "start")
    await client.start_workflow(
        RoundFanoutWorkflow.run, FanoutInput(round_id=round_id, operation="start"), id=operation,
        task_queue=task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE)
    return operation, schools
