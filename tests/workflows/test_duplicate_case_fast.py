"""DuplicateCaseWorkflow (R3) with stub activities under time skipping; the party schools are stand-ins that
record the case's signals (tests/workflows/school_inbox.py)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError

from domain.duplicates import ClaimReviewIn, DecideIn, DeclareIn, DuplicateCaseInput
from domain.school_round import Actor
from tests.timing import eventually
from tests.workflows.school_inbox import SchoolInbox
from tests.workflows.stub_worker import Calls, stub, stub_worker
from workflows import activity_calls as calls
from workflows.duplicate_case import DuplicateCaseWorkflow
from workflows.ids import school_round_id

HOLDER, CLAIMANT = "1044449001", "1044449002"
AREA_H, AREA_C = "สพม.มหาสารคาม", "สพป.ขอนแก่น เขต 1"
HOLDER_OFFICER = Actor(user_id="u-dh", role="district", area=AREA_H)
CLAIMANT_OFFICER = Actor(user_id="u-dc", role="district", area=AREA_C)


def staff(school: str) -> Actor:
    return Actor(user_id=f"u-{school}", role="staff", school_code=school)


def activities(log: Calls, cutoffs: list[datetime]):
    return [stub(log, name) for name in (calls.NOTIFY_DUPLICATE, calls.HAND_DUPLICATE_TO_DISTRICT,
                                         calls.RECORD_DUPLICATE_DECLARATIONS, calls.OPEN_DUPLICATE_CASE)] + [
        stub(log, calls.DUPLICATE_CUTOFFS, cutoffs), stub(log, calls.TELL_SCHOOL, True), slow_resolve(log)]


def slow_resolve(log: Calls):
    """The outcome written to the rosters, recorded once done and after a moment (a real write takes one): an update
    that answered before it would find nothing recorded."""
    @activity.defn(name=calls.RESOLVE_DUPLICATE)
    async def resolve(*args) -> None:
        await asyncio.sleep(0.3)
        log.log.append((calls.RESOLVE_DUPLICATE, args))

    return resolve


async def open_case(env, queue: str, kind: str = "obec"):
    """The parties' stand-in round workflows, then the case."""
    rid = f"r-{uuid.uuid4().hex[:6]}"
    schools = {s: await env.client.start_workflow(SchoolInbox.run, id=school_round_id(rid, s), task_queue=queue)
               for s in (HOLDER, CLAIMANT)}
    inp = DuplicateCaseInput(case_id=f"dup-{uuid.uuid4().hex[:8]}", round_id=rid, kind=kind,
                             parties=[HOLDER, CLAIMANT], areas=[AREA_H, AREA_C], holder_area=AREA_H)
    case = await env.client.start_workflow(DuplicateCaseWorkflow.run, inp, id=f"fast-{inp.case_id}", task_queue=queue)
    return case, schools


async def signals(log: Calls, school: str) -> list[str]:
    """What the case told this school's round (through TELL_SCHOOL, which starts the school if need be)."""
    return [args[2] for args in log.of(calls.TELL_SCHOOL) if args[1] == school]


def told(log: Calls) -> list[str]:
    return [args[1] for args in log.of(calls.NOTIFY_DUPLICATE)]


