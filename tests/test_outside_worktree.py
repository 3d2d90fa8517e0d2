"""An executor that changes files outside its worktree is noticed (engine/sandbox_watch).

Scripted agents whose ``run`` steps write into the user's checkout or the job worktree
with real shell commands; the engine's fingerprints of both places catch it. These run
with the OS sandbox off: detection is the layer beneath it, and what protects a user
without bubblewrap (tests/test_sandbox.py has the same writes prevented)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from director_tui.engine import git, jobs, sandbox_watch
from director_tui.engine.events import GateResult, Notice
from director_tui.engine.models import NodeStatus, RunState
from tests.conftest import run_git
from tests.run_fixture import (
    JOB_ID,
    SANDBOX_OFF,
    Recorder,
    build_job,
    job_file,
    run,
    sample_nodes,
    solve,
    write_script,
)


def _with_first(entry: dict[str, Any], command: str, **extra: Any) -> dict[str, Any]:
    """``entry`` with a shell command run before its own steps."""
    return {**entry, "steps": [{"run": command}, *entry["steps"]], **extra}


def _outside_results(rec: Recorder, node: str) -> list[GateResult]:
    return [g for g in rec.of(GateResult) if g.node_id == node and g.check == sandbox_watch.CHECK]


def _first_attempt_rejected(store: Any, node: Any, sneaky: str) -> tuple[Recorder, GateResult]:
    """Run ``node`` whose attempt 1 also runs ``sneaky`` and whose attempt 2 is honest:
    the run succeeds and the one outside-the-worktree rejection is attempt 1's."""
    write_script(store, [_with_first(solve(node), sneaky, attempt=1), solve(node)])
    rec = Recorder()
    outcome = run(store, rec)
    assert outcome.success, outcome.message  # attempt 2 stayed inside and merged
    [rejected] = _outside_results(rec, node.id)
    assert rejected.attempt == 1 and not rejected.passed
    return rec, rejected


def _state(store: Any) -> RunState:
    state = store.read_model(store.state, RunState)
    assert state is not None
    return state


def test_a_write_into_the_users_checkout_fails_the_attempt_and_is_never_reverted(
    tmp_path: Path,
) -> None:
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes, config=SANDBOX_OFF)
    add = nodes[0]
    # The user is in the middle of their own work: an uncommitted edit.
    (store.repo / "README.md").write_text("# calc\nmy own edit\n")
    sneaky = (
        f"echo agent >> {store.repo}/README.md && mkdir -p {store.repo}/notes && "
        f"echo stray > {store.repo}/notes/stray.txt"
    )
    _, rejected = _first_attempt_rejected(store, add, sneaky)
    # Both the already-dirty file (content hash) and the new one are named, with the hint.
    assert "README.md" in rejected.message and "notes/stray.txt" in rejected.message
    assert str(store.repo) in rejected.message
    assert "director retry add" in rejected.message
    assert _state(store).nodes["add"].attempts == 2  # the only executor running: counted
    # Nothing in the user's checkout was reverted or deleted.
    assert (store.repo / "README.md").read_text() == "# calc\nmy own edit\nagent\n"
    assert (store.repo / "notes/stray.txt").read_text() == "stray\n"
    assert job_file(store, add.impl_path) == add.solution


def test_a_write_into_the_job_worktree_is_cleaned_back_before_the_next_merge(
    tmp_path: Path,
) -> None:
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes, config=SANDBOX_OFF)
    add = nodes[0]
    job_wt = jobs.job_worktree(store)
    sneaky = "echo 'def add(a, b): return 0' > ../_job/calc/add.py && echo junk > ../_job/junk.txt"
    write_script(store, [_with_first(solve(add), sneaky, attempt=1), solve(add)])
    rec = Recorder()
    outcome = run(store, rec)

    assert outcome.success, outcome.message
    [rejected] = _outside_results(rec, "add")
    assert "calc/add.py" in rejected.message and "junk.txt" in rejected.message
    assert "cleaned back" in rejected.message
    cleaned = [n for n in rec.of(Notice) if "job worktree changed while add ran" in n.message]
    assert cleaned and "cleaned the job worktree back" in cleaned[0].message
    assert not (job_wt / "junk.txt").exists()
    # The job branch has the honest attempt's work, and so has the job worktree at the end.
    assert job_file(store, add.impl_path) == add.solution
    assert (job_wt / add.impl_path).read_text() == add.solution
    assert run_git(job_wt, "status", "--porcelain") == ""


