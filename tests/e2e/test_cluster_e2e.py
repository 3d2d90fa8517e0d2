"""The REAL OpenCode binary on a Ray worker node (the fake model server stands in for the
model): the attempt runs on the worker, its commit comes back and merges after the head
re-checked it.

The cluster is started inside the test, after ``opencode_env`` set the environment: a
worker node's processes get the environment of the machine they run on (here, the test's
OpenCode binary, agent HOME and provider config), never the head's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import OpenCodeEnv

from director_tui.engine.context import EngineContext
from director_tui.engine.events import AgentStarted, GateResult
from director_tui.engine.run import run_job
from director_tui.engine.store import read_jsonl
from tests.run_fixture import Recorder, build_job, job_file, sample_nodes

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402
from test_run_e2e import solve_turns  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.slow]


def test_real_opencode_runs_an_attempt_on_a_worker_node(
    tmp_path: Path, opencode_env: OpenCodeEnv
) -> None:
    add = sample_nodes()[0]
    store = build_job(tmp_path, [add])
    setup = opencode_env(
        {"executor": solve_turns(add)},
        config={
            "limits": {"flake_runs": 1, "gate_timeout_secs": 60},
            "cluster": {"engine": "ray", "max_in_flight": 1},
        },
    )
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    try:
        ctx = EngineContext.open(store, setup.config)
        recorder = Recorder()
        ctx.bus.subscribe(recorder)
        outcome = asyncio.run(run_job(ctx, parallel=1))
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert outcome.success, outcome.message
    assert job_file(store, add.impl_path) == add.solution
    started = recorder.of(AgentStarted)
    assert [s.worker != "" for s in started] == [True]
    assert [g.check for g in recorder.of(GateResult)] == ["passed"]
    costs = read_jsonl(store.costs)  # OpenCode's real cost, reported by the worker
    assert len(costs) == 1 and costs[0]["cost_usd"] > 0 and not costs[0]["scripted"]
    # The transcript came back to the head's logs.
    transcripts = list(store.logs.glob("*.jsonl"))
    assert transcripts and any(t.read_text() for t in transcripts)
    assert len(setup.server.requests) >= 4  # every turn went to the fake model
