"""``director log <node>``: a node's attempts as text — one line per step, and with
``--attempt N`` each call's transcript (Markdown text, tool calls, commands with their
output). Coloured on a terminal; piped, plain lines with nothing after their last
character. Everything an agent or its commands wrote goes through ``visible``: an escape
sequence or a bidi override in a transcript is shown as text, never acted on."""

from __future__ import annotations

from rich.console import Console
from rich.markdown import Markdown
from rich.padding import Padding
from rich.text import Text

from director_tui.engine.cost import cost_text
from director_tui.engine.node_attempts import Attempt, CallStep, GateStep, ReviewStep
from director_tui.engine.transcript import Transcript, TranscriptItem
from director_tui.engine.visible import visible, visible_lines
from director_tui.views.console import table_console


def print_attempts(
    node_id: str,
    attempts: list[Attempt],
    transcripts: dict[str, Transcript],
    console: Console | None = None,
) -> None:
    console = console or table_console()
    piped = not console.is_terminal  # whole lines: a pipe has no width to wrap at
    if not attempts:
        console.print(f"node {node_id}: no attempt yet")
        return
    for attempt in attempts:
        head = Text(f"{node_id} · {attempt.label()}", style="bold")
        if attempt.merged:
            head.append(f" · merged {attempt.merged[:10]}", style="green")
        elif attempt.outcome:
            head.append(f" · {attempt.outcome}")
        console.print(head, soft_wrap=piped)
        for step in attempt.steps:
            console.print(Text("  ") + step_text(step), soft_wrap=piped)
            if isinstance(step, CallStep) and step.call_id in transcripts:
                print_transcript(console, transcripts[step.call_id])
            elif isinstance(step, GateStep) and transcripts and step.output_tail:
                print_indented(console, Text(visible_lines(step.output_tail), style="dim"))
            elif isinstance(step, ReviewStep) and transcripts:
                for finding in step.findings:
                    said = (
                        f"[{finding.get('severity', '?')}] {finding.get('file', '')} "
                        f"{finding.get('summary', '')}"
                    )
                    print_indented(console, Text(visible(said)))


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
            text.append(f"\n    {visible(step.message)}", style="red")
        return text
    if isinstance(step, GateStep):
        text = Text(step.label(), style="green" if step.passed else "red")
        if step.message:
            text.append(f": {visible(step.message)}")
        return text
    text = Text(step.label())
    if step.summary:
        text.append(f": {visible(step.summary)}")
    return text


def print_transcript(console: Console, transcript: Transcript) -> None:
    if not transcript.found:
        console.print("    (no transcript: the call wrote none)", style="dim")
        return
    for item in transcript.items:
        print_indented(console, item_renderable(item, markdown=console.is_terminal))


def print_indented(console: Console, renderable: Text | Markdown) -> None:
    """Four columns in. On a terminal as rich lays it out; piped, line by line with
    nothing after the text (rich pads a padded block's lines to its widest, and Markdown
    to the page's width) and no line broken at the page's width."""
    if console.is_terminal or not isinstance(renderable, Text):
        console.print(Padding(renderable, (0, 0, 0, 4), expand=False))
        return
    for line in renderable.split("\n", allow_blank=True):
        console.print(Text("    ") + line, soft_wrap=True)


def item_renderable(item: TranscriptItem, *, markdown: bool = True) -> Text | Markdown:
    """The item, its agent-written parts made visible; the text as Markdown on a
    terminal, as written when piped."""
    if item.kind == "text":
        said = visible_lines(item.text)
        return Markdown(said) if markdown else Text(said)
    if item.kind == "reasoning":
        return Text(visible_lines(item.text), style="dim italic")
    if item.kind == "command":
        text = Text(f"$ {visible(item.command)}", style="bold")
        if item.exit_code is not None:
            text.append(f"  → exit {item.exit_code}", style="red" if item.exit_code else "green")
        if item.output.strip():
            text.append("\n" + visible_lines(item.output.rstrip()), style="dim")
        return text
    if item.kind == "tool":
        mark = "✘ " if item.status == "error" else "⚒ "
        text = Text.assemble(mark, (visible(item.tool), "bold"))
        text.append(f" {visible_lines(item.args)}")
        if item.output.strip():
            text.append("\n" + visible_lines(item.output.rstrip()), style="dim")
        return text
    if item.kind == "step":
        tokens = item.tokens
        said = f"{tokens.input_tokens} in / {tokens.output_tokens} out" if tokens else ""
        cost = f" · {cost_text(item.cost_usd)}" if item.cost_usd else ""
        return Text(f"— step finished · {said}{cost}", style="dim")
    if item.kind == "error":
        return Text(f"✘ {visible_lines(item.text)}", style="bold red")
    return Text(visible_lines(item.text), style="dim")
