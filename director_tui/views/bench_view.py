"""``director bench`` output: the comparison table, the history list and progress lines.

Pure renderers over a :class:`BenchSummary` (``summary.json``, see ``engine/bench/``): no engine calls,
so ``--report`` prints exactly what a finished bench printed.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from director_tui.engine.bench.model import BenchRow, BenchSummary
from director_tui.engine.bench.points import bench_plane
from director_tui.engine.bench.stats import CUT_TARGET_PCT
from director_tui.engine.events import BenchProgress, EventBase
from director_tui.views.console import ProgressConsole


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


def saving_text(row: BenchRow, target: float, is_baseline: bool = False) -> Text:
    """How much cheaper per run than the baseline, ✔ above the target."""
    saving = row.cost_cut_pct
    if saving is None:
        return Text("baseline" if is_baseline else "—", style="dim")
    met = bool(row.cut_met(target))
    return Text(f"{saving:.0f}% {'✔' if met else '✘'}", style="green" if met else "yellow")


def quality_text(row: BenchRow, is_baseline: bool = False) -> Text:
    """Whether the acceptance pass rate meets the baseline's bar."""
    held = row.quality_held
    if held is None:
        return Text("the bar" if is_baseline else "—", style="dim")
    return Text("meets bar ✔", style="green") if held else Text("below bar ✘", style="red")


# The answer first (what a bench is for), in plain words: the README's "Words used here"
# explains each once.
CORE_COLUMNS = ("profile", "done", "cost", "saving", "quality", "acceptance", "integration")
# Shown when the terminal is wide enough, in this order of importance.
EXTRA_COLUMNS = ("runs", "min–max", "by executor", "time", "tokens", "escalated", "reviewed")
ORDER = (
    "profile",
    "runs",
    "done",
    "cost",
    "min–max",
    "saving",
    "acceptance",
    "integration",
    "by executor",
    "escalated",
    "reviewed",
    "time",
    "tokens",
    "quality",
)  # fmt: skip  (quality last: a failed profile's message goes in that left-aligned column)


def _stacked(mean: str, std: float, fmt: str) -> str:
    """The mean, and under it the spread when there is one."""
    return mean + (f"\n±{fmt.format(std)}" if std else "")


def _row_cells(row: BenchRow, baseline: str | None, target: float) -> dict[str, RenderableType]:
    integ = row.integration_pass_pct
    partial = integ is not None and integ not in (0, 100)
    integration = (
        f"{float(integ or 0):.0f}% passed"
        if partial
        else ("passed" if row.integration_ok else "failed")
    )
    return {
        "profile": row.profile,
        "runs": f"{row.runs_ok}/{row.repeats}" if row.runs_ok is not None else "1/1",
        "done": f"{_count(row.done)}/{row.n_nodes}",
        "by executor": f"{row.executor_pct:.0f}%",
        "escalated": _count(row.escalated),
        "reviewed": f"{row.review_pct:.0f}%",
        "integration": Text(integration, style="green" if row.integration_ok else "red"),
        "acceptance": _stacked(f"{row.acceptance_pct or 0:.0f}%", row.acceptance_pct_std, "{:.0f}"),
        "cost": _stacked(money(row.run_cost), row.run_cost_std, "{:.4f}"),
        "min–max": f"{money(row.run_cost_min)}\n{money(row.run_cost_max or 0)}"
        if row.run_cost_min is not None
        else "",
        "time": _stacked(f"{row.wall_secs:.0f}s", row.wall_secs_std, "{:.0f}"),
        "tokens": tokens_text(row.tokens) if row.tokens is not None else "",
        "saving": saving_text(row, target, is_baseline=row.profile == baseline),
        "quality": quality_text(row, is_baseline=row.profile == baseline),
    }


def _cell_width(cell: RenderableType) -> int:
    text = cell.plain if isinstance(cell, Text) else str(cell)
    return max((len(line) for line in text.splitlines()), default=0)


