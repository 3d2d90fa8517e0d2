"""An executor's git commands reach the repository every worktree shares: refs, HEAD,
grafts and the stash are guarded and put back (engine/guarded_files.py), the attempt
fails with what it changed named, and the user's refs and HEAD end exactly as they were.

Each scripted agent runs the real git command in its node worktree on attempt 1, then
an honest attempt 2 merges."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from director_tui.engine.events import Notice
from tests.conftest import run_git
from tests.run_fixture import SANDBOX_OFF, build_job, job_file, sample_nodes
from tests.test_outside_worktree import _first_attempt_rejected

SHARED = "$(git rev-parse --git-common-dir)"
TO_CHECKOUT = "@CHECKOUT@"  # the user's checkout, by its absolute path


def _git_state(repo: Path) -> dict[str, Any]:
    """The user's refs (outside director's namespace), HEAD, grafts, stash list."""
    gitdir = repo / ".git"
    return {
        "refs": [
            line
            for line in run_git(repo, "for-each-ref", "--format=%(refname) %(objectname)").split(
                "\n"
            )
            if not line.startswith("refs/heads/director/")
        ],
        "HEAD": (gitdir / "HEAD").read_bytes(),
        "grafts": (gitdir / "info" / "grafts").exists(),
        "stash": run_git(repo, "stash", "list", "--format=%H %gs"),
        "stash log": (gitdir / "logs/refs/stash").read_bytes()
        if (gitdir / "logs/refs/stash").exists()
        else None,
    }


def _users_repo(tmp_path: Path) -> Any:
    """The sample job, and a user with a feature branch, a tag and a stash of their own."""
    store = build_job(tmp_path, sample_nodes()[:1], config=SANDBOX_OFF)
    repo = store.repo
    run_git(repo, "branch", "feature")
    run_git(repo, "tag", "v1")
    (repo / "README.md").write_text("# calc\nwork in progress\n")
    run_git(repo, "stash", "push", "-q", "-m", "users own stash")
    return store


CASES = {
    "git replace": (
        f"git replace $(git -C {TO_CHECKOUT} rev-parse HEAD) HEAD",
        ["refs/replace/"],
    ),
    "info/grafts": (
        f"git -C {TO_CHECKOUT} rev-parse HEAD > {SHARED}/info/grafts",
        [".git/info/grafts"],
    ),
    "main HEAD": (
        f"git -C {TO_CHECKOUT} symbolic-ref HEAD refs/heads/feature",
        [".git/HEAD"],
    ),
    "git stash": (
        "echo scratch >> calc/add.py && git stash push -q -m agents",
        ["refs/stash", ".git/logs/refs/stash"],
    ),
    "branches and tags": (
        # moved, deleted (the user's current branch), created, renamed inside packed-refs
        f"git branch -f feature HEAD && git update-ref -d $(git -C {TO_CHECKOUT} "
        "symbolic-ref HEAD) && git branch agents-own && git pack-refs --all && "
        f"sed -i 's#refs/tags/v1#refs/tags/v2#' {SHARED}/packed-refs",
        ["refs/heads/feature", "refs/heads/agents-own", "refs/tags/v1", "refs/tags/v2"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_git_state_outside_the_worktree_is_put_back(tmp_path: Path, case: str) -> None:
    sneaky, named = CASES[case]
    store = _users_repo(tmp_path)
    sneaky = sneaky.replace(TO_CHECKOUT, str(store.repo))
    before = _git_state(store.repo)
    add = sample_nodes()[0]
    rec, rejected = _first_attempt_rejected(store, add, sneaky)

    for path in named:
        assert path in rejected.message, rejected.message
    put_back = [n.message for n in rec.of(Notice) if "put back:" in n.message]
    assert put_back, [n.message for n in rec.of(Notice)]
    assert _git_state(store.repo) == before
    assert job_file(store, add.impl_path) == add.solution
