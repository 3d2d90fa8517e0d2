"""Bench results: profiles side by side, cost against quality, earlier benches, live progress.

Reads what ``engine/bench/`` writes: ``.director/bench/summary.json`` (the latest),
``<id>/summary.json`` (each bench, listed by ``list_benches``) and ``bench/events.jsonl``
(``BenchProgress`` of a bench that is running, followed live).
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Header, Static

from director_tui.engine.bench.model import BenchSummary
from director_tui.engine.bench.stats import BASELINE, CUT_TARGET_PCT
from director_tui.engine.errors import DirectorError
from director_tui.engine.events import BenchProgress
from director_tui.tui.engine_bridge import EngineTask
from director_tui.tui.feed import EventTail
from director_tui.tui.screens.base import DirectorScreen
from director_tui.tui.widgets.chart import Point, scatter
from director_tui.tui.widgets.fitting_footer import FittingFooter
from director_tui.tui.widgets.modals import ConfirmModal

CHART_WIDTH = 48  # plot columns at the most
CHART_MARGIN = 7  # the axis label and line left of the plot, and one spare
# The answer first: cost, the cut against the baseline and whether quality held fit in
# 80 columns; the breakdown behind them follows (the table scrolls sideways to it).
BENCH_COLUMNS = (
    "profile",
    "done",
    "cost",
    "cut",
    "quality",
    "exec-tier",
    "escal.",
    "review",
    "integr.",
    "accept.",
    "wall",
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
        self.points: list[Point] = []
        self.tail: EventTail | None = None
        self.bench_asked = False  # until the app has said whether it started the bench

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(id="bench-status", classes="status-line")
        yield DataTable(id="bench-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="bench-bottom"):
            with Vertical(id="bench-chart", classes="panel"):
                yield Static(id="chart")
            with Vertical(id="bench-history", classes="panel"):
                yield Static("Earlier benches (enter to show)", classes="panel-title")
                yield DataTable(id="history", cursor_type="row")
        yield FittingFooter()

    def on_mount(self) -> None:
        table = self.query_one("#bench-table", DataTable)
        for name in BENCH_COLUMNS:
            table.add_column(name, key=name)
        history = self.query_one("#history", DataTable)
        history.add_column("bench", key="bench")
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
        table = self.query_one("#bench-table", DataTable)
        table.clear()
        status = self.query_one("#bench-status", Static)
        if summary is None:
            status.update(
                'No bench results yet. Run `director bench "<task>" --profiles a,b` '
                "to compare model profiles on one frozen plan."
            )
            self.query_one("#chart", Static).update(scatter([]))
            return
        baseline = summary.row(BASELINE)
        target = summary.target(CUT_TARGET_PCT)
        points = []
        for row in summary.rows:
            cost, spread = float(row.run_cost), float(row.run_cost_std)
            cut = row.cost_cut(baseline)
            held = row.quality_held
            cells = {
                "profile": row.profile,
                "done": f"{row.done:g}/{row.n_nodes}",
                "exec-tier": f"{row.executor_pct:.0f}%",
                "escal.": f"{row.escalated:g}",
                "review": f"{row.review_pct:.0f}%",
                "integr.": "✔" if row.integration_ok else "✘",
                "accept.": f"{row.quality():.0f}%",
                "cost": f"${cost:.3f}" + (f" ±{spread:.3f}" if spread else ""),
                "wall": f"{row.wall_secs:.0f}s",
                "cut": ""
                if cut is None
                else f"{cut:.0f}% {'✔' if row.cut_met(target, baseline) else '✘'}",
                "quality": "" if held is None else ("held" if held else "dropped"),
            }
            table.add_row(*(cells[name] for name in BENCH_COLUMNS))
            points.append(Point(row.profile, cost, row.quality(), spread))
        which = summary.bench_id or "latest"
        state = summary.status
        text = Text(f"bench {which}")
        if state:
            text.append(f" ({state})", style="yellow" if state == "running" else "")
        text.append(
            f" · planned once under {summary.plan_profile or '?'} "
            f"(${summary.plan_cost:.3f}) · cut target >{target:.0f}% vs {BASELINE}"
        )
        if self.progress:
            text.append(f"\n{self.progress}", style="cyan")
        status.update(text)
        self.points = points
        self.draw_chart()

    def draw_chart(self) -> None:
        """The chart as wide as its panel leaves room for (it wrapped at 80 columns)."""
        chart = self.query_one("#chart", Static)
        room = chart.content_size.width or CHART_WIDTH + CHART_MARGIN
        chart.update(scatter(self.points, width=max(12, min(CHART_WIDTH, room - CHART_MARGIN))))

    def on_resize(self, event: events.Resize) -> None:
        # (DirectorScreen's handler runs too.) The panel's new width is known once laid out.
        if self.points:
            self.call_after_refresh(self.draw_chart)

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
            history.add_row(bench_id, str(entry.get("status") or ""), key=bench_id)

    def refresh_clock(self) -> None:
        """Follow a running bench: its BenchProgress events, appended bytes only."""
        if self.tail is None:
            return
        result = self.tail.read_new()
        progress = [e for e in result.events if isinstance(e, BenchProgress)]
        if progress:
            last = progress[-1]
            self.progress = progress_line(last)
            self.reload()

    def refresh_from_board(self) -> None:
        # The app refreshes the screen as soon as it has started a job it was asked for.
        if self.bench_asked and self.director.engine_busy == EngineTask.BENCH:
            self.progress = "▶ planning once under the plan profile…"
            self.reload()
        self.bench_asked = False
        self.refresh_clock()


def progress_line(event: BenchProgress) -> str:
    """One line for the latest progress event; the whole bench's own events (planning, the
    end) belong to no profile run."""
    if event.phase == "finished":
        return f"■ bench {event.message}"
    if event.phase == "plan":
        under = f" under {event.profile}" if event.profile else ""
        return f"▶ planning{under}" + (f" — {event.message}" if event.message else "")
    return f"▶ {event.profile} run {event.repeat}: {event.phase}" + (
        f" — {event.message}" if event.message else ""
    )
