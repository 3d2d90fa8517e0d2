"""The on-disk schema: plans, node and run state, plan stage, review verdicts."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from director_tui.engine.usage import TokenUsage

Difficulty = Literal["easy", "medium", "hard"]


def now() -> float:
    return time.time()


class Node(BaseModel):
    """One atomic unit of work: an allowlist of files to change and the tests that judge it."""

    model_config = ConfigDict(extra="ignore")

    id: str
    title: str = ""
    spec: str = ""
    files: list[str] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    test_cmd: str = ""
    tests: list[str] = Field(default_factory=list)
    estimated_difficulty: Difficulty = "medium"
    test_hashes: dict[str, str] = Field(default_factory=dict)
    red_output: str = ""


class Plan(BaseModel):
    model_config = ConfigDict(extra="ignore")

    job_id: str = ""
    job_branch: str = ""
    base_commit: str = ""
    task: str = ""
    nodes: list[Node] = Field(default_factory=list)

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    @property
    def ids(self) -> list[str]:
        return [n.id for n in self.nodes]


class Stage(StrEnum):
    """Where the plan pipeline is; ``gate1``/``gate2`` wait for an approver."""

    recon = "recon"
    spec = "spec"
    gate1 = "gate1"
    decompose = "decompose"
    tests = "tests"
    gate2 = "gate2"
    approved = "approved"


class Approval(BaseModel):
    gate: Literal["gate1", "gate2"]
    approver: Literal["human", "critic", "auto"]
    at: float = Field(default_factory=now)
    note: str = ""


class PlanStage(BaseModel):
    """``plan_stage.json``: the pipeline's bookmark, read by ``director plan --continue``."""

    model_config = ConfigDict(extra="ignore")

    job_id: str
    task: str
    stage: Stage
    job_branch: str = ""
    base_commit: str = ""
    base_branch: str = ""
    auto: bool = False
    critique: bool = True
    approvals: list[Approval] = Field(default_factory=list)
    rejection: str = ""
    # Who wrote the gate artifacts last (the app says "revised by the critic", not "as
    # generated"); a human's edit is seen by comparing with the *.generated copies.
    spec_by: Literal["brainstorm", "critic"] = "brainstorm"
    plan_by: Literal["planner", "critic"] = "planner"
    updated_at: float = Field(default_factory=now)


class NodeStatus(StrEnum):
    pending = "pending"
    running = "running"
    gating = "gating"
    reviewing = "reviewing"
    merging = "merging"
    # Passed its gates and review; held for the human (``[review] human``) before merging.
    awaiting_review = "awaiting_review"
    done = "done"
    failed = "failed"
    blocked = "blocked"
    skipped = "skipped"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED

    @property
    def active(self) -> bool:
        return self in ACTIVE


FINISHED = frozenset(
    {
        NodeStatus.done,
        NodeStatus.failed,
        NodeStatus.blocked,
        NodeStatus.skipped,
        NodeStatus.cancelled,
    }
)
ACTIVE = frozenset(
    {NodeStatus.running, NodeStatus.gating, NodeStatus.reviewing, NodeStatus.merging}
)


class RoleUsage(TokenUsage):
    """A role's calls on one node (``state.json``): their token counts, cost and number."""

    cost_usd: float = 0.0
    calls: int = 0
    unpriced_calls: int = 0

    @property
    def tokens(self) -> int:
        return self.total


class Finding(BaseModel):
    severity: Literal["critical", "major", "minor"]
    file: str = ""
    summary: str = ""


class Verdict(BaseModel):
    verdict: Literal["pass", "block"]
    summary: str = ""
    findings: list[Finding] = Field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return any(f.severity == "critical" for f in self.findings)


WatchItFail = Literal["observed", "not_observed", "unknown"]


class NodeState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: NodeStatus = NodeStatus.pending
    attempts: int = 0
    tier: str = ""
    escalated: bool = False
    flaky: bool = False
    stage_two: bool = False
    review: Verdict | None = None
    review_error: str = ""
    # Control requests refused because an attempt's processes sent them (or a request
    # file nobody can vouch for named this node): "refused `skip b`: …".
    refused_controls: list[str] = Field(default_factory=list)
    # Whether the executor ran the node's tests and saw them fail before editing: per
    # attempt, in order, and for the node (observed when any attempt did).
    watch_it_fail: WatchItFail = "unknown"
    watch_it_fail_attempts: list[WatchItFail] = Field(default_factory=list)
    last_error: str = ""
    feedback: str = ""
    branch: str = ""
    worktree: str = ""
    merge_commit: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    wall_secs: float = 0.0
    agent_secs: float = 0.0
    test_secs: float = 0.0
    usage: dict[str, RoleUsage] = Field(default_factory=dict)
    changed_files: list[str] = Field(default_factory=list)
    # Run engine: the job-branch commit the current attempt was cut from (the gate diffs
    # against it), a pending "escalate now" request, the flake-control outcome, and how
    # many times a merge conflict sent the node back to re-execute on the new head.
    base_commit: str = ""
    escalate_requested: bool = False
    # Attempts made at the escalation tier (each escalation is one attempt).
    escalated_attempts: int = 0
    flake: Literal["stable", "flaky", "not_run"] = "not_run"
    conflicts: int = 0
    # Human review (``[review] human``): the judged commit held for the human while the
    # node is ``awaiting_review``, and the human's acceptance (the next scheduling of the
    # node merges that commit without another attempt).
    held_commit: str = ""
    human_accepted: bool = False

    @property
    def cost_usd(self) -> float:
        return sum((u.cost_usd for u in self.usage.values()), 0.0)

    @property
    def tokens(self) -> int:
        return sum(u.tokens for u in self.usage.values())


class ControlRecord(BaseModel):
    """One control request as the engine answered it (see ``engine/control.py``)."""

    request_id: str = ""
    action: str
    node_id: str | None = None
    ok: bool = True
    message: str = ""
    at: float = Field(default_factory=now)


class RunState(BaseModel):
    """``state.json``: rewritten atomically after every transition."""

    model_config = ConfigDict(extra="ignore")

    job_id: str
    job_branch: str
    nodes: dict[str, NodeState] = Field(default_factory=dict)
    paused: bool = False
    cancelled: bool = False
    stopped_reason: str = ""
    started_at: float = Field(default_factory=now)
    finished_at: float | None = None
    integration: Literal["pending", "passed", "failed", "skipped"] = "pending"
    integration_report: str = ""
    cost_usd: float = 0.0
    recovered: list[str] = Field(default_factory=list)
    # Run engine: who runs it (pid + create time tell a live owner from a recycled pid)
    # and every control request applied, so `status` shows them.
    owner_pid: int = 0
    owner_create_time: float = 0.0
    controls: list[ControlRecord] = Field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for st in self.nodes.values():
            out[st.status.value] = out.get(st.status.value, 0) + 1
        return out
