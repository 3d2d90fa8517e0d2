"""Write an SVG of every screen of the app into ``screenshots/`` (``make screenshots``).

The pictures come from the same deterministic fixtures as the snapshot tests: a sample
repository at a fixed path, a frozen clock, no cursor blink. Run it after a UI change and
commit the SVGs with it; the README embeds them.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from textual.pilot import Pilot  # noqa: E402
from textual.widgets import DataTable, Input, TextArea  # noqa: E402

from director_tui.tui.app import DirectorApp  # noqa: E402
from tests.support.review_sample import HELD_NODE, hold_for_review  # noqa: E402
from tests.support.sample_job import (  # noqa: E402
    FIXED_NOW,
    big_plan,
    init_sample_repo,
    write_bench_summary,
    write_sample,
)

OUT = ROOT / "screenshots"
Step = Callable[[Pilot[Any]], Awaitable[None]]


def sample(stage: str, *, large: bool = False) -> Path:
    root = (
        Path(tempfile.gettempdir()) / "director-screenshots" / (stage + ("-large" if large else ""))
    )
    if root.exists():
        shutil.rmtree(root)
    repo = init_sample_repo(root / "todo-app")
    held = stage == "run-held"  # the run, with a node waiting for review
    stage = "run" if held else stage
    store = write_sample(repo, stage, plan=big_plan(60) if large else None)  # type: ignore[arg-type]
    write_bench_summary(store)
    if held:
        hold_for_review(store)
    return repo


async def settle(pilot: Pilot[Any]) -> None:
    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False
    for area in pilot.app.screen.query(TextArea):
        area.cursor_blink = False
    await pilot.pause()
    await pilot.pause(0.2)
    pilot.app.clear_notifications()
    await pilot.pause()


async def nothing(pilot: Pilot[Any]) -> None:
    await settle(pilot)


async def preview(pilot: Pilot[Any]) -> None:
    await pilot.press("ctrl+v")
    await settle(pilot)


async def critique_edited_spec(pilot: Pilot[Any]) -> None:
    await pilot.pause()
    spec = pilot.app.bridge.store.spec  # type: ignore[attr-defined]
    spec.write_text("NOTE: my edit\n" + spec.read_text())
    pilot.app.screen.load_files()  # type: ignore[attr-defined]
    await pilot.press("k")
    await settle(pilot)


async def edit_node(pilot: Pilot[Any]) -> None:
    await pilot.press("e")
    await settle(pilot)


async def overlap(pilot: Pilot[Any]) -> None:
    await pilot.pause()
    pilot.app.screen.apply_edit("format", {"files": ["todo/format.py", "todo/store.py"]})  # type: ignore[attr-defined]
    await settle(pilot)


async def details(pilot: Pilot[Any]) -> None:
    await pilot.pause()
    table = pilot.app.screen.query_one("#board", DataTable)
    table.focus()
    table.move_cursor(row=2)
    await pilot.press("enter")
    # the attempts are read and the transcript rendered off the UI thread
    for _ in range(100):
        if len(pilot.app.screen.query("#attempt-body Static")) > 3:
            break
        await pilot.pause(0.05)
    await settle(pilot)


async def diff_review(pilot: Pilot[Any]) -> None:
    """d on the held node; its Python file, the cursor on the line the human commented."""
    await pilot.pause()
    table = pilot.app.screen.query_one("#board", DataTable)
    table.focus()
    table.move_cursor(row=table.get_row_index(HELD_NODE))
    await pilot.press("d")
    for _ in range(100):
        if getattr(pilot.app.screen, "diff", None) is not None:
            break
        await pilot.pause(0.05)
    await pilot.press("n", *["j"] * 10)
    await settle(pilot)


async def graph_neighbourhood(pilot: Pilot[Any]) -> None:
    """The graph takes the keys (d), walks along edges to n025, keeps its neighbourhood (n)."""
    await pilot.pause()
    await pilot.press("d", "right", "right", "down", "right", "n")
    await settle(pilot)


async def run_graph(pilot: Pilot[Any]) -> None:
    await pilot.pause()
    await pilot.press("v", "right", "down")  # the failed node, format
    await pilot.pause(0.3)
    await settle(pilot)


async def quit_while_running(pilot: Pilot[Any]) -> None:
    await pilot.pause()
    pilot.app.engine_busy = "running"  # type: ignore[attr-defined]  # as if its engine ran
    # the header says so now, not at whichever clock tick falls in the pause below (a race
    # that made this picture flake under load)
    pilot.app.screen.refresh_from_board()  # type: ignore[attr-defined]
    await pilot.press("ctrl+q")
    await pilot.pause(0.3)
    await settle(pilot)


async def palette(pilot: Pilot[Any]) -> None:
    await pilot.press("ctrl+p")
    await pilot.pause(0.3)
    await settle(pilot)


SHOTS: list[tuple[str, str, str, Step, tuple[int, int], bool]] = [
    ("home", "gate2", "home", nothing, (120, 40), False),
    ("gate1-spec-editor", "gate1", "gate1", nothing, (120, 40), False),
    ("gate1-preview", "gate1", "gate1", preview, (120, 40), False),
    ("gate1-critique-edited", "gate1", "gate1", critique_edited_spec, (120, 40), False),
    ("gate2-plan-review", "gate2", "gate2", nothing, (120, 40), False),
    ("gate2-edit-node", "gate2", "gate2", edit_node, (120, 40), False),
    ("gate2-blocked", "gate2", "gate2", overlap, (120, 40), False),
    ("gate2-60-nodes", "gate2", "gate2", nothing, (120, 40), True),
    ("gate2-60-nodes-neighbourhood", "gate2", "gate2", graph_neighbourhood, (120, 40), True),
    ("run-board", "run", "run", nothing, (120, 40), False),
    ("run-board-80x24", "run", "run", nothing, (80, 24), False),
    ("run-board-graph", "run", "run", run_graph, (120, 40), False),
    ("run-node-attempts", "run", "run", details, (120, 40), False),
    ("diff-review", "run-held", "run", diff_review, (120, 40), False),
    ("bench", "done", "bench", nothing, (120, 40), False),
    ("bench-80x24", "done", "bench", nothing, (80, 24), False),
    ("command-palette", "run", "run", palette, (120, 40), False),
    ("run-quit-detach", "run", "run", quit_while_running, (120, 40), False),
]


async def shoot(
    name: str, stage: str, screen: str, step: Step, size: tuple[int, int], large: bool
) -> Path:
    app = DirectorApp(
        sample(stage, large=large), start=screen, clock=lambda: FIXED_NOW, watch=False
    )
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        await step(pilot)
        app.title = "director"
        path = OUT / f"{name}.svg"
        app.save_screenshot(filename=path.name, path=str(OUT))
    return path


async def main(names: list[str]) -> int:
    """Every picture, or only those named (``make_screenshots.py run-board home``)."""
    OUT.mkdir(exist_ok=True)
    unknown = set(names) - {shot[0] for shot in SHOTS}
    if unknown:
        print(f"no such screenshot: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    for shot in SHOTS:
        if names and shot[0] not in names:
            continue
        path = await shoot(*shot)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
