"""Replay: stored histories of every workflow type must replay on today's code.

A change that alters what a running workflow would do fails here; guard it with `workflow.patched`.
Histories are recorded from the lifecycle tests: DMCFLOW_RECORD_HISTORIES=1 pytest tests/test_lifecycle_api.py
tests/test_deadlines.py, then commit tests/histories/ (only when a change is meant to be history-compatible).
They are recorded with the tests' fixed payload key (tests/payload_keys.py), so their payloads are encrypted.
"""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.payload_keys import sealed_converter
from tests.stack import HISTORIES
from worker import WORKFLOWS

STORED = sorted(HISTORIES.glob("*.json"))


def test_every_workflow_type_has_a_stored_history():
    types = set()
    for path in STORED:
        history = WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
        types.add(history.events[0].workflow_execution_started_event_attributes.workflow_type.name)
    assert types == {w.__name__ for w in WORKFLOWS}


def sealed(path) -> bool:
    """Histories from v5 on were recorded with payloads encrypted (the tests' fixed key); the older ones in
    plaintext, and they can only replay with DMCFLOW_PAYLOAD_ACCEPT_PLAINTEXT, as running workflows started
    before encryption was turned on do."""
    prefix = path.name.split("-", 1)[0]
    return prefix.startswith("v") and prefix[1:].isdigit() and int(prefix[1:]) >= 5


@pytest.mark.parametrize("path", STORED, ids=[p.stem for p in STORED])
async def test_stored_history_replays(path):
    history = WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
    replayer = Replayer(workflows=WORKFLOWS, data_converter=sealed_converter(accept_plaintext=not sealed(path)))
    await replayer.replay_workflow(history)  # raises on any nondeterminism


def test_a_sealed_history_is_stored():
    assert [p for p in STORED if sealed(p)]


@pytest.mark.parametrize("path", [p for p in STORED if not sealed(p)][:1], ids=lambda p: p.stem)
async def test_a_plaintext_history_does_not_replay_when_plaintext_is_refused(path):
    """The worker does refuse plaintext: its start input cannot be read, so the replay goes another way."""
    history = WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
    replayer = Replayer(workflows=WORKFLOWS, data_converter=sealed_converter())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None
