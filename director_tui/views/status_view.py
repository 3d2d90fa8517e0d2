"""The ``director status`` table, drawn with rich."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

STATUS_STYLE = {
    "pending": "dim",
    "running": "cyan",
    "gating": "cyan",
    "reviewing": "magenta",
    "merging": "blue",
    "done": "green",
    "failed": "red",
    "blocked": "yellow",
    "skipped": "yellow",
    "cancelled": "yellow",
}
GLYPH = {
    "pending": "·",
    "running": "▶",
    "gating": "◎",
    "reviewing": "◉",
    "merging": "⇢",
    "done": "✓",
    "failed": "✗",
    "blocked": "⊘",
    "skipped": "↷",
    "cancelled": "■",
}


def print_status(summary: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    console.print(f"[bold]repo[/] {summary['repo']}")
    job = summary.get("job")
    if job is None:
        console.print('no job yet — start one with [bold]director plan "<task>"[/]')
    else:
        console.print(f"[bold]job[/] {job['job_id']}  stage [bold]{job['stage']}[/]")
        console.print(f"[bold]task[/] {job['task'].splitlines()[0] if job['task'] else ''}")
    if summary.get("running"):
        console.print(
            f"[cyan]a director process is running (pid {summary['running'].get('pid')})[/]"
        )
    nodes = summary.get("nodes") or []
    if nodes:
        table = Table(show_edge=False, header_style="bold")
        for col in ("", "node", "status", "tries", "tier", "tokens", "cost", "watch-it-fail"):
            table.add_column(col)
        for n in nodes:
            style = STATUS_STYLE.get(n["status"], "")
            table.add_row(
                GLYPH.get(n["status"], "?"),
                n["id"],
                f"[{style}]{n['status']}[/]" + (" (flaky)" if n["flaky"] else ""),
                str(n["attempts"]),
                (n["tier"] or "-") + (" ↑" if n["escalated"] else ""),
                str(n["tokens"]),
                f"${n['cost_usd']:.4f}",
                n["watch_it_fail"],
            )
        console.print(table)
    run = summary.get("run")
    if run:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(run["counts"].items()))
        console.print(f"[bold]run[/] {counts}; integration {run['integration']}")
        if run.get("stopped_reason"):
            console.print(f"[yellow]stopped: {run['stopped_reason']}[/]")
        if run.get("integration_report"):
            console.print(run["integration_report"])
        for note in run.get("recovered") or []:
            console.print(f"[yellow]recovered: {note}[/]")
    cost = summary["cost"]
    unpriced = f" ({cost['unpriced_calls']} unpriced)" if cost["unpriced_calls"] else ""
    console.print(f"[bold]cost[/] ${cost['total_usd']:.4f} over {cost['calls']} calls{unpriced}")
    m = summary.get("metrics")
    if m:
        console.print(
            f"[bold]metrics[/] executor-tier completion {m.get('executor_tier_completion_rate', 0):.0%}"
            f" (target > 70%) · escalation {m.get('escalation_rate', 0):.0%}"
            f" · stage-two trigger {m.get('stage_two_trigger_rate', 0):.0%}"
            f" · watch-it-fail observed {m.get('watch_it_fail_observed', 0)}"
        )
    jobs = [j for j in summary.get("jobs", []) if j["archived"]]
    if jobs:
        console.print("[bold]earlier jobs[/]")
        for j in jobs:
            console.print(f"  {j['job_id']}  {j['stage']:<9} {j['run']:<20} {j['task']}")
