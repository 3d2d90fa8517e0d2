"""Bench results: profiles side by side and a chart of cost against quality."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static

from director_tui.tui.screens.base import DirectorScreen
from director_tui.tui.widgets.chart import Point, scatter

BASELINE = "all-frontier"
CUT_TARGET = 80.0


def read_summary(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _num(row: dict[str, Any], key: str) -> float:
    value = row.get(key)
    return float(value) if isinstance(value, int | float) else 0.0


def quality(row: dict[str, Any]) -> float:
    if "acceptance_pct" in row:
        return _num(row, "acceptance_pct")
    total = _num(row, "n_nodes")
    return 100.0 * _num(row, "done") / total if total else 0.0


class BenchScreen(DirectorScreen):
    SUB_TITLE = "Bench results"
    CSS_PATH = "../bench.tcss"
    BINDINGS = [
        Binding("ctrl+r", "reload", "Reload", id="bench.reload", tooltip="Re-read bench results"),
    ]

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(id="bench-status", classes="status-line")
        yield DataTable(id="bench-table", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="bench-bottom"):
            with VerticalScroll(id="bench-chart", classes="panel"):
                yield Static(id="chart")
            with VerticalScroll(id="bench-history", classes="panel"):
                yield Static(id="history")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#bench-table", DataTable)
        for name in (
            "profile",
            "done",
            "exec-tier",
            "escal.",
            "review",
            "integr.",
            "cost",
            "wall",
            "cut",
        ):
            table.add_column(name, key=name)
        self.reload()

    def action_reload(self) -> None:
        self.reload()

    def reload(self) -> None:
        bench_dir = self.director.bridge.store.bench
        summary = read_summary(bench_dir / "summary.json")
        table = self.query_one("#bench-table", DataTable)
        table.clear()
        status = self.query_one("#bench-status", Static)
        if summary is None:
            status.update(
                'No bench results yet. Run `director bench "<task>" --profiles a,b` '
                "to compare model profiles on one frozen plan."
            )
            self.query_one("#chart", Static).update(scatter([]))
            self.query_one("#history", Static).update("")
            return
        rows = [r for r in summary.get("rows", []) if isinstance(r, dict)]
        baseline = next((r for r in rows if r.get("profile") == BASELINE), None)
        base_cost = _num(baseline, "run_cost") if baseline else 0.0
        points = []
        for row in rows:
            cost = _num(row, "run_cost")
            cut = ""
            if base_cost and row is not baseline:
                pct = 100.0 * (1 - cost / base_cost)
                cut = f"{pct:.0f}% {'✔' if pct >= CUT_TARGET else '✘'}"
            spread = _num(row, "run_cost_std")
            table.add_row(
                str(row.get("profile", "?")),
                f"{int(_num(row, 'done'))}/{int(_num(row, 'n_nodes'))}",
                f"{_num(row, 'executor_pct'):.0f}%",
                str(int(_num(row, "escalated"))),
                f"{_num(row, 'review_pct'):.0f}%",
                "✔" if row.get("integration_ok") else "✘",
                f"${cost:.3f}" + (f" ±{spread:.3f}" if spread else ""),
                f"{_num(row, 'wall_secs'):.0f}s",
                cut,
            )
            points.append(Point(str(row.get("profile", "?")), cost, quality(row), spread))
        status.update(
            f"planned once under {summary.get('plan_profile', '?')} "
            f"(${_num(summary, 'plan_cost'):.3f}) · cut target >{CUT_TARGET:.0f}% vs {BASELINE}"
        )
        self.query_one("#chart", Static).update(scatter(points))
        history = sorted(bench_dir.glob("*/summary.json"), reverse=True)
        lines = ["Earlier bench runs"] + [f"• {p.parent.name}" for p in history[:20]]
        self.query_one("#history", Static).update("\n".join(lines) if history else "")
