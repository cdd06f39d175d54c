"""The workflow sandbox as dmcflow's workers run it: every workflow instance still gets its own fresh copy of its
workflow module (own globals, the sandbox's restricted modules and builtins, its determinism checks), but not its
own compilation of it, nor its own copy of the pure modules it only reads.

- Code objects are immutable: the sandbox re-executes a workflow module for each instance, and compiling its
  source each time (no .pyc is written where PYTHONDONTWRITEBYTECODE is set, as in the image) cost every cached
  school workflow about 50 KB of code objects and a few milliseconds of CPU. The workflow modules' code is
  compiled once per process and shared; each instance still runs it in its own module namespace.
- Pure modules (the domain's rules and messages, the workflows' constants) are passed through: the workflow
  modules import them inside `imports_passed_through()`, but `from workflows import activity_calls` reaches
  the submodule past the sandbox's import hook, so each instance loaded its own copy.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
from types import CodeType

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

WORKFLOW_PACKAGE = "workflows"
SHARED_MODULES = ("domain", "workflows.activity_calls", "workflows.search_attributes", "workflows.ids",
                  "workflows.refusal_errors")


class _CompiledOnce(importlib.machinery.SourceFileLoader):
    _codes: dict[str, CodeType] = {}
    _lock = threading.Lock()

    def get_code(self, fullname: str) -> CodeType:
        with self._lock:
            code = self._codes.get(self.path)
            if code is None:
                code = self._codes[self.path] = super().get_code(fullname)
            return code


class _WorkflowModules(importlib.abc.MetaPathFinder):
    """Finds the workflow package's modules as usual, and loads them with code compiled once."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != WORKFLOW_PACKAGE and not fullname.startswith(WORKFLOW_PACKAGE + "."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and type(spec.loader) is importlib.machinery.SourceFileLoader:
            spec.loader = _CompiledOnce(spec.loader.name, spec.loader.path)
        return spec


_FINDER = _WorkflowModules()


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandboxed runner of dmcflow's workers and replayers."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*SHARED_MODULES))
