"""Activities that act on many schools of a round: start their workflows, extend their deadlines,
and the area's cutoff escalation."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from activities.area_round import certified_in_visibility
from activities.school_round import school_emails
from db.deferred_changes import apply_deferred
from db.engine import session_scope
from db.gate import gate_progress_many
from db.models import OutboxMail, Round, School, SchoolRound, User
from db.projection import insert_initial
from dmcflow.lazy_start import ensure_school_rows, update_school
from dmcflow.settings import Settings
from domain.messages import (
    AreaCutoffInput, AreaCutoffStatus, AreaCutoffStep, AreaRoundInput, FanoutPage, FanoutPageResult, SchoolRoundInput,
)
from domain.refusals import Refusal
from domain.rounds import RoundPolicy, Schedule
from domain.school_round import SchoolRoundState, Stage
from mailer import outbox
from mailer.render import render
from workflows import activity_calls as calls
from workflows import search_attributes as sa
from workflows.area_cutoff import AreaCutoffWorkflow
from workflows.area_round import AreaRoundWorkflow
from workflows.ids import area_cutoff_id, area_key, area_round_id, school_round_id
from workflows.school_round import SchoolRoundWorkflow

log = logging.getLogger(__name__)
CONCURRENCY = 64


def activity_now():
    # Temporal's clock, not the machine's: under time skipping the two differ by days.
    return activity.info().current_attempt_scheduled_time


class RoundFanoutActivities:
    def __init__(self, engine: Engine, settings: Settings, client: Client) -> None:
        self.engine = engine
        self.settings = settings
        self.client = client

    @activity.defn(name=calls.FANOUT_PAGE)
    async def fanout_page(self, page: FanoutPage) -> FanoutPageResult:
        if page.operation == "start":
            return await self._start_page(page)
        return await self._extend_page(page)

    # --- start ----------------------------------------------------------------------------------

    def _page_schools(self, session, page: FanoutPage) -> list[tuple[str, str]]:
        stmt = select(School.code, School.area).order_by(School.code).limit(page.limit)
        if page.after:
            stmt = stmt.where(School.code > page.after)
        if page.area:
            stmt = stmt.where(School.area == page.area)
        return list(session.exec(stmt))

    def _insert_page(self, page: FanoutPage) -> tuple[bool, list[tuple[str, str]], int]:
        """An area-timed round's page (issue 18): the schools' projection rows in one INSERT, no workflow; answers
        (area-timed, the page's schools, rows inserted). Any other round: (False, [], 0), for `_prepare_page`."""
        with session_scope(self.engine) as session:
            rnd = session.get(Round, page.round_id)
            if rnd.school_queue is None:
                return False, [], 0
            schools = self._page_schools(session, page)
            return True, schools, len(ensure_school_rows(session, rnd, schools, activity_now()))

    def _prepare_page(self, page: FanoutPage) -> tuple[list[SchoolRoundState], list[Stage]]:
        """A round started before issue 18 (its fan-out resumed after an upgrade): every school's workflow is started.
        Gates of the whole page in one query, projection rows in one transaction: the workflows then start with
        nothing to load, so starting a round costs the server little more than bare starts."""
        with session_scope(self.engine) as session:
            rnd = session.get(Round, page.round_id)
            schools = self._page_schools(session, page)
            if not schools:
                return [], []
            schedule = Schedule(opens_at=rnd.opens_at, confirm_from=rnd.confirm_from, cutoff_at=rnd.cutoff_at)
            policy = RoundPolicy.model_validate(rnd.policy)
            now = activity_now()
            # outcomes decided after these schools certified an earlier round: the new round's roster has them
            apply_deferred(session, rnd, [code for code, _ in schools], now)
            gates = gate_progress_many(session, rnd.id, [code for code, _ in schools])
            states = [SchoolRoundState(round_id=rnd.id, school_code=code, area=area, schedule=schedule, policy=policy,
                                       gate=gates[code]) for code, area in schools]
            stages = [state.stage(now) for state in states]
            insert_initial(session, states, stages)
            return states, stages

    async def _start_page(self, page: FanoutPage) -> FanoutPageResult:
        area_timed, schools, inserted = await asyncio.to_thread(self._insert_page, page)
        if area_timed:
            # skipped: rows already there (a page retried, or a school's first event came before its page)
            done, skipped = inserted, len(schools) - inserted
            if len(schools) < page.limit:  # the last page: the areas' workflows now, not one more round trip
                await self._start_area_workflows(page.round_id, area_timed=True)
                return FanoutPageResult(done=done, skipped=skipped, last=None)
            return FanoutPageResult(done=done, skipped=skipped, last=schools[-1][0])
        states, stages = await asyncio.to_thread(self._prepare_page, page)
        if not states:
            await self._start_area_workflows(page.round_id, area_timed=False)
            return FanoutPageResult(done=0, skipped=0, last=None)
        gate = asyncio.Semaphore(CONCURRENCY)
        skipped = 0

        async def start(state: SchoolRoundState, stage: Stage) -> None:
            nonlocal skipped
            async with gate:
                try:
                    await self.client.start_workflow(
                        SchoolRoundWorkflow.run, SchoolRoundInput(state=state, projected=True, projected_stage=stage),
                        id=school_round_id(state.round_id, state.school_code), task_queue=self.settings.task_queue,
                        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                        search_attributes=TypedSearchAttributes([
                            SearchAttributePair(sa.ROUND, state.round_id), SearchAttributePair(sa.AREA, state.area),
                            SearchAttributePair(sa.STAGE, stage.value)]),
                    )
                except WorkflowAlreadyStartedError:
                    skipped += 1  # its round already ended (certified or closed): never restarted
                activity.heartbeat(state.school_code)  # throttled by the SDK; a slow server never times out the page

        await asyncio.gather(*(start(state, stage) for state, stage in zip(states, stages, strict=True)))
        return FanoutPageResult(done=len(states) - skipped, skipped=skipped, last=states[-1].school_code)

    async def _start_area_workflows(self, round_id: str, *, area_timed: bool) -> None:
        """One workflow per area: an area-timed round's time (AreaRoundWorkflow), or an older round's escalation at
        each cutoff (AreaCutoffWorkflow)."""
        def areas() -> list[str]:
            with session_scope(self.engine) as session:
                return list(session.exec(select(School.area).distinct()))

        gate = asyncio.Semaphore(CONCURRENCY)

        async def start(area: str) -> None:
            if area_timed:
                run, inp, wid = AreaRoundWorkflow.run, AreaRoundInput(round_id=round_id, area=area), \
                    area_round_id(round_id, area)
            else:
                run, inp, wid = AreaCutoffWorkflow.run, AreaCutoffInput(round_id=round_id, area=area), \
                    area_cutoff_id(round_id, area)
            async with gate:
                await self.client.start_workflow(
                    run, inp, id=wid, task_queue=self.settings.ops_task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                    search_attributes=TypedSearchAttributes([SearchAttributePair(sa.ROUND, round_id),
                                                             SearchAttributePair(sa.AREA, area)]),
                )

        await asyncio.gather(*(start(area) for area in await asyncio.to_thread(areas)))  # 245 areas at once

    # --- extend ---------------------------------------------------------------------------------

    def _open_schools_page(self, page: FanoutPage) -> list[tuple[str, str]]:
        with session_scope(self.engine) as session:
            stmt = (select(SchoolRound.school_code, SchoolRound.area)
                    .where(SchoolRound.round_id == page.round_id, SchoolRound.certified_at.is_(None))
                    .order_by(SchoolRound.school_code).limit(page.limit))
            if page.after:
                stmt = stmt.where(SchoolRound.school_code > page.after)
            if page.area:
                stmt = stmt.where(SchoolRound.area == page.area)
            return list(session.exec(stmt))

    async def _extend_page(self, page: FanoutPage) -> FanoutPageResult:
        schools = await asyncio.to_thread(self._open_schools_page, page)
        if not schools:
            await self._signal_areas(page)
            return FanoutPageResult(done=0, skipped=0, last=None)
        gate = asyncio.Semaphore(CONCURRENCY)
        skipped = 0

        async def extend(code: str) -> None:
            nonlocal skipped
            async with gate:
                try:
                    # an area-timed school that has no workflow yet gets one with its new cutoff: its cutoff is
                    # never in the projection without being in its workflow (dmcflow/lazy_start.py)
                    await update_school(self.client, self.engine, page.round_id, code,
                                        SchoolRoundWorkflow.extend_deadline, page.extension)
                except (WorkflowUpdateFailedError, RPCError, Refusal):
                    skipped += 1  # refused (e.g. certified meanwhile) or closed: the others still move
                activity.heartbeat(code)

        await asyncio.gather(*(extend(code) for code, _ in schools))
        activity.heartbeat(schools[-1][0])
        return FanoutPageResult(done=len(schools) - skipped, skipped=skipped, last=schools[-1][0])

    async def _signal_areas(self, page: FanoutPage) -> None:
        def areas() -> list[str]:
            with session_scope(self.engine) as session:
                if session.get(Round, page.round_id).school_queue is not None:
                    return []  # area-timed: each extended school tells its area itself, once its cutoff is projected
                stmt = select(SchoolRound.area).where(SchoolRound.round_id == page.round_id).distinct()
                return [page.area] if page.area else list(session.exec(stmt))

        for area in await asyncio.to_thread(areas):
            try:
                await self.client.get_workflow_handle(area_cutoff_id(page.round_id, area)).signal(
                    AreaCutoffWorkflow.deadline_moved)
            except RPCError:
                pass  # the area's escalation already ended: nothing left to wake

    # --- the area's escalation at the cutoff --------------------------------------------------

    @activity.defn(name=calls.AREA_CUTOFF_STEP)
    async def area_cutoff_step(self, step: AreaCutoffStep) -> AreaCutoffStatus:
        certified = await self._certified_in_visibility(step)
        status, keys = await asyncio.to_thread(self._escalate, step, certified)
        for key in keys:
            await outbox.deliver(self.engine, self.settings, key)
        return status

    async def _certified_in_visibility(self, step: AreaCutoffStep) -> set[str]:
        return await certified_in_visibility(self.client, step.round_id, step.area)

    def _escalate(self, step: AreaCutoffStep, certified: set[str]) -> tuple[AreaCutoffStatus, list[str]]:
        prefix = f"escalation/{step.round_id}/{area_key(step.area)}/"
        with session_scope(self.engine) as session:
            open_rows = select(SchoolRound).where(
                SchoolRound.round_id == step.round_id, SchoolRound.area == step.area,
                SchoolRound.certified_at.is_(None), SchoolRound.escalated_at.is_(None))
            due = list(session.exec(open_rows.where(SchoolRound.cutoff_at <= step.now).order_by(SchoolRound.school_code)))
            escalated = 0
            for row in due:  # handled at this cutoff, listed or not
                row.escalated_at = step.now
                session.add(row)
            due = [row for row in due if row.school_code not in certified]
            if due:
                rnd = session.get(Round, step.round_id)
                policy = RoundPolicy.model_validate(rnd.policy)
                if policy.escalate_at_cutoff:
                    cutoff = max(r.cutoff_at for r in due)
                    schools = []
                    for row in due:
                        school = session.get(School, row.school_code)
                        schools.append({"code": row.school_code, "name": school.name if school else "",
                                        "confirmed": row.confirmed_at is not None,
                                        "emails": school_emails(session, row.school_code)})
                    officers = list(session.exec(select(User.email).where(
                        User.role == "district", User.area == step.area, User.active, User.email.is_not(None))))
                    subject, body = render("escalation.txt.j2", round_id=step.round_id, area=step.area,
                                           cutoff_at=cutoff, schools=schools)
                    outbox.enqueue(session, self.settings, key=f"{prefix}{cutoff.isoformat()}", kind="escalation",
                                   to=officers, subject=subject, body=body)
                    escalated = len(due)
            pending = list(session.exec(select(OutboxMail.key).where(
                OutboxMail.key.startswith(prefix), OutboxMail.status == "pending")))
            nxt = session.exec(select(SchoolRound.cutoff_at).where(
                SchoolRound.round_id == step.round_id, SchoolRound.area == step.area,
                SchoolRound.certified_at.is_(None), SchoolRound.escalated_at.is_(None),
            ).order_by(SchoolRound.cutoff_at).limit(1)).first()
        return AreaCutoffStatus(escalated=escalated, next_cutoff=nxt), pending
