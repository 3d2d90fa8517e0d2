"""Control requests applied to the live run at the scheduler's safe points."""

from __future__ import annotations

from director_tui.engine import control, control_channel, review_comments
from director_tui.engine.budget import decide
from director_tui.engine.errors import UsageError
from director_tui.engine.events import ControlApplied
from director_tui.engine.models import ControlRecord
from director_tui.engine.run.core import RunCore


def apply_controls(core: RunCore) -> None:
    """Apply every request delivered to the run (its queue, its socket) and answer each
    with a ``ControlApplied`` event, recorded in the state. Requests sent by an attempt's
    processes, and request files in ``.director/control/``, are refused (see
    ``control_channel``): the refusal is answered the same way and kept in the record of
    the node that sent it and of the node it named."""
    for delivery in control_channel.take_deliveries(core.store):
        request = control.ControlRequest(
            delivery.action, delivery.node_id, delivery.request_id, delivery.at
        )
        if delivery.refused:
            sender = delivery.sender_node
            if core.slots is not None and sender is not None:
                # A slot's server tools carry the slot's marker and work in its folder:
                # the sender is the node whose attempt holds that slot.
                sender = core.slots.holder_of(sender) or sender
            _refuse(core, request, delivery.refused, sender)
        else:
            _answer(core, request, *apply_request(core, request))
    for request in control.take_requests(core.store):
        _refuse(core, request, FILE_DROP_REFUSAL, None)


FILE_DROP_REFUSAL = (
    "it was a file dropped into .director/control/, which proves nothing about who wrote "
    "it (an agent can): send it with `director <action>` or from the app"
)


def _refuse(
    core: RunCore, request: control.ControlRequest, why: str, sender_node: str | None
) -> None:
    what = f"{request.action} {request.node_id or '(the run)'}".strip()
    message = f"refused `{what}`: {why}"
    for nid in dict.fromkeys(n for n in (sender_node, request.node_id) if n in core.nodes):
        core.state.nodes[nid].refused_controls.append(message)
    core.notice(
        (f"node {sender_node}'s attempt sent a control request: " if sender_node else "") + message,
        "warning",
        sender_node if sender_node in core.nodes else None,
    )
    _answer(core, request, False, message)


def _answer(core: RunCore, request: control.ControlRequest, ok: bool, message: str) -> None:
    core.state.controls.append(
        ControlRecord(
            request_id=request.request_id,
            action=request.action,
            node_id=request.node_id,
            ok=ok,
            message=message,
        )
    )
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
    comments = control.comments_for(core.store, action, nid)
    decision = decide(
        action, nid, core.state, core.plan, running=nid in core.tasks, comments=comments
    )
    if decision.ok and comments and nid is not None:
        review_comments.clear(core.store, nid)  # sent: the next attempt reads them once
    if decision.cancel_run:
        core.run_cancelled = True
    if nid is not None and decision.status is not None:
        if decision.stop:
            core.cancel_to[nid] = decision.status  # the task ends in it
            core.tasks[nid].cancel()
        else:
            core.set_status(nid, decision.status, decision.event)
    return decision.ok, decision.message
