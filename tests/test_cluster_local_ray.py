"""``director run --cluster ray`` with no address and no ``RAY_ADDRESS``: director starts a
Ray on this machine for the run (a real process, its own Ray) and stops it after."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from director_tui.engine.events import AgentStarted, ClusterStatus, parse_event
from director_tui.engine.store import Store, read_jsonl
from tests.run_fixture import build_job, job_file, sample_nodes

pytest.importorskip("ray")
from ray.cluster_utils import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


def run_with_no_address(store: Store) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    return subprocess.run(
        [sys.executable, "-m", "director_tui", "run", "--no-tui", "--cluster", "ray"],
        cwd=store.repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_with_no_address_a_ray_is_started_here_for_the_run(tmp_path: Path) -> None:
    add = sample_nodes()[0]
    store = build_job(tmp_path, [add])
    ran = run_with_no_address(store)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert job_file(store, add.impl_path) == add.solution
    events = [parse_event(r) for r in read_jsonl(store.events)]
    assert [e.worker != "" for e in events if isinstance(e, AgentStarted)] == [True]
    assert [e.workers for e in events if isinstance(e, ClusterStatus)][:1] == [1]


def test_with_no_address_another_ray_on_this_machine_is_not_joined(tmp_path: Path) -> None:
    # A Ray started here by someone else (`ray start`, another run's test cluster) is
    # what Ray's own address-less init joins: its latest cluster, written in
    # /tmp/ray/ray_current_cluster. The run's attempt then ran on that cluster's
    # workers, in their folders (another test's cancelled attempt found it there).
    other = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    other.add_node(num_cpus=1)
    other.wait_for_nodes()
    try:
        add = sample_nodes()[0]
        store = build_job(tmp_path, [add])
        ran = run_with_no_address(store)
    finally:
        other.shutdown()
    assert ran.returncode == 0, ran.stdout + ran.stderr
    events = [parse_event(r) for r in read_jsonl(store.events)]
    # Its own Ray: one node (the other cluster has two).
    assert [e.workers for e in events if isinstance(e, ClusterStatus)][:1] == [1]
