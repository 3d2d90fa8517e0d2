"""``director bench`` output: the comparison table, the history list and progress lines.

Pure renderers over a ``summary.json`` dict (see ``engine/bench.py``): no engine calls,
so ``--report`` prints exactly what a finished bench printed.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from director_tui.engine.events import BenchProgress, EventBase
from director_tui.views.console import ProgressConsole


def _num(row: dict[str, Any], key: str) -> float:
    value = row.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _count(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def money(value: float) -> str:
    return f"${value:.4f}" if value < 1 else f"${value:.2f}"


def tokens_text(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1_000:
        return f"{value / 1_000:.1f}k"
    return f"{value:.0f}"


def cut_text(row: dict[str, Any], target: float) -> Text:
    cut = row.get("cost_cut_pct")
    if not isinstance(cut, int | float):
        return Text("baseline" if row.get("is_baseline") else "—", style="dim")
    met = bool(row.get("cut_target_met"))
    return Text(f"{cut:.0f}% {'✔' if met else '✘'}", style="green" if met else "yellow")


def quality_text(row: dict[str, Any]) -> Text:
    held = row.get("quality_held")
    if held is None:
        return Text("—", style="dim")
    return Text("held ✔", style="green") if held else Text("lower ✘", style="red")


CORE_COLUMNS = (
    "profile",
    "done",
    "exec%",
    "esc",
    "st2%",
    "integ",
    "accept",
    "run $",
    "cut",
    "quality",
)
# Shown when the terminal is wide enough, in this order of importance.
EXTRA_COLUMNS = ("runs", "wall", "tokens", "min–max")
ORDER = (
    "profile", "runs", "done", "exec%", "esc", "st2%", "integ", "accept", "run $", "min–max",
    "wall", "tokens", "cut", "quality",
)  # fmt: skip


def _stacked(mean: str, std: float, fmt: str) -> str:
    """The mean, and under it the spread when there is one."""
    return mean + (f"\n±{fmt.format(std)}" if std else "")


def _row_cells(row: dict[str, Any], baseline: Any, target: float) -> dict[str, RenderableType]:
    profile = str(row.get("profile", "?"))
    runs_ok, repeats = int(_num(row, "runs_ok")), int(_num(row, "repeats") or 1)
    n_nodes = int(_num(row, "n_nodes"))
    integ = row.get("integration_pass_pct")
    partial = isinstance(integ, int | float) and integ not in (0, 100)
    integration = (
        f"{float(integ or 0):.0f}%"
        if partial
        else ("PASS" if row.get("integration_ok") else "FAIL")
    )
    return {
        "profile": profile,
        "runs": f"{runs_ok}/{repeats}" if "runs_ok" in row else "1/1",
        "done": f"{_count(_num(row, 'done'))}/{n_nodes}",
        "exec%": f"{_num(row, 'executor_pct'):.0f}%",
        "esc": _count(_num(row, "escalated")),
        "st2%": f"{_num(row, 'review_pct'):.0f}%",
        "integ": Text(integration, style="green" if row.get("integration_ok") else "red"),
        "accept": _stacked(
            f"{_num(row, 'acceptance_pct'):.0f}%", _num(row, "acceptance_pct_std"), "{:.0f}"
        ),
        "run $": _stacked(money(_num(row, "run_cost")), _num(row, "run_cost_std"), "{:.4f}"),
        "min–max": f"{money(_num(row, 'run_cost_min'))}\n{money(_num(row, 'run_cost_max'))}"
        if "run_cost_min" in row
        else "",
        "wall": _stacked(f"{_num(row, 'wall_secs'):.0f}s", _num(row, "wall_secs_std"), "{:.0f}"),
        "tokens": tokens_text(_num(row, "tokens")) if "tokens" in row else "",
        "cut": cut_text({**row, "is_baseline": profile == baseline}, target),
        "quality": quality_text(row),
    }


def _cell_width(cell: RenderableType) -> int:
    text = cell.plain if isinstance(cell, Text) else str(cell)
    return max((len(line) for line in text.splitlines()), default=0)


def bench_table(summary: dict[str, Any], width: int = 200) -> Table:
    """Profiles side by side: means over the repeats, the standard deviation under each
    mean. Columns that do not fit in ``width`` are left out (least important first)."""
    target = _num(summary, "cut_target_pct") or 80.0
    baseline = summary.get("baseline")
    headers = {name: name for name in ORDER}
    headers["cut"] = f"cut>{target:.0f}%"
    rows = [r for r in summary.get("rows", []) if isinstance(r, dict)]
    failed = [r for r in rows if r.get("error") or ("runs_ok" in r and not r.get("runs_ok"))]
    cells = [_row_cells(r, baseline, target) for r in rows if r not in failed]

    def column_width(name: str) -> int:
        values = [headers[name], *(c[name] for c in cells)]
        return max(_cell_width(v) for v in values) + 1

    shown = list(CORE_COLUMNS)
    used = sum(column_width(n) for n in shown)
    for name in EXTRA_COLUMNS:
        if used + column_width(name) <= width:
            shown.append(name)
            used += column_width(name)
    columns = [n for n in ORDER if n in shown]
    table = Table(
        box=None,
        header_style="bold underline",
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
    )
    for name in columns:
        table.add_column(
            headers[name], justify="left" if name in ("profile", "quality") else "right"
        )
    for row_cells in cells:
        table.add_row(*(row_cells[n] for n in columns))
    for row in failed:
        repeats = int(_num(row, "repeats") or 1)
        message = str(row.get("error") or "no run finished")[:160]
        table.add_row(
            str(row.get("profile", "?")),
            *([""] * (len(columns) - 2)),
            Text(f"ERROR ({repeats} run(s)): {message}", style="red"),
        )
    return table


def report(summary: dict[str, Any], width: int = 200) -> RenderableType:
    """The whole report: heading, the table, the notes under it."""
    status = str(summary.get("status") or "finished")
    repeat = int(_num(summary, "repeat") or 1)
    head = Text()
    head.append("bench ", style="bold")
    head.append(str(summary.get("bench_id") or ""), style="bold cyan")
    if status != "finished":
        head.append(f"  [{status}]", style="yellow" if status == "running" else "red")
    task_lines = str(summary.get("task") or "").splitlines()
    head.append(f"\ntask: {task_lines[0][:200] if task_lines else '—'}")
    head.append(
        f"\nplanned once under {summary.get('plan_profile', '?')} "
        f"(shared plan cost {money(_num(summary, 'plan_cost'))}, counted once)"
        f" · job {summary.get('job_id') or '—'} · {repeat} repeat(s) per profile"
    )
    scripted = [p for p, s in (summary.get("scripted") or {}).items() if s]
    if scripted:
        head.append(f"\nscripted agents (no model calls): {', '.join(scripted)}", style="magenta")
    notes = Text()
    baseline = summary.get("baseline")
    target = _num(summary, "cut_target_pct") or 80.0
    if baseline:
        notes.append(
            f"cut = run-cost reduction vs {baseline} (target >{target:.0f}%); quality held = "
            f"acceptance pass rate not below {baseline}'s mean minus its spread.\n",
            style="dim",
        )
    else:
        notes.append("no all-frontier profile in this bench: no cost cut to show.\n", style="dim")
    notes.append(
        "mean over the repeats ± sample standard deviation; accept. = the frozen acceptance "
        "tests passing on each run's final branch.\n",
        style="dim",
    )
    check = summary.get("hash_check") or {}
    if check:
        files = len(check.get("files") or {})
        if check.get("ok"):
            notes.append(
                f"hash check ✔ {files} test file(s) identical on all "
                f"{check.get('branches_checked', 0)} profile branches\n",
                style="green",
            )
        else:
            notes.append("hash check ✘ test files differ:\n", style="bold red")
            for line in check.get("mismatches", [])[:20]:
                notes.append(f"  {line}\n", style="red")
    for row in summary.get("rows", []):
        if isinstance(row, dict) and row.get("errors") and row.get("runs_ok"):
            for line in row["errors"]:
                notes.append(f"{row.get('profile')}: {line}\n", style="yellow")
    if summary.get("error"):
        notes.append(f"{summary['error']}\n", style="red")
    if summary.get("user_checkout_untouched") is False:
        notes.append("warning: the checked-out branch or commit changed during the bench\n")
    return Group(head, Text(""), bench_table(summary, width), Text(""), notes)


def history_table(entries: list[dict[str, Any]]) -> Table:
    table = Table(header_style="bold", pad_edge=False)
    for name in ("bench", "status", "profiles", "plan cost", "task"):
        # the id is what --report takes: never cut; profiles and the task wrap instead
        table.add_column(name, no_wrap=name not in ("profiles", "task"))
    for entry in entries:
        profiles = []
        for row in entry.get("profiles") or []:
            cost = row.get("run_cost")
            shown = f"{row.get('profile')} {money(float(cost))}" if cost is not None else ""
            profiles.append(f"{row.get('profile')} ERROR" if row.get("error") else shown)
        table.add_row(
            str(entry.get("bench_id")),
            str(entry.get("status")),
            ", ".join(profiles),
            money(float(entry.get("plan_cost") or 0.0)),
            escape(str(entry.get("task") or "")),
        )
    return table


class BenchPrinter:
    """Progress lines for a headless bench, from ``BenchProgress`` events."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or ProgressConsole(highlight=False, soft_wrap=True)
        self.started = time.monotonic()

    def _line(self, text: str) -> None:
        self.console.print(f"[dim]{time.monotonic() - self.started:7.1f}s[/] {text}")

    def __call__(self, event: EventBase) -> None:
        if not isinstance(event, BenchProgress):
            return
        who = f"[bold]{escape(event.profile)}[/] #{event.repeat}" if event.repeat else ""
        message = escape(event.message)
        if event.phase == "plan":
            self._line(f"[cyan]plan[/] {message}")
        elif event.phase == "start":
            self._line(f"▶ {who} {message}")
        elif event.phase == "node":
            self._line(
                f"  {who} {message} ({event.done}/{event.total} done, {money(event.cost_usd)})"
            )
        elif event.phase == "done":
            self._line(f"[green]■[/] {who} {message}")
        elif event.phase == "error":
            self._line(f"[red]✘ {who} error:[/] {message}")
        elif event.phase == "finished":
            self._line(f"[bold]bench {message}[/]")
