"""`.director/` deleted while `director run` runs: the run stops at once with one clear
message (the job branch keeps the merged work; start over with `director plan`), its
agents are stopped like a cancel stops them, and nothing reads as an internal error."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from tests.run_fixture import SANDBOX_OFF, build_job, job_file, sample_nodes, solve, write_script

WAIT_SECS = 120  # generous: other test workers share the two cores


def _wait_for(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_deleting_the_store_mid_run_stops_the_run_and_its_agent(tmp_path: Path) -> None:
    mul, power = sample_nodes()[1:]  # power depends on mul: mul merges first
    # Sandbox off: the agent writes its pid outside the worktree for the test to find.
    store = build_job(tmp_path, [mul, power], config=SANDBOX_OFF)
    agent_pid_file = tmp_path / "agent.pid"  # outside the repository: no watched change
    slow = solve(power)
    slow["steps"] = [{"run": f"echo $$ > {agent_pid_file} && exec sleep 300"}, *slow["steps"]]
    write_script(store, [solve(mul), slow])
    run = subprocess.Popen(
        [sys.executable, "-m", "director_tui", "run", "--no-tui", "--repo", str(store.repo)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    agent_pid = 0
    left_running = False
    try:
        _wait_for(lambda: agent_pid_file.exists() and agent_pid_file.read_text().strip(), "agent")
        agent_pid = int(agent_pid_file.read_text())
        # Like `rm -rf .director`: the run keeps appending events, so go until it is gone.
        _wait_for(lambda: _rm_rf_gets_the_plan(store.root), "the plan to be deleted")
        out, err = run.communicate(timeout=WAIT_SECS)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
        left_running = bool(agent_pid) and _alive(agent_pid)
        if left_running:
            os.kill(agent_pid, signal.SIGKILL)

    assert run.returncode == 1, (out, err)
    assert "disappeared while the run went (was .director/ deleted?)" in err, err
    assert "cannot be resumed" in err and 'director plan "<task>"' in err
    assert "Traceback" not in out + err
    assert "internal error" not in out + err
    assert "re-created the job worktree" not in out + err
    # The job branch keeps what merged before the deletion.
    assert job_file(store, mul.impl_path) == mul.solution
    # Stopped like a cancel stops it: before `director run` exited, not left behind.
    assert not left_running


def _rm_rf_gets_the_plan(root: Path) -> bool:
    """One ``rm -rf`` pass; True once plan.json is gone (events may re-create the folder)."""
    shutil.rmtree(root, ignore_errors=True)
    return not (root / "plan.json").exists()
