"""A node's attempts: a list of every step (executor and escalation calls, gates,
reviews) beside the selected one, rendered — a call's transcript as text in Markdown,
tool calls with what they touched, commands with their output (long output folded)."""

from __future__ import annotations

import time

from rich.markdown import Markdown
from rich.syntax import Syntax
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Collapsible, OptionList, Static
from textual.widgets.option_list import Option

from director_tui.engine.cost import cost_text
from director_tui.engine.node_attempts import (
    Attempt,
    CallStep,
    GateStep,
    NodeAttempts,
    ReviewStep,
    Step,
    call_transcript,
    node_attempts,
)
from director_tui.engine.store import Store
from director_tui.engine.transcript import Transcript, TranscriptItem
from director_tui.engine.visible import visible, visible_lines

# Output up to this many lines is shown as it is; longer output is folded (its last
# lines shown), one key away from whole.
INLINE_OUTPUT_LINES = 12
PREVIEW_LINES = 4
MAX_ITEMS_SHOWN = 400
RELOAD_SECS = 1.0  # a transcript's items drawn at most (the rest named, in the file)


class AttemptsView(Horizontal):
    """Steps on the left (grouped by attempt), the highlighted one on the right."""

    DEFAULT_CSS = """
    AttemptsView { height: 1fr; }
    AttemptsView #attempt-steps { width: 34; max-width: 38%; height: 1fr; }
    AttemptsView #attempt-body { width: 1fr; height: 1fr; padding: 0 1; }
    AttemptsView .step-head { text-style: bold; margin-bottom: 1; }
    AttemptsView .item { margin-bottom: 1; }
    AttemptsView Collapsible { margin: 0 0 1 0; padding: 0; border: none; }
    """

    def __init__(self, store: Store, node_id: str) -> None:
        super().__init__()
        self.store = store
        self.node_id = node_id
        self.steps: dict[str, tuple[Attempt, Step]] = {}
        self.shown = ""
        self.drawn = ""  # the step the body shows
        self.latest = ""  # the latest call's key: shown until the user picks another step
        self.loaded_at = 0.0
        self.reload_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield OptionList(id="attempt-steps")
        yield VerticalScroll(Static("reading the attempts…"), id="attempt-body")

    def on_mount(self) -> None:
        self.load()

    def refresh_attempts(self) -> None:
        """The node moved on (a new call, a gate, the running call's output): read again,
        at most once a second (events.jsonl can be long)."""
        wait = self.loaded_at + RELOAD_SECS - time.monotonic()
        if wait <= 0:
            self.load()
        elif self.reload_timer is None:
            self.reload_timer = self.set_timer(wait, self._reload_later)

    def _reload_later(self) -> None:
        self.reload_timer = None
        self.load()

    @work(thread=True, exclusive=True, group="attempts", exit_on_error=False)
    def load(self) -> None:
        """events.jsonl read off the UI thread (it can be long)."""
        self.loaded_at = time.monotonic()
        attempts = node_attempts(self.store, self.node_id)
        self.app.call_from_thread(self.show_attempts, attempts)

    def show_attempts(self, history: NodeAttempts) -> None:
        options = self.query_one("#attempt-steps", OptionList)
        options.clear_options()
        self.steps.clear()
        last = ""
        for index, attempt in enumerate(history.attempts):
            options.add_option(Option(Text(attempt_heading(attempt), style="bold"), disabled=True))
            for number, step in enumerate(attempt.steps):
                key = f"{index}:{number}"
                self.steps[key] = (attempt, step)
                options.add_option(Option(step_line(step), id=key))
                if isinstance(step, CallStep) or not last:
                    last = key
        if not self.steps:
            self._show_widgets([Static("No attempts recorded for this node yet.")])
            return
        # the latest agent call first (what the node's agent last did), and again when a
        # newer one comes; a step the user picked stays
        following = not self.shown or self.shown == self.latest
        picked = last if following or self.shown not in self.steps else self.shown
        self.latest = last
        first_load = options.highlighted is None
        self.shown = picked
        options.highlighted = options.get_option_index(picked)  # no redraw: shown already
        self.render_step(*self.steps[picked])  # drawn again: a running call's has grown
        if first_load:
            options.focus()

    @on(OptionList.OptionHighlighted, "#attempt-steps")
    def step_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        key = event.option.id or ""
        if key in self.steps and key != self.shown:
            self.shown = key
            attempt, step = self.steps[key]
            self.render_step(attempt, step)

    @work(thread=True, exclusive=True, group="attempt-step", exit_on_error=False)
    def render_step(self, attempt: Attempt, step: Step) -> None:
        """A transcript is read and parsed off the UI thread; the widgets are made on it."""
        transcript = call_transcript(self.store, step) if isinstance(step, CallStep) else None
        self.app.call_from_thread(self._show_step, attempt, step, transcript)

    def _show_step(self, attempt: Attempt, step: Step, transcript: Transcript | None) -> None:
        self._show_widgets(step_widgets(attempt, step, transcript))

    def _show_widgets(self, widgets: list[Widget]) -> None:
        body = self.query_one("#attempt-body", VerticalScroll)
        same_step = self.drawn == self.shown
        self.drawn = self.shown
        scroll_y = body.scroll_y if same_step else 0.0
        body.remove_children()
        body.mount_all(widgets)
        # the same step drawn again (it grew) keeps where the reader was
        body.call_after_refresh(body.scroll_to, y=scroll_y, animate=False)


