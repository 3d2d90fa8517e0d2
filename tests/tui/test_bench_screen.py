"""The bench screen: empty state, the table and chart from summary.json, earlier benches,
live progress from bench/events.jsonl."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.widgets import DataTable, Static

from director_tui.engine.events import BenchProgress, EventBus
from director_tui.engine.store import Store
from director_tui.tui.screens.bench import BENCH_COLUMNS
from tests.support.sample_job import write_bench_summary
from tests.tui.helpers import frozen_app, wait_until


def _status(app: object) -> str:
    return str(app.screen.query_one("#bench-status", Static).render())  # type: ignore[attr-defined]


async def test_empty_state_without_a_bench(sample_repo: Callable[[str], Path]) -> None:
    app = frozen_app(sample_repo("gate2"), "bench")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "No bench results yet" in _status(app)
        assert app.screen.query_one("#bench-table", DataTable).row_count == 0


async def test_table_history_and_live_progress(sample_repo: Callable[[str], Path]) -> None:
    repo = sample_repo("gate2")
    store = Store(repo)
    write_bench_summary(store)
    app = frozen_app(repo, "bench")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        table = app.screen.query_one("#bench-table", DataTable)
        assert table.row_count == 3
        cut = table.get_row_at(1)[BENCH_COLUMNS.index("cut")]
        assert "84% ✔" in str(cut)  # cheap-cloud's cut vs all-frontier
        assert "bench 20251231-090000-ab12" in _status(app)
        # pick the older bench from the history
        await pilot.press("h")
        history = app.screen.query_one("#history", DataTable)
        assert history.row_count == 2
        history.move_cursor(row=1)
        await pilot.press("enter")
        assert await wait_until(pilot, lambda: "20251230-170000-cd34" in _status(app))
        # a bench running in another process reports progress
        EventBus(store.bench / "events.jsonl").emit(
            BenchProgress(bench_id="x", profile="cheap-cloud", repeat=2, phase="start")
        )
        assert await wait_until(pilot, lambda: "cheap-cloud run 2: start" in _status(app))


def test_a_profile_that_has_not_run_yet_shows_no_cut() -> None:
    from director_tui.engine.bench import BenchRow

    def cost_cut(row: dict[str, object], baseline: dict[str, object]) -> float | None:
        return BenchRow.model_validate(row).cost_cut(BenchRow.model_validate(baseline))

    baseline = {"profile": "all-frontier", "run_cost": 0.2, "cost_cut_pct": None}
    waiting = {"profile": "cheap", "run_cost": 0.0, "n_nodes": 0, "cost_cut_pct": None}
    finished = {"profile": "cheap", "run_cost": 0.05, "cost_cut_pct": 75.0}
    legacy = {"profile": "cheap", "run_cost": 0.05}  # a director-cli summary: no verdict
    assert cost_cut(waiting, baseline) is None
    assert cost_cut(finished, baseline) == 75.0
    assert cost_cut(legacy, baseline) == 75.0
