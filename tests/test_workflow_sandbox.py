"""The worker's sandbox (dmcflow/sandbox.py) shares compiled code and pure modules, never the checks.

A workflow module is still loaded afresh for each workflow instance, in the sandbox, so a workflow that reaches
for the clock, the file system or the network is still refused; only its compiled code is shared.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError

import workflows
from dmcflow.sandbox import _CompiledOnce, workflow_runner

NONDETERMINISTIC = '''
from datetime import date

from temporalio import workflow

TODAY = date.today()  # the machine's clock, read while the module loads: the sandbox must refuse it


@workflow.defn
class ReadsTheClock:
    @workflow.run
    async def run(self) -> str:
        return TODAY.isoformat()
'''

HARMLESS = '''
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows import activity_calls as calls


@workflow.defn
class Harmless:
    @workflow.run
    async def run(self) -> str:
        return calls.LOAD_GATE
'''


@pytest.fixture
def workflow_module():
    """Writes a module into the `workflows` package (the sandbox loads that package afresh, so the file must be
    there), imports it, answers it; removes it afterwards."""
    folder = Path(workflows.__file__).parent
    names: list[str] = []

    def load(source: str):
        name = f"_sandbox_test_{uuid.uuid4().hex[:8]}"
        (folder / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
        names.append(name)
        workflow_runner()  # installs the finder, as the worker does
        importlib.invalidate_caches()
        return importlib.import_module(f"workflows.{name}")

    yield load
    for name in names:
        (folder / f"{name}.py").unlink(missing_ok=True)
        sys.modules.pop(f"workflows.{name}", None)


def test_a_workflow_that_reads_the_clock_is_still_refused(workflow_module):
    module = workflow_module(NONDETERMINISTIC)
    assert isinstance(module.__spec__.loader, _CompiledOnce)  # loaded through the shared-code loader
    with pytest.raises(RestrictedWorkflowAccessError):
        workflow_runner().prepare_workflow(workflow._Definition.must_from_class(module.ReadsTheClock))


async def test_a_workflow_module_is_compiled_once_and_loaded_afresh(workflow_module):
    module = workflow_module(HARMLESS)
    loader = module.__spec__.loader
    first = loader.get_code(module.__name__)
    assert loader.get_code(module.__name__) is first  # the same code object for every instance
    workflow_runner().prepare_workflow(workflow._Definition.must_from_class(module.Harmless))  # still sandboxed: fine
