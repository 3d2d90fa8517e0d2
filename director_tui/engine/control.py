"""Control requests to a run: retry / escalate / skip / pause / resume / cancel.

:func:`send_control` hands a request to the live run: in the run's own process (the app)
through a queue, from any other process (``director retry`` in another shell, an app
attached to a headless run) over the run's unix socket, which checks that the sender is
not one of the attempt's processes (``control_channel``: agents must not steer the run).
The run applies requests at its next safe point (its scheduler loop polls a few times a
second) and answers each with a ``ControlApplied`` event carrying the same
``request_id``; the answer is also kept in ``state.json`` (``controls``) so ``director
status`` shows it. A request file dropped into ``.director/control/`` is refused, with
an answer: nothing proves who wrote it.

When no run is live, :func:`apply_offline` edits ``state.json`` under the run lock
instead, for the actions that make sense then (retry, escalate, skip, resume, cancel of a
node); the next ``director run`` picks the change up.

Actions (``node`` required unless noted):

What each action does to a node is ``budget.decide``'s, for a live run and offline alike:

* ``retry <node>`` — a failed/blocked/cancelled/skipped node gets fresh attempts from the
  executor tier (an escalation asked for earlier is dropped).
* ``escalate <node>`` — the node's next attempt runs at the escalation tier; a running
  attempt is cancelled and restarted there. An escalation is a single attempt (the
  plan's "exhausted → once more at the escalation tier", asked for early): executor
  attempts left are skipped, not saved for later (going back to the weaker tier after the
  stronger one failed helps nobody), so when that attempt fails the node fails and says
  so ("escalated attempts: 1 of 1"). A node that had ended (failed, blocked, cancelled)
  starts over with that one escalated attempt; ``retry`` gives fresh executor attempts.
  A stopped escalated attempt (cancel, kill -9, a merge conflict) is owed again.
* ``skip <node>`` — the node will not run; its dependents become blocked.
* ``pause`` / ``resume`` (no node) — stop / restart scheduling; running nodes go on.
* ``cancel <node>`` — stop a running (or pending) node; dependents become blocked. A node
  in any other state is refused.
* ``cancel`` (no node) — cancel the run: running nodes are stopped and reset, the state
  stays resumable with ``director run``.
* ``accept <node>`` / ``reject <node>`` — a node held for the human (``[review] human``):
  merge its held attempt, or send it back for its next attempt.

``retry`` and ``reject`` take the node's review comments (``.director/reviews/<node>.json``)
with them: the comments become the next attempt's feedback and are removed once the
request is applied (:func:`take_comments`). They travel as that file, not in the request:
a comment can be longer than a socket request, and the file survives a restart.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from director_tui.engine import control_channel, review_comments
from director_tui.engine.budget import decide
from director_tui.engine.errors import DirectorError, UsageError
from director_tui.engine.models import (
    ControlRecord,
    NodeState,
    Plan,
    PlanStage,
    RunState,
    Stage,
)
from director_tui.engine.store import Store

ACTIONS = ("retry", "escalate", "skip", "pause", "resume", "cancel", "accept", "reject")
NODE_ACTIONS = frozenset({"retry", "escalate", "skip", "accept", "reject"})
# The requests that send the human's review comments (``review_comments``) to the node.
COMMENTED_ACTIONS = frozenset({"retry", "reject"})
RUN_ACTIONS = frozenset({"pause", "resume"})


@dataclass(frozen=True)
class ControlRequest:
    action: str
    node_id: str | None
    request_id: str
    at: float


def normalise(action: str, node_id: str | None) -> tuple[str, str | None]:
    """``cancel_run`` (the TUI's name) is ``cancel`` without a node."""
    action = action.strip().lower().replace("-", "_")
    if action == "cancel_run":
        return "cancel", None
    return action, node_id or None


def check_request(action: str, node_id: str | None) -> None:
    """Raise :class:`UsageError` for a malformed request (unknown action, missing node)."""
    action, node_id = normalise(action, node_id)
    if action not in ACTIONS:
        raise UsageError(f"unknown control action {action!r}; actions are {', '.join(ACTIONS)}")
    if action in NODE_ACTIONS and not node_id:
        raise UsageError(f"`director {action}` needs a node id", hint=f"director {action} <node>")
    if action in RUN_ACTIONS and node_id:
        raise UsageError(f"`director {action}` applies to the whole run; it takes no node id")


class ControlRefused(DirectorError):
    """The live run refused the request because of who sent it (exit 1)."""


def send_control(
    store: Store, action: str, node_id: str | None = None, *, in_process: bool = True
) -> str:
    """Hand a request to the live run; returns its ``request_id``.

    A run in this process (or, with ``in_process``, one this process is about to start)
    gets it through its queue; a run in another process over its socket, which may
    refuse it (:class:`ControlRefused`) or not be listening (``NoLiveRun``)."""
    action, node_id = normalise(action, node_id)
    check_request(action, node_id)
    request_id = uuid.uuid4().hex[:12]
    at = time.time()
    if control_channel.live_here(store) or (in_process and store.lock_holder() is None):
        control_channel.deliver_local(
            store, control_channel.Delivery(action, node_id, request_id, at)
        )
        return request_id
    answer = control_channel.send_over_socket(
        store, {"action": action, "node_id": node_id, "request_id": request_id, "at": at}
    )
    if answer.get("refused"):
        raise ControlRefused(f"the run refused it: {answer['refused']}")
    return request_id


# The name the TUI's engine bridge looks up.
request = send_control


def take_requests(store: Store) -> list[ControlRequest]:
    """Every request file in ``.director/control/``, oldest first, removed as it is read
    (a live run refuses them: see the module docstring)."""
    folder = store.control
    if not folder.is_dir():
        return []
    requests: list[ControlRequest] = []
    for path in sorted(folder.glob("*.json")):
        request = _read(path)
        with contextlib.suppress(OSError):
            path.unlink()
        if request is not None:
            requests.append(request)
    return requests


def _read(path: Path) -> ControlRequest | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        action, node_id = normalise(str(data["action"]), data.get("node_id"))
        return ControlRequest(
            action=action,
            node_id=node_id,
            request_id=str(data.get("request_id") or path.stem),
            at=float(data.get("at") or data.get("ts") or time.time()),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def find_answer(store: Store, request_id: str) -> ControlRecord | None:
    """The engine's answer to a request, once it has applied it."""
    state = store.read_model(store.state, RunState)
    if state is None:
        return None
    return next((c for c in state.controls if c.request_id == request_id), None)


def apply_offline(store: Store, action: str, node_id: str | None) -> ControlRecord:
    """Apply a request to ``state.json`` when no engine is running (caller holds the lock)."""
    action, node_id = normalise(action, node_id)
    check_request(action, node_id)
    plan = store.read_model(store.plan, Plan)
    stage = store.read_model(store.plan_stage, PlanStage)
    if plan is None or stage is None:
        raise UsageError("no plan to control yet", hint='make one with `director plan "<task>"`')
    if stage.stage != Stage.approved:
        raise UsageError(
            f"the plan is not approved yet (stage {stage.stage.value!r}): there is no run "
            "to control",
            hint="approve it with `director plan --continue` (or in `director tui`)",
        )
    if node_id is not None and node_id not in plan.ids:
        raise UsageError(f"no node {node_id!r} in the plan ({', '.join(plan.ids)})")
    state = store.read_model(store.state, RunState)
    fresh = state is None or state.job_id != plan.job_id
    if fresh or state is None:  # (the second test only narrows the type)
        # Approved but not run yet (or state.json is an earlier job's): the first
        # `director run` starts from this state, so a skip or escalate set now holds.
        state = RunState(job_id=plan.job_id, job_branch=plan.job_branch)
        for node in plan.nodes:
            state.nodes[node.id] = NodeState()
    # The meaning of the request is the live run's (budget.decide); only the state is
    # edited here, for the next `director run` to pick up.
    comments = comments_for(store, action, node_id)
    decision = decide(action, node_id, state, plan, live=False, comments=comments)
    if decision.ok and node_id is not None and decision.status is not None:
        st = state.nodes[node_id]
        st.status = decision.status
        if decision.status.finished:
            st.finished_at = time.time()  # as a live run's status change does
    record = ControlRecord(
        request_id=uuid.uuid4().hex[:12],
        action=action,
        node_id=node_id,
        ok=decision.ok,
        message=decision.message,
    )
    if fresh and not record.ok:
        return record  # a refusal is no reason to write a first state.json
    state.controls.append(record)
    store.write_model(store.state, state)
    if decision.ok and comments and node_id is not None:
        review_comments.clear(store, node_id)  # sent: the next attempt reads them once
    return record


def comments_for(
    store: Store, action: str, node_id: str | None
) -> list[review_comments.ReviewComment]:
    """The review comments a request sends to its node (retry and reject do)."""
    if node_id is None or action not in COMMENTED_ACTIONS:
        return []
    return review_comments.load(store, node_id)
