"""Finding 1 (issue 15): whoever reaches the Temporal frontend could act on a school's workflow as any role.

An attacker's client connects to the same Temporal server with the plain pydantic converter (no codec, no key)
and sends decisions and a signal straight to a school's workflow: the updates are refused, the signal changes
nothing, the school's state (API and the `snapshot` query) and audit trail stay as they were, and the school
still works afterwards. A payload sealed with a key that is not in the ring is refused the same way.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError

from domain.messages import ExtendDeadline
from domain.school_round import Actor, BlockingCase, SchoolRoundState
from tests.stack import SCHOOL, keep_history, make_ready, running_stack, tomorrows_round
from tests.timing import skip_to
from workflows.ids import school_round_id

FORGER = Actor(user_id="u-forger", role="admin")


async def attacker(stack, converter=pydantic_data_converter) -> Client:
    """A second client of the same Temporal server, without our keys."""
    config = stack.client.service_client.config
    return await Client.connect(config.target_host, namespace=stack.client.namespace, data_converter=converter)


async def observed(stack, rid: str) -> tuple:
    """What a user and an operator see of the school: the API's view, the workflow's own state, the audit."""
    url = f"/rounds/{rid}/schools/{SCHOOL}"
    view = (await stack.http.get(url, headers=stack.auth("admin"))).json()
    audit = (await stack.http.get(f"{url}/audit", headers=stack.auth("admin"))).json()
    state = await stack.client.get_workflow_handle(school_round_id(rid, SCHOOL)).query(
        "snapshot", result_type=SchoolRoundState)
    return view, audit, state


async def signal_handled(stack, rid: str, name: str) -> None:
    """Wait (in real time: the effect is already due) until the workflow has completed a workflow task after the
    signal arrived, i.e. it took the signal or dropped it."""
    handle = stack.client.get_workflow_handle(school_round_id(rid, SCHOOL))

    async def seen() -> bool:
        events = (await handle.fetch_history()).events
        signalled = [i for i, e in enumerate(events) if e.HasField("workflow_execution_signaled_event_attributes")
                     and e.workflow_execution_signaled_event_attributes.signal_name == name]
        return bool(signalled) and any(e.HasField("workflow_task_completed_event_attributes")
                                       for e in events[signalled[-1]:])

    for _ in range(300):
        if await seen():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"signal {name} never handled")


async def forge_everything(stack, rid: str, client: Client, cutoff) -> None:
    handle = client.get_workflow_handle(school_round_id(rid, SCHOOL))
    later = cutoff + timedelta(days=2)
    # Refused: the update fails. The refusal's details are sealed with our key, so the attacker's own converter
    # may not even read why (KeyError: no codec; ApplicationError: a codec with other keys).
    with pytest.raises((WorkflowUpdateFailedError, KeyError, ApplicationError)):
        await handle.execute_update("extend_deadline", ExtendDeadline(cutoff_at=later, reason="forged", actor=FORGER))
    with pytest.raises((WorkflowUpdateFailedError, KeyError, ApplicationError)):
        await handle.execute_update("confirm", Actor(user_id="u-forger", role="staff", school_code=SCHOOL))
    await handle.signal("case_opened", BlockingCase(kind="duplicate", ref="forged-case"))
    await signal_handled(stack, rid, "case_opened")


async def test_forged_decisions_and_signals_straight_to_temporal_change_nothing(time_env, engine, settings):
    async with running_stack(time_env, engine, settings) as stack:
        rid, _, confirm_from, cutoff = await tomorrows_round(stack)
        await make_ready(stack, rid, SCHOOL)
        await skip_to(stack, confirm_from + timedelta(minutes=5))
        before = await observed(stack, rid)

        await forge_everything(stack, rid, await attacker(stack), cutoff)

        assert await observed(stack, rid) == before
        view, audit, state = before
        assert state.blocking == [] and state.schedule.cutoff_at == cutoff
        assert not [e for e in audit if e["actor"] == "u-forger"]
        # the workflow is not wedged: a real decision through the API goes through, by its real actor
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 200 and r.json()["stage"] == "confirmed", r.text
        # sealed payloads, and a forged plaintext signal that was dropped: tests/test_replay.py replays it
        await keep_history(stack, school_round_id(rid, SCHOOL), "v5-school_round_forged_signal_dropped")


async def test_a_payload_sealed_with_a_key_outside_the_ring_is_refused(time_env, engine, settings):
    from dmcflow.payload_codec import KeyRing, data_converter_for, new_key  # here: the first test runs on old code
    from tests.payload_keys import TEST_KEY_ID

    async with running_stack(time_env, engine, settings) as stack:
        rid, _, confirm_from, cutoff = await tomorrows_round(stack)
        await make_ready(stack, rid, SCHOOL)
        await skip_to(stack, confirm_from + timedelta(minutes=5))
        before = await observed(stack, rid)
        for ring in (KeyRing.parse({"stolen-id-unknown": new_key()}, None),  # a key id we never had
                     KeyRing.parse({TEST_KEY_ID: new_key()}, None)):  # our key id, another key
            await forge_everything(stack, rid, await attacker(stack, data_converter_for(ring)), cutoff)
        assert await observed(stack, rid) == before
        r = await stack.http.post(f"/rounds/{rid}/schools/{SCHOOL}/confirmation", headers=stack.auth("staff"))
        assert r.status_code == 200 and r.json()["stage"] == "confirmed", r.text


async def test_a_forged_workflow_start_fails_at_once_and_records_nothing(time_env, engine, settings):
    """Starting a workflow cannot be stopped by a codec (that is the frontend's mTLS / API key), but the
    forged input is never acted upon: the workflow fails on its first task instead of retrying it forever."""
    async with running_stack(time_env, engine, settings) as stack:
        rid, *_ = await tomorrows_round(stack, start=False)
        client = await attacker(stack)
        handle = await client.start_workflow("SchoolRoundWorkflow", {"state": {"round_id": rid}},
                                             id=f"forged-{rid}", task_queue=settings.task_queue)
        with pytest.raises(WorkflowFailureError) as failed:
            await stack.client.get_workflow_handle(handle.id).result()
        assert "payload_unauthenticated" in repr(failed.value.cause) + str(failed.value.cause)
        r = await stack.http.get(f"/rounds/{rid}/schools/{SCHOOL}/audit", headers=stack.auth("admin"))
        assert r.status_code in (200, 404) and (r.status_code == 404 or r.json() == []), r.text
