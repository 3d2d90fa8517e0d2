"""The app tells the human: a gate reached rings the bell once and runs `[notify] command`
with the event; the header says "needs you" or "finished", in two looks; reopening the
app shows what still waits without ringing again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from textual.widgets import TextArea

from director_tui.tui.app import DirectorApp
from director_tui.tui.screens.spec import SpecScreen
from director_tui.tui.widgets.modals import TextPromptModal
from tests.plan_helpers import base_entries, good_tests, make_sample
from tests.run_fixture import build_job
from tests.support.notify_recorder import notified, recording_command
from tests.tui.helpers import Recorder, frozen_app, wait_engine, wait_until


def counting_bells(app: DirectorApp) -> list[int]:
    """Each App.bell call the app makes (in a headless test it would write nothing)."""
    bells: list[int] = []
    app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
    return bells


async def test_gate1_reached_rings_once_and_runs_the_notify_command(tmp_path: Path) -> None:
    repo, _script = make_sample(tmp_path, [*base_entries(), *good_tests()])
    argv, out = recording_command(tmp_path)
    with (repo / ".director" / "config.toml").open("a") as fh:
        fh.write(f"\n[notify]\ncommand = {json.dumps(argv)}\n")
    recorder = Recorder()
    app = frozen_app(repo, "home")
    bells = counting_bells(app)
    async with app.run_test(size=(120, 40), message_hook=recorder) as pilot:
        await pilot.pause()
        assert "needs you" not in app.title and not app.has_class("-needs-you")
        await pilot.press("n")
        assert await wait_until(pilot, lambda: isinstance(app.screen, TextPromptModal))
        await pilot.press(*"add mul and div")
        await pilot.press("ctrl+s")
        await wait_engine(app, pilot, timeout=60)
        assert await wait_until(pilot, lambda: isinstance(app.screen, SpecScreen)), recorder.notes
        assert "Multiply and divide" in app.screen.query_one("#spec-editor", TextArea).text
        assert bells == [1]
        assert [(item.kind, item.level) for item in app.rang] == [("gate_reached", "needs_you")]
        assert app.title.endswith("· ⚑ Gate 1 needs you")
        assert app.has_class("-needs-you") and not app.has_class("-finished")
        # the command runs beside the engine, off the UI thread
        assert await wait_until(pilot, lambda: len(notified(out)) == 1, timeout=20)
    [record] = notified(out)
    stdin, env = record["stdin"], record["env"]
    assert isinstance(stdin, dict) and isinstance(env, dict)
    assert stdin["event"] == "gate_reached" and "Gate 1 waits for you" in str(stdin["message"])
    assert env["DIRECTOR_EVENT"] == "gate_reached" and env["DIRECTOR_JOB"] == stdin["job"]

    # Reopened at the gate: the header still says it; history rings nothing.
    again = frozen_app(repo, "gate1")
    rang_again = counting_bells(again)
    async with again.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert again.title.endswith("· ⚑ Gate 1 needs you")
        assert again.has_class("-needs-you")
        assert rang_again == [] and again.rang == []
    assert len(notified(out)) == 1


async def test_a_finished_run_reads_differently_from_a_gate(tmp_path: Path) -> None:
    store = build_job(tmp_path)
    app = frozen_app(store.repo, "run", start_run=True)
    bells = counting_bells(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await wait_engine(app, pilot, timeout=120)
        assert await wait_until(pilot, lambda: app.board.outcome == "success")
        assert await wait_until(pilot, lambda: bool(app.rang))
        assert [(item.kind, item.level) for item in app.rang] == [("job_finished", "finished")]
        assert bells == [1]
        assert app.title.endswith("· ✓ job finished")
        assert app.has_class("-finished") and not app.has_class("-needs-you")


async def test_attached_to_a_headless_plan_the_app_rings_and_the_command_runs_once(
    tmp_path: Path,
) -> None:
    """The app follows a `director plan` running in another process: the gate rings in
    the app; the notify command is the engine's process's, so it runs once, not twice."""
    repo, _script = make_sample(tmp_path, [*base_entries(), *good_tests()])
    argv, out = recording_command(tmp_path)
    with (repo / ".director" / "config.toml").open("a") as fh:
        fh.write(f"\n[notify]\ncommand = {json.dumps(argv)}\n")
    app = frozen_app(repo, "home", watch=True)
    bells = counting_bells(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        proc = subprocess.Popen(
            [sys.executable, "-m", "director_tui", "plan", "add mul and div", "--repo", str(repo)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert await wait_until(pilot, lambda: proc.poll() is not None, timeout=120)
        finally:
            proc.kill()
        assert proc.returncode == 3  # stopped at Gate 1
        assert await wait_until(pilot, lambda: bool(app.rang), timeout=20)
        assert [(item.kind, item.gate) for item in app.rang] == [("gate_reached", "gate1")]
        assert bells == [1]
        assert "⚑ Gate 1 needs you" in app.title
    assert [record["stdin"]["event"] for record in notified(out)] == ["gate_reached"]  # type: ignore[index]
