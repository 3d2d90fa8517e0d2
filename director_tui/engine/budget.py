"""A node's attempt budget and what every control request means.

The budget: which tier a node's next attempt runs on, what does not count, and why it
ran out. An escalation is one attempt, automatic after ``max_attempts`` failures or
asked for with ``escalate``.

The requests (``control.py`` carries them): :func:`decide` is their one meaning, used by
the live run (``run/requests.py``) and by ``control.apply_offline`` when no run is live,
so both leave a node in the same state. What differs is only what a live run has and an
offline edit has not: a running task to stop, a run to pause or cancel.

* ``retry`` — fresh attempts from the bottom of the tier ladder (executor tier first). It
  also drops an escalation asked for earlier: the newest request wins, and ``retry`` is
  documented as "fresh executor attempts" (``escalate`` is the way to the strong tier).
  A pending or running node has nothing to retry. The human's review comments
  (``review_comments``), when there are any, become the next attempt's feedback; a node
  held for review drops the held attempt.
* ``accept`` — a node held for the human (``awaiting_review``) merges the commit its gate
  judged, with no other attempt. Only a held node can be accepted.
* ``reject`` — a held node's attempt counts as a failed one: the node goes back for its
  next attempt within its budget (or fails when that was its last), the comments as its
  feedback.
* ``escalate`` — the next attempt runs at the escalation tier; a node that had ended
  starts over with that one attempt; a running attempt is stopped and restarted there.
* ``skip`` — the node will not run (a running attempt is stopped); dependents block.
* ``cancel <node>`` — a running or pending node ends cancelled; any other is refused.
* ``pause`` / ``resume`` / ``cancel`` (the run) — scheduling only; no node changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from director_tui.engine import dag
from director_tui.engine.config import Config
from director_tui.engine.models import NodeState, NodeStatus, Plan, RunState
from director_tui.engine.review_comments import ReviewComment, as_feedback


def uncount_attempt(st: NodeState) -> None:
    """An attempt that ended through no fault of its own (stopped, interrupted, a merge
    conflict, an outside change that cannot be pinned on it) does not count. When it was
    the escalated attempt, the node is owed that attempt again: without this the node
    stayed 'escalated' and failed at once — out of attempts without a try."""
    st.attempts = max(0, st.attempts - 1)
    if st.escalated and st.escalated_attempts > 0:
        st.escalated_attempts -= 1
        st.escalate_requested = True


def fresh_attempts(st: NodeState) -> None:
    """A node that ended (failed, blocked, cancelled) starts its budget over."""
    st.attempts = 0
    st.escalated = False
    st.escalated_attempts = 0


def next_tier(st: NodeState, config: Config, max_attempts: int) -> tuple[str, bool] | None:
    """(tier, escalated) of the next attempt, or None when the node is out of tries."""
    if st.escalate_requested:
        return config.tier_for("escalation"), True
    if st.escalated:
        return None  # the escalation attempt was the last one
    if st.attempts < max_attempts:
        return config.tier_for("executor"), False
    return config.tier_for("escalation"), True


def begin_attempt(st: NodeState, tier: str, escalating: bool) -> None:
    """Charge the attempt about to run on ``tier`` to the node's budget."""
    st.escalated = st.escalated or escalating
    st.escalate_requested = False
    st.attempts += 1
    if escalating:
        st.escalated_attempts += 1
    st.tier = tier


def out_of_attempts(nid: str, st: NodeState, max_attempts: int) -> str:
    """Why a node failed, with the budget that ran out: an escalation is one attempt,
    and an escalation asked for early skips the executor attempts left."""
    last = f" — last error: {st.last_error}" if st.last_error else ""
    retry = f"press r or run `director retry {nid}` for fresh attempts"
    if not st.escalated:
        return f"out of attempts ({st.attempts} of {max_attempts}); {retry}{last}"
    escalated = max(1, st.escalated_attempts)
    executor = max(0, st.attempts - escalated)
    skipped = "; escalating skipped the executor attempts left" if executor < max_attempts else ""
    return (
        f"out of attempts: the escalated attempt on {st.tier} failed too (an escalation "
        f"is a single attempt — escalated attempts: {escalated} of {escalated}, after "
        f"{executor} of {max_attempts} executor attempts{skipped}); {retry}{last}"
    )


@dataclass(frozen=True)
class Decision:
    """What a control request does. The node's budget fields are already changed."""

    ok: bool
    message: str
    status: NodeStatus | None = None  # the node's new status (None: unchanged)
    stop: bool = False  # a live run stops the node's running task, which ends in ``status``
    event: str = ""  # the status change's message
    cancel_run: bool = False


# How an offline answer says when it takes effect (the app, which starts the run at
# once after a retry, says "now" instead).
NEXT_RUN = " at the next `director run`"


