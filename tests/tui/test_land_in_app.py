"""After a run the app says where the work is and lands it: Home names the job branch and
no longer calls a finished job "approved", the run board's end offers `l`, `l` merges the
job into the user's branch (gates first), and quitting leaves the same line on the
terminal."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import Static

from director_tui.engine import jobs
from director_tui.engine.store import Store
from tests.conftest import run_git
from tests.run_fixture import JOB_ID, build_job, run, sample_nodes
from tests.tui.helpers import Recorder, frozen_app, wait_engine, wait_until

JOB = jobs.job_branch(JOB_ID)


async def finished(tmp_path: Path) -> Store:
    store = build_job(tmp_path, sample_nodes()[:1])
    outcome = await asyncio.to_thread(run, store)
    assert outcome.success
    return store


def shown(app: object, selector: str) -> str:
    widget = app.screen.query_one(selector, Static)  # type: ignore[attr-defined]
    return str(widget.render())


async def test_home_says_where_the_work_is_and_l_lands_it(tmp_path: Path) -> None:
    store = await finished(tmp_path)
    repo = store.repo
    recorder = Recorder()
    app = frozen_app(repo, "home")
    async with app.run_test(size=(140, 40), message_hook=recorder) as pilot:
        await pilot.pause()
        panel = shown(app, "#repo-panel")
        assert "stage finished" in panel and "approved" not in panel
        assert f"job branch {JOB}" in panel
        assert f"the work is on branch {JOB}" in panel and "press l to land it" in panel
        await pilot.press("l")
        assert await wait_until(pilot, lambda: recorder.saw("Landed"), timeout=60), recorder.notes
        await wait_engine(app, pilot, timeout=60)
        assert run_git(repo, "rev-parse", "HEAD") == run_git(repo, "rev-parse", JOB)
        await pilot.pause()
        assert "stage landed" in shown(app, "#repo-panel")
        await pilot.press("ctrl+q")
    assert app.farewell == f"Job {JOB_ID} is landed: {JOB} is merged into main."


async def test_the_run_boards_end_offers_land_and_quitting_says_where_the_work_is(
    tmp_path: Path,
) -> None:
    store = await finished(tmp_path)
    app = frozen_app(store.repo, "run")
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause()
        header = shown(app, "#run-header")
        assert f"the work is on branch {JOB}" in header and "Press l to land it." in header
        await pilot.press("ctrl+q")
    assert app.farewell == (
        f"Job {JOB_ID} is finished: the work is on branch {JOB}. `director land` merges it "
        "into main (your gates run on it first)."
    )
