"""``director run`` and ``director status`` from the command line: output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from director_tui.cli import main
from director_tui.engine.models import Stage
from tests.run_fixture import build_job, sample_nodes, solve, write_script


def test_run_headless_exit_0_and_status_shows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = build_job(tmp_path)
    assert main(["run", "--repo", str(store.repo), "--no-tui", "--parallel", "2"]) == 0
    out = capsys.readouterr().out
    assert "merged" in out and "run success" in out and "3/3 merged" in out
    assert main(["status", "--repo", str(store.repo), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [n["status"] for n in summary["nodes"]] == ["done", "done", "done"]
    assert summary["metrics"]["executor_tier_completion_rate"] == 1.0
    assert summary["run"]["cost_usd"] == pytest.approx(0.03)
    assert main(["status", "--repo", str(store.repo)]) == 0
    text = capsys.readouterr().out
    assert "done by the executor's tier 100%" in text  # plain words (issue 14)


def test_run_exit_1_when_a_node_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = build_job(tmp_path, limits={"max_attempts": 1})
    add = sample_nodes()[0]
    write_script(store, [solve(add), {"role": "executor", "node": "mul", "steps": []}])
    assert main(["run", "--repo", str(store.repo), "--no-tui"]) == 1
    out = capsys.readouterr().out
    assert "failed: mul" in out and "blocked: power" in out


def test_run_exit_2_on_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = build_job(tmp_path, stage=Stage.gate1)
    assert main(["run", "--repo", str(store.repo), "--no-tui"]) == 2
    assert "not approved" in capsys.readouterr().err
    assert main(["run", "--repo", str(store.repo), "--no-tui", "--max-attempts", "0"]) == 2


def test_run_exit_4_when_the_lock_is_held(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = build_job(tmp_path)
    with store.run_lock("run"):
        # flock is per open file, so a second open in this process conflicts like another
        # process would.
        assert main(["run", "--repo", str(store.repo), "--no-tui"]) == 4
    assert "already working" in capsys.readouterr().err
