"""Run board pilots: attach to a headless run in another process, control keys confirmed
by the engine's events, re-attach replays, quitting never stops the headless run."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.widgets import DataTable, Log

from director_tui.engine.store import Store
from director_tui.tui.screens.node_detail import NodeDetailScreen
from director_tui.tui.screens.run_board import RunBoardScreen
from director_tui.tui.widgets.dag_view import DagView
from tests.tui.helpers import Recorder, frozen_app, wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def headless(sample_repo: Callable[[str], Path]) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    repo = sample_repo("run")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.tui.headless_stub", str(repo), "60"], cwd=ROOT
    )
    import time

    deadline = time.monotonic() + 20
    while not (repo / "stub-ready").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (repo / "stub-ready").exists(), "the headless stub did not start"
    yield repo, proc
    (repo / "stop-stub").write_text("1")
    try:
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()


def _status(app: object, node: str) -> str:
    table = app.screen.query_one("#board", DataTable)  # type: ignore[attr-defined]
    return str(table.get_cell(node, "state"))


async def test_attach_follows_the_headless_run_and_controls_are_confirmed(
    headless: tuple[Path, subprocess.Popen[bytes]],
) -> None:
    repo, proc = headless
    recorder = Recorder()
    app = frozen_app(repo, "run", watch=True)
    async with app.run_test(size=(120, 40), message_hook=recorder) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, RunBoardScreen)
        # replayed from events.jsonl, then live from the other process
        assert "failed" in _status(app, "format")
        assert await wait_until(pilot, lambda: "running" in _status(app, "cli"))
        # the live pane streams the selected node's activity as it arrives
        table = app.screen.query_one("#board", DataTable)
        table.focus()
        table.move_cursor(row=list(app.board.rows).index("cli"))
        await pilot.pause()
        log = app.screen.query_one("#live", Log)
        assert await wait_until(pilot, lambda: any("step" in line for line in log.lines))
        # r on the failed node: a request file for the engine, then its confirmation
        table.move_cursor(row=list(app.board.rows).index("format"))
        await pilot.pause()
        await pilot.press("r")
        assert await wait_until(pilot, lambda: recorder.saw("retry format requested")), (
            recorder.notes
        )
        assert await wait_until(pilot, lambda: recorder.saw("retry format: applied"))
        assert not app.pending_controls
        await pilot.press("p")
        assert await wait_until(pilot, lambda: recorder.saw("pause: applied"))
        assert app.board.paused
        # quitting the app never stops the headless run
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert proc.poll() is None, "quitting the app stopped the headless run"
    assert Store(repo).lock_holder() is not None


async def test_reattach_replays_the_same_state(
    headless: tuple[Path, subprocess.Popen[bytes]],
) -> None:
    repo, _proc = headless
    first = frozen_app(repo, "run", watch=True)
    async with first.run_test(size=(120, 40)) as pilot:
        assert await wait_until(pilot, lambda: first.board.rows["cli"].status == "running")
        seen = {
            nid: (row.status, row.attempt, row.cost_usd) for nid, row in first.board.rows.items()
        }
    second = frozen_app(repo, "run", watch=False)
    async with second.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        again = {
            nid: (row.status, row.attempt, row.cost_usd) for nid, row in second.board.rows.items()
        }
        assert again == seen
        assert "running" in _status(second, "cli")


async def test_details_open_with_enter(sample_repo: Callable[[str], Path]) -> None:
    repo = sample_repo("run")
    app = frozen_app(repo, "run")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.screen.query_one("#board", DataTable)
        table.focus()
        table.move_cursor(row=list(app.board.rows).index("format"))
        await pilot.press("enter")
        assert await wait_until(pilot, lambda: isinstance(app.screen, NodeDetailScreen))
        await pilot.press("escape")
        assert await wait_until(pilot, lambda: isinstance(app.screen, RunBoardScreen))


async def test_rows_update_in_place_without_clearing(sample_repo: Callable[[str], Path]) -> None:
    """A status change touches only the changed cells: the cursor stays where it was."""
    from director_tui.engine.events import NodeStateChanged

    repo = sample_repo("run")
    app = frozen_app(repo, "run")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        table = app.screen.query_one("#board", DataTable)
        table.focus()
        table.move_cursor(row=3)
        await pilot.pause()
        rows_before = table.row_count
        app.buffer.push(NodeStateChanged(node_id="cli", status="running", attempt=1, seq=10_000))
        await wait_until(pilot, lambda: "running" in _status(app, "cli"))
        assert table.row_count == rows_before
        assert table.cursor_row == 3


async def test_a_replaced_events_file_rebuilds_the_board(
    sample_repo: Callable[[str], Path],
) -> None:
    """A new job archives events.jsonl: the attached app starts over from the new file."""
    import os

    from director_tui.engine.events import EventBus, NodeStateChanged

    repo = sample_repo("run")
    store = Store(repo)
    app = frozen_app(repo, "run", watch=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.board.rows["model"].status == "done"
        os.replace(store.events, store.root / "events.archived.jsonl")
        EventBus(store.events).emit(NodeStateChanged(node_id="model", status="running", attempt=1))
        assert await wait_until(pilot, lambda: app.board.rows["model"].status == "running")
        assert await wait_until(pilot, lambda: "running" in _status(app, "model"))
        assert app.board.rows["store"].status == "pending"  # history of the old file is gone
        assert "pending" in _status(app, "store")


async def test_v_shows_the_plan_as_a_graph_in_state_colours_and_enter_opens_a_node(
    sample_repo: Callable[[str], Path],
) -> None:
    app = frozen_app(sample_repo("run"), "run")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, RunBoardScreen)
        await pilot.press("v")
        await pilot.pause()
        graph = screen.query_one("#board-graph", DagView)
        assert graph.display and not screen.query_one("#board", DataTable).display
        statuses = {nid: row.status for nid, row in app.board.rows.items()}
        assert graph.states == statuses and statuses["format"] == "failed"
        await pilot.press("right", "down")  # model → store → format
        assert await wait_until(pilot, lambda: screen.pane_node == "format")
        await pilot.press("enter")
        assert await wait_until(pilot, lambda: isinstance(app.screen, NodeDetailScreen))
        assert app.screen.node_id == "format"  # type: ignore[attr-defined]
        app.pop_screen()
        await pilot.pause()
        await pilot.press("v")  # back to the table, its cursor on the graph's node
        await pilot.pause()
        table = screen.query_one("#board", DataTable)
        assert table.display and table.cursor_row == table.get_row_index("format")
