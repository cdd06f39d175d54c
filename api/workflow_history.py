"""One school's workflow history, reduced to timeline items (domain.school_timeline.HistoryItem).

Asked of Temporal for that one school only, when someone opens its timeline or evidence pack. The
history holds no personal data (domain.md, "No personal data in Temporal"); only the names of
updates and signals, the actor's opaque user id and case references are taken from payloads.
"""

from __future__ import annotations

import json
import logging
from datetime import timezone

from temporalio.api.common.v1 import Payloads
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.service import RPCError

from domain.school_timeline import HistoryItem
from workflows import activity_calls as calls
from workflows.ids import school_round_id

log = logging.getLogger(__name__)
MAX_RUNS = 50  # continue-as-new chains are followed back this far
CLOSED = {"workflow_execution_completed_event_attributes", "workflow_execution_failed_event_attributes",
          "workflow_execution_terminated_event_attributes", "workflow_execution_timed_out_event_attributes",
          "workflow_execution_canceled_event_attributes"}


def _args(payloads: Payloads) -> list:
    out = []
    for p in payloads.payloads:
        try:
            out.append(json.loads(p.data) if p.metadata.get("encoding", b"").startswith(b"json") else None)
        except ValueError:
            out.append(None)
    return out


def _actor(args: list) -> str | None:
    for arg in args:
        if isinstance(arg, dict):
            found = arg.get("user_id") or (arg.get("actor") or {}).get("user_id")
            if isinstance(found, str):
                return found
    return None


def items_of(events: list[HistoryEvent]) -> tuple[list[HistoryItem], str | None]:
    """Answers the run's items and, when the run continued an earlier one, that run's id."""
    items: list[HistoryItem] = []
    timers: dict[int, object] = {}
    previous = None
    for e in events:
        at = e.event_time.ToDatetime(tzinfo=timezone.utc)
        kind = e.WhichOneof("attributes")
        if kind == "workflow_execution_started_event_attributes":
            previous = e.workflow_execution_started_event_attributes.continued_execution_run_id or None
            if previous is None:
                items.append(HistoryItem(at=at, kind="started"))
        elif kind == "timer_started_event_attributes":
            fire_at = at + e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
            timers[e.event_id] = fire_at
            items.append(HistoryItem(at=at, kind="timer_started", fire_at=fire_at))
        elif kind == "timer_fired_event_attributes":
            fire_at = timers.get(e.timer_fired_event_attributes.started_event_id)
            items.append(HistoryItem(at=at, kind="timer_fired", fire_at=fire_at or at))
        elif kind == "timer_canceled_event_attributes":
            fire_at = timers.get(e.timer_canceled_event_attributes.started_event_id)
            items.append(HistoryItem(at=at, kind="timer_canceled", fire_at=fire_at or at))
        elif kind == "workflow_execution_update_accepted_event_attributes":
            request = e.workflow_execution_update_accepted_event_attributes.accepted_request
            items.append(HistoryItem(at=at, kind="update", name=request.input.name,
                                     actor=_actor(_args(request.input.args))))
        elif kind == "workflow_execution_signaled_event_attributes":
            attrs = e.workflow_execution_signaled_event_attributes
            args = _args(attrs.input)
            first = args[0] if args else None
            ref = first.get("ref") if isinstance(first, dict) else first if isinstance(first, str) else None
            case_kind = first.get("kind") if isinstance(first, dict) else None
            items.append(HistoryItem(at=at, kind="signal", name=attrs.signal_name, ref=ref, case_kind=case_kind))
        elif kind == "activity_task_scheduled_event_attributes":
            if e.activity_task_scheduled_event_attributes.activity_type.name == calls.SEND_SCHOOL_REMINDER:
                items.append(HistoryItem(at=at, kind="reminder"))
        elif kind == "workflow_execution_continued_as_new_event_attributes":
            items.append(HistoryItem(at=at, kind="continued"))
        elif kind in CLOSED:
            items.append(HistoryItem(at=at, kind="closed"))
    return items, previous


async def _open_payloads(client: Client, events) -> None:
    """Histories hold encrypted payloads (dmcflow/payload_codec.py), and fetching one does not decode it: open
    the few the timeline reads with the client's codec. One that fails authentication reads as nothing."""
    codec = client.data_converter.payload_codec
    if codec is None:
        return
    for e in events:
        kind = e.WhichOneof("attributes")
        if kind == "workflow_execution_update_accepted_event_attributes":
            await codec.decode_wrapper(e.workflow_execution_update_accepted_event_attributes.accepted_request.input.args)
        elif kind == "workflow_execution_signaled_event_attributes":
            await codec.decode_wrapper(e.workflow_execution_signaled_event_attributes.input)


async def school_history(client: Client, round_id: str, school_code: str) -> list[HistoryItem] | None:
    """The school's whole history, across continue-as-new; None when Temporal has none (not started,
    or past its retention) or cannot be reached: the timeline then shows the audit trail alone."""
    workflow_id = school_round_id(round_id, school_code)
    items: list[HistoryItem] = []
    run_id: str | None = None
    try:
        for _ in range(MAX_RUNS):
            history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
            await _open_payloads(client, history.events)
            run_items, run_id = items_of(list(history.events))
            items = run_items + items
            if run_id is None:
                break
    except RPCError as exc:
        log.info("no workflow history for %s: %s", workflow_id, exc.status.name if exc.status else exc)
        return None if not items else items
    return items
