"""What ``director cluster status`` shows: the cluster's nodes (asked of Ray by
``ray_backend.cluster_nodes``) and, from ``.director/`` alone, the attempts in flight
with the worker each runs on."""

from __future__ import annotations

from pydantic import BaseModel, Field

from director_tui.engine.events import AgentStarted, parse_event
from director_tui.engine.models import NodeStatus, RunState
from director_tui.engine.store import Store, read_jsonl

IN_FLIGHT = (NodeStatus.running, NodeStatus.gating)


class WorkerNode(BaseModel):
    name: str
    alive: bool
    resources: dict[str, float] = Field(default_factory=dict)


class InFlight(BaseModel):
    node_id: str
    attempt: int
    status: str
    worker: str  # empty: not placed yet, or a local run


class ClusterReport(BaseModel):
    address: str
    nodes: list[WorkerNode]
    in_flight: list[InFlight]


def in_flight(store: Store) -> list[InFlight]:
    """The job's nodes running or gating now, each with the worker its last call ran on."""
    state = store.read_model(store.state, RunState)
    if state is None:
        return []
    workers: dict[str, str] = {}
    for record in read_jsonl(store.events) if store.events.is_file() else []:
        if record.get("type") != "agent_started":
            continue
        event = parse_event(record)
        if isinstance(event, AgentStarted) and event.node_id:
            workers[event.node_id] = event.worker
    return [
        InFlight(
            node_id=nid, attempt=st.attempts, status=st.status.value, worker=workers.get(nid, "")
        )
        for nid, st in state.nodes.items()
        if st.status in IN_FLIGHT
    ]
