"""Headless ``director run`` output: one progress line per meaningful event, with rich."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape

from director_tui.engine.cost import cost_text
from director_tui.engine.events import (
    AgentFinished,
    AgentStarted,
    ControlApplied,
    GateResult,
    IntegrationResult,
    NodeMerged,
    NodeStateChanged,
    Notice,
    ReviewResult,
    RunFinished,
    RunStarted,
)
from director_tui.views.console import ProgressConsole
from director_tui.views.status_view import GLYPH, STATUS_STYLE, control_answer

NOTICE_STYLE = {"info": "dim", "warning": "yellow", "error": "red"}


class RunPrinter:
    """An event-bus sink printing progress lines (quiet about agent chatter and tests)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or ProgressConsole(highlight=False, soft_wrap=True)
        self.started = time.monotonic()
        self.unpriced_calls = 0  # calls no price covers: the totals never say $0 for them

    def _line(self, text: str) -> None:
        secs = time.monotonic() - self.started
        self.console.print(f"[dim]{secs:7.1f}s[/] {text}")

    def __call__(self, event: Any) -> None:
        if isinstance(event, AgentFinished):
            self.unpriced_calls += not event.priced
        if isinstance(event, RunStarted):
            scripted = scripted_note(event.tiers) if event.tiers else ""
            if event.scripted and not scripted:
                scripted = " [magenta](scripted agents)[/]"
            self._line(
                f"[bold]run[/] job {event.job_id}: {len(event.node_ids)} nodes, "
                f"parallel {event.parallel}, ceiling ${event.ceiling_usd:.2f}{scripted}"
            )
            if event.sandbox:
                self._line(escape(event.sandbox))
        elif isinstance(event, NodeStateChanged):
            style = STATUS_STYLE.get(event.status, "")
            glyph = GLYPH.get(event.status, "?")
            message = f" — {escape(event.message)}" if event.message else ""
            self._line(
                f"{glyph} [bold]{event.node_id}[/] [{style}]{event.status}[/]"
                f" (attempt {event.attempt}){message}"
            )
        elif isinstance(event, AgentStarted) and event.worker and event.node_id:
            # A cluster run: where each attempt's agent runs (a local run says nothing).
            self._line(f"  {event.node_id}: {event.role} on worker {escape(event.worker)}")
        elif isinstance(event, GateResult) and not event.passed:
            self._line(
                f"  [red]gate {event.check}[/] {event.node_id}: {escape(event.message)[:300]}"
            )
        elif isinstance(event, ReviewResult):
            mark = "[red]blocks[/]" if event.blocking else event.verdict
            self._line(
                f"  review {event.stage} {event.node_id}: {mark} {escape(event.summary)[:200]}"
            )
        elif isinstance(event, NodeMerged):
            how = " after a rebase" if event.rebased else ""
            self._line(f"  [green]merged[/] {event.node_id} as {event.commit[:10]}{how}")
        elif isinstance(event, IntegrationResult):
            if event.passed:
                self._line("[green]integration gate passed[/]")
            else:
                suspects = f"; likely {', '.join(event.suspects)}" if event.suspects else ""
                self._line(
                    f"[red]integration gate {event.name!r} failed[/] (exit {event.exit_code})"
                    f"{suspects}"
                )
        elif isinstance(event, ControlApplied):
            target = f" {event.node_id}" if event.node_id else ""
            answer = control_answer(event.ok, event.message)
            self._line(f"control {event.action}{target}: {answer}")
        elif isinstance(event, Notice):
            style = NOTICE_STYLE.get(event.level, "")
            self._line(f"[{style}]{escape(event.message)}[/]")
        elif isinstance(event, RunFinished):
            style = "green" if event.outcome == "success" else "red"
            self._line(
                f"[{style}]run {event.outcome}[/]: {escape(event.message)} "
                f"(cost {cost_text(event.cost_usd, self.unpriced_calls)})"
            )

    def summary(self, outcome: Any) -> None:
        parts = [f"{len(outcome.done)}/{outcome.n_nodes} merged"]
        for label in ("failed", "blocked", "skipped", "pending"):
            ids = getattr(outcome, label)
            if ids:
                parts.append(f"{label}: {', '.join(ids)}")
        parts.append(f"done by the executor's tier {outcome.executor_tier_pct:.0f}%")
        parts.append(f"cost {cost_text(outcome.cost_total, self.unpriced_calls)}")
        self.console.print("[bold]summary[/] " + " · ".join(parts))
        if outcome.integration_report and outcome.integration == "failed":
            self.console.print(escape(outcome.integration_report))
        if outcome.outcome in ("stopped", "cancelled") or outcome.failed:
            self.console.print(
                "[dim]continue with `director run`; inspect with `director status`[/]"
            )


def scripted_note(tiers: dict[str, str]) -> str:
    """Which roles replay scripts: all of them (a demo) or the few named."""
    roles = sorted(role for role, tier in tiers.items() if tier.startswith("scripted/"))
    if not roles:
        return ""
    if len(roles) == len(tiers):
        return " [magenta](scripted agents)[/]"
    return f" [magenta](scripted: {', '.join(roles)})[/]"
