"""Nothing that matters is cut (issue 16, item 5): the run board's columns, the footers,
Gate 1's edit count, the palette's resume, the new-plan dialog's task — each as a user
found it cut or lost, at 80×24 and 120×40."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, TextArea
from textual.widgets._footer import FooterKey

from director_tui.engine.events import ControlApplied, NodeStateChanged, parse_event
from director_tui.engine.store import read_jsonl
from director_tui.tui.screens.home import HomeScreen
from director_tui.tui.screens.run_board import RunBoardScreen
from director_tui.tui.screens.spec import lines_changed
from director_tui.tui.widgets.modals import ErrorModal, TextPromptModal
from tests.support.sample_job import FIXED_NOW
from tests.tui.helpers import frozen_app, wait_until

SIZES = [(120, 40), (80, 24)]


def screen_lines(app: Any) -> list[str]:
    """The terminal's text as the user sees it, line by line."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def column_widths(app: Any) -> list[int]:
    table = app.screen.query_one("#board", DataTable)
    return [column.get_render_width(table) for column in table.ordered_columns]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_run_board_shows_every_state_and_last_event_whole(
    sample_repo: Callable[[str], Path], size: tuple[int, int]
) -> None:
    """At 120 columns the board showed "◇ reviewi", "■ cancell" and "escalate applie"
    with ~40 columns free: the columns kept the widths of their first cells."""
    app = frozen_app(sample_repo("run"), "run")
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, RunBoardScreen)
        later = FIXED_NOW + 1
        app.buffer.extend(
            [
                NodeStateChanged(node_id="cli", status="reviewing", attempt=1, ts=later),
                NodeStateChanged(node_id="entry", status="cancelled", ts=later),
                ControlApplied(action="escalate", node_id="docs", ok=True, ts=later),
            ]
        )
        assert await wait_until(pilot, lambda: "escalate applied" in "\n".join(screen_lines(app)))
        shown = "\n".join(screen_lines(app))
        assert "◇ reviewing" in shown
        assert "■ cancelled" in shown
        table = app.screen.query_one("#board", DataTable)
        # the columns fill the terminal, no more: nothing scrolls sideways, nothing is left
        assert table.virtual_size.width == table.scrollable_content_region.width


async def test_in_process_and_attached_boards_size_their_columns_alike(
    sample_repo: Callable[[str], Path],
) -> None:
    """Attached, the board is built from the whole events.jsonl at once; in-process, the
    same events arrive one by one. Both tables must have the same column widths."""
    repo = sample_repo("run")
    attached = frozen_app(repo, "run")
    async with attached.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        widths_attached = column_widths(attached)
    events_file = repo / ".director" / "events.jsonl"
    records = read_jsonl(events_file)
    events_file.write_text("")
    live = frozen_app(repo, "run")
    async with live.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        for record in records:
            event = parse_event(record)
            assert event is not None
            live.buffer.push(event)
            await pilot.pause(0.01)
        assert await wait_until(pilot, lambda: len(live.buffer) == 0)
        await pilot.pause(0.3)
        assert column_widths(live) == widths_attached


def _footer_is_whole(app: Any) -> tuple[set[str], list[str]]:
    """The keys shown, and those cut (part of them under the palette key or off screen)."""
    keys = list(app.screen.query(FooterKey))
    palette = [k for k in keys if k.has_class("-command-palette")]
    right_edge = palette[0].region.x if palette else app.size.width
    shown = {k.key for k in keys if not k.has_class("-command-palette")}
    cut = [
        k.key for k in keys if not k.has_class("-command-palette") and k.region.right > right_edge
    ]
    return shown, cut


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(
    ("stage", "screen"),
    [("gate2", "home"), ("gate1", "gate1"), ("gate2", "gate2"), ("run", "run"), ("done", "bench")],
)
async def test_every_footer_key_is_whole_and_quit_is_there(
    sample_repo: Callable[[str], Path], stage: str, screen: str, size: tuple[int, int]
) -> None:
    repo = sample_repo(stage)
    if screen == "gate1":
        # the user's edited spec kept aside: "u Restore mine" joins the footer, which then
        # ended in a bare "f5" at 120 columns
        director = repo / ".director"
        (director / "spec.edited.md").write_text("my own version\n")
    app = frozen_app(repo, screen)
    async with app.run_test(size=size) as pilot:
        # the footer draws its keys once the screen's bindings are known
        assert await wait_until(pilot, lambda: "ctrl+q" in _footer_is_whole(app)[0])
        await pilot.pause(0.2)
        shown, cut = _footer_is_whole(app)
        assert cut == []
        if screen == "gate1" and size[0] == 120:
            assert "u" in shown  # the key that made it overflow is there, whole


def test_a_one_line_edit_is_one_line_changed() -> None:
    assert lines_changed("a\nb\nc\n", "a\nB\nc\n") == 1
    assert lines_changed("a\nb\n", "a\nb\nc\nd\n") == 2
    assert lines_changed("a\nb\nc\n", "a\n") == 2
    assert lines_changed("a\n", "a\n") == 0


async def test_gate1_says_one_line_changed_for_a_one_line_edit(
    sample_repo: Callable[[str], Path],
) -> None:
    repo = sample_repo("gate1")
    spec = repo / ".director" / "spec.md"
    lines = spec.read_text().splitlines()
    lines[2] = lines[2] + " (edited)"
    spec.write_text("\n".join(lines) + "\n")
    app = frozen_app(repo, "gate1")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        shown = "\n".join(screen_lines(app))
        assert "edited: 1 line changed vs the generated spec" in shown


async def test_the_palette_finds_resume_while_paused_and_pause_while_running(
    sample_repo: Callable[[str], Path],
) -> None:
    from director_tui.tui.palette import binding_commands

    app = frozen_app(sample_repo("run"), "run")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        titles = [c.title for c in binding_commands(app.screen, app)]
        assert "Pause" in titles and "Resume" not in titles
        app.buffer.push(ControlApplied(action="pause", ok=True, ts=FIXED_NOW + 1))
        assert await wait_until(pilot, lambda: app.board.paused)
        titles = [c.title for c in binding_commands(app.screen, app)]
        assert "Resume" in titles and "Pause" not in titles
        await pilot.pause(0.3)
        shown, _cut = _footer_is_whole(app)
        footer = {k.description for k in app.screen.query(FooterKey) if k.key == "p"}
        assert "p" in shown and footer == {"Resume"}


async def test_the_new_plan_dialog_keeps_the_task_when_the_config_is_broken(
    sample_repo: Callable[[str], Path],
) -> None:
    repo = sample_repo("gate2")
    config = repo / ".director" / "config.toml"
    good = config.read_text()
    app = frozen_app(repo, "home")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        config.write_text(good + "\n[limits\n")
        await pilot.press("n")
        assert await wait_until(pilot, lambda: isinstance(app.screen, TextPromptModal))
        await pilot.press(*["space" if c == " " else c for c in "add a stats command"])
        await pilot.press("ctrl+s")
        assert await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal))
        await pilot.press("escape")
        assert await wait_until(pilot, lambda: isinstance(app.screen, HomeScreen))
        config.write_text(good)  # the user fixes it in their editor
        await pilot.press("n")
        assert await wait_until(pilot, lambda: isinstance(app.screen, TextPromptModal))
        assert app.screen.query_one(TextArea).text == "add a stats command"
