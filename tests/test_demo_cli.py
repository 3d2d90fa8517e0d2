"""`director demo --no-tui`: the whole flow, headless, on the embedded default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from director_tui.engine.models import NodeStatus, RunState
from director_tui.engine.store import Store


@pytest.mark.slow
def test_demo_headless_runs_the_whole_flow_green(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    out = subprocess.run(
        [sys.executable, "-m", "director_tui", "demo", "--no-tui", "--dir", str(target)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "120"},
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "scripted agents, no model calls" in out.stdout
    assert "integration gate passed" in out.stdout
    assert "Traceback" not in out.stderr
    state = Store(target).read_model(Store(target).state, RunState)
    assert state is not None
    assert {nid: st.status for nid, st in state.nodes.items()} == {
        nid: NodeStatus.done for nid in ("tokenize", "stopwords", "table", "counter", "cli")
    }
    # the story the demo tells: one retry that passes, one escalation with a review
    assert state.nodes["counter"].attempts == 2 and not state.nodes["counter"].escalated
    assert state.nodes["table"].escalated and state.nodes["table"].stage_two
    # the user's checkout stayed on main and clean
    status = subprocess.run(
        ["git", "status", "--porcelain", "--branch"], cwd=target, capture_output=True, text=True
    )
    assert status.stdout.splitlines() == ["## main"]


def test_demo_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    out = subprocess.run(
        [sys.executable, "-m", "director_tui", "demo", "--no-tui", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 2
    assert "not empty" in out.stderr and "Traceback" not in out.stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"
