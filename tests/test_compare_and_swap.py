"""Director's compare-and-swaps failing, deterministically: a branch moved in the exact
window between director's ``commit-tree`` and its ``update-ref`` (tests/git_mover.py).
Each fails closed, judges and merges nothing the mover put there, and the run goes on."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from director_tui.engine import gates, git, jobs
from director_tui.engine.events import GateResult, Notice
from director_tui.engine.models import Node, RunState
from director_tui.engine.store import Store
from tests.cli import director_on
from tests.conftest import make_repo, run_git
from tests.git_mover import move_after_commit_tree, move_around_git
from tests.run_fixture import (
    JOB_ID,
    SANDBOX_OFF,
    NodeSpec,
    Recorder,
    build_job,
    context,
    job_file,
    run,
    sample_nodes,
    solve,
    write_script,
)

PY = sys.executable


def _plant(repo: Path, ref: str, path: str, content: Path, index: Path, record: Path) -> str:
    """Shell lines that put a commit of the mover's (``path`` = ``content`` on top of
    ``ref``) on ``ref``, with git objects and update-ref only, and record its id."""
    return (
        f"cd {repo}\n"
        f"B=$(git hash-object -w {content})\n"
        f"GIT_INDEX_FILE={index} git read-tree {ref}\n"
        f"GIT_INDEX_FILE={index} git update-index --add --cacheinfo 100644,$B,{path}\n"
        f"T=$(GIT_INDEX_FILE={index} git write-tree)\n"
        f"C=$(git commit-tree $T -p {ref} -m 'the mover')\n"
        f"git update-ref {ref} $C\n"
        f"echo $C >> {record}\n"
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {
            "src/__init__.py": "",
            "src/a.py": "A = 0\n",
            "tests/check_a.py": "from src.a import A\nassert A == 1\n",
        },
    )


async def test_the_node_branch_moved_under_directors_swap_fails_the_attempt_closed(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worktree = tmp_path / "wt-a"
    run_git(repo, "worktree", "add", "-q", "-b", "job--a", str(worktree), "HEAD")
    base = run_git(repo, "rev-parse", "HEAD")
    (worktree / "src/a.py").write_text("A = 1\n")
    evil, mover = tmp_path / "evil.py", tmp_path / "mover-commit"
    evil.write_text("A = 1\nEVIL = 1\n")
    fired = move_after_commit_tree(
        monkeypatch,
        tmp_path,
        _plant(repo, "refs/heads/job--a", "src/a.py", evil, tmp_path / "idx", mover),
    )
    ran = tmp_path / "tests-ran"
    test = "tests/check_a.py"
    node = Node.model_validate(
        {
            "id": "a",
            "files": ["src/a.py"],
            "tests": [test],
            "test_cmd": f'touch {ran} && {PY} -c \'import sys; sys.path.insert(0, "."); '
            "import tests.check_a'",
            "test_hashes": {test: git.sha256_file(repo / test)},
        }
    )
    outcome = await gates.node_gate(
        node,
        worktree,
        base,
        ignore_globs=[],
        flake_runs=1,
        timeout=30,
        commit_message="node a",
        branch="job--a",
    )
    assert fired.exists(), (fired.parent / "fired.log").read_text()
    moved_to = mover.read_text().strip()
    assert not outcome.passed and outcome.check == "history", outcome
    assert f"moved to {moved_to[:10]}" in outcome.message
    assert "nothing was committed" in outcome.message
    # Nothing judged: no test ran, no commit is named for the merge queue.
    assert outcome.test_runs == 0 and not ran.exists() and outcome.commit == ""
    # The swap failed rather than overwrite: the mover's commit is where it put it.
    assert run_git(repo, "rev-parse", "job--a") == moved_to


def test_a_run_whose_node_branch_moves_under_the_swap_retries_and_merges_only_its_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same window in a whole run: attempt 1 is rejected (history), attempt 2 starts
    from the base again, and the job branch holds attempt 2's work, nothing of the
    mover's."""
    add = sample_nodes()[0]
    store = build_job(tmp_path, [add], limits={"max_attempts": 3})
    branch = f"refs/heads/{jobs.node_branch(JOB_ID, add.id)}"
    evil, mover = tmp_path / "evil.py", tmp_path / "mover-commit"
    evil.write_text(add.solution + "EVIL = 1\n")
    fired = move_after_commit_tree(
        monkeypatch,
        tmp_path,
        _plant(store.repo, branch, add.impl_path, evil, tmp_path / "idx", mover),
        when="*'-m director: node add'*",
    )
    rec = Recorder()
    outcome = run(store, rec)

    assert fired.exists(), (fired.parent / "fired.log").read_text()
    assert outcome.success, outcome.message
    verdicts = [(g.attempt, g.check, g.passed) for g in rec.of(GateResult) if g.node_id == "add"]
    assert verdicts[0] == (1, "history", False), verdicts
    assert verdicts[-1][2], verdicts
    assert job_file(store, add.impl_path) == add.solution
    moved_to = mover.read_text().strip()
    job = jobs.job_branch(JOB_ID)
    is_in = run_git(store.repo, "branch", "--contains", moved_to, "--format=%(refname)")
    assert f"refs/heads/{job}" not in is_in.split()


