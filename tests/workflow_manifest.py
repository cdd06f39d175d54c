"""Which workflow code the stored histories were recorded against: the guard that makes a workflow change
think about the workflows already running.

    python -m tests.workflow_manifest            # check (what CI does, in tests/test_workflow_manifest.py)
    python -m tests.workflow_manifest --update   # after recording a history of the changed workflow
    python -m tests.workflow_manifest --update --acknowledge workflows/x.py="only a log line changed"

tests/test_replay.py replays every stored history on today's code, which catches a change that breaks a
running workflow *on the paths those histories took*. It cannot see the rest: a change on a path no
stored history covers, or a history re-recorded with the new code (it then replays trivially, and the
workflows started by the old code break in production). So tests/workflow_manifest.json records, for
every module of workflows/, a hash of its code (its syntax tree: comments, docstrings and formatting do
not count), and for every stored history its own hash. The check fails when

- a workflow module's code differs from the manifest (changed, added or removed), or
- a stored history was rewritten or deleted (histories are the running workflows: add, never replace), or
- a history file is not in the manifest.

`--update` accepts a changed module only together with a newly recorded history of each workflow type it
defines (a helper such as search_attributes.py: of each type whose module imports it), or an explicit
`--acknowledge` with the reason the change cannot affect running workflows; the reason is kept in the
manifest for review.
What the developer is told to do is in HOW_TO below.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MANIFEST_NAME = "tests/workflow_manifest.json"
HOW_TO = """\
Workflows started by the previous code may still be running, and they will replay on the new code.
1. Keep every stored history in tests/histories/ as it is: they are those running workflows.
2. Guard each change of what the workflow does (a new or removed activity, timer, child, signal wait,
   a different order) with `if workflow.patched("<change-id>"):` so that old histories still replay;
   run tests/test_replay.py.
3. Record a history of the new code under a new name: DMCFLOW_RECORD_HISTORIES=1 python -m pytest <the
   test that runs it> (see tests/stack.py keep_history), then rename the new file(s) if they overwrote
   existing ones and restore those with git.
4. python -m tests.workflow_manifest --update   (or, when the change cannot alter any command the
   workflow issues, --acknowledge workflows/<file>.py="why") and commit tests/workflow_manifest.json."""


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return tree


def code_hash(source: str) -> str:
    """The code's syntax tree, without docstrings: a comment or a reformatting is no change."""
    tree = _strip_docstrings(ast.parse(source))
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def workflow_types(source: str) -> list[str]:
    """Classes decorated with @workflow.defn (its `name=` when given)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        for deco in node.decorator_list:
            target = deco.func if isinstance(deco, ast.Call) else deco
            if isinstance(target, ast.Attribute) and target.attr == "defn" and \
                    isinstance(target.value, ast.Name) and target.value.id == "workflow":
                names = [k.value.value for k in getattr(deco, "keywords", []) if k.arg == "name"
                         and isinstance(k.value, ast.Constant)]
                found.append(names[0] if names else node.name)
    return sorted(found)


def workflow_imports(source: str) -> list[str]:
    """The modules of workflows/ this one imports (`from workflows import ids`, `from workflows.ids import x`)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == "workflows":
            found |= {f"workflows/{a.name}.py" for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("workflows."):
            found.add(node.module.replace(".", "/") + ".py")
        elif isinstance(node, ast.Import):
            found |= {a.name.replace(".", "/") + ".py" for a in node.names if a.name.startswith("workflows.")}
    return sorted(found)


def history_type(path: Path) -> str:
    events = json.loads(path.read_text(encoding="utf-8"))["events"]
    return events[0]["workflowExecutionStartedEventAttributes"]["workflowType"]["name"]


@dataclass
class Tree:
    """What is on disk now."""

    workflows: dict[str, dict] = field(default_factory=dict)  # path -> {"code", "types"}
    histories: dict[str, dict] = field(default_factory=dict)  # file name -> {"sha256", "type"}

    @classmethod
    def read(cls, root: Path = ROOT) -> "Tree":
        tree = cls()
        for path in sorted((root / "workflows").glob("*.py")):
            source = path.read_text(encoding="utf-8")
            tree.workflows[path.relative_to(root).as_posix()] = {"code": code_hash(source),
                                                                 "types": workflow_types(source),
                                                                 "imports": workflow_imports(source)}
        for path in sorted((root / "tests" / "histories").glob("*.json")):
            tree.histories[path.name] = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                                         "type": history_type(path)}
        return tree


