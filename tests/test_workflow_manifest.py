"""A workflow change cannot reach main without facing the running workflows (tests/workflow_manifest.py).

Replaying the stored histories (tests/test_replay.py) proves compatibility only on the paths they took,
and only while they are the old code's histories. This fails CI when workflow code changed without a
new history recorded (or an explicit, reviewed acknowledgement), and when a stored history was rewritten
or deleted, with the steps to take: keep the old histories, guard with `workflow.patched`, record a new
one, `python -m tests.workflow_manifest --update`.
"""

from __future__ import annotations

import json
import shutil

import pytest

from tests import workflow_manifest as wm


def test_the_workflow_code_is_the_code_the_histories_were_recorded_against():
    found = wm.problems(wm.load(), wm.Tree.read())
    assert not found, "\n".join(found) + "\n\n" + wm.HOW_TO


def test_every_workflow_type_of_the_worker_is_in_the_manifest():
    from worker import WORKFLOWS

    listed = {t for entry in wm.load()["workflows"].values() for t in entry["types"]}
    assert {w.__temporal_workflow_definition.name for w in WORKFLOWS} <= listed


SOURCE = (wm.ROOT / "workflows" / "id_correction.py").read_text(encoding="utf-8")


def test_the_hash_sees_code_not_comments_or_docstrings():
    assert wm.code_hash(SOURCE.replace("\n\n", "\n\n# a comment\n", 1)) == wm.code_hash(SOURCE)
    assert wm.code_hash(SOURCE.replace('"""', '"""Reworded. ', 1)) == wm.code_hash(SOURCE)
    changed = SOURCE.replace("await calls.notify_id_correction", "await  calls.notify_id_correction", 1)
    assert wm.code_hash(changed) == wm.code_hash(SOURCE)  # formatting
    assert "IdCorrectionWorkflow" in wm.workflow_types(SOURCE)
    renamed = SOURCE.replace("await calls.settle_id_correction(inp.ref", "await calls.apply_id_correction(inp.ref", 1)
    assert renamed != SOURCE and wm.code_hash(renamed) != wm.code_hash(SOURCE)


@pytest.fixture
def repo(tmp_path):
    """A copy of the workflows and the histories with its manifest, then id_correction.py changed."""
    shutil.copytree(wm.ROOT / "workflows", tmp_path / "workflows")
    shutil.copytree(wm.ROOT / "tests" / "histories", tmp_path / "tests" / "histories")
    # the copy's own manifest, in step with it whatever state the real one is in
    tree = wm.Tree.read(tmp_path)
    manifest, errors = wm.update({"workflows": {}, "histories": {}}, tree, {p: "copy" for p in tree.workflows})
    assert not errors
    wm.write(manifest, tmp_path)
    renamed = SOURCE.replace("await calls.settle_id_correction(inp.ref", "await calls.apply_id_correction(inp.ref", 1)
    (tmp_path / "workflows" / "id_correction.py").write_text(renamed, encoding="utf-8")
    return tmp_path


def test_a_changed_workflow_needs_a_new_history_of_its_type_or_a_reason(repo):
    manifest = wm.load(repo)
    assert wm.problems(manifest, wm.Tree.read(repo)) == [
        "workflows/id_correction.py (IdCorrectionWorkflow) changed since its histories were recorded"]
    _, errors = wm.update(manifest, wm.Tree.read(repo), {})
    assert errors and "no new history of IdCorrectionWorkflow" in errors[0]
    # a new history of another workflow type does not cover it
    histories = repo / "tests" / "histories"
    shutil.copy(histories / "duplicate_case_resolved.json", histories / "duplicate_case_again.json")
    _, errors = wm.update(manifest, wm.Tree.read(repo), {})
    assert errors
    new, errors = wm.update(manifest, wm.Tree.read(repo), {"workflows/id_correction.py": "renamed only"})
    assert not errors and new["workflows"]["workflows/id_correction.py"]["acknowledged"] == "renamed only"
    # a new history of the changed type does
    shutil.copy(histories / "id_correction_expired.json", histories / "id_correction_v2_expired.json")
    new, errors = wm.update(manifest, wm.Tree.read(repo), {})
    assert not errors
    assert new["workflows"]["workflows/id_correction.py"]["recorded_with"] == ["id_correction_v2_expired.json"]
    wm.write(new, repo)
    assert wm.problems(wm.load(repo), wm.Tree.read(repo)) == []


def test_stored_histories_are_never_rewritten_or_deleted(repo):
    histories = repo / "tests" / "histories"
    data = json.loads((histories / "school_round_late.json").read_text(encoding="utf-8"))
    data["events"] = data["events"][:-1]
    (histories / "school_round_late.json").write_text(json.dumps(data), encoding="utf-8")
    (histories / "v1-round_fanout_start.json").unlink()
    found = wm.problems(wm.load(repo), wm.Tree.read(repo))
    assert "stored history school_round_late.json was rewritten (record new histories under new names)" in found
    assert "stored history v1-round_fanout_start.json was deleted" in found
    _, errors = wm.update(wm.load(repo), wm.Tree.read(repo), {"workflows/id_correction.py": "x"})
    assert len(errors) == 2
    _, errors = wm.update(wm.load(repo), wm.Tree.read(repo), {"workflows/id_correction.py": "x"},
                          forget={"v1-round_fanout_start.json"})
    assert len(errors) == 1  # a deleted history may be forgotten on purpose; a rewritten one may not


def test_the_command_line_check_fails_with_the_steps_to_take(repo, monkeypatch, capsys):
    monkeypatch.setattr(wm, "ROOT", repo)
    assert wm.main([]) == 1
    out = capsys.readouterr().out
    assert "workflow.patched" in out and "--update" in out
    assert wm.main(["--update"]) == 1
    assert wm.main(["--update", "--acknowledge", 'workflows/id_correction.py="a rename"']) == 0
    assert wm.main([]) == 0


def test_a_changed_helper_needs_new_histories_of_the_workflows_that_import_it(repo):
    """e.g. a search attribute dropped from search_attributes.py changes what SchoolRoundWorkflow upserts."""
    helper = repo / "workflows" / "search_attributes.py"
    helper.write_text(helper.read_text(encoding="utf-8") + "\nEXTRA = 1\n", encoding="utf-8")
    users = sorted({t for entry in wm.Tree.read(repo).workflows.values()
                    if "workflows/search_attributes.py" in entry["imports"] for t in entry["types"]})
    assert "SchoolRoundWorkflow" in users
    histories = repo / "tests" / "histories"
    shutil.copy(histories / "duplicate_case_resolved.json", histories / "duplicate_case_again.json")
    _, errors = wm.update(wm.load(repo), wm.Tree.read(repo), {"workflows/id_correction.py": "x"})
    assert len(errors) == 1 and "search_attributes.py" in errors[0] and "SchoolRoundWorkflow" in errors[0]
