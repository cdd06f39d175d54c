"""Signals are named by their methods (`SchoolRoundWorkflow.case_opened`), so a rename is caught by the type checker;
but a name also crosses as a string where a method cannot: in the TELL_SCHOOL activity's arguments (stored in the
histories of running cases) and in the intake's signal-with-start. Those names must stay as running workflows hold
them: a renamed method keeps its old one with `@workflow.signal(name=...)`."""

from __future__ import annotations

from workflows.activity_calls import signal_name
from workflows.area_cutoff import AreaCutoffWorkflow
from workflows.area_round import AreaRoundWorkflow
from workflows.inbound_intake import InboundIntakeWorkflow
from workflows.school_round import SchoolRoundWorkflow


def test_the_signal_names_running_workflows_hold_are_kept():
    assert [signal_name(s) for s in (SchoolRoundWorkflow.case_opened, SchoolRoundWorkflow.case_closed,
                                     SchoolRoundWorkflow.roster_changed)] == ["case_opened", "case_closed",
                                                                              "roster_changed"]
    assert signal_name(AreaRoundWorkflow.deadline_moved) == signal_name(AreaCutoffWorkflow.deadline_moved) \
        == "deadline_moved"
    assert signal_name(InboundIntakeWorkflow.received) == "received"
    assert signal_name("case_opened") == "case_opened"  # a name read back from a history passes unchanged