def test_a_commit_onto_the_job_branch_during_a_call_is_put_back(tmp_path: Path) -> None:
    """An agent that commits in the job worktree would otherwise merge around every gate."""
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes, config=SANDBOX_OFF)
    add = nodes[0]
    branch = jobs.job_branch(JOB_ID)
    before = run_git(store.repo, "rev-parse", branch)
    sneaky = (
        "cd ../_job && printf 'def add(a, b):\\n    return a + b\\n' > calc/add.py && "
        "git add -A && git -c user.name=x -c user.email=x@x commit -q -m 'around the gate'"
    )
    write_script(store, [_with_first(solve(add), sneaky, attempt=1), solve(add)])
    rec = Recorder()
    outcome = run(store, rec)

    assert outcome.success, outcome.message
    [rejected] = _outside_results(rec, "add")
    assert "job branch" in rejected.message
    put_back = [n.message for n in rec.of(Notice) if "put the job branch back" in n.message]
    assert put_back, [n.message for n in rec.of(Notice)]
    subjects = run_git(store.repo, "log", "--format=%s", f"{before}..{branch}")
    assert "around the gate" not in subjects  # only director's merge landed
    assert job_file(store, add.impl_path) == add.solution


def test_a_job_branch_deleted_during_a_call_is_re_created(tmp_path: Path) -> None:
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes, config=SANDBOX_OFF)
    add = nodes[0]
    branch = jobs.job_branch(JOB_ID)
    sneaky = f"git update-ref -d refs/heads/{branch}"
    write_script(store, [_with_first(solve(add), sneaky, attempt=1), solve(add)])
    rec = Recorder()
    outcome = run(store, rec)

    assert outcome.success, outcome.message  # the job survived its branch being deleted
    [rejected] = _outside_results(rec, "add")
    assert "job branch" in rejected.message
    assert any("re-created the deleted job branch" in n.message for n in rec.of(Notice))
    assert job_file(store, add.impl_path) == add.solution


async def test_an_honest_node_running_beside_the_culprit_still_merges(tmp_path: Path) -> None:
    """Two executors overlap (forced with barrier files outside every watched place) while
    one writes into the user's checkout: neither can be told apart, both are rejected
    without losing an attempt and retried alone; the honest one merges, the culprit is
    then caught on its own and fails."""
    add, mul = sample_nodes()[:2]
    store = build_job(tmp_path, [add, mul], limits={"max_attempts": 2}, config=SANDBOX_OFF)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    wait = "i=0; while [ ! -f {f} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done"
    honest_first = _with_first(
        solve(add), f"touch {barrier}/add-in; " + wait.format(f=barrier / "mul-done"), attempt=1
    )
    culprit = _with_first(
        solve(mul),
        wait.format(f=barrier / "add-in")
        + f"; echo x >> {store.repo}/stray-mul.txt; touch {barrier}/mul-done",
    )
    write_script(store, [honest_first, solve(add), culprit])
    rec = Recorder()
    outcome = await asyncio.to_thread(run, store, rec, parallel=2)

    assert outcome.done == ["add"] and outcome.failed == ["mul"], outcome.message
    add_rejected = _outside_results(rec, "add")
    assert len(add_rejected) == 1
    assert "add, mul" in add_rejected[0].message and "stray-mul.txt" in add_rejected[0].message
    assert _state(store).nodes["add"].attempts == 1  # the shared blame was not charged
    mul_rejected = _outside_results(rec, "mul")
    assert "add, mul" in mul_rejected[0].message
    # Alone, the culprit is caught exactly: later messages name it only.
    assert all("add, mul" not in g.message for g in mul_rejected[1:])
    assert len(mul_rejected) == 4  # the shared one, 2 executor attempts, 1 escalated
    mul_state = _state(store).nodes["mul"]
    assert mul_state.status == NodeStatus.failed and mul_state.escalated
    assert (store.repo / "stray-mul.txt").read_text().count("x") == 4


