"""The app↔screen contract: a screen asks for an engine job with a message, the app runs it
(or refuses while busy, saying why), and the screen that asked hears how it ended."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

from director_tui.engine.context import EngineContext
from director_tui.tui.engine_bridge import EngineJob, EngineTask
from director_tui.tui.messages import EngineJobFinished, StartEngineJob
from director_tui.tui.screens.base import DirectorScreen
from tests.tui.helpers import Recorder, frozen_app, wait_until


async def test_a_job_asked_by_a_screen_runs_once_and_its_end_reaches_that_screen(
    sample_repo: Callable[[str], Path],
) -> None:
    release = threading.Event()

    async def held(_ctx: EngineContext) -> str:
        await asyncio.to_thread(release.wait, 30)
        return "the engine's answer"

    recorder = Recorder()
    app = frozen_app(sample_repo("gate2"), "bench")
    async with app.run_test(size=(120, 40), message_hook=recorder) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DirectorScreen)
        screen.start_engine_job(EngineJob(EngineTask.BENCH, held), "Bench started.")
        assert await wait_until(pilot, lambda: recorder.saw("Bench started."))
        assert app.engine_busy == EngineTask.BENCH
        # a second job while the first runs is refused, and the user is told which runs
        screen.start_engine_job(EngineJob(EngineTask.CRITIQUE, held), "Critique started.")
        assert await wait_until(pilot, lambda: recorder.saw("The engine is busy (bench)"))
        assert not recorder.saw("Critique started.")
        release.set()
        assert await wait_until(pilot, lambda: app.engine_busy is None)
        assert await wait_until(
            pilot, lambda: any(isinstance(m, EngineJobFinished) for m in recorder.messages)
        )
    # a request is handled twice on its way: by the screen, then by the app it bubbles to
    asked = list({id(m): m for m in recorder.messages if isinstance(m, StartEngineJob)}.values())
    assert [m.job.task for m in asked] == [EngineTask.BENCH, EngineTask.CRITIQUE]
    assert all(m.requester is screen for m in asked)
    finished = [m for m in recorder.messages if isinstance(m, EngineJobFinished)]
    assert [(m.task, m.ok, m.result) for m in finished] == [
        (EngineTask.BENCH, True, "the engine's answer")
    ]
