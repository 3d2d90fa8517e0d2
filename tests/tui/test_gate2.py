"""Gate 2 pilots: keys → plan.json / plan_stage.json on disk, validation blocking approval."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.widgets import DataTable, Input, Static

from director_tui.engine.models import Plan, PlanStage, Stage
from director_tui.engine.store import Store
from director_tui.tui.screens.plan_review import PlanReviewScreen
from director_tui.tui.widgets.dag_view import DagView
from director_tui.tui.widgets.modals import ConfirmModal, NodeEditModal
from tests.tui.helpers import Recorder, frozen_app, wait_engine, wait_until


def _stage(repo: Path) -> PlanStage:
    stage = Store(repo).read_model(Store(repo).plan_stage, PlanStage)
    assert stage is not None
    return stage


async def test_approve_writes_plan_stage_and_offers_the_run(
    sample_repo: Callable[[str], Path],
) -> None:
    repo = sample_repo("gate2")
    app = frozen_app(repo, "gate2")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, PlanReviewScreen)
        await pilot.press("a")
        await wait_engine(app, pilot)
        assert await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        stage = _stage(repo)
        assert stage.stage == Stage.approved
        assert [(a.gate, a.approver) for a in stage.approvals][-1] == ("gate2", "human")
        await pilot.press("n")  # "Later": no run started
        await pilot.pause()
        assert isinstance(app.screen, PlanReviewScreen)
        assert not app.engine_busy


async def test_overlapping_allowlist_shows_the_error_and_blocks_approval(
    sample_repo: Callable[[str], Path],
) -> None:
    repo = sample_repo("gate2")
    store = Store(repo)
    recorder = Recorder()
    app = frozen_app(repo, "gate2")
    async with app.run_test(size=(120, 40), message_hook=recorder) as pilot:
        await pilot.pause()
        table = app.screen.query_one("#nodes", DataTable)
        table.focus()
        await pilot.press("down", "down")  # model, store, format → "format"
        screen = app.screen
        assert isinstance(screen, PlanReviewScreen)
        assert screen.selected == "format"
        await pilot.press("e")
        assert await wait_until(pilot, lambda: isinstance(app.screen, NodeEditModal))
        assert await wait_until(pilot, lambda: getattr(app.focused, "id", "") == "edit-title")
        files = app.screen.query_one("#edit-files", Input)
        files.value = "todo/format.py, todo/store.py"  # store's file; store runs in parallel
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, PlanReviewScreen)
        # saved to disk at once, and the problem is on screen
        saved = store.read_model(store.plan, Plan)
        assert saved is not None
        assert saved.node("format").files == ["todo/format.py", "todo/store.py"]
        validation = str(app.screen.query_one("#validation", Static).render())
        assert "block approval" in validation
        assert "'format'" in validation and "'store'" in validation
        assert "format" in app.screen.query_one("#dag", DagView).invalid
        assert recorder.saw("approval is blocked")
        await pilot.press("a")
        await pilot.pause()
        assert not app.engine_busy
        assert recorder.saw("Approval blocked")
        assert _stage(repo).stage == Stage.gate2
        # fixing it unblocks approval
        await pilot.press("e")
        assert await wait_until(pilot, lambda: isinstance(app.screen, NodeEditModal))
        app.screen.query_one("#edit-files", Input).value = "todo/format.py"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "plan is valid" in str(app.screen.query_one("#validation", Static).render())
        await pilot.press("a")
        await wait_engine(app, pilot)
        assert _stage(repo).stage == Stage.approved


async def test_cycle_from_an_edit_is_reported(sample_repo: Callable[[str], Path]) -> None:
    repo = sample_repo("gate2")
    app = frozen_app(repo, "gate2")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PlanReviewScreen)
        screen.apply_edit("model", {"depends_on": ["entry"]})
        await pilot.pause()
        assert any("cycle" in e for e in screen.errors)
        await pilot.press("a")
        await pilot.pause()
        assert _stage(repo).stage == Stage.gate2


async def test_broken_plan_json_shows_an_error_not_a_traceback(
    sample_repo: Callable[[str], Path],
) -> None:
    repo = sample_repo("gate2")
    (repo / ".director" / "plan.json").write_text('{"nodes": "not a list"}')
    app = frozen_app(repo, "gate2")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        from director_tui.tui.widgets.modals import ErrorModal

        assert await wait_until(pilot, lambda: isinstance(app.screen, ErrorModal))
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, PlanReviewScreen)
    assert app.return_code in (0, None)


async def test_the_tests_stage_shows_each_nodes_progress_live(
    sample_repo: Callable[[str], Path],
) -> None:
    """NodeTestsProgress events reach the plan review: a tests column appears with where
    each node's tests are; nodes it has not heard of show frozen from plan.json's hashes."""
    from director_tui.engine.events import NodeTestsProgress

    repo = sample_repo("gate2")
    plan = Store(repo).read_model(Store(repo).plan, Plan)
    assert plan is not None and len(plan.nodes) >= 2
    first, second = plan.nodes[0], plan.nodes[1]
    app = frozen_app(repo, "gate2")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        table = app.screen.query_one("#nodes", DataTable)
        assert "tests" not in table.columns  # no tests stage seen: the table as it was

        def cell(node_id: str) -> str:
            return str(table.get_cell(node_id, "tests")) if "tests" in table.columns else ""

        app.buffer.push(NodeTestsProgress(node_id=second.id, phase="authoring", attempt=2))
        assert await wait_until(pilot, lambda: cell(second.id) == "authoring 2")
        frozen = "frozen" if first.test_hashes else "—"
        assert cell(first.id) == frozen
        app.buffer.push(NodeTestsProgress(node_id=second.id, phase="failed", message="x"))
        assert await wait_until(pilot, lambda: cell(second.id) == "failed")
        assert "tests: 1 failed" in app.board.plan_progress


async def test_critique_of_an_edited_plan_asks_first_and_the_users_plan_can_be_restored(
    sample_repo: Callable[[str], Path],
) -> None:
    import json

    repo = sample_repo("gate2")
    store = Store(repo)
    plan = store.read_model(store.plan, Plan)
    assert plan is not None
    first, second = plan.nodes[0].id, plan.nodes[1].id
    answer = json.loads(plan.model_dump_json(include={"nodes"}))
    answer["nodes"][0]["title"] = "mine, kept by the critic"
    answer["nodes"][1]["title"] = "the critic's title"
    script = {
        "calls": [
            {
                "role": "critic",
                "prompt_contains": "The user edited this plan at the gate",
                "text": json.dumps(answer),
            }
        ]
    }
    (repo / ".director" / "script.json").write_text(json.dumps(script))
    app = frozen_app(repo, "gate2")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PlanReviewScreen)
        status = screen.query_one("#gate2-status", Static)
        assert "as generated" in str(status.render())
        screen.apply_edit(first, {"title": "mine, kept by the critic"})
        await pilot.pause()
        mine = store.plan.read_text()
        assert "edited by you" in str(status.render())

        await pilot.press("k")
        assert await wait_until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        question = app.screen.question  # type: ignore[attr-defined]
        assert "revise your edited plan" in question and "plan.edited.json" in question
        await pilot.press("y")
        await wait_engine(app, pilot)
        assert (repo / ".director" / "plan.edited.json").read_text() == mine
        revised = store.read_model(store.plan, Plan)
        assert revised is not None and revised.node(second).title == "the critic's title"
        # the screen shows the critic's plan and says so
        assert screen.plan is not None and screen.plan.node(second).title == "the critic's title"
        text = str(status.render())
        assert "revised by the critic" in text and "u restores it" in text

        await pilot.press("u")
        await pilot.pause()
        assert store.plan.read_text() == mine
        assert screen.plan is not None and screen.plan.node(second).title != "the critic's title"
        text = str(status.render())
        assert "edited by you" in text and "u restores" not in text


async def test_the_graph_walks_along_edges_and_the_table_and_contract_follow(
    sample_repo: Callable[[str], Path],
) -> None:
    app = frozen_app(sample_repo("gate2"), "gate2")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, PlanReviewScreen)
        dag_view = screen.query_one("#dag", DagView)
        await pilot.press("d", "right", "down", "right")  # model → store → format → cli
        await pilot.pause()
        assert app.focused is dag_view
        assert screen.selected == dag_view.selected == "cli"
        assert screen.plan is not None
        table = screen.query_one("#nodes", DataTable)
        assert table.cursor_row == screen.plan.ids.index("cli")
        contract = screen.query_one("#node-info", Static).content
        head = contract.renderables[0]  # type: ignore[union-attr]
        assert head.plain.startswith("cli · argparse sub-commands\n")
        await pilot.press("n")  # cli's neighbourhood: docs is neither before nor after it
        await pilot.pause()
        assert set(dag_view.drawing.boxes) == {"model", "store", "format", "cli", "entry"}
        assert "neighbourhood of cli" in str(dag_view.legend.render())
        await pilot.press("n")
        await pilot.pause()
        assert "docs" in dag_view.drawing.boxes
