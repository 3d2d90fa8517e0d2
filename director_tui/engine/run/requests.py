"""Control requests applied to the live run at the scheduler's safe points."""

from __future__ import annotations

from director_tui.engine import control, dag
from director_tui.engine.errors import UsageError
from director_tui.engine.events import ControlApplied
from director_tui.engine.models import ControlRecord, NodeStatus
from director_tui.engine.budget import fresh_attempts
from director_tui.engine.run.core import RunCore


def apply_controls(core: RunCore) -> None:
    """Take every pending request from ``.director/control/``, apply it, record it in the
    state and answer with a ``ControlApplied`` event."""
    for request in control.take_requests(core.store):
        ok, message = apply_request(core, request)
        record = ControlRecord(
            request_id=request.request_id,
            action=request.action,
            node_id=request.node_id,
            ok=ok,
            message=message,
        )
        core.state.controls.append(record)
        core.save()
        core.ctx.bus.emit(
            ControlApplied(
                action=request.action,
                node_id=request.node_id,
                ok=ok,
                message=message,
                request_id=request.request_id,
            )
        )


def _stop(core: RunCore, nid: str, to: NodeStatus) -> None:
    """Cancel the node's running task; it ends in ``to``."""
    core.cancel_to[nid] = to
    core.tasks[nid].cancel()


def apply_request(core: RunCore, request: control.ControlRequest) -> tuple[bool, str]:
    action, nid = request.action, request.node_id
    try:
        control.check_request(action, nid)
    except UsageError as exc:
        return False, exc.message
    if action == "pause":
        core.state.paused = True
        return True, "paused: no new node starts; running nodes go on"
    if action == "resume":
        core.state.paused = False
        return True, "resumed scheduling"
    if action == "cancel" and nid is None:
        core.run_cancelled = True
        return True, "run cancelled: running nodes stopped; `director run` resumes"
    assert nid is not None
    if nid not in core.nodes:
        return False, f"no node {nid!r} in the plan"
    st = core.state.nodes[nid]
    running = nid in core.tasks
    if st.status == NodeStatus.done:
        return False, f"node {nid} is already merged"
    if st.status == NodeStatus.merging:
        return False, f"node {nid} is merging right now; try again in a moment"
    if action == "retry":
        if running or st.status == NodeStatus.pending:
            return False, f"node {nid} is {st.status.value}: nothing to retry"
        fresh_attempts(st)
        core.set_status(nid, NodeStatus.pending, "retry requested")
        return True, f"node {nid} will run again with fresh attempts"
    if action == "escalate":
        if not running and st.status.finished:
            fresh_attempts(st)  # a finished node starts over, straight at escalation
        st.escalate_requested = True
        if running:
            _stop(core, nid, NodeStatus.pending)
            return True, f"node {nid}: current attempt stopped; restarting at the escalation tier"
        if st.status != NodeStatus.pending:
            core.set_status(nid, NodeStatus.pending, "escalation requested")
        return True, f"node {nid} will run next at the escalation tier"
    if action == "skip":
        if running:
            _stop(core, nid, NodeStatus.skipped)
        else:
            core.set_status(nid, NodeStatus.skipped, "skipped by request")
        blocked = sorted(dag.dependents(core.plan, nid))
        return True, f"node {nid} skipped" + (
            f"; its dependents are blocked: {', '.join(blocked)}" if blocked else ""
        )
    if action == "cancel":
        if running:
            _stop(core, nid, NodeStatus.cancelled)
        elif st.status == NodeStatus.pending:
            core.set_status(nid, NodeStatus.cancelled, "cancelled by request")
        else:
            return False, f"node {nid} is {st.status.value}: not running"
        return True, f"node {nid} cancelled"
    return False, f"unknown action {action!r}"