def decide(
    action: str,
    node_id: str | None,
    state: RunState,
    plan: Plan,
    *,
    running: bool = False,
    live: bool = True,
    comments: list[ReviewComment] | None = None,
) -> Decision:
    """Apply a well-formed request (``control.check_request``) for a node of ``plan`` to
    ``state``; ``running``: the node has a task in the live run; ``live``: a run is;
    ``comments``: the human's review comments on the node (retry and reject send them to
    the next attempt; the caller discards them once the decision is ``ok``)."""
    if node_id is None:
        return _decide_for_run(action, state, live=live)
    st = state.nodes.setdefault(node_id, NodeState())
    later = "" if live else NEXT_RUN
    if st.status == NodeStatus.done:
        return Decision(False, f"node {node_id} is already merged")
    if st.status == NodeStatus.merging and live:
        return Decision(False, f"node {node_id} is merging right now; try again in a moment")
    if action in ("accept", "reject"):
        return _decide_review(action, node_id, st, comments or [], later)
    held = st.status == NodeStatus.awaiting_review
    decision = _decide_node(action, node_id, st, plan, comments or [], running, later, held)
    if decision.ok and (held or st.human_accepted):
        # Any other request lets go of the held (or accepted) attempt: it will not merge.
        st.held_commit = ""
        st.human_accepted = False
    return decision


def _decide_node(
    action: str,
    node_id: str,
    st: NodeState,
    plan: Plan,
    comments: list[ReviewComment],
    running: bool,
    later: str,
    held: bool,
) -> Decision:
    """retry / escalate / skip / cancel of one node (see :func:`decide`)."""
    if action == "retry":
        if running or st.status == NodeStatus.pending:
            return Decision(False, f"node {node_id} is {st.status.value}: nothing to retry")
        fresh_attempts(st)
        st.escalate_requested = False
        sent = ""
        if comments:
            st.feedback = as_feedback(comments, "" if held else st.feedback)
            sent = f", your {len(comments)} comment(s) as its feedback"
        return Decision(
            True,
            f"node {node_id} will run again with fresh attempts{sent}{later}",
            NodeStatus.pending,
            event="retry requested" + (" with review comments" if comments else ""),
        )
    if action == "escalate":
        if not running and st.status.finished:
            fresh_attempts(st)  # a finished node starts over, straight at escalation
        st.escalate_requested = True
        if running:
            return Decision(
                True,
                f"node {node_id}: current attempt stopped; restarting at the escalation tier",
                NodeStatus.pending,
                stop=True,
            )
        status = None if st.status == NodeStatus.pending else NodeStatus.pending
        return Decision(
            True,
            f"node {node_id} will run next at the escalation tier{later}: one attempt (an "
            "escalation is a single attempt; `retry` gives fresh executor attempts)",
            status,
            event="escalation requested",
        )
    if action == "skip":
        blocked = sorted(dag.dependents(plan, node_id))
        return Decision(
            True,
            f"node {node_id} skipped"
            + (f"; its dependents are blocked: {', '.join(blocked)}" if blocked else ""),
            NodeStatus.skipped,
            stop=running,
            event="skipped by request",
        )
    if action == "cancel":
        if not running and st.status != NodeStatus.pending:
            return Decision(False, f"node {node_id} is {st.status.value}: not running")
        return Decision(
            True,
            f"node {node_id} cancelled",
            NodeStatus.cancelled,
            stop=running,
            event="cancelled by request",
        )
    return Decision(False, f"unknown action {action!r}")


def _decide_review(
    action: str, node_id: str, st: NodeState, comments: list[ReviewComment], later: str
) -> Decision:
    """``accept`` / ``reject`` of a node held for the human (``awaiting_review``)."""
    if st.status != NodeStatus.awaiting_review:
        return Decision(
            False,
            f"node {node_id} is {st.status.value}, not waiting for your review: nothing to "
            f"{action}" + (" (`retry` sends comments to a node that ended)" if comments else ""),
        )
    if action == "accept":
        st.human_accepted = True
        return Decision(
            True,
            f"node {node_id} accepted: its attempt merges{later or ' now'}",
            NodeStatus.pending,
            event="accepted by you",
        )
    st.held_commit = ""
    st.human_accepted = False
    st.last_error = "rejected by you in review"
    st.feedback = (
        as_feedback(comments)
        if comments
        else "The human reviewed your previous attempt and rejected it: do it differently."
    )
    what = f" with your {len(comments)} comment(s)" if comments else ""
    return Decision(
        True,
        f"node {node_id} rejected: it goes back for its next attempt{what}{later} (a node "
        "out of attempts fails; `retry` gives fresh ones)",
        NodeStatus.pending,
        event="rejected by you" + (" with review comments" if comments else ""),
    )


def _decide_for_run(action: str, state: RunState, *, live: bool) -> Decision:
    if action == "resume":
        state.paused = False
        return Decision(
            True,
            "resumed scheduling" if live else "scheduling will run at the next `director run`",
        )
    if not live:
        return Decision(
            False,
            f"no run is live: nothing to {action} (start one with `director run`; "
            "a run pauses and cancels only while it goes)",
        )
    if action == "pause":
        state.paused = True
        return Decision(True, "paused: no new node starts; running nodes go on")
    if action == "cancel":
        return Decision(
            True,
            "run cancelled: running nodes stopped; `director run` resumes",
            cancel_run=True,
        )
    return Decision(False, f"unknown action {action!r}")
