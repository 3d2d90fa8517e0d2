"""`director status` as a new user reads it: at 80 columns whole columns are dropped
instead of every word cut ("token…", "scrip…", "$0.0…"); whether the executor saw its
tests fail first is kept per attempt ("attempt 1 ran the tests, status said
not_observed"); a control request from before the run's last start is not shown as if it
were its state."""

from __future__ import annotations

import json
from pathlib import Path

from director_tui.engine.models import ControlRecord, RunState
from director_tui.engine.store import Store
from tests.cli import director_on
from tests.run_fixture import build_job, run, sample_nodes, solve, write_script


def finished(tmp_path: Path) -> Store:
    store = build_job(tmp_path, sample_nodes())
    assert run(store).success
    return store


def test_status_at_80_columns_drops_columns_instead_of_cutting_words(tmp_path: Path) -> None:
    store = finished(tmp_path)
    narrow = director_on(store.repo, "status", env={"COLUMNS": "80"})
    assert narrow.returncode == 0, narrow.stderr
    assert "…" not in narrow.stdout, narrow.stdout
    header = next(line for line in narrow.stdout.splitlines() if " node " in line)
    assert "status" in header and "cost" in header
    assert "wall" not in header  # the first column to go
    for node in ("add", "mul", "power"):
        assert any(f" {node} " in line and "done" in line for line in narrow.stdout.splitlines())
    wide = director_on(store.repo, "status", env={"COLUMNS": "200"})
    wide_header = next(line for line in wide.stdout.splitlines() if " node " in line)
    for column in ("tries", "tier", "tokens", "cost", "wall", "saw fail", "review"):
        assert column in wide_header, wide_header


def test_saw_fail_is_kept_per_attempt_and_the_node_says_yes_if_any_did(tmp_path: Path) -> None:
    spec = sample_nodes()[0]
    store = build_job(tmp_path, [spec])
    wrong = {**solve(spec, attempt=1), "steps": [{"run": spec.test_cmd}, {"write": spec.impl_path,
             "content": "def add(a, b):\n    return a - b\n"}]}  # fmt: skip
    straight = {
        **solve(spec, attempt=2),
        "steps": [{"write": spec.impl_path, "content": spec.solution}],
    }
    write_script(store, [wrong, straight])
    assert run(store).success
    state = store.read_model(store.state, RunState)
    assert state is not None
    node = state.nodes[spec.id]
    assert node.watch_it_fail_attempts == ["observed", "not_observed"]
    assert node.watch_it_fail == "observed"
    out = director_on(store.repo, "status", env={"COLUMNS": "200"})
    line = next(line for line in out.stdout.splitlines() if f" {spec.id} " in line)
    assert "yes (yes/no)" in line, out.stdout
    summary = json.loads(director_on(store.repo, "status", "--json").stdout)
    assert summary["nodes"][0]["watch_it_fail_attempts"] == ["observed", "not_observed"]


def test_a_cancel_from_before_the_last_start_is_not_listed_after_a_green_run(
    tmp_path: Path,
) -> None:
    store = finished(tmp_path)
    state = store.read_model(store.state, RunState)
    assert state is not None
    earlier = ControlRecord(
        action="cancel_run", message="run cancelled (detach)", at=state.started_at - 60
    )
    state.controls.insert(0, earlier)
    store.write_model(store.state, state)
    out = director_on(store.repo, "status")
    assert "run cancelled (detach)" not in out.stdout, out.stdout
    assert "control cancel" not in out.stdout
