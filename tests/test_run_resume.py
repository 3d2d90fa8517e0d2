"""Cost ceiling stop + resume, and kill -9 of a real director process + resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from director_tui.engine import jobs
from director_tui.engine.events import AgentStarted, NodeStateChanged, Notice
from director_tui.engine.models import NodeState, NodeStatus, RunState
from director_tui.engine.store import read_jsonl
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


def _state(store_path: Path) -> RunState | None:
    try:
        return RunState.model_validate_json(store_path.read_bytes())
    except (OSError, ValueError):
        return None


def test_cost_ceiling_stops_scheduling_and_the_run_resumes(tmp_path: Path) -> None:
    store = build_job(tmp_path, limits={"cost_ceiling_usd": 0.015})
    rec = Recorder()
    first = run(store, rec, parallel=1)
    assert first.outcome == "stopped" and first.exit_code == 1
    assert "cost ceiling" in first.message and "cost_ceiling_usd" in first.message
    # The call that crossed the ceiling finished and merged; nothing new started after it.
    assert len(first.done) == 2 and len(first.pending) == 1
    assert any(isinstance(e, Notice) and "cost ceiling" in e.message for e in rec.events)
    state = store.read_model(store.state, RunState)
    assert state is not None and state.stopped_reason.startswith("cost ceiling")
    # Raise the ceiling and run again: only the remaining node runs.
    text = store.config.read_text().replace("cost_ceiling_usd = 0.015", "cost_ceiling_usd = 1")
    store.config.write_text(text)
    calls_before = len(read_jsonl(store.costs))
    second = run(store, parallel=1)
    assert second.success, second.message
    assert len(read_jsonl(store.costs)) == calls_before + 1
    assert abs(second.cost_total - 0.03) < 1e-9


def test_cost_ceiling_cancel_mode_stops_running_calls(tmp_path: Path) -> None:
    store = build_job(tmp_path, limits={"cost_ceiling_usd": 0.01, "on_ceiling": "cancel"})
    add, mul, power = sample_nodes()
    slow = solve(mul)
    slow["steps"] = [{"sleep": 30}, *slow["steps"]]
    write_script(store, [solve(add), slow, solve(power)])
    started = time.monotonic()
    outcome = run(store, parallel=2)
    assert time.monotonic() - started < 30  # the slow call was stopped, not waited for
    assert outcome.outcome == "stopped"
    assert "mul" in outcome.pending and outcome.done == ["add"]
    state = store.read_model(store.state, RunState)
    assert state is not None and state.nodes["mul"].attempts == 0


def test_after_the_ceiling_with_finish_no_reviewer_session_starts(tmp_path: Path) -> None:
    """on_ceiling = "finish": calls already running finish, no new one starts — not the
    stage-two review of a node whose executor call reached the ceiling (issue 17, item 7).
    The node does not merge unreviewed: it waits, uncharged, for the resumed run."""
    add = sample_nodes()[0]
    store = build_job(
        tmp_path,
        [add],
        limits={"cost_ceiling_usd": 0.01, "on_ceiling": "finish"},
        config="[review]\nstage_two_file_threshold = 0\n",
    )
    rec = Recorder()
    outcome = run(store, rec)
    assert [e.role for e in rec.of(AgentStarted)] == ["executor"]
    assert outcome.outcome == "stopped" and outcome.pending == ["add"]
    state = store.read_model(store.state, RunState)
    assert state is not None and state.nodes["add"].attempts == 0
    last = [e for e in rec.of(NodeStateChanged) if e.node_id == "add"][-1]
    assert last.status == "pending" and "stopped before its review" in last.message


def test_kill_9_mid_run_then_run_again_recovers(tmp_path: Path) -> None:
    # Sandbox off: the agent outliving a kill -9 of director is what the next run must
    # recover from; in the sandbox it dies with director (--die-with-parent).
    store = build_job(tmp_path, config=SANDBOX_OFF)
    add, mul, power = sample_nodes()
    stuck = solve(mul)
    stuck["steps"] = [{"run": "sleep 120"}, *stuck["steps"]]
    write_script(store, [solve(add), stuck, solve(power)])
    director = subprocess.Popen(
        [sys.executable, "-m", "director_tui", "run", "--repo", str(store.repo), "--no-tui"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    mul_tree = jobs.node_worktree(store, "mul").resolve()
    sleeper: psutil.Process | None = None
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline and sleeper is None:
            state = _state(store.state)
            if state and state.nodes["add"].status == NodeStatus.done:
                for proc in psutil.process_iter(["cmdline"]):
                    try:
                        if (
                            proc.info["cmdline"][:2] == ["sleep", "120"]
                            and Path(proc.cwd()).resolve() == mul_tree
                        ):
                            sleeper = proc
                    except (psutil.Error, TypeError):
                        continue
            time.sleep(0.1)
        assert sleeper is not None, "the run never reached the stuck node"
        os.kill(director.pid, signal.SIGKILL)
        director.wait(10)
        assert sleeper.is_running()  # an orphan, left behind by the dead director
    finally:
        if director.poll() is None:
            director.kill()
    # Run again with an agent that finishes: add stays merged (its agent is never called).
    write_script(store, [solve(mul), solve(power)])
    rec = Recorder()
    outcome = run(store, rec)
    assert outcome.success, outcome.message
    assert not sleeper.is_running() or sleeper.status() == psutil.STATUS_ZOMBIE
    warnings = [e.message for e in rec.events if isinstance(e, Notice) and e.level == "warning"]
    assert any("mul" in w and "reset" in w for w in warnings), warnings
    assert any("killed" in w for w in warnings), warnings
    assert job_file(store, add.impl_path) == add.solution
    assert job_file(store, mul.impl_path) == mul.solution
    executor_calls = [c["node_id"] for c in read_jsonl(store.costs) if c["role"] == "executor"]
    assert executor_calls.count("add") == 1
    state = store.read_model(store.state, RunState)
    assert state is not None and any("mul" in note for note in state.recovered)


def test_state_lagging_behind_a_merge_is_recovered_as_merged(tmp_path: Path) -> None:
    store = build_job(tmp_path, sample_nodes()[:1])
    assert run(store).success
    # Pretend the process died right after the merge, before state.json caught up.
    state = store.read_model(store.state, RunState)
    assert state is not None
    state.nodes["add"].status = NodeStatus.gating
    state.finished_at = None
    store.write_model(store.state, state)
    calls = len(read_jsonl(store.costs))
    rec = Recorder()
    again = run(store, rec)
    assert again.success and again.done == ["add"]
    assert len(read_jsonl(store.costs)) == calls  # no agent was called again
    warnings = [e.message for e in rec.events if isinstance(e, Notice)]
    assert any("had been merged" in w for w in warnings), warnings


def test_a_deleted_state_json_keeps_merged_nodes_done(tmp_path: Path) -> None:
    """'fix or delete the file' for a broken state.json must not have the agents redo
    (and pay for) nodes the job branch already holds (found by outside-in QA)."""
    store = build_job(tmp_path, limits={"max_attempts": 1})
    add, mul, power = sample_nodes()
    write_script(store, [solve(add), {"role": "executor", "node": "mul", "steps": []}])
    first = run(store)
    assert first.done == ["add"] and first.failed == ["mul"]
    store.state.unlink()
    write_script(store, [solve(mul), solve(power)])  # no entry for add: a call would fail
    rec = Recorder()
    again = run(store, rec)
    assert again.success, again.message
    assert sorted(again.done) == ["add", "mul", "power"]
    notes = [e.message for e in rec.events if isinstance(e, Notice)]
    assert any("node add is merged on the job branch already" in n for n in notes), notes


def test_resuming_from_a_new_process_kills_the_orphans_of_the_dead_run(tmp_path: Path) -> None:
    """`director run` typed again after a kill -9 starts AFTER the orphans: they must
    still be found (they are younger than the dead run, not than the resuming one)."""
    store = build_job(tmp_path, sample_nodes()[:1])
    worktree = jobs.node_worktree(store, "add")
    branch = jobs.job_branch(JOB_ID)
    node_branch = jobs.node_branch(JOB_ID, "add")
    add_worktree = ["git", "worktree", "add", "-q", "-b", node_branch, str(worktree), branch]
    subprocess.run(add_worktree, cwd=store.repo, check=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    began = time.time() - 5
    state = RunState(
        job_id=JOB_ID,
        job_branch=branch,
        nodes={"add": NodeState(status=NodeStatus.running, attempts=1)},
        owner_pid=dead.pid,
        owner_create_time=began,
        started_at=began,
    )
    store.write_model(store.state, state)
    orphan = subprocess.Popen(["sleep", "120"], cwd=worktree, start_new_session=True)
    try:
        time.sleep(1.5)  # the resuming process starts well after the orphan (1 s slack)
        resumed = subprocess.run(
            [sys.executable, "-m", "director_tui", "run", "--repo", str(store.repo), "--no-tui"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert orphan.wait(5) is not None  # killed by the recovery, not by us
        assert "killed processes" in resumed.stdout, resumed.stdout
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()
