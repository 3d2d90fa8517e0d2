"""Pilots for what a new user ran into in real terminals (each failed before its fix)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.containers import VerticalScroll
from textual.widgets import ContentSwitcher, DataTable, Static, TextArea
from textual.widgets._header import HeaderTitle

from director_tui.engine.events import NodeStateChanged
from director_tui.engine.models import Node, Plan
from director_tui.engine.store import Store
from director_tui.tui.board import BoardModel
from director_tui.tui.screens.home import HomeScreen
from director_tui.tui.screens.plan_review import PlanReviewScreen
from director_tui.tui.screens.run_board import RunBoardScreen
from director_tui.tui.screens.spec import SpecScreen
from director_tui.tui.widgets.modals import ConfirmModal, ErrorModal
from tests.support.sample_job import write_bench_summary
from tests.tui.helpers import Recorder, frozen_app, wait_until


async def test_escape_in_the_unsaved_changes_guard_keeps_the_edits(
    sample_repo: Callable[[str], Path],
) -> None:
    """Escape is how people back out of a dialog: it must not pick "Discard"."""
    repo = sample_repo("gate1")
    app = frozen_app(repo, "gate1")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SpecScreen)
        await pilot.press("i", *"KEEP ", "escape", "f1")
        assert await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen  # still at Gate 1
        assert screen.text.startswith("KEEP ")
        assert screen.dirty
        spec_on_disk = (repo / ".director" / "spec.md").read_text()
        assert "KEEP" not in spec_on_disk
        # n still discards on purpose, then leaves
        await pilot.press("f1")
        assert await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("n")
        assert await wait_until(pilot, lambda: isinstance(app.screen, HomeScreen))


async def test_a_failed_save_is_not_reported_as_saved(
    sample_repo: Callable[[str], Path],
) -> None:
    """spec.md cannot be written (here: a folder is in its way): the error shows, and the
    edits still count as unsaved, so leaving still asks."""
    repo = sample_repo("gate1")
    app = frozen_app(repo, "gate1")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SpecScreen)
        spec = repo / ".director" / "spec.md"
        spec.unlink()
        (spec / "in-the-way").mkdir(parents=True)
        await pilot.press("i", *"LOST? ", "ctrl+s")
        assert await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal))
        await pilot.press("escape")
        await pilot.pause()
        assert screen.dirty
        await pilot.press("escape", "f1")
        assert await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal))


async def test_preview_key_from_the_diff_shows_the_preview_and_letters_stay_keys(
    sample_repo: Callable[[str], Path],
) -> None:
    """d then v showed the editor (not the preview) with the cursor in it, so the next
    footer key (x Reject) was typed into spec.md instead."""
    repo = sample_repo("gate1")
    app = frozen_app(repo, "gate1")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SpecScreen)
        switcher = screen.query_one("#spec-switcher", ContentSwitcher)
        await pilot.press("d")
        assert switcher.current == "spec-diff"
        await pilot.press("v")
        assert switcher.current == "spec-preview"
        await pilot.press("v")
        assert switcher.current == "spec-editor"
        assert not screen.query_one("#spec-editor", TextArea).has_focus
        assert screen.query_one("#context", VerticalScroll).has_focus
        await pilot.press("d", "d")
        assert switcher.current == "spec-editor"
        assert not screen.dirty


async def test_a_config_broken_while_the_app_is_open_stops_a_run_before_it_starts(
    sample_repo: Callable[[str], Path],
) -> None:
    """The app opened on a good config; the file broke later. g used to say "Run started."
    over the worker's failure; now the error (file, line) shows and nothing starts."""
    repo = sample_repo("run")
    recorder = Recorder()
    app = frozen_app(repo, "run")
    async with app.run_test(size=(80, 24), message_hook=recorder) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, RunBoardScreen)
        config = repo / ".director" / "config.toml"
        config.write_text(config.read_text() + "\n[limits\n", encoding="utf-8")
        await pilot.press("g")
        assert await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal))
        assert "config.toml" in app.screen.message
        assert not app.engine_busy
        assert not recorder.saw("Run started")
        await pilot.press("escape", "g")  # again: the same error, as a notification now
        assert await wait_until(pilot, lambda: recorder.saw("Not started (running)"))
        assert not app.engine_busy


