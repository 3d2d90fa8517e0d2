"""`r` on a failed node when no run is live: the app starts the run at once, so the
answer says so — it said "will get fresh attempts at the next `director run`"."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from director_tui.engine.events import ControlApplied, parse_event
from director_tui.engine.store import read_jsonl
from tests.tui.helpers import Recorder, frozen_app, wait_engine, wait_until
from tests.tui.test_engine_wiring import _failed_mul


async def test_a_retry_in_the_app_says_the_run_starts_now(tmp_path: Path) -> None:
    store, seq_before = await _failed_mul(tmp_path)
    recorder = Recorder()
    app = frozen_app(store.repo, "run")
    async with app.run_test(size=(120, 40), message_hook=recorder) as pilot:
        await pilot.pause()
        table = app.screen.query_one("#board", DataTable)
        table.focus()
        table.move_cursor(row=list(app.board.rows).index("mul"))
        await pilot.press("r")
        assert await wait_until(pilot, lambda: recorder.saw("Run started")), recorder.notes
        await wait_engine(app, pilot, timeout=60)
    answers = [
        e
        for r in read_jsonl(store.events)
        if int(r.get("seq", 0)) > seq_before
        and isinstance(e := parse_event(r), ControlApplied)
        and e.action == "retry"
    ]
    assert answers and answers[0].ok, answers
    assert "next `director run`" not in answers[0].message
    assert "now: the app starts the run" in answers[0].message
