"""`make demo` as a new user meets it: a real terminal (tmux), keys only, from the spec at
Gate 1 to a finished run with every node merged and the integration gate green."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

import pytest

from director_tui.engine.models import NodeStatus, PlanStage, RunState, Stage
from director_tui.engine.store import Store
from tests.tui.test_tmux import ROOT, Tmux

pytestmark = pytest.mark.tmux
# The header says it; below 100 columns in the shorter form.
LABEL = "scripted agents"


def start_demo(tmp_path: Path) -> tuple[Tmux, Path]:
    """What `make demo` runs, in a tmux session, with a folder we can inspect afterwards;
    the shell then prints DEMO-EXITED-<exit code>."""
    target = tmp_path / "demo"
    session = Tmux(f"director-demo-{uuid.uuid4().hex[:8]}")
    command = (
        f"cd {tmp_path} && TERM=xterm-256color {sys.executable} -m director_tui demo "
        f"--dir {target}; echo DEMO-EXITED-$?; sleep 30"
    )
    # The session's own tmux server starts the pane with this test's environment: its
    # DIRECTOR_* (its own user config folder among them) and PYTHONPATH (this checkout).
    session.start(command, 120, 40, {**os.environ, "PYTHONPATH": str(ROOT)})
    return session, target


def test_demo_in_tmux_from_gate1_to_a_green_run(tmp_path: Path) -> None:
    session, target = start_demo(tmp_path)
    try:
        screen = session.wait_for("Gate 1 — the spec", timeout=90)
        assert LABEL in screen
        assert "Spec: word-frequency report" in screen
        session.keys("a")  # approve the spec: decomposition and red tests run in the app
        screen = session.wait_for("plan is valid", timeout=120)
        assert "Gate 2" in screen and LABEL in screen
        for node in ("tokenize", "stopwords", "table", "counter", "cli"):
            assert node in screen
        session.keys("a")  # approve the plan and its frozen tests
        session.wait_for("Start the run now?", timeout=60)
        session.keys("y")
        screen = session.wait_for("integration passed", timeout=180)
        assert "Run board" in screen and LABEL in screen
        assert "5/5 done" in screen
        session.keys("F5")
        session.wait_for("Bench results", timeout=30)
        session.keys("n")  # bench the same task under the demo's two profiles
        session.wait_for("Bench this job's task", timeout=30)
        session.keys("y")
        screen = session.wait_for("bench finished", timeout=240)
        assert "all-frontier" in screen and "cheap-cloud" in screen
        session.keys("C-q")
        session.wait_for("DEMO-EXITED-0", timeout=30)
    finally:
        session.kill()
    store = Store(target)
    stage = store.read_model(store.plan_stage, PlanStage)
    assert stage is not None and stage.stage == Stage.approved
    assert [a.approver for a in stage.approvals] == ["human", "human"]
    state = store.read_model(store.state, RunState)
    assert state is not None and state.integration == "passed"
    assert all(st.status == NodeStatus.done for st in state.nodes.values())
    assert state.nodes["counter"].attempts == 2 and state.nodes["table"].escalated
    summary = json.loads((target / ".director/bench/summary.json").read_text())
    assert summary["status"] == "finished"
    assert {row["profile"] for row in summary["rows"]} == {"all-frontier", "cheap-cloud"}
    assert all(row["done"] == row["n_nodes"] == 5 for row in summary["rows"])


def bell_flag(session: Tmux) -> str:
    """tmux's mark on a window that rang (monitor-bell is on by default; a detached
    session's window keeps the mark until someone looks at it)."""
    return session.run("display", "-p", "-t", session.name, "#{window_bell_flag}").strip()


def test_gate1_in_the_demo_rings_the_bell_and_quitting_there_exits_3(tmp_path: Path) -> None:
    """Gate 1 sets the terminal's bell flag and the header says it needs you. Quitting the
    app while the job waits at a gate is "stopped at a gate": exit 3, as the README says and
    `director plan` without the app returns (it was 0). One demo start for both: each
    costs a demo repository and its scripted brainstorm."""
    session, _ = start_demo(tmp_path)
    try:
        assert session.run("show-window-options", "-gv", "monitor-bell").strip() == "on"
        session.wait_for("Gate 1 — the spec", timeout=90)
        assert bell_flag(session) == "1"
        assert "⚑ Gate 1 needs you" in session.screen()  # and the header says it
        session.keys("C-q")
        session.wait_for("DEMO-EXITED-3", timeout=30)
    finally:
        session.kill()


def test_with_the_bell_off_gate1_leaves_the_bell_flag_unset(tmp_path: Path) -> None:
    """The same demo with `[notify] bell = false` in the user's config: what set the flag
    above was director's bell, not something else the demo prints."""
    home = Path(os.environ["DIRECTOR_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("[notify]\nbell = false\n")
    session, _ = start_demo(tmp_path)
    try:
        session.wait_for("Gate 1 — the spec", timeout=90)
        assert bell_flag(session) == "0"
        session.keys("C-q")
        session.wait_for("DEMO-EXITED-3", timeout=30)
    finally:
        session.kill()
