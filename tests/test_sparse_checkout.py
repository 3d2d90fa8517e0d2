"""Director's worktrees are full checkouts in a repository whose checkout is sparse
(engine/git.py ``full_checkout``), and the user's sparse-checkout setup is left as it was.

``git worktree add`` from a sparse checkout copies its cone into the new worktree: the
node's file outside the cone was never checked out, the agent's new version of it was
never staged, and the node showed done with an empty commit. A scripted agent writes the
node's file (outside the user's cone) and the run must merge it."""

from __future__ import annotations

from pathlib import Path

import pytest

from director_tui.engine import git, jobs
from director_tui.engine.events import GateResult, NodeMerged, NodeStateChanged
from director_tui.engine.models import RunState
from tests.conftest import run_git
from tests.run_fixture import (
    JOB_ID,
    NodeSpec,
    Recorder,
    build_job,
    job_file,
    run,
    sample_nodes,
    solve,
    write_script,
)


def _sparse_modern(repo: Path) -> None:
    """`git sparse-checkout set` (cone mode): per-worktree config, as git writes it today."""
    run_git(repo, "sparse-checkout", "set", "docs")


def _sparse_old_style(repo: Path) -> None:
    """core.sparseCheckout in the shared config and a hand-written patterns file."""
    run_git(repo, "config", "core.sparseCheckout", "true")
    (repo / ".git" / "info" / "sparse-checkout").write_text("/README.md\n")
    run_git(repo, "read-tree", "-mu", "HEAD")


def _users_setup(repo: Path) -> dict[str, bytes | None]:
    gitdir = repo / ".git"
    names = ("config", "config.worktree", "info/sparse-checkout")
    return {n: (gitdir / n).read_bytes() if (gitdir / n).exists() else None for n in names}


@pytest.mark.parametrize("make_sparse", [_sparse_modern, _sparse_old_style])
def test_a_node_outside_the_users_sparse_cone_merges_its_work(
    tmp_path: Path, make_sparse: object
) -> None:
    nodes = sample_nodes()[:1]
    add = nodes[0]
    store = build_job(tmp_path, nodes)
    make_sparse(store.repo)  # type: ignore[operator]
    assert not (store.repo / add.impl_path).exists()  # outside the user's cone
    setup = _users_setup(store.repo)
    rec = Recorder()
    outcome = run(store, rec)

    assert outcome.success, outcome.message
    assert [g.check for g in rec.of(GateResult)] == ["passed"]
    assert job_file(store, add.impl_path) == add.solution
    # The job worktree is a full checkout too, and the user's checkout is still sparse.
    assert (jobs.job_worktree(store) / add.impl_path).read_text() == add.solution
    assert _users_setup(store.repo) == setup
    assert not (store.repo / add.impl_path).exists()
    assert git.dirty_files(store.repo) == []


def test_an_attempt_that_changes_nothing_is_never_shown_as_merged_work(tmp_path: Path) -> None:
    """mul2's tests are mul's: once mul merged they pass on the job branch, and mul2's
    agent changes nothing. mul2 is done and says there was nothing to merge: no merge
    commit under its name, no NodeMerged."""
    mul = sample_nodes()[1]
    mul2 = NodeSpec(
        "mul2", "calc/mul2.py", mul.test_body, "", depends_on=["mul"], stub="# unused\n"
    )
    store = build_job(tmp_path, [mul, mul2])
    write_script(store, [solve(mul), {**solve(mul2), "steps": [{"run": mul2.test_cmd}]}])
    rec = Recorder()
    outcome = run(store, rec)

    assert outcome.success, outcome.message
    assert outcome.done == ["mul", "mul2"]
    assert [m.node_id for m in rec.of(NodeMerged)] == ["mul"]
    state = store.read_model(store.state, RunState)
    assert state is not None and state.nodes["mul2"].merge_commit == ""
    said = [
        e.message for e in rec.of(NodeStateChanged) if e.node_id == "mul2" and e.status == "done"
    ]
    assert said and said[0].startswith("nothing to merge"), said
    subjects = run_git(store.repo, "log", "--format=%s", jobs.job_branch(JOB_ID))
    assert "merge node mul2" not in subjects
