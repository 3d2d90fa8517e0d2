"""The node details' Attempts tab: every attempt's steps listed, the selected call's
transcript rendered (commands with their output, long output folded, text as Markdown),
at 80×24 and 120×40."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.markdown import Markdown
from rich.syntax import Syntax
from rich.text import Text
from textual.widgets import Collapsible, DataTable, OptionList, Static

from director_tui.engine.events import AgentActivity, AgentFinished, EventBase, GateResult
from director_tui.engine.store import Store, append_jsonl, read_jsonl
from director_tui.tui.screens.node_detail import NodeDetailScreen
from tests.support.sample_job import FIXED_NOW
from tests.tui.helpers import frozen_app, wait_until

SIZES = [(120, 40), (80, 24)]


def _body(app: Any) -> str:
    """The text of the rendered step (every Static under the body, folded ones too)."""
    body = app.screen.query_one("#attempt-body")
    texts = []
    for widget in body.query(Static):
        content = widget.content
        # a command is Syntax (its code), text is Markdown (its source), the rest Text
        if isinstance(content, Syntax):
            texts.append(content.code)
        elif isinstance(content, Markdown):
            texts.append(content.markup)
        else:
            texts.append(content.plain if isinstance(content, Text) else str(content))
    return "\n".join(texts)


async def _open_details(app: Any, pilot: Any, node: str) -> OptionList:
    table = app.screen.query_one("#board", DataTable)
    table.focus()
    table.move_cursor(row=list(app.board.rows).index(node))
    await pilot.press("enter")
    assert await wait_until(pilot, lambda: isinstance(app.screen, NodeDetailScreen))
    options = app.screen.query_one("#attempt-steps", OptionList)
    assert await wait_until(pilot, lambda: options.option_count > 0)
    return options


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_every_attempt_is_listed_and_its_transcript_rendered(
    sample_repo: Callable[[str], Path], size: tuple[int, int]
) -> None:
    app = frozen_app(sample_repo("run"), "run")
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        options = await _open_details(app, pilot, "format")
        listed = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert listed == [
            "attempt 1 · cheap",
            "  ▶ executor · cheap · ok",
            "  ✘ gate · tests FAILED",
            "attempt 2 · cheap",
            "  ▶ executor · cheap · ok",
            "  ✘ gate · tests FAILED",
        ]
        # the latest call is shown first: attempt 2's executor, as OpenCode printed it
        assert await wait_until(pilot, lambda: "$ pytest -q tests/test_format.py" in _body(app))
        shown = _body(app)
        assert "attempt 2 · cheap · executor on scripted/cheap · ok" in shown
        assert "edit todo/format.py" in shown
        assert "2 failed, 1 passed in 0.03s" in shown, shown  # the last lines, unfolded
        folded = app.screen.query_one("#attempt-body").query(Collapsible)
        assert [c.title for c in folded] == ["all 23 lines of output"]
        assert folded.first().collapsed
        # up the list: attempt 1's gate, then its executor call
        await pilot.press("up")
        assert await wait_until(pilot, lambda: "AssertionError: assert '\\n' == ''" in _body(app))
        assert "gate · tests FAILED" in _body(app)
        await pilot.press("up")
        assert await wait_until(pilot, lambda: "$ pytest -q tests/test_format.py" in _body(app))
        assert "attempt 1 · cheap · executor on scripted/cheap · ok" in _body(app)
        assert "the tests I watched fail now pass" in _body(app)


async def test_a_node_that_has_not_run_says_so(sample_repo: Callable[[str], Path]) -> None:
    app = frozen_app(sample_repo("run"), "run")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.screen.query_one("#board", DataTable)
        table.focus()
        table.move_cursor(row=list(app.board.rows).index("cli"))
        await pilot.press("enter")
        assert await wait_until(pilot, lambda: isinstance(app.screen, NodeDetailScreen))
        assert await wait_until(pilot, lambda: "No attempts recorded" in _body(app))


async def test_the_attempts_follow_a_running_node(sample_repo: Callable[[str], Path]) -> None:
    """docs is running: its call's transcript grows, then the call ends and the gate
    passes — the open details show each as it happens (as the engine writes them)."""
    repo = sample_repo("run")
    store = Store(repo)
    app = frozen_app(repo, "run")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        options = await _open_details(app, pilot, "docs")
        assert await wait_until(pilot, lambda: "Implemented" in _body(app))
        prompts = lambda: [  # noqa: E731
            str(options.get_option_at_index(i).prompt) for i in range(options.option_count)
        ]
        assert prompts() == ["attempt 1 · cheap", "  ▶ executor · cheap · running"]
        transcript = store.logs / "executor-docs.jsonl"
        line = {"type": "text", "part": {"text": "Also documented the JSON file."}}
        with transcript.open("a") as out:
            out.write(json.dumps(line) + "\n")
        seq = max(int(r.get("seq", 0)) for r in read_jsonl(store.events))
        at = FIXED_NOW + 1
        news: list[EventBase] = [
            AgentActivity(
                call_id="executor-docs", role="executor", node_id="docs", kind="text", ts=at
            ),
            AgentFinished(
                call_id="executor-docs",
                role="executor",
                tier="scripted/cheap",
                node_id="docs",
                exit_reason="ok",
                ts=at,
            ),
            GateResult(node_id="docs", attempt=1, passed=True, check="passed", ts=at),
        ]
        for offset, event in enumerate(news, start=1):
            event.seq = seq + offset  # as the engine's bus: into events.jsonl, then the app
            append_jsonl(store.events, event.model_dump(mode="json"))
            app.buffer.push(event)
        assert await wait_until(pilot, lambda: "  ✔ gate · tests passed" in prompts())
        assert "  ▶ executor · cheap · ok" in prompts()
        assert await wait_until(pilot, lambda: "Also documented the JSON file." in _body(app))


def test_an_agents_escape_sequences_show_as_text_in_the_attempts_tab() -> None:
    """What an agent wrote reaches the screen with its controls written out, as in
    `director log` and the diff review: an erase-line, an OSC 52 clipboard write and a
    bidi override are shown, never acted on."""
    from director_tui.engine.transcript import TranscriptItem
    from director_tui.tui.widgets.attempts_view import item_widgets

    items = [
        TranscriptItem(kind="text", text="all good\x1b[2K"),
        TranscriptItem(kind="command", command="echo \x1b]52;c;ZXZpbA==\x07", output="x\x1b[1A"),
        TranscriptItem(kind="tool", tool="write", args="calc/\u202eyp.dda", output="ok"),
        TranscriptItem(kind="reasoning", text="hm\x9b"),
    ]
    shown = []
    for item in items:
        for widget in item_widgets(item):
            content = widget.content if isinstance(widget, Static) else ""
            if isinstance(content, Syntax):
                shown.append(content.code)
            elif isinstance(content, Markdown):
                shown.append(content.markup)
            else:
                shown.append(content.plain if isinstance(content, Text) else str(content))
    text = "\n".join(shown)
    assert not any(ch in text for ch in "\x1b\x07\x9b\u202e"), repr(text)
    for written_out in ("\\x1b[2K", "\\x1b]52;c;ZXZpbA==\\x07", "\\x1b[1A", "\\u202e", "\\x9b"):
        assert written_out in text