def bench_table(summary: BenchSummary, width: int = 200) -> Table:
    """Profiles side by side: means over the repeats, the standard deviation under each
    mean. Columns that do not fit in ``width`` are left out (least important first)."""
    target = summary.target(CUT_TARGET_PCT)
    headers = {name: name for name in ORDER}
    headers["saving"] = f"saving >{target:.0f}%"
    failed = [r for r in summary.rows if r.failed]
    cells = [_row_cells(r, summary.baseline, target) for r in summary.rows if not r.failed]

    def column_width(name: str) -> int:
        values = [headers[name], *(c[name] for c in cells)]
        return max(_cell_width(v) for v in values) + 1

    said = {row.profile: failure_text(row) for row in failed}
    shown = list(CORE_COLUMNS)
    # a failed profile's message sits in the last column (quality): room for it, up to 60
    message = max((min(60, t.cell_len) for t in said.values()), default=0)
    used = sum(column_width(n) for n in shown) + max(0, message + 1 - column_width("quality"))
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
        table.add_row(row.profile, *([""] * (len(columns) - 2)), said[row.profile])
    return table


def failure_text(row: BenchRow) -> Text:
    """Why a profile has no measured run; one the bench has not reached (it is still
    running, or was interrupted) did not fail."""
    if not (row.error or row.errors):
        return Text("not run", style="dim")
    message = (row.error or row.errors[0])[:160]
    return Text(f"ERROR ({row.repeats or 1} run(s)): {message}", style="red")


def report(summary: BenchSummary, width: int = 200) -> RenderableType:
    """The whole report: heading, the table, the notes under it."""
    status = summary.status or "finished"
    head = Text()
    head.append("bench ", style="bold")
    head.append(summary.bench_id or "", style="bold cyan")
    if status != "finished":
        head.append(f"  [{status}]", style="yellow" if status == "running" else "red")
    task_lines = summary.task.splitlines()
    head.append(f"\ntask: {task_lines[0][:200] if task_lines else '—'}")
    head.append(
        f"\nplanned once under {summary.plan_profile or '?'} "
        f"(shared plan cost {money(summary.plan_cost)}, counted once)"
        f" · job {summary.job_id or '—'} · {summary.repeat or 1} repeat(s) per profile"
    )
    scripted = [p for p, s in summary.scripted.items() if s]
    if scripted:
        head.append(f"\nscripted agents (no model calls): {', '.join(scripted)}", style="magenta")
    notes = Text()
    baseline = summary.baseline
    target = summary.target(CUT_TARGET_PCT)
    if baseline:
        notes.append(
            f"saving = how much cheaper per run than {baseline} (✔ above the target "
            f">{target:.0f}%); quality meets the bar = an acceptance pass rate not below "
            f"{baseline}'s mean less its spread.\n",
            style="dim",
        )
        front = bench_plane(summary).frontier
        if front:
            notes.append(
                f"frontier (no profile is both cheaper and better): {' → '.join(front)}\n",
                style="dim",
            )
    else:
        notes.append("no all-frontier profile in this bench: no saving to show.\n", style="dim")
    notes.append(
        "mean over the repeats ± sample standard deviation; acceptance = the frozen "
        "acceptance tests passing on each run's final branch; by executor = nodes the "
        "executor's tier finished without escalation.\n",
        style="dim",
    )
    check = summary.hash_check
    if check is not None:
        if check.ok:
            notes.append(
                f"hash check ✔ {len(check.files)} test file(s) identical on all "
                f"{check.branches_checked} profile branches\n",
                style="green",
            )
        else:
            notes.append("hash check ✘ test files differ:\n", style="bold red")
            for line in check.mismatches[:20]:
                notes.append(f"  {line}\n", style="red")
    for row in summary.rows:
        if row.errors and row.runs_ok:
            for line in row.errors:
                notes.append(f"{row.profile}: {line}\n", style="yellow")
    if summary.error:
        notes.append(f"{summary.error}\n", style="red")
    if summary.user_checkout_untouched is False:
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
