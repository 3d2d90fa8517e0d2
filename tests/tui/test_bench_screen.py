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
from tests.tui.helpers import frozen_app, screen_text, wait_until


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
        saving = table.get_row_at(1)[BENCH_COLUMNS.index("saving")]
        assert "84% ✔" in str(saving)  # cheap-cloud's saving vs all-frontier
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


def _running_bench(store: Store) -> None:
    """A bench still running: all-frontier measured, cheap-cloud not reached yet."""
    from director_tui.engine.bench import RunResult, build_summary
    from director_tui.engine.bench.summary_io import write_summary

    measured = RunResult(
        profile="all-frontier", repeat=1, n_nodes=2, done=2, run_cost=0.04, acceptance_total=2
    )
    meta = {"bench_id": "20260101-000000-abcd", "task": "t", "status": "running"}
    write_summary(store, build_summary(meta, ["all-frontier", "cheap-cloud"], [measured], {}))


async def test_a_profile_not_run_yet_reads_not_run_not_failed(
    sample_repo: Callable[[str], Path],
) -> None:
    """The integration column showed ✘ for a profile the bench had not reached."""
    repo = sample_repo("gate2")
    _running_bench(Store(repo))
    app = frozen_app(repo, "bench")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        table = app.screen.query_one("#bench-table", DataTable)
        waiting = [str(cell) for cell in table.get_row_at(1)]
        assert waiting[0] == "cheap-cloud"
        assert waiting[BENCH_COLUMNS.index("done")] == "not run"
        assert waiting[BENCH_COLUMNS.index("integration")] == "not run"
        assert not any(mark in cell for cell in waiting for mark in ("✘", "failed", "$"))
        measured = [str(cell) for cell in table.get_row_at(0)]
        assert measured[BENCH_COLUMNS.index("integration")] == "failed"  # it ran: a real ✘


async def test_the_finished_bench_and_its_statuses_are_whole_at_80_columns(
    sample_repo: Callable[[str], Path],
) -> None:
    """At 80×24 "bench finished:" showed a blank path (the absolute one wrapped out of the
    status line) and the history's status column read "sta" / "run" / "fin"."""
    repo = sample_repo("gate2")
    store = Store(repo)
    write_bench_summary(store)  # a finished bench and an interrupted one
    app = frozen_app(repo, "bench")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        shown = screen_text(app)
        assert "12-31 09:00  finished" in shown and "12-30 17:00  interrupted" in shown
        path = store.bench / "20251231-090000-ab12" / "summary.json"
        EventBus(store.bench / "events.jsonl").emit(
            BenchProgress(
                bench_id="x", profile="", repeat=0, phase="finished", message=f"finished: {path}"
            )
        )
        relative = ".director/bench/20251231-090000-ab12/summary.json"
        assert await wait_until(pilot, lambda: f"■ bench finished: {relative}" in screen_text(app))


async def test_the_chart_is_redrawn_to_the_panel_after_a_resize(
    sample_repo: Callable[[str], Path],
) -> None:
    repo = sample_repo("gate2")
    write_bench_summary(Store(repo))
    app = frozen_app(repo, "bench")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert "cost per run ($), log scale →" in screen_text(app)
        await pilot.resize_terminal(80, 24)
        assert await wait_until(pilot, lambda: app.screen.size.width == 80)
        await pilot.pause()
        shown = screen_text(app)
        # the whole axis title and legend, inside the panel, nothing cut at its edge
        assert "cost per run ($), log scale →" in shown
        assert "A all-frontier (baseline)" in shown
        assert "┈┘ frontier" in shown
        # the x axis is one row (an axis drawn for the wider panel would wrap onto two)
        axis_rows = [line for line in shown.splitlines() if "─┬─" in line]
        assert len(axis_rows) == 1 and "└" in axis_rows[0]
