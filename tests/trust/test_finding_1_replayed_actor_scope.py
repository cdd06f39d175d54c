"""Finding 1 of issue 15 (the actor's scope): a decision captured from one school and replayed to another
school's workflow, or a district's extension replayed to a school outside its area, is refused by the workflow
itself, with the state, the projection and the audit trail unchanged.

Each payload is captured from a real decision's history (what the API sent, decoded with the stack's own
data converter) and sent straight to Temporal through the stack's client: nothing at the API's door stops it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError

from api.workflow_updates import refusal_from_update_failure
from domain.messages import ExtendDeadline, FanoutInput
from domain.school_round import Actor, SchoolRoundState
from tests.stack import AREA, OTHER_AREA, OTHER_SCHOOL, SCHOOL, SCHOOL_2, make_ready, running_stack, tomorrows_round
from tests.timing import bangkok_on_day, skip_to
from workflows.ids import fanout_id, school_round_id
from workflows.round_fanout import RoundFanoutWorkflow
from workflows.school_round import SchoolRoundWorkflow


async def captured(stack, rid: str, school: str, update: str, arg_type: type):
    """The argument of the last accepted `update` in the school's workflow history, as the API sent it."""
    history = await stack.client.get_workflow_handle(school_round_id(rid, school)).fetch_history()
    requests = [e.workflow_execution_update_accepted_event_attributes.accepted_request for e in history.events
                if e.HasField("workflow_execution_update_accepted_event_attributes")]
    [arg] = await stack.client.data_converter.decode(
        [r for r in requests if r.input.name == update][-1].input.args.payloads, [arg_type])
    return arg


async def refused_update(stack, school: str, rid: str, update, arg) -> str:
    handle = stack.client.get_workflow_handle(school_round_id(rid, school))
    with pytest.raises(WorkflowUpdateFailedError) as exc:
        await handle.execute_update(update, arg, result_type=SchoolRoundState)
    return refusal_from_update_failure(exc.value).code


async def seen(stack, rid: str, school: str) -> tuple[dict, list[str], SchoolRoundState]:
    """What anyone would notice of a school: its projection, its audit trail and its workflow's state."""
    view = (await stack.http.get(f"/rounds/{rid}/schools/{school}", headers=stack.auth("admin"))).json()
    audit = (await stack.http.get(f"/rounds/{rid}/schools/{school}/audit", headers=stack.auth("admin"))).json()
    state = await stack.client.get_workflow_handle(school_round_id(rid, school)).query(SchoolRoundWorkflow.snapshot)
    return ({k: view[k] for k in ("stage", "cutoff_at", "confirmed", "certified")},
            [e["action"] for e in audit], state)


async def test_school_decisions_replayed_to_another_school_are_refused(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        rid, _, confirm_from, _ = await tomorrows_round(stack)
        await make_ready(stack, rid, SCHOOL)
        await make_ready(stack, rid, SCHOOL_2)
        await skip_to(stack, confirm_from + timedelta(minutes=5))
        a = f"/rounds/{rid}/schools/{SCHOOL}"

        # school A's staff confirm A; the payload is captured and replayed to school B's workflow
        assert (await stack.http.post(f"{a}/confirmation", headers=stack.auth("staff"))).status_code == 200
        staff_a = await captured(stack, rid, SCHOOL, "confirm", Actor)
        before = await seen(stack, rid, SCHOOL_2)
        assert before[0]["stage"] == "confirmation_window"
        assert await refused_update(stack, SCHOOL_2, rid, SchoolRoundWorkflow.confirm, staff_a) == "out_of_scope"
        # the same without its scope (as payloads were before they carried one) is no better
        bare = Actor(user_id=staff_a.user_id, role="staff")
        assert await refused_update(stack, SCHOOL_2, rid, SchoolRoundWorkflow.confirm, bare) == "out_of_scope"
        assert await refused_update(stack, SCHOOL_2, rid, SchoolRoundWorkflow.withdraw_confirmation,
                                    staff_a) == "out_of_scope"
        assert await seen(stack, rid, SCHOOL_2) == before

        # school A's director certifies A; replayed to B (confirmed by its own staff), it is refused
        assert (await stack.http.post(f"{a}/certification", headers=stack.auth("director"))).status_code == 200
        director_a = await captured(stack, rid, SCHOOL, "certify", Actor)
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL_2}/confirmation", headers=stack.auth("staff2"))
        assert r.status_code == 200 and r.json()["stage"] == "confirmed", r.text
        before = await seen(stack, rid, SCHOOL_2)
        assert await refused_update(stack, SCHOOL_2, rid, SchoolRoundWorkflow.certify, director_a) == "out_of_scope"
        after = await seen(stack, rid, SCHOOL_2)
        assert after == before and after[0]["stage"] == "confirmed" and "certify" not in after[1]

        # what was captured is what the API sends: the user's id, role and school
        assert (staff_a.role, staff_a.school_code, director_a.role, director_a.school_code) == (
            "staff", SCHOOL, "director", SCHOOL)


async def test_a_district_extension_replayed_outside_its_area_is_refused(time_env, engine, settings, smtp):
    async with running_stack(time_env, engine, settings) as stack:
        rid, now, confirm_from, cutoff = await tomorrows_round(stack)
        await skip_to(stack, confirm_from)
        # area X's district extends one of its schools; the payload is captured
        body = {"school_code": SCHOOL, "cutoff_at": bangkok_on_day(now, 16, 30, days=3).isoformat(), "reason": "ขยายเวลา"}
        r = await stack.http.post(f"/rounds/{rid}/deadline-extensions", headers=stack.auth("district"), json=body)
        assert r.status_code == 200, r.text
        change = await captured(stack, rid, SCHOOL, "extend_deadline", ExtendDeadline)

        # replayed to a school of area Y, straight to its workflow (started by its own staff's first roster change:
        # in an area-timed round a school's workflow exists once it has acted, issue 18)
        await make_ready(stack, rid, OTHER_SCHOOL)
        before = await seen(stack, rid, OTHER_SCHOOL)
        assert await refused_update(stack, OTHER_SCHOOL, rid, SchoolRoundWorkflow.extend_deadline,
                                    change) == "out_of_scope"
        assert await seen(stack, rid, OTHER_SCHOOL) == before

        # area Y's fan-out, started by hand with the captured extension: refused before any school
        # (the clock stays put meanwhile, so that only the refusal could change what the school shows)
        with stack.env.auto_time_skipping_disabled(), pytest.raises(WorkflowFailureError) as exc:
            await stack.client.execute_workflow(
                RoundFanoutWorkflow.run, FanoutInput(round_id=rid, operation="extend", area=OTHER_AREA,
                                                     extension=change.model_copy(update={"scope": f"area:{OTHER_AREA}"})),
                id=fanout_id(rid, "extend", "forged-area"), task_queue=settings.ops_task_queue)
        assert exc.value.cause.type == "out_of_scope"
        # and the whole round is the administrator's
        with stack.env.auto_time_skipping_disabled(), pytest.raises(WorkflowFailureError) as exc:
            await stack.client.execute_workflow(
                RoundFanoutWorkflow.run, FanoutInput(round_id=rid, operation="extend",
                                                     extension=change.model_copy(update={"scope": "round"})),
                id=fanout_id(rid, "extend", "forged-round"), task_queue=settings.ops_task_queue)
        assert exc.value.cause.type == "forbidden"
        after = await seen(stack, rid, OTHER_SCHOOL)
        assert after == before and "extend_deadline" not in after[1]
        assert after[2].schedule.cutoff_at == cutoff
        assert (change.actor.role, change.actor.area) == ("district", AREA)  # what the API sent
