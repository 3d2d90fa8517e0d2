"""The diff review screen, driven by keys against a real scripted run: a comment on a
diff line, then retry, reaches the next executor prompt with its file and line; a node
held for review merges only once accepted."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual.widgets import DataTable

from director_tui.engine.models import NodeStatus, RunState
from director_tui.engine.store import Store
from director_tui.tui.screens.diff_review import DiffReviewScreen
from director_tui.tui.widgets.diff_view import DiffView
from tests.run_fixture import (
    HUMAN_ALWAYS,
    build_job,
    job_file,
    run_until_held,
    sample_nodes,
    solve,
    write_script,
)
from tests.support.review_sample import HELD_COMMENTS, HELD_NODE, hold_for_review
from tests.tui.helpers import (
    fixed_repo,
    fixed_root_lock,
    frozen_app,
    wait_engine,
    wait_until,
)

COMMENT = "swap the operands"
SWAPPED = "def add(a, b):\n    return b + a\n"


def _status(store: Store, node: str) -> NodeStatus:
    return RunState.model_validate_json(store.state.read_bytes()).nodes[node].status


async def _open_review(pilot: Any, node: str) -> DiffReviewScreen:
    app = pilot.app
    await wait_until(pilot, lambda: node in app.board.rows)
    table = app.screen.query_one("#board", DataTable)
    table.move_cursor(row=table.get_row_index(node))
    await pilot.pause()
    await pilot.press("d")
    await wait_until(pilot, lambda: isinstance(app.screen, DiffReviewScreen))
    screen = app.screen
    assert isinstance(screen, DiffReviewScreen)
    await wait_until(pilot, lambda: screen.diff is not None)
    return screen


async def test_a_comment_on_a_line_then_retry_reaches_the_next_prompt_and_accept_merges(
    tmp_path: Path,
) -> None:
    nodes = sample_nodes()[:1]
    (add,) = nodes
    store = build_job(tmp_path, nodes, config=HUMAN_ALWAYS)
    # The first entry answers only a prompt that carries the comment with its file and
    # line: only then is the merged code the swapped one.
    write_script(
        store,
        [
            solve(
                add,
                prompt_contains=f"- calc/add.py:2: {COMMENT}",
                steps=[{"write": add.impl_path, "content": SWAPPED}],
            ),
            solve(add),
        ],
    )
    await asyncio.to_thread(run_until_held, store, "add")  # (it runs its own loop)
    app = frozen_app(store.repo, "run")
    async with app.run_test(size=(120, 40)) as pilot:
        review = await _open_review(pilot, "add")
        view = review.query_one(DiffView)
        assert review.status == "awaiting_review" and view.file is not None
        assert view.file.path == add.impl_path
        # The hunk: "-# to be implemented", "+def add(a, b):", "+    return a + b"; the
        # cursor starts on its first line.
        await pilot.press("j", "j")
        target = view.line_target()
        assert target is not None and target.where == "calc/add.py:2"
        await pilot.press("c")
        await pilot.pause()
        await pilot.press(*COMMENT)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(review.comments) == 1)
        await pilot.press("r")  # no run is live: applied to state.json, the run starts
        await wait_until(
            pilot,
            lambda: (
                app.board.rows["add"].status == "awaiting_review"
                and app.board.rows["add"].attempt == 1
                and bool(app.engine_busy)
            ),
            timeout=60,
        )
        # Held again after the commented attempt: nothing merged while it waits.
        await wait_until(pilot, lambda: _status(store, "add") == NodeStatus.awaiting_review)
        assert job_file(store, add.impl_path) == add.stub
        review = await _open_review(pilot, "add")
        await wait_until(pilot, lambda: review.status == "awaiting_review")
        await pilot.press("a")
        await wait_engine(app, pilot, timeout=60)
    assert _status(store, "add") == NodeStatus.done
    assert job_file(store, add.impl_path) == SWAPPED


async def test_gate2_shows_a_nodes_frozen_tests_read_only() -> None:
    with fixed_root_lock():
        repo = fixed_repo("gate2")
        app = frozen_app(repo, "gate2")
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.press("v")
            await wait_until(pilot, lambda: isinstance(app.screen, DiffReviewScreen))
            screen = app.screen
            assert isinstance(screen, DiffReviewScreen)
            await wait_until(pilot, lambda: screen.diff is not None)
            view = screen.query_one(DiffView)
            assert view.file is not None and view.file.path.startswith("tests/")
            assert view.file.status == "added"
            for key in ("c", "r", "x", "a"):
                assert (
                    screen.check_action(
                        {"c": "comment", "r": "retry", "x": "reject", "a": "accept"}[key], ()
                    )
                    is False
                )
            await pilot.press("c")  # read-only: no comment dialog
            await pilot.pause()
            assert app.screen is screen


async def test_the_board_says_waiting_for_you_and_the_review_shows_the_comments() -> None:
    with fixed_root_lock():
        repo = fixed_repo("run")
        hold_for_review(Store(repo))
        app = frozen_app(repo, "run")
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: HELD_NODE in app.board.rows)
            assert "waiting for you" in app.board.rows[HELD_NODE].cells(0)[0]
            assert "1 waiting for you" in app.board.header(0)
            review = await _open_review(pilot, HELD_NODE)
            assert [c.text for c in review.comments] == [c.text for c in HELD_COMMENTS]
            view = review.query_one(DiffView)
            assert view.diff is not None and len(view.diff.files) == 2
            first = view.file
            await pilot.press("n")
            assert view.file is not None and view.file is not first
            await pilot.press("p")
            assert view.file is first


async def test_the_review_keys_and_quit_fit_the_footer_at_80_columns() -> None:
    from textual.widgets._footer import FooterKey

    with fixed_root_lock():
        repo = fixed_repo("run")
        hold_for_review(Store(repo))
        app = frozen_app(repo, "run")
        async with app.run_test(size=(80, 24)) as pilot:
            await _open_review(pilot, HELD_NODE)
            await pilot.pause()
            keys = {k.key: k.region for k in app.screen.query(FooterKey)}
            palette_left = keys["ctrl+p"].x
            for key in ("n", "c", "h", "r", "x", "a", "escape", "ctrl+q"):
                assert key in keys, key
                assert keys[key].right <= palette_left, f"{key} is cut off at 80 columns"


def test_the_view_shows_escape_sequences_and_bidi_overrides_as_text() -> None:
    """What the agent wrote, not what a terminal makes of it (as `director review`)."""
    from director_tui.engine.node_diff import DiffHunk, DiffLine, FileDiff
    from director_tui.tui.widgets.diff_view import highlighted

    sneaky = "ok = True\x1b[2K\rok = False  # \u202eevil"
    hunk = DiffHunk(
        header="@@ -0,0 +1 @@",
        old_start=0,
        new_start=1,
        lines=[DiffLine(kind="add", text=sneaky, new_line=1)],
    )
    (line,) = highlighted(FileDiff(path="a.py", status="added", hunks=[hunk]))[0]
    assert "\x1b" not in line.plain and "\u202e" not in line.plain and "\r" not in line.plain
    assert "\\x1b[2K\\x0dok = False" in line.plain and "\\u202eevil" in line.plain


def test_a_comment_on_a_hunk_that_only_deletes_names_the_file() -> None:
    """A deleted file's hunk covers no new line ('+0,0'): its comment is on the file, not
    on a line 0 the next attempt could not find."""
    from director_tui.engine.node_diff import NodeDiff, parse_unified
    from director_tui.tui.widgets.diff_view import file_rows

    text = (
        "diff --git a/old.py b/old.py\ndeleted file mode 100644\n--- a/old.py\n+++ /dev/null\n"
        "@@ -1,2 +0,0 @@\n-a = 1\n-b = 2\n"
    )
    files, _ = parse_unified(text)
    view = DiffView()
    view.diff = NodeDiff(node_id="n", source="s", files=files)
    view.rows = file_rows(files[0])
    view.cursor = 1
    target = view.hunk_target()
    assert target is not None and (target.path, target.line) == ("old.py", None)
    assert files[0].status == "deleted" and target.where == "old.py"
