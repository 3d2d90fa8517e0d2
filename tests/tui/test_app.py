"""App-wide behaviour: palette entries for every action, binding ids, themes, NO_COLOR,
the launch entry point and `director tui` outside a terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from textual.binding import Binding

from director_tui.tui.app import DirectorApp
from director_tui.tui.palette import applies
from director_tui.tui.screens.node_detail import NodeDetailScreen
from director_tui.tui.widgets.modals import (
    ConfirmModal,
    ErrorModal,
    NodeEditModal,
    TextPromptModal,
)
from tests.tui.helpers import frozen_app, wait_until

SCREENS = ("home", "gate1", "gate2", "run", "bench")


def _bindings(owner: type) -> list[Binding]:
    return [b for b in owner.BINDINGS if isinstance(b, Binding)]  # type: ignore[attr-defined]


def test_every_binding_has_an_id_and_a_description() -> None:
    owners: list[type] = [
        DirectorApp,
        *DirectorApp.MODES.values(),  # type: ignore[list-item]
        NodeDetailScreen,
        ConfirmModal,
        ErrorModal,
        TextPromptModal,
        NodeEditModal,
    ]
    ids: list[str] = []
    for owner in owners:
        for binding in _bindings(owner):
            assert binding.id, f"{owner.__name__}: binding {binding.key} has no id"
            assert binding.description, f"{owner.__name__}: binding {binding.key} has no label"
            ids.append(binding.id)
    assert len(ids) == len(set(ids)), "binding ids must be unique"


async def test_palette_lists_every_action_of_each_screen(
    sample_repo: Callable[[str], Path],
) -> None:
    repo = sample_repo("run")
    app = frozen_app(repo, "home")
    async with app.run_test(size=(120, 40)) as pilot:
        for name in SCREENS:
            await app.action_open(name)
            await pilot.pause()
            titles = {c.title for c in app.get_system_commands(app.screen)}
            for binding in _bindings(type(app.screen)) + _bindings(DirectorApp):
                if binding.action == "quit":
                    assert "Quit" in titles
                    continue
                owner = app if binding in _bindings(DirectorApp) else app.screen
                if not applies(owner, binding.action):
                    # off here (the screen shown, Pause while paused): not offered
                    assert binding.description not in titles, (name, binding.description)
                    continue
                assert binding.description in titles, (name, binding.description)


async def test_palette_command_runs_the_action(sample_repo: Callable[[str], Path]) -> None:
    repo = sample_repo("run")
    app = frozen_app(repo, "home")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        command = next(c for c in app.get_system_commands(app.screen) if c.title == "Bench")
        await command.callback()  # type: ignore[func-returns-value]
        assert await wait_until(pilot, lambda: app.current_mode == "bench")


async def test_light_and_dark_themes(sample_repo: Callable[[str], Path]) -> None:
    app = frozen_app(sample_repo("gate2"), "gate2")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        before = app.theme
        await pilot.press("ctrl+t")
        assert app.theme != before
        await pilot.press("ctrl+t")
        assert app.theme == before


def test_director_tui_needs_a_terminal(sample_repo: Callable[[str], Path]) -> None:
    repo = sample_repo("gate1")
    proc = subprocess.run(
        [sys.executable, "-m", "director_tui", "tui", "--repo", str(repo)],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2
    assert "needs a terminal" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_no_color_renders_without_colour(sample_repo: Callable[[str], Path]) -> None:
    """Under NO_COLOR Textual filters every colour out of the output (Textual's own switch,
    read once at start-up): the app still renders every row."""
    repo = sample_repo("run")
    code = (
        "import asyncio\n"
        "from pathlib import Path\n"
        "from director_tui.tui.app import DirectorApp\n"
        "async def main():\n"
        f"    app = DirectorApp(Path({str(repo)!r}), start='run', watch=False)\n"
        "    async with app.run_test(size=(100, 30)) as pilot:\n"
        "        await pilot.pause()\n"
        "        print(app.no_color, app.screen.query_one('#board').row_count)\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "6"]


async def test_every_screen_fits_80x24_without_scrolling_the_screen(
    sample_repo: Callable[[str], Path],
) -> None:
    repo = sample_repo("run")
    app = frozen_app(repo, "home")
    async with app.run_test(size=(80, 24)) as pilot:
        for name in SCREENS:
            await app.action_open(name)
            await pilot.pause()
            assert app.screen.max_scroll_y == 0, name
            assert app.screen.max_scroll_x == 0, name
        await app.action_open("run")
        await pilot.pause()
        await pilot.press("enter")
        assert await wait_until(pilot, lambda: isinstance(app.screen, NodeDetailScreen))
        assert app.screen.max_scroll_y == 0
