"""Attempts on a real multi-node Ray cluster (``ray.cluster_utils.Cluster``): the same
plan, the same gates, the same results as a local run, and nothing a worker returns
merged before the head checked it."""

from __future__ import annotations

from pathlib import Path

import pytest

from director_tui.engine.events import AgentStarted, ClusterStatus, GateResult, NodeMerged
from tests.cluster_fixture import ray_cluster  # noqa: F401  (the fixture)
from tests.run_fixture import Recorder, build_job, job_file, run, sample_nodes, solve, write_script

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_cluster")]

RAY_CONFIG = '\n[cluster]\nengine = "ray"\nmax_in_flight = 3\n'


def test_a_plan_runs_to_green_with_attempts_spread_over_the_workers(tmp_path: Path) -> None:
    nodes = sample_nodes()
    store = build_job(tmp_path, nodes, config=RAY_CONFIG)
    # Each attempt takes a while, so add and mul (independent) run at once: on two nodes.
    write_script(store, [solve(n, steps=[{"sleep": 1.5}, *solve(n)["steps"]]) for n in nodes])
    recorder = Recorder()
    outcome = run(store, recorder, parallel=3)
    assert outcome.success, outcome.message
    for spec in nodes:
        assert job_file(store, spec.impl_path) == spec.solution
    started = recorder.of(AgentStarted)
    assert {s.node_id for s in started} == {"add", "mul", "power"}
    workers = {s.worker for s in started}
    assert "" not in workers and len(workers) >= 2, workers
    assert all(g.passed for g in recorder.of(GateResult))
    assert sorted(m.node_id for m in recorder.of(NodeMerged)) == ["add", "mul", "power"]
    assert recorder.of(ClusterStatus)[0].workers == 4  # the head and three workers
    # The cost of each worker's call reached the head's ledger and the run's total.
    ledger = store.costs.read_text().splitlines()
    assert len(ledger) == 3
    finished = [e for e in recorder.events if e.type == "run_finished"]
    assert round(finished[-1].cost_usd, 4) == 0.03  # type: ignore[attr-defined]
