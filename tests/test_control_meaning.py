"""Every control request means the same to a live run and offline (``budget.decide``):
from the same starting state, both paths leave the node in the same state."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from director_tui.engine.control import ControlRequest, apply_offline
from director_tui.engine.models import NodeState, NodeStatus, RunState
from director_tui.engine.run.core import RunCore
from director_tui.engine.run.preflight import load_approved_plan
from director_tui.engine.run.requests import apply_request
from director_tui.engine.store import Store
from tests.run_fixture import JOB_ID, build_job, context

FAILED_ESCALATED = {
    "status": NodeStatus.failed,
    "attempts": 3,
    "escalated": True,
    "escalated_attempts": 1,
    "escalate_requested": True,
    "last_error": "gate (tests): no",
}
PENDING_HALF_WAY = {"status": NodeStatus.pending, "attempts": 1}

# (action, node, the node's state before, ok, what must hold after)
CASES: list[tuple[str, str | None, dict[str, Any], bool, dict[str, Any]]] = [
    (
        "retry",
        "mul",
        FAILED_ESCALATED,
        True,
        {
            "status": NodeStatus.pending,
            "attempts": 0,
            "escalated": False,
            "escalated_attempts": 0,
            "escalate_requested": False,  # retry is fresh executor attempts
        },
    ),
    ("retry", "mul", PENDING_HALF_WAY, False, {"status": NodeStatus.pending, "attempts": 1}),
    ("retry", "mul", {"status": NodeStatus.done}, False, {"status": NodeStatus.done}),
    (
        "escalate",
        "mul",
        FAILED_ESCALATED,
        True,
        {"status": NodeStatus.pending, "attempts": 0, "escalate_requested": True},
    ),
    (
        "escalate",
        "mul",
        PENDING_HALF_WAY,
        True,
        {"status": NodeStatus.pending, "attempts": 1, "escalate_requested": True},
    ),
    ("skip", "mul", PENDING_HALF_WAY, True, {"status": NodeStatus.skipped}),
    ("skip", "mul", {"status": NodeStatus.done}, False, {"status": NodeStatus.done}),
    ("cancel", "mul", PENDING_HALF_WAY, True, {"status": NodeStatus.cancelled}),
    ("cancel", "mul", {"status": NodeStatus.skipped}, False, {"status": NodeStatus.skipped}),
    ("resume", None, PENDING_HALF_WAY, True, {"status": NodeStatus.pending, "attempts": 1}),
    ("pause", None, PENDING_HALF_WAY, None, {"status": NodeStatus.pending, "attempts": 1}),
    ("cancel", None, PENDING_HALF_WAY, None, {"status": NodeStatus.pending, "attempts": 1}),
]


def _start(store: Store, node: dict[str, Any]) -> None:
    state = RunState(job_id=JOB_ID, job_branch=f"director/job-{JOB_ID}")
    for nid in ("add", "mul", "power"):
        state.nodes[nid] = NodeState()
    state.nodes["mul"] = NodeState(**node)
    store.write_model(store.state, state)


def _live(store: Store, action: str, node_id: str | None) -> tuple[bool, RunState]:
    ctx = context(store)
    plan = load_approved_plan(ctx)

    async def apply() -> tuple[bool, RunState]:
        core = RunCore(ctx, plan, parallel=1, max_attempts=3)
        request = ControlRequest(action, node_id, uuid.uuid4().hex, 0.0)
        ok, _message = apply_request(core, request)
        core.writer.flush()
        core.writer.close()
        core.git_pool.shutdown()
        return ok, core.state

    return asyncio.run(apply())


@pytest.mark.parametrize(("action", "node_id", "before", "ok", "after"), CASES)
def test_a_request_leaves_the_node_alike_live_and_offline(
    tmp_path: Path,
    action: str,
    node_id: str | None,
    before: dict[str, Any],
    ok: bool | None,
    after: dict[str, Any],
) -> None:
    store = build_job(tmp_path)
    _start(store, before)
    offline = apply_offline(store, action, node_id)
    offline_state = RunState.model_validate_json(store.state.read_bytes())
    _start(store, before)
    live_ok, live_state = _live(store, action, node_id)
    # ok None: a request only a live run can carry out (pause, cancel the run).
    assert live_ok is (ok if ok is not None else True)
    assert offline.ok is (ok if ok is not None else False)
    live_mul, offline_mul = live_state.nodes["mul"], offline_state.nodes["mul"]
    for key, value in after.items():
        assert getattr(live_mul, key) == value, key
    ignore = {"finished_at"}
    assert live_mul.model_dump(exclude=ignore) == offline_mul.model_dump(exclude=ignore)
    assert (live_mul.finished_at is None) == (offline_mul.finished_at is None)
    assert live_state.nodes["add"] == offline_state.nodes["add"]
    if action in ("pause", "resume"):
        assert live_state.paused is (action == "pause")
        assert offline_state.paused is False
