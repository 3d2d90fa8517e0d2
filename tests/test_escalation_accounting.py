"""Escalation accounting: an escalation is one attempt at the escalation tier; one that was
stopped (not failed) is owed again; and a node that ends failed says which budget ran out."""

from __future__ import annotations

import asyncio
from pathlib import Path

from director_tui.engine.control import apply_offline, send_control
from director_tui.engine.events import NodeStateChanged
from director_tui.engine.models import NodeStatus, RunState
from tests.run_fixture import Recorder, build_job, run, sample_nodes, solve, write_script
from tests.test_control import _start, _until


def _wrong(node: str, path: str, **extra: object) -> dict[str, object]:
    return {
        "role": "executor",
        "node": node,
        "steps": [{"write": path, "content": "x = 1\n"}],
        **extra,
    }


def _failed_message(rec: Recorder, node: str) -> str:
    failed = [e for e in rec.of(NodeStateChanged) if e.node_id == node and e.status == "failed"]
    assert failed, "the node never failed"
    return str(failed[-1].message)


async def test_an_escalated_attempt_stopped_by_a_run_cancel_runs_again_on_resume(
    tmp_path: Path,
) -> None:
    """Regression: the stopped escalated attempt was un-counted but the node stayed
    'escalated', so the resumed run failed it at once — 'out of attempts' with no try."""
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes, limits={"max_attempts": 1})
    add = nodes[0]
    slow_strong = solve(add, model="strong")
    slow_strong["steps"] = [{"sleep": 60}, *slow_strong["steps"]]
    write_script(store, [slow_strong, _wrong("add", add.impl_path)])
    rec = Recorder()
    task = await _start(store, rec)
    await _until(
        rec,
        lambda e: (
            isinstance(e, NodeStateChanged)
            and e.node_id == "add"
            and e.status == "running"
            and e.tier == "scripted/strong"
        ),
    )
    send_control(store, "cancel")
    first = await asyncio.wait_for(task, 30)
    assert first.outcome == "cancelled"

    write_script(store, [solve(add, model="strong"), _wrong("add", add.impl_path)])
    again = await asyncio.to_thread(run, store)
    assert again.success, again.message
    state = RunState.model_validate_json(store.state.read_bytes())
    assert state.nodes["add"].tier == "scripted/strong"
    assert state.nodes["add"].status == NodeStatus.done


def test_escalating_a_failed_node_gives_one_escalated_attempt_and_says_so(
    tmp_path: Path,
) -> None:
    """`e` on a failed node (the board's offline path): one attempt at the escalation tier.
    When it fails, the node says that the escalation budget — one attempt — is spent, not
    a bare 'out of attempts' next to '2/3'."""
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes, limits={"max_attempts": 3})
    add = nodes[0]
    # A first run with --max-attempts 1: one executor and one escalated attempt, failed.
    write_script(store, [_wrong("add", add.impl_path)])
    first = run(store, max_attempts=1)
    assert first.failed == ["add"]

    record = apply_offline(store, "escalate", "add")
    assert record.ok
    rec = Recorder()
    second = run(store, rec)
    assert second.failed == ["add"]
    state = RunState.model_validate_json(store.state.read_bytes())
    st = state.nodes["add"]
    assert st.tier == "scripted/strong" and st.escalated
    tries = [e for e in rec.of(NodeStateChanged) if e.node_id == "add" and e.status == "running"]
    assert [e.tier for e in tries] == ["scripted/strong"]  # exactly one, escalated
    message = _failed_message(rec, "add")
    assert "escalated attempts: 1 of 1" in message, message
    assert "director retry add" in message, message

    # r gives fresh attempts: executor tier first again.
    write_script(store, [solve(add)])
    assert apply_offline(store, "retry", "add").ok
    third = run(store)
    assert third.success, third.message
