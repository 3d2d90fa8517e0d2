"""The ``director status`` table, drawn with rich."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from director_tui.engine.cost import cost_text
from director_tui.views.console import table_console

STATUS_STYLE = {
    "pending": "dim",
    "running": "cyan",
    "gating": "cyan",
    "reviewing": "magenta",
    "merging": "blue",
    "awaiting_review": "bold yellow",
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
    "awaiting_review": "◆",
    "done": "✓",
    "failed": "✗",
    "blocked": "⊘",
    "skipped": "↷",
    "cancelled": "■",
}


def print_status(summary: dict[str, Any], console: Console | None = None) -> None:
    console = console or table_console()
    console.print(f"[bold]repo[/] {escape(str(summary['repo']))}")
    job = summary.get("job")
    if job is None:
        console.print('no job yet — start one with [bold]director plan "<task>"[/]')
    else:
        console.print(f"[bold]job[/] {escape(job['job_id'])}  stage [bold]{job['stage']}[/]")
        first_line = job["task"].splitlines()[0] if job["task"] else ""
        console.print(f"[bold]task[/] {escape(first_line)}")
    if summary.get("running"):
        console.print(
            f"[cyan]a director process is running (pid {summary['running'].get('pid')})[/]"
        )
    nodes = summary.get("nodes") or []
    if nodes:
        console.print(node_table(nodes, console))
        for n in nodes:
            if n["status"] in ("failed", "blocked", "cancelled") and n.get("last_error"):
                where = (
                    f" (worktree {n['worktree']})"
                    if n.get("worktree") and n["status"] == "failed"
                    else ""
                )
                console.print(f"  [red]{n['id']}[/]: {escape(n['last_error'])[:300]}{where}")
            elif n["status"] == "awaiting_review":
                node = escape(n["id"])
                console.print(
                    f"  [bold yellow]{node}[/]: waiting for your review — `director review "
                    f"{node}`, then `director accept {node}` or `director reject {node} "
                    "--comment …`"
                )
    run = summary.get("run")
    if run:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(run["counts"].items()))
        console.print(f"[bold]run[/] {counts}; integration {run['integration']}")
        if run.get("stopped_reason"):
            console.print(f"[yellow]stopped: {escape(run['stopped_reason'])}[/]")
        if run.get("integration_report"):
            console.print(escape(run["integration_report"]))
        for note in run.get("recovered") or []:
            console.print(f"[yellow]recovered: {escape(note)}[/]")
        if run.get("paused"):
            console.print("[yellow]paused: no new node starts until `director resume`[/]")
        controls = run.get("controls") or []
        if run.get("finished") and run.get("started_at"):
            # A run that went on to its end: requests made before its last start (the
            # cancel of an earlier detach) are history, not its state.
            controls = [c for c in controls if c.get("at", 0) >= run["started_at"]]
        for c in controls[-5:]:
            target = f" {c['node_id']}" if c.get("node_id") else ""
            answer = control_answer(c.get("ok", True), c.get("message", ""), ok_mark="")
            console.print(f"[dim]control {c['action']}{target}: {answer}[/]")
    cost = summary["cost"]
    total = cost_text(cost["total_usd"], cost["unpriced_calls"])
    console.print(f"[bold]cost[/] {total} over {cost['calls']} calls")
    m = summary.get("metrics")
    if m:
        console.print(
            f"[bold]metrics[/] done by the executor's tier "
            f"{m.get('executor_tier_completion_rate', 0):.0%} (target > 70%)"
            f" · needed the escalation tier {m.get('escalation_rate', 0):.0%}"
            f" · sent to code review {m.get('stage_two_trigger_rate', 0):.0%}"
            f" · saw their tests fail first {m.get('watch_it_fail_observed', 0)}"
        )
    jobs = [j for j in summary.get("jobs", []) if j["archived"]]
    if jobs:
        console.print("[bold]earlier jobs[/]")
        for j in jobs:
            console.print(
                f"  {escape(j['job_id'])}  {j['stage']:<9} {j['run']:<20} {escape(j['task'])}"
            )


def control_answer(ok: bool, message: str, *, ok_mark: str = "[green]ok[/] ") -> str:
    """How a control request was answered, the word 'refused' said once: a refusal's
    message already begins with it ("refused `skip mul`: …")."""
    if ok:
        return ok_mark + escape(message)
    return "[yellow]refused[/] " + escape(message.removeprefix("refused "))


# The node table's columns, and the order they are dropped in when the terminal is too
# narrow for all of them: a whole column goes, never the end of every word in it.
NODE_COLUMNS = ("", "node", "status", "tries", "tier", "tokens", "cost", "wall", "saw fail",
                "review")  # fmt: skip
DROP_ORDER = ("wall", "tokens", "saw fail", "review", "tries", "tier")


def _node_cells(n: dict[str, Any]) -> dict[str, str]:
    style = STATUS_STYLE.get(n["status"], "")
    review = n.get("review") or {}
    if review:
        verdict = (
            "[red]blocked[/]"
            if any(f.get("severity") == "critical" for f in review.get("findings", []))
            else review.get("verdict", "")
        )
    elif n.get("review_error"):
        verdict = "[yellow]error[/]"
    else:
        verdict = "-"
    return {
        "": GLYPH.get(n["status"], "?"),
        "node": escape(n["id"]),
        "status": f"[{style}]{n['status']}[/]" + (" (flaky)" if n["flaky"] else ""),
        "tries": str(n["attempts"]),
        "tier": escape(n["tier"] or "-") + (" ↑" if n["escalated"] else ""),
        "tokens": str(n["tokens"]),
        "cost": cost_text(n["cost_usd"], n.get("unpriced_calls", 0)),
        "wall": f"{n.get('wall_secs', 0.0):.1f}s",
        "saw fail": saw_fail(n["watch_it_fail"], n.get("watch_it_fail_attempts") or []),
        "review": verdict,
    }


def node_table(nodes: list[dict[str, Any]], console: Console) -> Table:
    """The nodes, with as many columns as the console fits whole."""
    rows = [_node_cells(n) for n in nodes]
    columns = list(NODE_COLUMNS)

    def build() -> Table:
        table = Table(show_edge=False, header_style="bold")
        for col in columns:
            table.add_column(col, no_wrap=True)
        for cells in rows:
            table.add_row(*(cells[col] for col in columns))
        return table

    table = build()
    for col in DROP_ORDER:
        if table.__rich_measure__(console, console.options).maximum <= console.width:
            break
        columns.remove(col)
        table = build()
    return table


SAW_FAIL = {"observed": "yes", "not_observed": "no", "unknown": "-"}


def saw_fail(node: str, attempts: list[str]) -> str:
    """Did the executor run the node's tests and see them fail before its edits? For the
    node (yes when any attempt did), then per attempt when there were several."""
    text = SAW_FAIL.get(node, node)
    if len(attempts) > 1:
        text += " (" + "/".join(SAW_FAIL.get(a, a) for a in attempts) + ")"
    return text
