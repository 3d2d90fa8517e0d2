"""Every control request means the same to a live run and offline (``budget.decide``):
from the same starting state, both paths leave the node in the same state."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from director_tui.engine import review_comments
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
# Held for the human ([review] human) after its first attempt passed.
HELD = {
    "status": NodeStatus.awaiting_review,
    "attempts": 1,
    "held_commit": "c0ffee",
    "base_commit": "ba5e",
}
COMMENT = "calc/mul.py:2: use the operator"
# "_comments": the human's review comments on the node before the request.
HELD_COMMENTED = {**HELD, "_comments": [COMMENT]}
FED_BACK = (
    "The human reviewed your previous attempt's diff and left these comments "
    f"(file:line: comment). Address every one:\n- {COMMENT}"
)

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
    (
        "accept",
        "mul",
        HELD,
        True,
        {"status": NodeStatus.pending, "human_accepted": True, "held_commit": "c0ffee"},
    ),
    ("accept", "mul", PENDING_HALF_WAY, False, {"status": NodeStatus.pending}),
    (
        "reject",
        "mul",
        HELD_COMMENTED,
        True,
        {"status": NodeStatus.pending, "attempts": 1, "held_commit": "", "feedback": FED_BACK},
    ),
    ("reject", "mul", {**FAILED_ESCALATED, "_comments": [COMMENT]}, False, {"feedback": ""}),
    (
        "retry",
        "mul",
        HELD_COMMENTED,
        True,
        {"status": NodeStatus.pending, "attempts": 0, "held_commit": "", "feedback": FED_BACK},
    ),
    (
        "retry",
        "mul",
        {**FAILED_ESCALATED, "feedback": "gate (tests): no", "_comments": [COMMENT]},
        True,
        {
            "attempts": 0,
            "feedback": FED_BACK
            + "\n\nBefore that review, the attempt had been rejected for:\ngate (tests): no",
        },
    ),
    ("skip", "mul", HELD, True, {"status": NodeStatus.skipped, "held_commit": ""}),
    ("cancel", "mul", HELD, False, {"status": NodeStatus.awaiting_review, "held_commit": "c0ffee"}),
    ("resume", None, PENDING_HALF_WAY, True, {"status": NodeStatus.pending, "attempts": 1}),
    ("pause", None, PENDING_HALF_WAY, None, {"status": NodeStatus.pending, "attempts": 1}),
    ("cancel", None, PENDING_HALF_WAY, None, {"status": NodeStatus.pending, "attempts": 1}),
]


def _start(store: Store, node: dict[str, Any]) -> None:
    state = RunState(job_id=JOB_ID, job_branch=f"director/job-{JOB_ID}")
    for nid in ("add", "mul", "power"):
        state.nodes[nid] = NodeState()
    fields = {k: v for k, v in node.items() if k != "_comments"}
    state.nodes["mul"] = NodeState(**fields)
    store.write_model(store.state, state)
    review_comments.save(
        store, "mul", [review_comments.parse(c) for c in node.get("_comments", [])]
    )


def _comments_left(store: Store, before: dict[str, Any]) -> bool:
    """Whether the human's comments are still there after the request."""
    return bool(before.get("_comments")) and bool(review_comments.load(store, "mul"))


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
    offline_kept = _comments_left(store, before)
    _start(store, before)
    live_ok, live_state = _live(store, action, node_id)
    # Comments are sent by an applied request (read once), kept by a refused one.
    assert _comments_left(store, before) == offline_kept
    assert offline_kept == (bool(before.get("_comments")) and not offline.ok)
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
