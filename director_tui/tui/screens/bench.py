"""Bench results: profiles side by side, cost against quality, earlier benches, live progress.

Reads what ``engine/bench/`` writes: ``.director/bench/summary.json`` (the latest),
``<id>/summary.json`` (each bench, listed by ``list_benches``) and ``bench/events.jsonl``
(``BenchProgress`` of a bench that is running, followed live).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Header, Static
from textual.widgets.data_table import ColumnKey

from director_tui.engine.bench.model import BenchRow, BenchSummary
from director_tui.engine.bench.points import bench_plane, measured
from director_tui.engine.bench.stats import BASELINE, CUT_TARGET_PCT
from director_tui.engine.errors import DirectorError
from director_tui.engine.events import BenchProgress
from director_tui.tui.engine_bridge import EngineTask
from director_tui.tui.feed import EventTail
from director_tui.tui.screens.base import DirectorScreen
from director_tui.tui.widgets.chart import BenchChart
from director_tui.tui.widgets.fitting_footer import FittingFooter
from director_tui.tui.widgets.modals import ConfirmModal

# The answer first: cost, the saving against the baseline and quality (the acceptance
# tests passed, and whether that meets the baseline's bar) fit in 80 columns; the
# breakdown behind them follows (the table scrolls sideways to it at 80, fits at 120).
# Plain words: the README's "Words used here" explains each once.
BENCH_COLUMNS = (
    "profile",
    "done",
    "cost",
    "saving",
    "quality",
    "by executor",
    "escalated",
    "reviewed",
    "integration",
    "time",
)


class BenchScreen(DirectorScreen):
    SUB_TITLE = "Bench results"
    CSS_PATH = "../bench.tcss"
    BINDINGS = [
        Binding("ctrl+r", "reload", "Reload", id="bench.reload", tooltip="Re-read bench results"),
        Binding("h", "focus_history", "History", id="bench.history", tooltip="Earlier benches"),
        Binding("l", "latest", "Latest", id="bench.latest", tooltip="Show the latest bench"),
        Binding(
            "n",
            "new_bench",
            "New bench",
            id="bench.new",
            tooltip="Bench the current job's task under every profile",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.bench_id: str | None = None  # None: the latest
        self.progress = ""
        self.tail: EventTail | None = None
        self.bench_asked = False  # until the app has said whether it started the bench

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(id="bench-status", classes="status-line")
        yield DataTable(id="bench-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="bench-bottom"):
            with Vertical(id="bench-chart", classes="panel"):
                yield BenchChart(id="chart")
            with Vertical(id="bench-history", classes="panel"):
                yield Static("Earlier benches (enter to show)", classes="panel-title")
                yield DataTable(id="history", cursor_type="row")
        yield FittingFooter()

    def on_mount(self) -> None:
        table = self.query_one("#bench-table", DataTable)
        for name in BENCH_COLUMNS:
            table.add_column(name, key=name)
        history = self.query_one("#history", DataTable)
        history.add_column("when", key="bench")
        history.add_column("status", key="status")
        self.tail = EventTail(self.director.bridge.store.bench / "events.jsonl")
        self.reload()
        self.ready = True

    def action_new_bench(self) -> None:
        """Plan the current task once, then run it under each profile in .director/profiles."""
        bridge = self.director.bridge
        profiles = bridge.profile_names()
        stage = bridge.plan_stage()
        if not profiles:
            self.notify(
                "No profiles in .director/profiles/: write starters with "
                "`director init --profiles`.",
                severity="warning",
            )
            return
        if stage is None or not stage.task:
            self.notify("Plan a task first: the bench reuses its task.", severity="warning")
            return

        def decided(start: bool | None) -> None:
            if not start:
                return
            job = self.director.guard(
                "Cannot start the bench", lambda: bridge.run_bench(stage.task, profiles)
            )
            self.start_engine_job(job, "")
            self.bench_asked = job is not None

        self.app.push_screen(
            ConfirmModal(
                f"Bench this job's task under {', '.join(profiles)}? It plans once, then "
                "runs the frozen plan under each profile (your job is not touched).",
                yes="Bench",
                no="Cancel",
            ),
            decided,
        )

    def action_reload(self) -> None:
        self.reload()

    def action_latest(self) -> None:
        self.bench_id = None
        self.reload()

    def action_focus_history(self) -> None:
        self.query_one("#history", DataTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "history" and event.row_key.value is not None:
            self.bench_id = str(event.row_key.value)
            self.reload()

    def load(self) -> BenchSummary | None:
        from director_tui.engine.bench import load_summary

        store = self.director.bridge.store
        if self.bench_id is None and not (store.bench / "summary.json").is_file():
            return None
        try:
            return load_summary(store, self.bench_id)
        except DirectorError as exc:
            self.director.show_error("Cannot read the bench summary", exc)
            return None

    def reload(self) -> None:
        summary = self.load()
        self.fill_history()
        target = summary.target(CUT_TARGET_PCT) if summary else CUT_TARGET_PCT
        table = self.query_one("#bench-table", DataTable)
        table.clear()
        saving = table.columns[ColumnKey("saving")]  # its header names the summary's target
        saving.label = Text(f"saving >{target:.0f}%")
        saving.content_width = max(saving.content_width, saving.label.cell_len)
        status = self.query_one("#bench-status", Static)
        chart = self.query_one("#chart", BenchChart)
        if summary is None:
            status.update(
                'No bench results yet. Run `director bench "<task>" --profiles a,b` '
                "to compare model profiles on one frozen plan."
            )
            chart.show(None)
            return
        baseline = summary.row(summary.baseline or BASELINE)
        for row in summary.rows:
            cells = row_cells(row, baseline, target)
            table.add_row(*(cells[name] for name in BENCH_COLUMNS))
        text = Text()
        if self.progress:
            text.append(f"{self.progress}\n", style="cyan")
        text.append(f"bench {summary.bench_id or 'latest'}")
        if summary.status:
            text.append(
                f" · {summary.status}", style="yellow" if summary.status == "running" else ""
            )
        text.append(f" · planned once by {summary.plan_profile or '?'}, ${summary.plan_cost:.3f}")
        status.update(text)
        chart.show(bench_plane(summary))

    def fill_history(self) -> None:
        from director_tui.engine.bench import list_benches

        history = self.query_one("#history", DataTable)
        history.clear()
        try:
            entries = list_benches(self.director.bridge.store)
        except DirectorError:
            entries = []
        for entry in entries[:50]:
            bench_id = str(entry.get("bench_id") or "?")
            history.add_row(when(bench_id), str(entry.get("status") or ""), key=bench_id)

    def refresh_clock(self) -> None:
        """Follow a running bench: its BenchProgress events, appended bytes only."""
        if self.tail is None:
            return
        result = self.tail.read_new()
        progress = [e for e in result.events if isinstance(e, BenchProgress)]
        if progress:
            last = progress[-1]
            self.progress = progress_line(last, self.director.bridge.store.repo)
            self.reload()

    def refresh_from_board(self) -> None:
        # The app refreshes the screen as soon as it has started a job it was asked for.
        if self.bench_asked and self.director.engine_busy == EngineTask.BENCH:
            self.progress = "▶ planning once under the plan profile…"
            self.reload()
        self.bench_asked = False
        self.refresh_clock()


def progress_line(event: BenchProgress, repo: Path | None = None) -> str:
    """One line for the latest progress event; the whole bench's own events (planning, the
    end) belong to no profile run. The summary's path is shown from the repository (the
    absolute one did not fit 80 columns)."""
    if event.phase == "finished":
        state, _, path = event.message.partition(": ")
        if repo is not None and path:
            with contextlib.suppress(ValueError):
                path = str(Path(path).relative_to(repo))
        return f"■ bench {state}" + (f": {path}" if path else "")
    if event.phase == "plan":
        under = f" under {event.profile}" if event.profile else ""
        return f"▶ planning{under}" + (f" — {event.message}" if event.message else "")
    return f"▶ {event.profile} run {event.repeat}: {event.phase}" + (
        f" — {event.message}" if event.message else ""
    )


def when(bench_id: str) -> str:
    """A bench id's date and time, short enough for the history panel at 80 columns (the
    whole id is in the status line once the bench is shown)."""
    import datetime

    try:
        started = datetime.datetime.strptime(bench_id[:15], "%Y%m%d-%H%M%S")
    except ValueError:
        return bench_id
    return started.strftime("%m-%d %H:%M")


def row_cells(row: BenchRow, baseline: BenchRow | None, target: float) -> dict[str, str]:
    """A profile's row in plain words; a profile with no measured run reads "not run" (or
    "failed"), never as a failed integration."""
    if not measured(row):
        cells = dict.fromkeys(BENCH_COLUMNS, "—")
        cells["profile"] = row.profile
        cells["done"] = "failed" if row.error else "not run"
        cells["integration"] = "—" if row.error else "not run"
        return cells
    cost, spread = float(row.run_cost), float(row.run_cost_std)
    saving = row.cost_cut(baseline)
    held = row.quality_held
    met = row.cut_met(target, baseline)
    verdict = {None: "", True: "meets bar", False: "below bar"}[held]
    if row is baseline:
        verdict = "(the bar)"
    integ = row.integration_pass_pct
    integration = "passed" if row.integration_ok else "failed"
    if integ is not None and integ not in (0, 100):
        integration = f"{float(integ):.0f}% passed"
    return {
        "profile": row.profile,
        "done": f"{row.done:g}/{row.n_nodes}",
        "cost": f"${cost:.3f}" + (f" ±{spread:.3f}" if spread else ""),
        "saving": "baseline"
        if row is baseline
        else ("—" if saving is None else f"{saving:.0f}% {'✔' if met else '✘'}"),
        "quality": f"{row.quality():.0f}% {verdict}".rstrip(),
        "by executor": f"{row.executor_pct:.0f}%",
        "escalated": f"{row.escalated:g}",
        "reviewed": f"{row.review_pct:.0f}%",
        "integration": integration,
        "time": f"{row.wall_secs:.0f}s",
    }
