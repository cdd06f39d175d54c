"""Staging a roster change in the database and having the school's workflow apply it.

The workflow serialises every change with confirmation (a confirmed roster is frozen) and sees only the
batch id: the personal data stays in the database.
"""

from __future__ import annotations

import asyncio
import uuid

from api.deps import actor_of
from api.workflow_updates import school_update
from db.engine import session_scope
from db.models import RosterBatch, Round
from domain.messages import ApplyRosterBatch, BatchOutcome
from domain.refusals import Refusal, not_found
from workflows.school_round import SchoolRoundWorkflow


def stage_batches(engine, user, round_id: str, kind: str, payloads: dict[str, dict],
                  step: str | None = None) -> dict[str, str]:
    """Each school's batch staged, all in one transaction (an area export's 70 schools are one write, not 70
    for SQLite's one writer to take turns at); answers each school's batch id."""
    ids = {code: f"b-{uuid.uuid4().hex}" for code in payloads}
    with session_scope(engine) as session:
        if session.get(Round, round_id) is None:  # before the staged row points at a round that is not there
            raise not_found("รอบ", "round", round_id)
        session.add_all([RosterBatch(id=ids[code], round_id=round_id, school_code=code, kind=kind, payload=payload,
                                     created_by=user.id) for code, payload in payloads.items()])
    return ids


async def apply_staged(engine, client, user, round_id: str, school_code: str, batch_id: str, kind: str,
                       step: str | None = None) -> tuple[BatchOutcome, dict]:
    """The school's workflow applies its staged batch: its outcome, and the batch's report row by row."""

    def finish(refused: bool) -> dict:
        with session_scope(engine) as session:
            batch = session.get(RosterBatch, batch_id)
            if refused:  # nothing was applied: drop the staged personal data
                batch.status, batch.payload = "refused", {}
                session.add(batch)
            return batch.report

    try:
        outcome = await school_update(
            client, round_id, school_code, SchoolRoundWorkflow.apply_roster_batch,
            ApplyRosterBatch(batch_id=batch_id, kind=kind, step=step, actor=actor_of(user)),
            result_type=BatchOutcome, engine=engine)  # a first change starts the school's workflow (issue 18)
    except Refusal:
        await asyncio.to_thread(finish, True)
        raise
    return outcome, await asyncio.to_thread(finish, False)


async def apply_batch(engine, client, user, round_id: str, school_code: str, kind: str, payload: dict,
                      step: str | None = None) -> tuple[BatchOutcome, dict]:
    ids = await asyncio.to_thread(stage_batches, engine, user, round_id, kind, {school_code: payload}, step)
    return await apply_staged(engine, client, user, round_id, school_code, ids[school_code], kind, step)


async def apply_one(engine, client, user, round_id: str, school_code: str, op: str, data: dict,
                    kind: str = "student") -> BatchOutcome:
    """One operation of the rules table (kind `student`; `removal` is the district's): applied, or refused with the
    rule's own code and reason."""
    outcome, report = await apply_batch(engine, client, user, round_id, school_code, kind, {"op": op, "data": data})
    if outcome.refused:
        issue = report["issues"][0]
        refused = Refusal.from_dict(issue)
        if issue.get("retry_after"):  # too_many_claims: when the next claim frees up
            refused.headers = {"Retry-After": issue["retry_after"]}
        raise refused
    return outcome