async def test_a_claim_blocks_only_the_claimant_until_the_holders_district_opens_it(time_env):
    log = Calls()
    far = (await time_env.get_current_time()) + timedelta(days=10)
    async with stub_worker(time_env, [DuplicateCaseWorkflow, SchoolInbox], activities(log, [far])) as queue:
        case, schools = await open_case(time_env, queue)
        await eventually(lambda: told(log) == ["claimed"])
        assert await signals(log, CLAIMANT) == ["case_opened"] and await signals(log, HOLDER) == []
        with pytest.raises(WorkflowUpdateFailedError) as refused:  # the claimant's own district may not open it
            await case.execute_update(DuplicateCaseWorkflow.open_case, ClaimReviewIn(actor=CLAIMANT_OFFICER))
        assert refused.value.cause.type == "out_of_scope"
        await case.execute_update(DuplicateCaseWorkflow.open_case, ClaimReviewIn(actor=HOLDER_OFFICER))
        await eventually(lambda: told(log) == ["claimed", "opened"])
        assert await signals(log, HOLDER) == ["case_opened"]

        state = await case.execute_update(DuplicateCaseWorkflow.declare, DeclareIn(school=HOLDER, claim="absent",
                                                                                   actor=staff(HOLDER)))
        # issue 19: the answer comes once the outcome is on the rosters (the API reads the case once, no polling)
        assert state.resolved and [a[1] for a in log.of(calls.RESOLVE_DUPLICATE)] == [CLAIMANT]
        assert await case.result() == CLAIMANT  # the holder says the student left: the claimant keeps them
        assert await signals(log, HOLDER) == ["case_opened", "case_closed"]
    assert [a[1] for a in log.of(calls.RESOLVE_DUPLICATE)] == [CLAIMANT]
    assert told(log)[-1] == "resolved"


async def test_present_with_evidence_unblocks_the_declarer_at_once_and_the_district_decides_at_the_cutoff(time_env):
    log = Calls()
    cutoff = (await time_env.get_current_time()) + timedelta(hours=6)
    async with stub_worker(time_env, [DuplicateCaseWorkflow, SchoolInbox], activities(log, [cutoff])) as queue:
        case, schools = await open_case(time_env, queue, kind="obec")
        await eventually(lambda: told(log) == ["claimed"])
        await case.execute_update(DuplicateCaseWorkflow.open_case, ClaimReviewIn(actor=HOLDER_OFFICER))
        await case.execute_update(DuplicateCaseWorkflow.declare,
                                  DeclareIn(school=HOLDER, claim="present", evidence="ab" * 32, actor=staff(HOLDER)))
        assert await signals(log, HOLDER) == ["case_opened", "case_closed"]  # its part is done
        assert await signals(log, CLAIMANT) == ["case_opened"]  # the silent party stays blocked

        with pytest.raises(WorkflowUpdateFailedError) as early:  # before the cutoff the schools settle it
            await case.execute_update(DuplicateCaseWorkflow.decide,
                                      DecideIn(keep_school=HOLDER, actor=HOLDER_OFFICER, reason="หลักฐานครบ"))
        assert early.value.cause.type == "not_for_district"

        await time_env.sleep(timedelta(hours=7))  # the first party's cutoff passes with the case open
        assert len(log.of(calls.HAND_DUPLICATE_TO_DISTRICT)) == 1
        state = await case.execute_update(DuplicateCaseWorkflow.decide,
                                          DecideIn(keep_school=HOLDER, actor=HOLDER_OFFICER, reason="หลักฐานครบ"))
        assert state.decision.keep_school == HOLDER
        assert [a[1] for a in log.of(calls.RESOLVE_DUPLICATE)] == [HOLDER]  # applied before the answer
        assert await case.result() == HOLDER
        # the school unblocked early is told its roster may have changed; the other is unblocked by the close
        assert await signals(log, HOLDER) == ["case_opened", "case_closed", "case_closed", "roster_changed"]
        assert await signals(log, CLAIMANT) == ["case_opened", "case_closed"]


async def test_a_school_cannot_declare_for_another(time_env):
    log = Calls()
    far = (await time_env.get_current_time()) + timedelta(days=10)
    async with stub_worker(time_env, [DuplicateCaseWorkflow, SchoolInbox], activities(log, [far])) as queue:
        case, _ = await open_case(time_env, queue)
        await eventually(lambda: told(log) == ["claimed"])
        await case.execute_update(DuplicateCaseWorkflow.open_case, ClaimReviewIn(actor=HOLDER_OFFICER))
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await case.execute_update(DuplicateCaseWorkflow.declare,
                                      DeclareIn(school=HOLDER, claim="absent", actor=staff(CLAIMANT)))
        assert refused.value.cause.type == "out_of_scope"
        assert (await case.query(DuplicateCaseWorkflow.status)).declarations == {}
        await case.terminate()
    assert log.of(calls.RECORD_DUPLICATE_DECLARATIONS) == []
