"""Replay: stored histories of every workflow type must replay on today's code.

A change that alters what a running workflow would do fails here; guard it with `workflow.patched`.
Histories are recorded from the lifecycle tests: DMCFLOW_RECORD_HISTORIES=1 pytest tests/test_lifecycle_api.py
tests/test_deadlines.py, then commit tests/histories/ (only when a change is meant to be history-compatible).
"""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from dmcflow.temporal_client import DATA_CONVERTER
from tests.stack import HISTORIES
from worker import WORKFLOWS

STORED = sorted(HISTORIES.glob("*.json"))


def test_every_workflow_type_has_a_stored_history():
    types = set()
    for path in STORED:
        history = WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
        types.add(history.events[0].workflow_execution_started_event_attributes.workflow_type.name)
    assert types == {w.__name__ for w in WORKFLOWS}


@pytest.mark.parametrize("path", STORED, ids=[p.stem for p in STORED])
async def test_stored_history_replays(path):
    history = WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
    replayer = Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER)
    await replayer.replay_workflow(history)  # raises on any nondeterminism
