"""Round operations shared by the API and the console command."""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import Engine
from sqlmodel import func, select
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from db.engine import session_scope
from db.models import Round, School, utcnow
from dmcflow.settings import Settings
from domain.messages import FanoutInput
from domain.refusals import not_found
from workflows.ids import fanout_id
from workflows.round_fanout import RoundFanoutWorkflow


START_PAGE = 2000


def _mark_started(engine: Engine, round_id: str, school_queue: str) -> int:
    with session_scope(engine) as session:
        row = session.get(Round, round_id)
        if row is None:
            raise not_found("รอบ", "round", round_id)
        if row.started_at is None:
            # issue 18: the areas keep the round's time and each school's workflow starts on its first event, from
            # this moment on (a first decision right after the 202 starts its school: it never waits for the start's
            # page). A round started before keeps its eager start (school_queue stays None).
            row.started_at, row.school_queue = utcnow(), school_queue
        session.add(row)
        return session.exec(select(func.count()).select_from(School)).one()


async def start_round(engine: Engine, client: Client, settings: Settings, round_id: str) -> tuple[str, int]:
    """Start (or resume) the round's start fan-out; answers its operation id and the number of schools. For an
    area-timed round it inserts the schools' projection rows page by page and starts one workflow per area."""
    schools = await asyncio.to_thread(_mark_started, engine, round_id, settings.task_queue)
    operation = fanout_id(round_id, "start")
    await client.start_workflow(
        # pages of 2,000: a page is one INSERT and a few gate queries (an area-timed round starts no school workflow)
        RoundFanoutWorkflow.run, FanoutInput(round_id=round_id, operation="start", page_size=START_PAGE), id=operation,
        task_queue=settings.ops_task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE)
    return operation, schools
