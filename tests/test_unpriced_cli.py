"""A tier with no price (the CLI reports none and [pricing] has no entry) is shown as
"unpriced" — in the run's progress and summary, in `director status` — never as $0."""

from __future__ import annotations

from pathlib import Path

from director_tui.engine.cost import cost_text
from tests.cli import director_on
from tests.run_fixture import build_job, sample_nodes, solve, write_script


def test_cost_text_never_says_zero_for_unpriced_calls() -> None:
    assert cost_text(0.0, 2) == "unpriced"
    assert cost_text(0.5, 1) == "$0.5000 + 1 unpriced"
    assert cost_text(0.0) == "$0.0000"


def test_an_unpriced_run_says_unpriced_in_its_summary_and_status(tmp_path: Path) -> None:
    spec = sample_nodes()[0]
    store = build_job(tmp_path, [spec])
    write_script(store, [solve(spec, cost=None)])  # tokens, but no price anywhere
    out = director_on(store.repo, "run", "--no-tui")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "cost unpriced" in out.stdout, out.stdout
    assert "$0.0000" not in out.stdout
    status = director_on(store.repo, "status", env={"COLUMNS": "160"})
    assert status.returncode == 0
    node_line = next(line for line in status.stdout.splitlines() if f" {spec.id} " in line)
    assert "unpriced" in node_line and "$0.0000" not in node_line
    assert "cost unpriced over 1 calls" in status.stdout
