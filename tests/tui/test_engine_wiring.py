"""The run board driving the real run engine on the scripted provider: keys → engine."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from director_tui.engine.events import AgentStarted, ControlApplied, parse_event
from director_tui.engine.models import NodeStatus, RunState
from director_tui.engine.store import Store, read_jsonl
from director_tui.tui.app import DirectorApp
from director_tui.tui.screens.node_detail import NodeDetailScreen
from director_tui.tui.screens.run_board import RunBoardScreen
from director_tui.tui.widgets.modals import QuitDuringRunModal
from tests.run_fixture import build_job, run, sample_nodes, solve, write_script
from tests.tui.helpers import Recorder, frozen_app, wait_engine, wait_until


async def _failed_mul(tmp_path: Path) -> tuple[Store, int]:
    """A finished headless run where node mul failed (power blocked); the script then
    gets mul right, so a new attempt can pass."""
    nodes = sample_nodes()
    mul = next(n for n in nodes if n.id == "mul")
    wrong = {
        **solve(mul),
        "steps": [{"write": mul.impl_path, "content": "def mul(a, b):\n    return a + b\n"}],
    }
    store = build_job(tmp_path, nodes, limits={"max_attempts": 1})
    write_script(store, [wrong] + [solve(n) for n in nodes if n.id != "mul"])
    outcome = await asyncio.to_thread(run, store)  # the first, headless run
    assert outcome is not None
    state = store.read_model(store.state, RunState)
    assert state is not None and state.nodes["mul"].status == NodeStatus.failed
    assert state.nodes["power"].status == NodeStatus.blocked
    seq_before = max(int(r.get("seq", 0)) for r in read_jsonl(store.events))
    write_script(store, [solve(n) for n in nodes])
    return store, seq_before


async def test_e_on_a_failed_node_runs_it_at_the_escalation_tier(tmp_path: Path) -> None:
    store, seq_before = await _failed_mul(tmp_path)
    recorder = Recorder()
    app = frozen_app(store.repo, "run")
    async with app.run_test(size=(120, 40), message_hook=recorder) as pilot:
        await pilot.pause()
        table = app.screen.query_one("#board", DataTable)
        table.focus()
        table.move_cursor(row=list(app.board.rows).index("mul"))
        await pilot.press("e")
        assert await wait_until(pilot, lambda: recorder.saw("escalate mul: applied")), (
            recorder.notes
        )
        assert await wait_until(pilot, lambda: recorder.saw("Run started")), recorder.notes
        await wait_engine(app, pilot, timeout=60)
        assert app.board.rows["mul"].status == "done"
    after = [parse_event(r) for r in read_jsonl(store.events) if int(r.get("seq", 0)) > seq_before]
    tiers = [e.tier for e in after if isinstance(e, AgentStarted) and e.node_id == "mul"]
    assert tiers and tiers[0] == "scripted/strong"  # build_job's escalation tier


async def test_r_on_a_failed_node_starts_a_new_attempt(tmp_path: Path) -> None:
    store, seq_before = await _failed_mul(tmp_path)
    recorder = Recorder()
    app = frozen_app(store.repo, "run")
    async with app.run_test(size=(120, 40), message_hook=recorder) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, RunBoardScreen)
        assert app.board.rows["mul"].status == "failed"
        table = app.screen.query_one("#board", DataTable)
        table.focus()
        table.move_cursor(row=list(app.board.rows).index("mul"))
        await pilot.pause()
        await pilot.press("r")
        assert await wait_until(pilot, lambda: recorder.saw("Run started")), recorder.notes
        await wait_engine(app, pilot, timeout=60)
        assert await wait_until(pilot, lambda: recorder.saw("retry mul: applied")), recorder.notes
        assert app.board.rows["mul"].status == "done"
        assert app.board.rows["power"].status == "done"
        assert "done" in str(table.get_cell("mul", "state"))
        # enter: the details show the merged change with highlighting
        await pilot.press("enter")
        assert await wait_until(pilot, lambda: isinstance(app.screen, NodeDetailScreen))
        diff = app.screen.query_one("#diff", Static)
        assert await wait_until(
            pilot, lambda: "return a * b" in str(getattr(diff.content, "code", ""))
        )

    after = [parse_event(r) for r in read_jsonl(store.events) if int(r.get("seq", 0)) > seq_before]
    assert any(isinstance(e, ControlApplied) and e.action == "retry" and e.ok for e in after)
    assert any(isinstance(e, AgentStarted) and e.node_id == "mul" for e in after)
    final = store.read_model(store.state, RunState)
    assert final is not None and final.nodes["mul"].status == NodeStatus.done
    # the app starts the run at once: the answer says "now", not "at the next director run"
    answer = next(e for e in after if isinstance(e, ControlApplied) and e.action == "retry")
    assert "now: the app starts the run" in answer.message
    assert "next `director run`" not in answer.message


def _slow_job(tmp_path: Path, secs: float) -> Store:
    """An approved job whose every executor call first sleeps ``secs``."""
    nodes = sample_nodes()
    store = build_job(tmp_path, nodes)
    write_script(
        store, [{**solve(n), "steps": [{"sleep": secs}, *solve(n)["steps"]]} for n in nodes]
    )
    return store


async def _ask_to_quit_mid_run(app: DirectorApp, pilot: Pilot[Any]) -> None:
    assert await wait_until(pilot, lambda: app.board.active() > 0, timeout=30)
    await pilot.press("ctrl+q")
    assert await wait_until(pilot, lambda: isinstance(app.screen, QuitDuringRunModal))


async def test_quitting_during_an_in_app_run_asks_then_stops_it_resumably(tmp_path: Path) -> None:
    store = _slow_job(tmp_path, secs=30)
    app = frozen_app(store.repo, "run", start_run=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await _ask_to_quit_mid_run(app, pilot)
        await pilot.press("escape")  # stay: nothing stops
        await pilot.pause()
        assert app.engine_busy
        await pilot.press("ctrl+q")
        assert await wait_until(pilot, lambda: isinstance(app.screen, QuitDuringRunModal))
        await pilot.press("s")  # stop and quit
    # the engine thread saw the cancel request and left a resumable state
    deadline = asyncio.get_running_loop().time() + 30
    while asyncio.get_running_loop().time() < deadline:
        state = store.read_model(store.state, RunState)
        if state is not None and state.cancelled:
            break
        await asyncio.sleep(0.1)
    state = store.read_model(store.state, RunState)
    assert state is not None and state.cancelled
    assert all(st.status != NodeStatus.running for st in state.nodes.values())
    assert app.return_code == 1  # the run did not succeed


async def test_detaching_hands_the_run_to_a_background_process_that_finishes_it(
    tmp_path: Path,
) -> None:
    store = _slow_job(tmp_path, secs=2)
    app = frozen_app(store.repo, "run", start_run=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await _ask_to_quit_mid_run(app, pilot)
        await pilot.press("d")
        assert await wait_until(pilot, lambda: bool(app.farewell), timeout=60)
    assert app.return_code == 0
    assert "director tui" in app.farewell
    # the background process resumes the run and finishes it on its own
    pid = app.detached_pid
    assert pid and pid != os.getpid() and str(pid) in app.farewell
    deadline = asyncio.get_running_loop().time() + 120
    exit_status = None
    while exit_status is None and asyncio.get_running_loop().time() < deadline:
        done_pid, status = os.waitpid(pid, os.WNOHANG)  # our child: the test reaps it
        if done_pid == pid:
            exit_status = os.waitstatus_to_exitcode(status)
        await asyncio.sleep(0.2)
    log = (store.logs / "detached-run.log").read_text(encoding="utf-8")
    assert exit_status == 0, log
    state = store.read_model(store.state, RunState)
    assert state is not None and not state.cancelled, log
    assert all(st.status == NodeStatus.done for st in state.nodes.values()), log
    assert store.lock_holder() is None
