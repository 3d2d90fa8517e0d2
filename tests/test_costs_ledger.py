"""``.director/costs.jsonl``: every agent call, with what it cost — in director-cli's field
names beside ours — including the steps a call finished before it was cancelled."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from director_tui.engine.control import send_control
from director_tui.engine.cost import CostRecord
from director_tui.engine.events import AgentActivity, AgentFinished, parse_event
from director_tui.engine.models import RunState
from director_tui.engine.run import run_job
from director_tui.engine.store import read_jsonl
from director_tui.tui.board import BoardModel
from tests.run_fixture import Recorder, build_job, context, run, sample_nodes, solve, write_script

# director-cli 0.11's CostEntry (director/cost.py), field for field.
DIRECTOR_CLI_FIELDS = ("role", "model", "input", "output", "cost", "node", "ts")


def test_each_record_carries_director_clis_fields_beside_ours(tmp_path: Path) -> None:
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes)
    write_script(store, [solve(nodes[0])])
    run(store)
    records = read_jsonl(store.costs)
    assert len(records) == 1
    record = records[0]
    # What director-cli writes, so a script written for it reads our file unchanged.
    assert {name: record[name] for name in DIRECTOR_CLI_FIELDS} == {
        "role": "executor",
        "model": "cheap",
        "input": 1000,
        "output": 200,
        "cost": 0.01,
        "node": "add",
        "ts": record["ts"],
    }
    # Ours are all still there under their own names, and read back the same.
    assert record["cost_usd"] == 0.01 and record["input_tokens"] == 1000
    assert record["tier"] == "scripted/cheap" and record["node_id"] == "add"
    parsed = CostRecord.model_validate(record)
    assert (parsed.input_tokens, parsed.output_tokens, parsed.cost_usd) == (1000, 200, 0.01)
    assert json.loads(store.costs.read_text().splitlines()[0]) == record


def _reports_a_step_then_works(entry: dict[str, object], secs: float) -> dict[str, object]:
    """The model finished one billed step (1000 in / 100 out, $0.05), then goes on."""
    step = {"step_usage": {"input": 1000, "output": 100}, "step_cost": 0.05}
    return {**entry, "steps": [step, {"sleep": secs}, *entry["steps"]]}  # type: ignore[misc]


async def test_a_cancelled_calls_finished_steps_are_charged(tmp_path: Path) -> None:
    """Cancelled mid-call, the executor's finished step is in costs.jsonl, on the node and
    in the run's total the ceiling reads — it was missing from all three."""
    add, mul, _ = sample_nodes()
    store = build_job(tmp_path, [add, mul])
    write_script(store, [_reports_a_step_then_works(solve(add), 30), solve(mul)])
    rec = Recorder()
    ctx = context(store)
    ctx.bus.subscribe(rec)
    task = asyncio.create_task(run_job(ctx, parallel=2))
    while not any(isinstance(e, AgentActivity) and e.usage for e in rec.events):
        await asyncio.sleep(0.05)
    send_control(store, "cancel", "add")
    outcome = await asyncio.wait_for(task, 60)
    assert outcome.done == ["mul"]
    cancelled = [r for r in read_jsonl(store.costs) if r["node_id"] == "add"]
    assert len(cancelled) == 1
    assert cancelled[0]["exit_reason"] == "cancelled"
    assert (cancelled[0]["cost_usd"], cancelled[0]["input_tokens"]) == (0.05, 1000)
    assert cancelled[0]["cost"] == 0.05  # director-cli's name too
    state = store.read_model(store.state, RunState)
    assert state is not None
    assert state.cost_usd == pytest.approx(0.05 + 0.01)  # what the ceiling compares
    assert state.nodes["add"].usage["executor"].cost_usd == pytest.approx(0.05)
    finished = [e for e in rec.of(AgentFinished) if e.node_id == "add"]
    assert finished and finished[-1].exit_reason == "cancelled" and finished[-1].cost_usd == 0.05


def test_a_timed_out_calls_finished_steps_are_charged(tmp_path: Path) -> None:
    nodes = sample_nodes()[:1]
    limits = {"max_attempts": 1, "idle_timeout_secs": 1, "node_timeout_secs": 2}
    store = build_job(tmp_path, nodes, limits=limits)
    hangs = {**_reports_a_step_then_works(solve(nodes[0]), 0), "hang": True, "model": "cheap"}
    write_script(store, [hangs, solve(nodes[0])])
    run(store)
    first = read_jsonl(store.costs)[0]
    assert first["exit_reason"] in ("idle", "timeout")
    assert (first["cost_usd"], first["input_tokens"], first["output_tokens"]) == (0.05, 1000, 100)


def test_the_run_board_moves_with_each_finished_step(tmp_path: Path) -> None:
    """The board's tokens and cost moved only when a call ended; a finished step moves
    them now, and the call's end replaces them with its totals (never counted twice)."""
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes)
    write_script(store, [_reports_a_step_then_works(solve(nodes[0]), 0)])
    run(store)
    events = [e for e in (parse_event(r) for r in read_jsonl(store.events)) if e is not None]
    board = BoardModel()
    seen_step = False
    for event in events:
        board.apply(event)
        if isinstance(event, AgentActivity) and event.usage is not None:
            seen_step = True
            row = board.rows["add"]
            assert (row.tokens, row.cost_usd) == (1100, pytest.approx(0.05))
            assert board.cost_usd == pytest.approx(0.05)
    assert seen_step
    row = board.rows["add"]
    assert (row.tokens, row.cost_usd) == (1200, pytest.approx(0.01))  # the call's totals
    assert board.cost_usd == pytest.approx(0.01)