def load(root: Path = ROOT) -> dict:
    path = root / MANIFEST_NAME
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"workflows": {}, "histories": {}}


def problems(manifest: dict, tree: Tree) -> list[str]:
    found = []
    for name, entry in manifest["histories"].items():
        now = tree.histories.get(name)
        if now is None:
            found.append(f"stored history {name} was deleted")
        elif now["sha256"] != entry["sha256"]:
            found.append(f"stored history {name} was rewritten (record new histories under new names)")
    for name in sorted(set(tree.histories) - set(manifest["histories"])):
        found.append(f"history {name} is not in the manifest (run --update)")
    for path, now in tree.workflows.items():
        entry = manifest["workflows"].get(path)
        if entry is None:
            found.append(f"{path} ({', '.join(now['types']) or 'helpers'}) is new: record a history of it")
        elif entry["code"] != now["code"]:
            found.append(f"{path} ({', '.join(now['types']) or 'helpers of every workflow'}) changed since its "
                         "histories were recorded")
    for path in sorted(set(manifest["workflows"]) - set(tree.workflows)):
        found.append(f"{path} was removed: are none of its workflows still running? (run --update)")
    return found


def update(manifest: dict, tree: Tree, acknowledge: dict[str, str],
           forget: set[str] = frozenset()) -> tuple[dict, list[str]]:
    """The new manifest, and why it cannot be written (empty when it can)."""
    errors = [p for p in problems(manifest, tree)
              if p.startswith("stored history") and p.split()[2] not in forget]
    old_histories = {n: h for n, h in manifest["histories"].items() if n not in forget}
    new_histories = {n: h for n, h in tree.histories.items() if n not in old_histories}
    result = {"workflows": {}, "histories": {}}
    for path, now in tree.workflows.items():
        entry = manifest["workflows"].get(path)
        if entry is not None and entry["code"] == now["code"]:
            result["workflows"][path] = entry
            continue
        # a workflow module: its own types; a helper: the types of every workflow module that imports it
        needed = set(now["types"]) or {t for other in tree.workflows.values() if path in other["imports"]
                                       for t in other["types"]}
        covering = sorted(n for n, h in new_histories.items() if h["type"] in needed)
        missing = sorted(needed - {new_histories[n]["type"] for n in covering})
        if missing and path not in acknowledge:
            errors.append(f"{path} changed but no new history of {', '.join(missing)} was recorded: record one each, "
                          f"or --acknowledge {path}=\"why running workflows are unaffected\"")
            continue
        result["workflows"][path] = {"code": now["code"], "types": now["types"], "recorded_with": covering,
                                     **({"acknowledged": acknowledge[path]} if path in acknowledge else {})}
    for name, now in tree.histories.items():
        result["histories"][name] = old_histories.get(name, now)
    return result, errors


def write(manifest: dict, root: Path = ROOT) -> None:
    text = json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    (root / MANIFEST_NAME).write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.workflow_manifest", description=__doc__.split("\n\n")[0])
    ap.add_argument("--update", action="store_true", help="record the current workflow code and histories")
    ap.add_argument("--acknowledge", action="append", default=[], metavar='PATH="REASON"',
                    help="accept a changed workflow module without a new history, for this reason")
    ap.add_argument("--forget", action="append", default=[], metavar="HISTORY.json",
                    help="drop a deleted history (its workflow type is gone and nothing of it runs)")
    args = ap.parse_args(argv)
    manifest, tree = load(ROOT), Tree.read(ROOT)
    if not args.update:
        found = problems(manifest, tree)
        print("\n".join(found + ([HOW_TO] if found else ["workflow manifest up to date"])))
        return 1 if found else 0
    acknowledge = dict(a.split("=", 1) for a in args.acknowledge)
    new, errors = update(manifest, tree, {k: v.strip('"') for k, v in acknowledge.items()}, set(args.forget))
    if errors:
        print("\n".join(errors + [HOW_TO]), file=sys.stderr)
        return 1
    write(new, ROOT)
    print(f"wrote {MANIFEST_NAME}: {len(new['workflows'])} workflow modules, {len(new['histories'])} histories")
    return 0


if __name__ == "__main__":
    sys.exit(main())
