"""``director log <node>``: a node's attempts as text — one line per step, and with
``--attempt N`` each call's transcript (Markdown text, tool calls, commands with their
output). Coloured on a terminal, plain when piped (rich decides)."""

from __future__ import annotations

from rich.console import Console
from rich.markdown import Markdown
from rich.padding import Padding
from rich.syntax import Syntax
from rich.text import Text

from director_tui.engine.cost import cost_text
from director_tui.engine.node_attempts import Attempt, CallStep, GateStep, ReviewStep
from director_tui.engine.transcript import Transcript, TranscriptItem
from director_tui.views.console import table_console


def print_attempts(
    node_id: str,
    attempts: list[Attempt],
    transcripts: dict[str, Transcript],
    console: Console | None = None,
) -> None:
    console = console or table_console()
    if not attempts:
        console.print(f"node {node_id}: no attempt yet")
        return
    for attempt in attempts:
        head = Text(f"{node_id} · {attempt.label()}", style="bold")
        if attempt.merged:
            head.append(f" · merged {attempt.merged[:10]}", style="green")
        elif attempt.outcome:
            head.append(f" · {attempt.outcome}")
        console.print(head)
        for step in attempt.steps:
            console.print(Text("  ") + step_text(step))
            if isinstance(step, CallStep) and step.call_id in transcripts:
                print_transcript(console, transcripts[step.call_id])
            elif isinstance(step, GateStep) and transcripts and step.output_tail:
                console.print(
                    Padding(Text(step.output_tail, style="dim"), (0, 0, 0, 4), expand=False)
                )
            elif isinstance(step, ReviewStep) and transcripts:
                for finding in step.findings:
                    console.print(
                        f"    [{finding.get('severity', '?')}] {finding.get('file', '')} "
                        f"{finding.get('summary', '')}",
                        markup=False,
                    )


def step_text(step: CallStep | GateStep | ReviewStep) -> Text:
    if isinstance(step, CallStep):
        failed = step.finished and step.exit_reason != "ok"
        text = Text(step.label(), style="red" if failed else "")
        if step.finished:
            cost = cost_text(step.cost_usd) if step.priced else "unpriced"
            text.append(
                f" · {step.duration_secs:.1f}s · {step.input_tokens} in / "
                f"{step.output_tokens} out · {cost} · {step.call_id}",
                style="dim",
            )
        if step.message:
            text.append(f"\n    {step.message}", style="red")
        return text
    if isinstance(step, GateStep):
        text = Text(step.label(), style="green" if step.passed else "red")
        if step.message:
            text.append(f": {step.message}")
        return text
    text = Text(step.label())
    if step.summary:
        text.append(f": {step.summary}")
    return text


def print_transcript(console: Console, transcript: Transcript) -> None:
    if not transcript.found:
        console.print("    (no transcript: the call wrote none)", style="dim")
        return
    for item in transcript.items:
        console.print(Padding(item_renderable(item), (0, 0, 0, 4), expand=False))


def item_renderable(item: TranscriptItem) -> Text | Markdown | Syntax:
    if item.kind == "text":
        return Markdown(item.text)
    if item.kind == "reasoning":
        return Text(item.text, style="dim italic")
    if item.kind == "command":
        text = Text(f"$ {item.command}", style="bold")
        if item.exit_code is not None:
            text.append(f"  → exit {item.exit_code}", style="red" if item.exit_code else "green")
        if item.output.strip():
            text.append("\n" + item.output.rstrip(), style="dim")
        return text
    if item.kind == "tool":
        text = Text.assemble(("✘ " if item.status == "error" else "⚒ "), (item.tool, "bold"))
        text.append(f" {item.args}")
        if item.output.strip():
            text.append("\n" + item.output.rstrip(), style="dim")
        return text
    if item.kind == "step":
        tokens = item.tokens
        said = f"{tokens.input_tokens} in / {tokens.output_tokens} out" if tokens else ""
        cost = f" · {cost_text(item.cost_usd)}" if item.cost_usd else ""
        return Text(f"— step finished · {said}{cost}", style="dim")
    if item.kind == "error":
        return Text(f"✘ {item.text}", style="bold red")
    return Text(item.text, style="dim")