async def test_a_broken_plan_json_is_said_on_gate2_not_no_plan_yet_valid(
    sample_repo: Callable[[str], Path],
) -> None:
    """Gate 2 said "no plan yet · valid" and "approve Gate 1 first" over a plan.json that
    exists but does not parse; after the first modal nothing told the user why."""
    repo = sample_repo("gate2")
    plan_file = repo / ".director" / "plan.json"
    good = plan_file.read_text(encoding="utf-8")
    plan_file.write_text('{"nodes": [', encoding="utf-8")
    recorder = Recorder()
    app = frozen_app(repo, "gate2")
    async with app.run_test(size=(80, 24), message_hook=recorder) as pilot:
        assert await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal))
        await pilot.press("escape")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PlanReviewScreen)
        status = str(screen.query_one("#gate2-status", Static).render())
        assert "plan.json unreadable" in status
        assert "valid" not in status.replace("unreadable", "")
        assert "cannot be read" in str(screen.query_one("#node-info", Static).render())
        await pilot.press("a")
        assert await wait_until(pilot, lambda: recorder.saw("Cannot approve: "))
        plan_file.write_text(good, encoding="utf-8")
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert str(screen.query_one("#gate2-status", Static).render()).endswith("valid")


def test_run_header_names_blocked_and_skipped_nodes_apart_from_failed_ones() -> None:
    """A skipped node and the node it blocks made the header say "1 failed" with no failed
    row on the board."""
    board = BoardModel()
    board.seed(Plan(nodes=[Node(id="a"), Node(id="b", depends_on=["a"]), Node(id="c")]))
    board.apply_all(
        [
            NodeStateChanged(node_id="a", status="skipped", seq=1, ts=100),
            NodeStateChanged(node_id="b", status="blocked", seq=2, ts=100),
            NodeStateChanged(node_id="c", status="failed", attempt=2, seq=3, ts=100),
        ]
    )
    header = board.header(now=200)
    assert "1 failed" in header
    assert "1 blocked" in header
    assert "1 skipped" in header
    board.apply(NodeStateChanged(node_id="c", status="done", attempt=3, seq=4, ts=150))
    assert "failed" not in board.header(now=200)


async def test_bench_saving_and_quality_are_visible_at_80_columns(
    sample_repo: Callable[[str], Path],
) -> None:
    """At 80×24 the bench table ended at "wall": the saving against all-frontier and
    whether quality met its bar — what a bench is for — were off-screen to the right."""
    repo = sample_repo("gate2")
    write_bench_summary(Store(repo))
    app = frozen_app(repo, "bench")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.screen.query_one("#bench-table", DataTable)
        assert table.row_count == 3
        right_edge = 0
        for column in table.ordered_columns:
            right_edge += column.get_render_width(table)
            if column.key.value in ("cost", "saving", "quality"):
                assert right_edge <= table.scrollable_content_region.width, column.key.value


async def test_the_screen_name_fits_the_header_at_80_columns(
    sample_repo: Callable[[str], Path],
) -> None:
    """With scripted agents the header read "director · demo — scripted agents, no model
    calls — Gate 1 — …" at 80 columns: the label pushed out which screen this is."""
    repo = sample_repo("gate2")
    app = frozen_app(repo, "gate2")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        title = app.screen.query_one(HeaderTitle)
        shown = str(title.render())
        assert "scripted agents" in shown
        assert "Gate 2 — plan review" in shown
        assert len(shown) <= 80 - 16  # the header's icon and margins take the rest
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert "demo — scripted agents, no model calls" in str(title.render())