def attempt_heading(attempt: Attempt) -> str:
    merged = f" · merged {attempt.merged[:8]}" if attempt.merged else ""
    return attempt.label() + merged


def step_line(step: Step) -> Text:
    mark, style = "·", ""
    if isinstance(step, CallStep):
        failed = step.finished and step.exit_reason != "ok"
        mark, style = ("✘", "red") if failed else ("▶", "")
    elif isinstance(step, GateStep):
        mark, style = ("✔", "green") if step.passed else ("✘", "red")
    elif isinstance(step, ReviewStep):
        mark, style = ("✘", "red") if step.blocking else ("◇", "")
    return Text.assemble("  ", (mark, style), " ", step.label())


def step_widgets(attempt: Attempt, step: Step, transcript: Transcript | None) -> list[Widget]:
    if isinstance(step, CallStep):
        return call_widgets(attempt, step, transcript)
    if isinstance(step, GateStep):
        head = Text(f"{attempt.label()} · {step.label()}", style="bold")
        widgets: list[Widget] = [Static(head, classes="step-head")]
        if step.message:
            widgets.append(Static(Text(visible_lines(step.message), style="red"), classes="item"))
        widgets += output_widgets(step.output_tail or "(no output)")
        return widgets
    head = Text(f"{attempt.label()} · {step.label()}", style="bold")
    lines = [Text(visible_lines(step.summary))] if step.summary else []
    for finding in step.findings:
        where = " ".join(p for p in (finding.get("file", ""), finding.get("line", "")) if p)
        lines.append(
            Text.assemble(
                (f"[{finding.get('severity', '?')}] ", "yellow"),
                (f"{where} ", "bold"),
                visible(finding.get("summary", "")),
            )
        )
    return [Static(head, classes="step-head"), *(Static(line, classes="item") for line in lines)]


def call_widgets(attempt: Attempt, step: CallStep, transcript: Transcript | None) -> list[Widget]:
    cost = cost_text(step.cost_usd) if step.priced else "unpriced"
    numbers = (
        f"{step.duration_secs:.1f}s · {step.input_tokens} in / {step.output_tokens} out · {cost}"
        if step.finished
        else "running"
    )
    head = Text.assemble(
        (f"{attempt.label()} · {step.role} on {step.tier}", "bold"),
        f" · {step.exit_reason or 'running'} · {numbers}",
    )
    widgets: list[Widget] = [Static(head, classes="step-head")]
    if step.message:
        widgets.append(Static(Text(visible_lines(step.message), style="red"), classes="item"))
    if transcript is None or not transcript.found:
        widgets.append(Static(Text("No transcript: the call wrote none.", style="dim")))
        return widgets
    for item in transcript.items[:MAX_ITEMS_SHOWN]:
        widgets += item_widgets(item)
    hidden = len(transcript.items) - MAX_ITEMS_SHOWN
    if hidden > 0:
        path = f".director/logs/{transcript.call_id}.jsonl"
        widgets.append(Static(Text(f"… {hidden} more items in {path}", style="dim")))
    if not transcript.items:
        widgets.append(Static(Text("The transcript is empty.", style="dim")))
    return widgets


def item_widgets(item: TranscriptItem) -> list[Widget]:
    if item.kind == "text":
        return [Static(Markdown(visible_lines(item.text)), classes="item")]
    if item.kind == "reasoning":
        return [Static(Text(visible_lines(item.text), style="dim italic"), classes="item")]
    if item.kind == "command":
        status = "" if item.exit_code is None else f"  → exit {item.exit_code}"
        style = "red" if item.exit_code not in (None, 0) or item.status == "error" else "green"
        head = Static(
            Syntax(
                f"$ {visible_lines(item.command)}",
                "bash",
                word_wrap=True,
                background_color="default",
            )
        )
        widgets: list[Widget] = [head]
        if status:
            widgets.append(Static(Text(status.strip(), style=style)))
        return widgets + output_widgets(item.output)
    if item.kind == "tool":
        mark = ("✘ ", "red") if item.status == "error" else ("⚒ ", "")
        line = Static(Text.assemble(mark, (visible(item.tool), "bold"), " ", visible(item.args)))
        return [line, *output_widgets(item.output)] if item.output else [line]
    if item.kind == "step":
        tokens = item.tokens
        said = f"{tokens.input_tokens} in / {tokens.output_tokens} out" if tokens else ""
        cost = f" · {cost_text(item.cost_usd)}" if item.cost_usd else ""
        return [Static(Text(f"— step finished · {said}{cost}", style="dim"), classes="item")]
    if item.kind == "error":
        return [Static(Text(f"✘ {visible_lines(item.text)}", style="bold red"), classes="item")]
    return [Static(Text(visible_lines(item.text), style="dim"), classes="item")]


def output_widgets(output: str) -> list[Widget]:
    """Short output as it is; long output folded, its last lines shown."""
    lines = visible_lines(output.rstrip()).split("\n")
    if not lines:
        return []
    if len(lines) <= INLINE_OUTPUT_LINES:
        return [Static(Text("\n".join(lines), style="dim"), classes="item")]
    preview = Text("\n".join(["…", *lines[-PREVIEW_LINES:]]), style="dim")
    whole = Static(Text("\n".join(lines), style="dim"))
    title = f"all {len(lines)} lines of output"
    return [Static(preview), Collapsible(whole, title=title, collapsed=True)]
