"""Every control request against a live run (scripted agents), and offline via the CLI."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from director_tui.cli import main
from director_tui.engine.control import send_control, take_requests
from director_tui.engine.control_channel import take_deliveries
from director_tui.engine.errors import UsageError
from director_tui.engine.events import ControlApplied, EventBase, NodeStateChanged
from director_tui.engine.models import NodeStatus, RunState
from director_tui.engine.store import Store
from tests.run_fixture import Recorder, build_job, run, sample_nodes, solve, write_script
from tests.run_fixture import start_run as _start
from tests.run_fixture import status_is as _status
from tests.run_fixture import until as _until


def _slow(entry: dict[str, Any], secs: float) -> dict[str, Any]:
    entry = dict(entry)
    entry["steps"] = [{"sleep": secs}, *entry["steps"]]
    return entry


def _answered(action: str) -> Callable[[EventBase], bool]:
    return lambda e: isinstance(e, ControlApplied) and e.action == action


def test_send_control_validates_and_queues_in_order(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.ensure()
    with pytest.raises(UsageError):
        send_control(store, "retry")  # needs a node
    with pytest.raises(UsageError):
        send_control(store, "explode", "a")
    first = send_control(store, "pause")
    second = send_control(store, "cancel_run")
    # Queued in this process for its run (no file: a live run refuses request files).
    taken = take_deliveries(store)
    assert [(r.action, r.node_id, r.request_id) for r in taken] == [
        ("pause", None, first),
        ("cancel", None, second),
    ]
    assert take_deliveries(store) == [] and take_requests(store) == []


async def test_pause_then_resume(tmp_path: Path) -> None:
    store = build_job(tmp_path)
    rec = Recorder()
    send_control(store, "pause")
    task = await _start(store, rec, parallel=2)
    await _until(rec, _answered("pause"))
    await asyncio.sleep(0.6)
    assert not any(isinstance(e, NodeStateChanged) and e.status == "running" for e in rec.events)
    state = RunState.model_validate_json(store.state.read_bytes())
    assert state.paused and state.controls[-1].action == "pause"
    send_control(store, "resume")
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.success
    assert [c.action for c in outcome_controls(store)] == ["pause", "resume"]


def outcome_controls(store: Store) -> list[Any]:
    state = RunState.model_validate_json(store.state.read_bytes())
    return state.controls


async def test_cancel_a_running_node_blocks_nothing_else(tmp_path: Path) -> None:
    store = build_job(tmp_path)
    add, mul, power = sample_nodes()
    write_script(store, [_slow(solve(add), 30), solve(mul), solve(power)])
    rec = Recorder()
    task = await _start(store, rec, parallel=3)
    await _until(rec, _status("add", "running"))
    send_control(store, "cancel", "add")
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.exit_code == 1
    assert outcome.done == ["mul", "power"]
    state = RunState.model_validate_json(store.state.read_bytes())
    assert state.nodes["add"].status == NodeStatus.cancelled
    applied = [e for e in rec.events if isinstance(e, ControlApplied)]
    assert applied[0].ok and applied[0].node_id == "add"


async def test_skip_blocks_dependents(tmp_path: Path) -> None:
    store = build_job(tmp_path)
    send_control(store, "skip", "mul")
    rec = Recorder()
    task = await _start(store, rec, parallel=1)
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.done == ["add"]
    assert outcome.skipped == ["mul"] and outcome.blocked == ["power"]
    applied = next(e for e in rec.events if isinstance(e, ControlApplied))
    assert "power" in applied.message


async def test_retry_a_failed_node_while_the_run_is_live(tmp_path: Path) -> None:
    store = build_job(tmp_path, limits={"max_attempts": 1})
    add, mul, power = sample_nodes()
    broken = {"role": "executor", "node": "add", "steps": []}
    write_script(store, [broken, _slow(solve(mul), 2.5), solve(power)])
    rec = Recorder()
    task = await _start(store, rec, parallel=2)
    await _until(rec, _status("add", "failed"))
    write_script(store, [solve(add), solve(mul), solve(power)])
    send_control(store, "retry", "add")
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.success, outcome.message
    applied = [e for e in rec.events if isinstance(e, ControlApplied)]
    assert applied[0].action == "retry" and applied[0].ok


async def test_escalate_a_running_node_restarts_it_on_the_escalation_tier(
    tmp_path: Path,
) -> None:
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes)
    add = nodes[0]
    write_script(store, [solve(add, model="strong"), _slow(solve(add), 30)])
    rec = Recorder()
    task = await _start(store, rec)
    await _until(rec, _status("add", "running"))
    send_control(store, "escalate", "add")
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.success and outcome.escalated == ["add"]
    state = RunState.model_validate_json(store.state.read_bytes())
    assert state.nodes["add"].tier == "scripted/strong"
    assert state.nodes["add"].attempts == 1  # the stopped attempt does not count


async def test_cancel_the_run_leaves_a_resumable_state(tmp_path: Path) -> None:
    store = build_job(tmp_path)
    add, mul, power = sample_nodes()
    write_script(store, [solve(add), _slow(solve(mul), 30), solve(power)])
    rec = Recorder()
    task = await _start(store, rec, parallel=2)
    await _until(rec, _status("add", "done"))
    send_control(store, "cancel")
    outcome = await asyncio.wait_for(task, 30)
    assert outcome.outcome == "cancelled" and outcome.exit_code == 1
    assert outcome.done == ["add"] and "mul" in outcome.pending, (
        outcome,
        [(e.node_id, e.status, e.message) for e in rec.events if isinstance(e, NodeStateChanged)],
    )
    write_script(store, [solve(add), solve(mul), solve(power)])
    again = await asyncio.to_thread(run, store)
    assert again.success, again.message


def test_offline_control_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = build_job(tmp_path, limits={"max_attempts": 1})
    add, mul, power = sample_nodes()
    write_script(store, [solve(add), {"role": "executor", "node": "mul", "steps": []}])
    first = run(store)
    assert first.failed == ["mul"] and first.blocked == ["power"]
    repo = str(store.repo)
    assert main(["pause", "--repo", repo]) == 1
    assert "no run is live" in capsys.readouterr().out
    assert main(["skip", "--repo", repo, "add"]) == 1  # already merged
    assert main(["retry", "--repo", repo, "mul"]) == 0
    state = RunState.model_validate_json(store.state.read_bytes())
    assert state.nodes["mul"].status == NodeStatus.pending
    assert [c.action for c in state.controls] == ["pause", "skip", "retry"]
    write_script(store, [solve(add), solve(mul), solve(power)])
    assert run(store).success
    assert main(["retry", "--repo", repo]) == 2  # a node is required


def test_offline_control_on_an_approved_plan_that_has_not_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = build_job(tmp_path)
    add, mul, _ = sample_nodes()
    repo = str(store.repo)
    assert main(["pause", "--repo", repo]) == 1  # refused, and no state.json for it
    assert "no run is live: nothing to pause" in capsys.readouterr().out
    assert not store.state.exists()
    assert main(["retry", "--repo", repo, "nope"]) == 2
    assert "no node 'nope' in the plan" in capsys.readouterr().err
    assert main(["skip", "--repo", repo, "power"]) == 0
    write_script(store, [solve(add), solve(mul)])
    outcome = run(store)  # the first run starts from the skip set before it
    assert outcome.skipped == ["power"] and not outcome.failed