def test_a_merge_of_ours_is_not_a_change_but_an_edit_in_the_job_worktree_is(
    tmp_path: Path,
) -> None:
    """The engine merges with git objects and update-ref only: the job worktree's HEAD
    moves while its index and files lag behind. The fingerprint compares the branch with
    the head the engine expects, and the files with the index, so only a foreign edit
    shows."""
    store = build_job(tmp_path, sample_nodes()[:1], config=SANDBOX_OFF)
    branch = jobs.job_branch(JOB_ID)
    job_wt = jobs.ensure_job_worktree(store, branch)
    printer = sandbox_watch.Fingerprinter(store.repo, job_wt, branch)
    head = run_git(store.repo, "rev-parse", branch)
    before = printer.take(head)
    # A merge as the merge queue makes it: a new tree committed on top, the ref moved.
    side = git.out(["hash-object", "-w", "--stdin"], store.repo, input_text="merged\n")
    listing = run_git(store.repo, "ls-tree", head) + f"\n100644 blob {side}\tmerged.txt\n"
    tree = git.out(["mktree"], store.repo, input_text=listing)
    merged = run_git(store.repo, "commit-tree", tree, "-p", head, "-m", "merge")
    run_git(store.repo, "update-ref", f"refs/heads/{branch}", merged, head)
    after_merge = printer.take(merged)
    assert not sandbox_watch.compare(before, after_merge)
    # The same ref move, not expected by the engine, is a change.
    assert sandbox_watch.compare(before, printer.take(head)).job == ["job branch"]
    (job_wt / "README.md").write_text("edited\n")
    assert sandbox_watch.compare(after_merge, printer.take(merged)).job == ["README.md"]
    printer.close()


async def test_a_node_running_alone_waits_for_the_others_and_holds_them_back() -> None:
    gate = sandbox_watch.WindowGate()
    await gate.acquire(exclusive=False)
    alone = asyncio.create_task(gate.acquire(exclusive=True))
    await asyncio.sleep(0)
    later = asyncio.create_task(gate.acquire(exclusive=False))
    await asyncio.sleep(0)
    assert not alone.done() and not later.done()  # a shared window is still open
    gate.release(exclusive=False)
    await asyncio.wait_for(alone, 5)
    await asyncio.sleep(0)
    assert not later.done()  # nobody starts beside the node running alone
    gate.release(exclusive=True)
    await asyncio.wait_for(later, 5)
    gate.release(exclusive=False)


def test_a_rewritten_plan_a_planted_hook_and_git_config_are_rejected_and_undone(
    tmp_path: Path,
) -> None:
    """An executor with bash and the sandbox off can reach plan.json and the shared git dir: the frozen test
    command, a hook the user's next commit would run and core.hooksPath must not outlive
    the attempt (found by outside-in QA with real OpenCode)."""
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes, config=SANDBOX_OFF)
    add = nodes[0]
    plan_before = store.plan.read_bytes()
    hooks = store.repo / ".git" / "hooks"
    config_before = (store.repo / ".git" / "config").read_bytes()
    sneaky = (
        f'sed -i \'s#"test_cmd": "[^"]*"#"test_cmd": "true"#\' {store.plan} && '
        "H=$(git rev-parse --git-common-dir)/hooks && mkdir -p $H && "
        "printf '#!/bin/sh\\necho planted\\n' > $H/pre-commit && chmod +x $H/pre-commit && "
        "git config core.hooksPath evil-hooks"
    )
    rec, rejected = _first_attempt_rejected(store, add, sneaky)
    for named in (".director/plan.json", ".git/hooks/pre-commit", ".git/config"):
        assert named in rejected.message, rejected.message
    undone = [n.message for n in rec.of(Notice) if "contract or git's own files" in n.message]
    assert undone and "moved the new .git/hooks/pre-commit aside" in undone[0]
    assert store.plan.read_bytes() == plan_before
    assert (store.repo / ".git" / "config").read_bytes() == config_before
    assert not (hooks / "pre-commit").exists()
    assert (hooks / "pre-commit.director-rejected").exists()  # kept for the user to see
    assert "hooksPath" in (store.repo / ".git" / "config.director-rejected").read_text()
    assert _state(store).nodes["add"].attempts == 2
