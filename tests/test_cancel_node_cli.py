"""Cancelling one node of a live run stops that node (its dependents are blocked) and the
run goes on with the rest; the run's end says what happened — a cancel by request, not a
bare "run failed" (found by a new user). In the app, a retry of an ended run says the run
starts now, not "at the next `director run`", since the app starts it at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from director_tui.engine.models import NodeStatus, RunState
from director_tui.engine.store import Store
from tests.cli import director_on
from tests.run_fixture import build_job, sample_nodes, solve, write_script


def node_status(store: Store, node: str) -> str:
    state = store.read_model(store.state, RunState)  # written atomically: never half
    return state.nodes[node].status.value if state and node in state.nodes else ""


def test_cancelling_one_node_stops_it_and_the_run_finishes_the_others(tmp_path: Path) -> None:
    nodes = sample_nodes()  # add, mul, power (power depends on mul)
    store = build_job(tmp_path, nodes, limits={"idle_timeout_secs": 120, "parallel": 2})
    add, _mul, power = nodes
    hanging = {"role": "executor", "node": "mul", "hang": True}
    # add waits for mul to be running, so the cancel lands while add is still going
    slow_add = {**solve(add), "steps": [{"run": "sleep 3"}, *solve(add)["steps"]]}
    write_script(store, [hanging, slow_add, solve(power)])
    run = subprocess.Popen(
        [sys.executable, "-m", "director_tui", "run", "--no-tui", "--repo", str(store.repo)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 120
        while node_status(store, "mul") != "running":
            assert time.monotonic() < deadline and run.poll() is None, "mul never ran"
            time.sleep(0.2)
        cancel = director_on(store.repo, "cancel", "mul")
        assert cancel.returncode == 0, cancel.stdout + cancel.stderr
        out, err = run.communicate(timeout=180)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 1, out + err  # not everything merged: the work is not done
    state = store.read_model(store.state, RunState)
    assert state is not None
    assert state.nodes["add"].status == NodeStatus.done  # the run went on
    assert state.nodes["mul"].status == NodeStatus.cancelled
    assert state.nodes["power"].status == NodeStatus.blocked
    assert "cancelled by request: mul" in out, out
    assert "blocked by a node that did not merge: power" in out
    assert "`director retry <node>` then `director run`" in out
    assert not state.cancelled  # one node was cancelled, not the run
