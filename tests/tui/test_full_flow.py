"""The whole flow through the app on the scripted provider: a new plan from Home, Gate 1
approval, Gate 2 approval, the run to the end — keys only, real engine, real git."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import TextArea

from director_tui.engine.models import PlanStage, RunState, Stage
from director_tui.engine.store import Store
from director_tui.tui.screens.plan_review import PlanReviewScreen
from director_tui.tui.screens.run_board import RunBoardScreen
from director_tui.tui.screens.spec import SpecScreen
from director_tui.tui.widgets.modals import ConfirmModal, TextPromptModal
from tests.plan_helpers import base_entries, entry, good_tests, make_sample
from tests.tui.helpers import Recorder, frozen_app, wait_engine, wait_until

MUL_SOLUTION = (
    "def add(a: int, b: int) -> int:\n    return a + b\n\n\n"
    "def mul(a: int, b: int) -> int:\n    return a * b\n"
)
DIV_SOLUTION = "def div(a: int, b: int) -> float:\n    return a / b\n"


def _stage(repo: Path) -> Stage | None:
    store = Store(repo)
    stage = store.read_model(store.plan_stage, PlanStage)
    return stage.stage if stage else None


async def test_plan_gate1_gate2_run_from_the_keyboard(tmp_path: Path) -> None:
    executors = [
        entry(
            "executor",
            "done",
            node="mul",
            steps=[{"write": "calc/ops.py", "content": MUL_SOLUTION}],
        ),
        entry(
            "executor",
            "done",
            node="div",
            steps=[{"write": "calc/div.py", "content": DIV_SOLUTION}],
        ),
    ]
    repo, _script = make_sample(tmp_path, [*base_entries(), *good_tests(), *executors])
    recorder = Recorder()
    app = frozen_app(repo, "home")
    async with app.run_test(size=(120, 40), message_hook=recorder) as pilot:
        await pilot.pause()
        await pilot.press("n")
        assert await wait_until(pilot, lambda: isinstance(app.screen, TextPromptModal))
        await pilot.press(*"add mul and div")
        await pilot.press("ctrl+s")
        await wait_engine(app, pilot, timeout=60)
        # the pipeline stopped at Gate 1 and the app went there
        assert await wait_until(pilot, lambda: isinstance(app.screen, SpecScreen)), recorder.notes
        assert _stage(repo) == Stage.gate1
        assert "Multiply and divide" in app.screen.query_one("#spec-editor", TextArea).text
        await pilot.press("a")
        await wait_engine(app, pilot, timeout=120)
        assert await wait_until(pilot, lambda: isinstance(app.screen, PlanReviewScreen)), (
            recorder.notes
        )
        assert _stage(repo) == Stage.gate2
        screen = app.screen
        assert isinstance(screen, PlanReviewScreen)
        assert screen.plan is not None and screen.plan.ids == ["mul", "div"]
        assert not screen.errors
        await pilot.press("a")
        assert await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal), timeout=60)
        assert _stage(repo) == Stage.approved
        await pilot.press("y")
        assert await wait_until(pilot, lambda: isinstance(app.screen, RunBoardScreen))
        await wait_engine(app, pilot, timeout=120)
        assert await wait_until(pilot, lambda: app.board.outcome == "success"), recorder.notes
        assert app.board.counts() == {"done": 2}
    store = Store(repo)
    state = store.read_model(store.state, RunState)
    assert state is not None and {n.status for n in state.nodes.values()} == {"done"}
