"""The app in a real terminal: tmux at 120×40, then 80×24, keys via send-keys, the
screen via capture-pane — from plan review (Gate 2) to the run board on the scripted
provider, through the real plan pipeline and run engine."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from director_tui.engine.models import PlanStage, RunState, Stage
from director_tui.engine.store import Store
from tests.run_fixture import build_job

pytestmark = pytest.mark.tmux
ROOT = Path(__file__).resolve().parents[2]


class Tmux:
    """One test's session on a tmux server of its own (``-L``): a shared server exits when
    its last session ends, and a test starting its session then fails with "server exited
    unexpectedly"; its own server also starts the pane with this test's environment."""

    def __init__(self, name: str) -> None:
        self.name = name

    def run(self, *args: str) -> str:
        command = ["tmux", "-L", self.name, *args]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout

    def start(self, command: str, width: int, height: int, env: dict[str, str]) -> None:
        size = ["-x", str(width), "-y", str(height)]
        tmux = ["tmux", "-L", self.name, "new-session", "-d", "-s", self.name, *size, command]
        subprocess.run(tmux, check=True, env=env)

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.name, "kill-server"], check=False, capture_output=True)

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.name, *keys)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.name)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared; the screen was:\n{screen}")

    def resize(self, width: int, height: int) -> None:
        self.run("resize-window", "-t", self.name, "-x", str(width), "-y", str(height))


@pytest.fixture
def tmux_app(tmp_path: Path) -> Iterator[Callable[[Path, str], Tmux]]:
    sessions: list[Tmux] = []

    def start(repo: Path, screen: str) -> Tmux:
        session = Tmux(f"director-test-{uuid.uuid4().hex[:8]}")
        command = (
            f"cd {repo} && TERM=xterm-256color {sys.executable} -m director_tui tui "
            f"--screen {screen}; echo APP-EXITED; sleep 5"
        )
        session.start(command, 120, 40, {**os.environ, "PYTHONPATH": str(ROOT)})
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        session.kill()


def test_plan_review_to_run_board_in_tmux(
    tmp_path: Path, tmux_app: Callable[[Path, str], Tmux]
) -> None:
    store = build_job(tmp_path, stage=Stage.gate2)
    # build_job has no plan.generated.json: the pipeline treats the plan as edited at the
    # gate and re-checks each node's tests red before approving.
    tmux = tmux_app(store.repo, "gate2")
    screen = tmux.wait_for("plan is valid")
    assert "Gate 2" in screen
    assert "add" in screen and "mul" in screen and "power" in screen
    tmux.keys("a")  # approve
    tmux.wait_for("Start the run now?", timeout=60)
    stage = Store(store.repo).read_model(store.plan_stage, PlanStage)
    assert stage is not None and stage.stage == Stage.approved
    tmux.resize(80, 24)  # the rest at the minimum size
    tmux.keys("y")  # start the run
    screen = tmux.wait_for("Run board")
    screen = tmux.wait_for("3/3 done", timeout=90)
    assert "✔ done" in screen
    state = store.read_model(store.state, RunState)
    assert state is not None and all(n.status == "done" for n in state.nodes.values())
    lines = screen.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
    tmux.keys("C-q")
    screen = tmux.wait_for("APP-EXITED")  # whatever it printed on the way out is shown
    assert "Traceback" not in screen


def test_director_run_on_a_terminal_opens_the_run_board(
    tmp_path: Path, tmux_app: Callable[[Path, str], Tmux]
) -> None:
    store = build_job(tmp_path)  # approved, scripted agents
    session = Tmux(f"director-test-{uuid.uuid4().hex[:8]}")
    done_file = tmp_path / "exit-code"
    command = (
        f"cd {store.repo} && TERM=xterm-256color {sys.executable} -m director_tui run "
        f"--parallel 2; echo $? > {done_file}; sleep 5"
    )
    session.start(command, 80, 24, {**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        screen = session.wait_for("3/3 done", timeout=90)
        assert "slots" in screen and "/2" in screen  # --parallel 2 reached the engine
        # the run's end line shows whole at 80×24 (the header's counts used to push it out)
        session.wait_for("Press l to land it.", timeout=30)
        session.keys("C-q")
        deadline = time.monotonic() + 15
        while not done_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert done_file.read_text().strip() == "0"
        assert "Traceback" not in session.screen()
    finally:
        session.kill()
