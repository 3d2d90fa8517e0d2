"""A node's attempt budget: which tier its next attempt runs on, what does not count, and
why it ran out. An escalation is one attempt, automatic after ``max_attempts`` failures
or asked for with ``escalate``."""

from __future__ import annotations

from director_tui.engine.config import Config
from director_tui.engine.models import NodeState


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
