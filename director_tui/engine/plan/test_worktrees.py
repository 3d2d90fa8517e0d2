"""Scratch worktrees of the tests stage: each node's tests are written and checked red in a
worktree of their own, ``<worktrees>/_tests/<node>`` on the scratch branch
``director/tests-<job>--<node>``, cut from the job branch. Only the node's test files ever
leave it (copied into the job worktree, where they are committed in plan order).

A worktree is kept while its node is not frozen — the files of an interrupted or failed
attempt are what ``director plan --continue`` checks first — and removed, with its branch,
once the node's tests are on the job branch. Nothing is ever committed on a scratch branch
by director, so removing one loses no work of a run."""

from __future__ import annotations

import shutil
from pathlib import Path

from director_tui.engine import dag, git, jobs
from director_tui.engine.models import Node
from director_tui.engine.plan.red_tests import revert_outside
from director_tui.engine.store import Store

TESTS_FOLDER = "_tests"


def test_worktree(store: Store, node_id: str) -> Path:
    return store.worktrees / TESTS_FOLDER / node_id


def test_branch(job_id: str, node_id: str) -> str:
    # Not under director/job-<id>: that is a branch, and git cannot hold a folder of the
    # same name; not director/job-<id>--<node> either, the run's node branches.
    return f"director/tests-{job_id}--{node_id}"


def open_test_worktree(store: Store, job_id: str, node: Node, base: str, job_wt: Path) -> Path:
    """The node's scratch worktree: an intact one left from an earlier pass is kept with
    the node's own test files in it (everything else put back), otherwise a fresh one at
    ``base`` (through the run's node-worktree preparation), given whatever uncommitted
    version of the node's tests the job worktree holds (written there by hand at Gate 2)."""
    path = test_worktree(store, node.id)
    own = {dag.normalise_path(t) for t in node.tests}
    if path.exists() and git.worktree_intact(store.repo, path):
        revert_outside(path, own)
        return path
    jobs.prepare_node_worktree(store, path, test_branch(job_id, node.id), base)
    for test in node.tests:
        source = job_wt / test
        if source.is_file() and git.file_at(job_wt, "HEAD", test) != source.read_bytes():
            _copy(source, path / test)
    return path


def copy_tests(node: Node, source: Path, target: Path) -> None:
    """The node's test files from its scratch worktree into the job worktree."""
    for test in node.tests:
        _copy(source / test, target / test)


def copy_existing_tests(node: Node, source: Path, target: Path) -> None:
    """Make the node's test files in ``target`` what they are in ``source``: copied when
    there, deleted when not (a test author's slot and the node's own worktree, both ways:
    ``author_slots.py``)."""
    for test in node.tests:
        if (source / test).is_file():
            _copy(source / test, target / test)
        elif (target / test).is_file() or (target / test).is_symlink():
            (target / test).unlink()


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink():
        target.unlink()
    elif target.is_dir():
        shutil.rmtree(target)
    shutil.copyfile(source, target, follow_symlinks=True)
    shutil.copymode(source, target)  # git records the executable bit


def remove_test_worktree(store: Store, job_id: str, node_id: str) -> None:
    path = test_worktree(store, node_id)
    if (path / ".git").is_dir():  # a repository of its own, not a worktree director made
        return
    jobs.remove_node_worktree(store, path)  # no prune here: other nodes may be adding theirs
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    git.delete_branch(store.repo, test_branch(job_id, node_id))


def remove_test_worktrees(store: Store, job_id: str, keep: set[str]) -> None:
    """Every scratch worktree of this job's tests stage but those of the nodes in ``keep``
    (frozen nodes' and removed nodes' leftovers)."""
    folder = store.worktrees / TESTS_FOLDER
    names = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    prefix = f"refs/heads/{test_branch(job_id, '')}"
    refs = git.out(["for-each-ref", "--format=%(refname)", prefix + "*"], store.repo).split()
    names |= {ref[len(prefix) :] for ref in refs}
    for node_id in sorted(names - keep):
        remove_test_worktree(store, job_id, node_id)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    git.git(["worktree", "prune"], store.repo, check=False)