def test_merge_into_branch_raises_when_the_branch_moves_under_its_swap(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A move between merge-tree and update-ref is not a conflict: the caller must learn
    the branch moved (to attribute it and put it back), not rebase onto the mover's
    commit as after a conflict."""
    run_git(repo, "branch", "job")
    run_git(repo, "checkout", "-q", "-b", "node")
    (repo / "src/a.py").write_text("A = 1\n")
    run_git(repo, "commit", "-q", "-am", "node work")
    run_git(repo, "checkout", "-q", "main")
    head = run_git(repo, "rev-parse", "job")
    evil, mover = tmp_path / "evil.txt", tmp_path / "mover-commit"
    evil.write_text("planted\n")
    fired = move_after_commit_tree(
        monkeypatch,
        tmp_path,
        _plant(repo, "refs/heads/job", "planted.txt", evil, tmp_path / "idx", mover),
        when="*' -p '*' -p '*",
    )
    with pytest.raises(git.BranchMovedError, match="moved"):
        git.merge_into_branch(repo, "job", "node", "merge node", expected_head=head)
    assert fired.exists(), (fired.parent / "fired.log").read_text()
    assert run_git(repo, "rev-parse", "job") == mover.read_text().strip()  # not overwritten


def _add_merges_while_mul_runs(
    tmp: Path, add: NodeSpec, mul: NodeSpec, wait: dict[str, str]
) -> list[dict[str, Any]]:
    """The script: mul's first attempt says it runs (its watched window is open by then),
    then waits (``wait``); add's agent starts its work only once mul runs, so add's merge
    always falls in mul's window, however loaded the machine."""
    running = tmp / "mul-running"
    first_add = solve(add)
    first_add["steps"] = [
        {"run": f"while [ ! -e {running} ]; do sleep 0.05; done"},
        *first_add["steps"],
    ]
    first_mul = solve(mul, attempt=1)
    first_mul["steps"] = [{"run": f"touch {running}"}, wait, *first_mul["steps"]]
    return [first_add, first_mul, solve(mul)]


def test_the_job_branch_moved_under_the_merge_queues_swap_is_put_back_not_built_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """add merges while mul's executor is running (it waits for the move). The job branch
    moves between add's merge-tree and its swap: the queue attributes the move to the
    executor running then (mul's attempt fails for it), puts the branch back and merges
    add on the head director knows. The old code took the failed swap for a conflict
    and rebased add onto the mover's commit, which then stayed in the job branch."""
    add, mul = sample_nodes()[:2]
    store = build_job(
        tmp_path,
        [add, mul],
        config=SANDBOX_OFF,  # mul's wait reads a file made while it runs (see below)
        limits={"max_attempts": 3, "idle_timeout_secs": 60},
    )
    job = f"refs/heads/{jobs.job_branch(JOB_ID)}"
    evil, mover = tmp_path / "evil.txt", tmp_path / "mover-commit"
    evil.write_text("planted\n")
    fired = move_after_commit_tree(
        monkeypatch,
        tmp_path,
        _plant(store.repo, job, "planted.txt", evil, tmp_path / "idx", mover),
        when="*'-m director: merge node add'*",
    )
    wait = {"run": f"while [ ! -e {fired} ]; do sleep 0.05; done"}
    write_script(store, _add_merges_while_mul_runs(tmp_path, add, mul, wait))
    rec = Recorder()
    outcome = run(store, rec, parallel=2)

    assert fired.exists(), (fired.parent / "fired.log").read_text()
    assert outcome.success, outcome.message
    moved_to = mover.read_text().strip()
    contains = run_git(store.repo, "branch", "--contains", moved_to, "--format=%(refname)")
    assert job not in contains.split()
    assert job_file(store, "planted.txt") is None
    assert job_file(store, add.impl_path) == add.solution
    assert job_file(store, mul.impl_path) == mul.solution
    mul_checks = [(g.attempt, g.check) for g in rec.of(GateResult) if g.node_id == "mul"]
    assert mul_checks[0] == (1, "outside_worktree"), mul_checks


def test_a_job_branch_that_moves_again_under_the_retried_merge_sends_the_node_round_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job branch moves under add's merge, is put back, and moves again under the
    retried merge: add is not merged then, runs again uncharged, and merges on the head
    director knows; neither move reaches the job branch."""
    add, mul = sample_nodes()[:2]
    # The sandbox off: mul's wait reads a file made while it runs (the sandbox's view of
    # the test's folder does not show it).
    store = build_job(
        tmp_path,
        [add, mul],
        config=SANDBOX_OFF,
        limits={"max_attempts": 3, "idle_timeout_secs": 60},
    )
    job = f"refs/heads/{jobs.job_branch(JOB_ID)}"
    evil, movers = tmp_path / "evil.txt", tmp_path / "mover-commits"
    evil.write_text("planted\n")
    fired_once, second = tmp_path / "first-move", tmp_path / "second-move"
    fired = move_after_commit_tree(
        monkeypatch,
        tmp_path,
        _plant(store.repo, job, "planted.txt", evil, tmp_path / "idx", movers)
        + f"if [ -e {fired_once} ]; then touch {second}; else touch {fired_once}; fi\n",
        when="*'-m director: merge node add'*",
        times=2,
    )
    # mul's executor runs (its window open) until both moves are done.
    both = f"while [ ! -e {second} ]; do sleep 0.05; done"
    write_script(store, _add_merges_while_mul_runs(tmp_path, add, mul, {"run": both}))
    rec = Recorder()
    outcome = run(store, rec, parallel=2)

    assert fired.exists(), (fired.parent / "fired.log").read_text()
    assert outcome.success, outcome.message
    moved = movers.read_text().split()
    assert len(moved) == 2
    for commit in moved:
        contains = run_git(store.repo, "branch", "--contains", commit, "--format=%(refname)")
        assert job not in contains.split()
    assert job_file(store, "planted.txt") is None
    assert job_file(store, add.impl_path) == add.solution
    again = [n.message for n in rec.of(Notice) if "again after a check" in n.message]
    assert again and again[0].startswith("node add: not merged:"), again
    state = context(store).store.read_model(store.state, RunState)
    assert state is not None and state.nodes["add"].attempts == 1  # the round was not charged


def _finished_job(tmp_path: Path, **kw: Any) -> Store:
    store = build_job(tmp_path, sample_nodes()[:1], **kw)
    assert run(store).success
    return store


def _users_commit(repo: Path, record: Path) -> str:
    """Shell lines: the user commits on their branch, and the commit is recorded."""
    return (
        f"cd {repo}\n"
        "git -c user.name=u -c user.email=u@x commit -q --allow-empty -m 'the user, meanwhile'\n"
        f"git rev-parse HEAD > {record}\n"
    )


def test_land_never_moves_a_users_branch_that_moved_right_before_its_fast_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user commits between land's last look at the checkout and its fast-forward:
    git's --ff-only is the compare-and-swap, the user's commit stays and nothing lands."""
    store = _finished_job(tmp_path)
    repo, record = store.repo, tmp_path / "users-commit"
    fired = move_around_git(
        monkeypatch,
        tmp_path,
        _users_commit(repo, record),
        when="*' merge -q '*",
        before=True,
    )
    refused = director_on(repo, "land")
    assert fired.exists(), (fired.parent / "fired.log").read_text()
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "git refused to fast-forward main" in refused.stderr
    assert run_git(repo, "rev-parse", "HEAD") == record.read_text().strip()
    assert run_git(repo, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert "a + b" not in (repo / "calc" / "add.py").read_text()
    assert "Traceback" not in refused.stderr


def test_land_refuses_when_the_users_branch_moved_while_its_gates_ran(tmp_path: Path) -> None:
    """A gate (the sandbox off, so it can) commits on the user's branch: the result was
    gated against a head that is gone, so nothing lands and the user's commit stays."""
    repo_dir, armed, record = tmp_path / "repo", tmp_path / "armed", tmp_path / "users-commit"
    gate = f"if [ -e {armed} ]; then rm {armed}; sh {tmp_path / 'commit.sh'}; fi"
    store = _finished_job(tmp_path, config=SANDBOX_OFF, gates={"moves": gate})
    (tmp_path / "commit.sh").write_text("set -e\n" + _users_commit(repo_dir, record))
    armed.touch()
    refused = director_on(store.repo, "land")
    assert not armed.exists() and record.exists(), refused.stdout + refused.stderr
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "your checkout changed while the gates ran; main was not touched" in refused.stderr
    assert run_git(store.repo, "rev-parse", "HEAD") == record.read_text().strip()
    assert "a + b" not in (store.repo / "calc" / "add.py").read_text()
