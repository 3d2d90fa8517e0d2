"""``director run --cluster ray`` with no address and no ``RAY_ADDRESS``: director starts a
Ray on this machine for the run (a real process, its own Ray) and stops it after."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from director_tui.engine.events import AgentStarted, ClusterStatus, parse_event
from director_tui.engine.store import read_jsonl
from tests.run_fixture import build_job, job_file, sample_nodes

pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.cluster]


def test_with_no_address_a_ray_is_started_here_for_the_run(tmp_path: Path) -> None:
    add = sample_nodes()[0]
    store = build_job(tmp_path, [add])
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    ran = subprocess.run(
        [sys.executable, "-m", "director_tui", "run", "--no-tui", "--cluster", "ray"],
        cwd=store.repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert job_file(store, add.impl_path) == add.solution
    events = [parse_event(r) for r in read_jsonl(store.events)]
    assert [e.worker != "" for e in events if isinstance(e, AgentStarted)] == [True]
    assert [e.workers for e in events if isinstance(e, ClusterStatus)][:1] == [1]
