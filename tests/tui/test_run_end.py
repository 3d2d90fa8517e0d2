"""`director run` on a terminal, as the run ends: quitting right then returns the run's
own exit code, and the board's end line ("… Press l to land it.") shows at 80×24.

Both were seen in the tmux test: director exited 1 after ctrl+q at "3/3 done" of a run
that succeeded (the board had not yet applied the run's RunFinished, so the exit code
read "not a success"), and at 80 columns the header's counts wrapped over the end line.
"""

from __future__ import annotations

from pathlib import Path

from director_tui.tui.screens.run_board import RunBoardScreen
from tests.run_fixture import build_job
from tests.tui.helpers import frozen_app, wait_until


async def test_quitting_as_the_run_ends_returns_its_exit_code_not_the_boards(
    tmp_path: Path,
) -> None:
    store = build_job(tmp_path)  # approved, scripted agents: the run succeeds
    # The board applies the buffered events once a minute: the run's end is in the
    # buffer, not on the board, when ctrl+q comes — as it was, for 0.2 s, in the tmux test.
    app = frozen_app(store.repo, "run", start_run=True, tick=60)
    async with app.run_test(size=(80, 24)) as pilot:
        worker_done = lambda: app.engine_worker is not None and app.engine_worker.is_finished  # noqa: E731
        assert await wait_until(pilot, worker_done, timeout=90)
        await pilot.press("ctrl+q")
        assert await wait_until(pilot, lambda: app.return_code is not None, timeout=10)
    assert app.return_code == 0
    assert app.board.outcome == "success"  # its events were applied on the way out


async def test_the_end_line_shows_at_80_columns_when_the_run_finished(tmp_path: Path) -> None:
    store = build_job(tmp_path)
    app = frozen_app(store.repo, "run", start_run=True)
    async with app.run_test(size=(80, 24)) as pilot:
        assert await wait_until(pilot, lambda: app.board.outcome == "success", timeout=90)
        assert await wait_until(pilot, lambda: not app.engine_busy, timeout=30)
        screen = app.screen
        assert isinstance(screen, RunBoardScreen)

        def shown() -> str:
            return "\n".join(strip.text for strip in screen._compositor.render_strips())

        assert await wait_until(pilot, lambda: "Press l to land it." in shown(), timeout=10)
        assert "run success" in shown()
