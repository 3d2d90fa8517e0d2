"""The node details' Attempts tab: every attempt's steps listed, the selected call's
transcript rendered (commands with their output, long output folded, text as Markdown),
at 80×24 and 120×40."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.markdown import Markdown
from rich.syntax import Syntax
from rich.text import Text
from textual.widgets import Collapsible, DataTable, OptionList, Static

from director_tui.tui.screens.node_detail import NodeDetailScreen
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
