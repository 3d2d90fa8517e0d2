"""Control requests applied to the live run at the scheduler's safe points."""

from __future__ import annotations

from director_tui.engine import control
from director_tui.engine.budget import decide
from director_tui.engine.errors import UsageError
from director_tui.engine.events import ControlApplied
from director_tui.engine.models import ControlRecord
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


def apply_request(core: RunCore, request: control.ControlRequest) -> tuple[bool, str]:
    """Apply one request to the live run (its meaning: ``budget.decide``)."""
    action, nid = request.action, request.node_id
    try:
        control.check_request(action, nid)
    except UsageError as exc:
        return False, exc.message
    if nid is not None and nid not in core.nodes:
        return False, f"no node {nid!r} in the plan"
    decision = decide(action, nid, core.state, core.plan, running=nid in core.tasks)
    if decision.cancel_run:
        core.run_cancelled = True
    if nid is not None and decision.status is not None:
        if decision.stop:
            core.cancel_to[nid] = decision.status  # the task ends in it
            core.tasks[nid].cancel()
        else:
            core.set_status(nid, decision.status, decision.event)
    return decision.ok, decision.message
