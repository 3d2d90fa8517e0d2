"""Gate 1 pilots: the spec editor saves, guards unsaved work, approves and rejects through
the plan pipeline on the scripted provider."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from textual.widgets import ContentSwitcher, Static, TextArea

from director_tui.engine.models import PlanStage
from director_tui.engine.store import Store
from director_tui.tui.screens.plan_review import PlanReviewScreen
from director_tui.tui.screens.spec import SpecScreen
from director_tui.tui.widgets.modals import ConfirmModal, ErrorModal, TextPromptModal
from tests.tui.helpers import Recorder, frozen_app, wait_engine, wait_until


async def test_save_writes_spec_and_counts_changes(sample_repo: Callable[[str], Path]) -> None:
    repo = sample_repo("gate1")
    app = frozen_app(repo, "gate1")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SpecScreen)
        editor = screen.query_one("#spec-editor", TextArea)
        editor.focus()
        editor.move_cursor((0, 0))
        await pilot.press(*"NOTE ", "enter")
        assert screen.dirty
        assert "unsaved" in str(screen.query_one("#gate1-status", Static).render())
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert (repo / ".director" / "spec.md").read_text().startswith("NOTE \n# Spec")
        status = str(screen.query_one("#gate1-status", Static).render())
        assert "1 line changed vs the generated spec" in status
        assert not screen.dirty
        # d shows the human's edits against the generated spec
        await pilot.press("escape", "d")
        await pilot.pause()
        switcher = screen.query_one("#spec-switcher", ContentSwitcher)
        assert switcher.current == "spec-diff"
        diff = screen.query_one("#spec-diff-text", Static).content
        assert "+NOTE" in str(getattr(diff, "code", diff))


async def test_unsaved_changes_guard_before_leaving(sample_repo: Callable[[str], Path]) -> None:
    repo = sample_repo("gate1")
    app = frozen_app(repo, "gate1")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        editor = app.screen.query_one("#spec-editor", TextArea)
        editor.focus()
        await pilot.press(*"extra")
        await pilot.press("f3")
        assert await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")  # save
        assert await wait_until(pilot, lambda: isinstance(app.screen, PlanReviewScreen))
        assert "extra" in (repo / ".director" / "spec.md").read_text()


async def test_approve_records_gate1_and_errors_stay_in_app(
    sample_repo: Callable[[str], Path],
) -> None:
    """No planner script exists, so decomposition fails: the approval is kept on disk and
    the failure is an in-app error with a next step, not a traceback."""
    repo = sample_repo("gate1")
    app = frozen_app(repo, "gate1")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("a")
        await wait_engine(app, pilot)
        assert await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal))
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, SpecScreen)
    store = Store(repo)
    stage = store.read_model(store.plan_stage, PlanStage)
    assert stage is not None
    assert ("gate1", "human") in [(a.gate, a.approver) for a in stage.approvals]


async def test_reject_sends_the_comment_and_shows_the_rewritten_spec(
    sample_repo: Callable[[str], Path],
) -> None:
    repo = sample_repo("gate1")
    script = {
        "calls": [
            {
                "role": "brainstorm",
                "prompt_contains": "use click, not argparse",
                "text": "# Spec v2\n\nUse click for the CLI.\n",
            }
        ]
    }
    (repo / ".director" / "script.json").write_text(json.dumps(script))
    recorder = Recorder()
    app = frozen_app(repo, "gate1")
    async with app.run_test(size=(120, 40), message_hook=recorder) as pilot:
        await pilot.pause()
        await pilot.press("x")
        assert await wait_until(pilot, lambda: isinstance(app.screen, TextPromptModal))
        await pilot.press(*"use click, not argparse")
        await pilot.press("ctrl+s")
        await pilot.pause()
        await wait_engine(app, pilot)
        assert await wait_until(
            pilot,
            lambda: "Spec v2" in app.screen.query_one("#spec-editor", TextArea).text,
        ), recorder.notes
    assert "Use click" in (repo / ".director" / "spec.md").read_text()


def _status(app: object) -> str:
    screen = app.screen  # type: ignore[attr-defined]
    return str(screen.query_one("#gate1-status", Static).render())


async def test_critique_of_an_edited_spec_asks_first_then_shows_the_revision_and_restores(
    sample_repo: Callable[[str], Path],
) -> None:
    repo = sample_repo("gate1")
    critics_spec = "# Spec by the critic\n\nThe user's NOTE kept, floats added.\n"
    script = {
        "calls": [
            {  # matched only when the critic is told the spec is the user's, edit included
                "role": "critic",
                "prompt_contains": "The user edited this spec at the gate",
                "text": critics_spec,
            }
        ]
    }
    (repo / ".director" / "script.json").write_text(json.dumps(script))
    spec = repo / ".director" / "spec.md"
    app = frozen_app(repo, "gate1")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SpecScreen)
        editor = screen.query_one("#spec-editor", TextArea)
        editor.focus()
        editor.move_cursor((0, 0))
        await pilot.press(*"NOTE ", "enter", "ctrl+s", "escape", "v")
        await pilot.pause()
        mine = spec.read_text()
        assert mine.startswith("NOTE ")
        assert "u restores" not in _status(app)

        # k on an edited spec: a question first, saying what happens and the way back
        await pilot.press("k")
        assert await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        question = app.screen.question  # type: ignore[attr-defined]
        assert "revise your edited spec" in question and "spec.edited.md" in question
        assert "restore it with u" in question
        await pilot.press("n")  # cancelled: nothing asked of the critic, nothing changed
        await pilot.pause()
        assert app.screen is screen and not app.engine_busy
        assert spec.read_text() == mine

        await pilot.press("k")
        assert await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_engine(app, pilot)
        assert spec.read_text() == critics_spec
        assert (repo / ".director" / "spec.edited.md").read_text() == mine
        # the preview shows the critic's text, and the status line says who wrote it
        switcher = screen.query_one("#spec-switcher", ContentSwitcher)
        assert switcher.current == "spec-preview"
        assert screen.query_one("#spec-markdown").source == critics_spec  # type: ignore[attr-defined]
        status = _status(app)
        assert "revised by the critic" in status and "as generated" not in status
        assert "kept in spec.edited.md (u restores it)" in status

        # u puts the user's version back; it now shows as an edit of the critic's spec
        await pilot.press("u")
        await pilot.pause()
        assert spec.read_text() == mine
        assert editor.text == mine
        assert screen.query_one("#spec-markdown").source == mine  # type: ignore[attr-defined]
        status = _status(app)
        assert "vs the critic's spec" in status and "u restores" not in status


async def test_critique_of_an_unedited_spec_asks_nothing(
    sample_repo: Callable[[str], Path],
) -> None:
    repo = sample_repo("gate1")
    script = {"calls": [{"role": "critic", "text": "# Spec by the critic\n\nNo CLI at all.\n"}]}
    (repo / ".director" / "script.json").write_text(json.dumps(script))
    app = frozen_app(repo, "gate1")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("k")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmModal)
        await wait_engine(app, pilot)
        assert "revised by the critic" in _status(app)
        assert not (repo / ".director" / "spec.edited.md").exists()
        await pilot.press("u")  # nothing of the user's to put back: said, nothing written
        await pilot.pause()
        assert "No CLI at all" in (repo / ".director" / "spec.md").read_text()
