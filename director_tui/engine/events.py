"""Typed events and the bus that records them.

Every state change is an event. The bus appends each one to ``.director/events.jsonl``
(so any view can be rebuilt from the file alone, e.g. a TUI attaching to a headless run)
and hands it to in-process sinks. Agent activity is high-volume and only flushed; state
changes are fsynced.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from director_tui.engine.store import append_jsonl
from director_tui.engine.usage import TokenUsage


class EventBase(BaseModel):
    ts: float = Field(default_factory=time.time)
    seq: int = 0
    # Activity floods (thousands per second) are flushed, not fsynced.
    durable: ClassVar[bool] = True


class Notice(EventBase):
    type: Literal["notice"] = "notice"
    level: Literal["info", "warning", "error"] = "info"
    message: str
    node_id: str | None = None


class PlanStageChanged(EventBase):
    type: Literal["plan_stage"] = "plan_stage"
    job_id: str
    stage: str
    message: str = ""
    # The job passes its gates without a human (`director plan --auto`, `director auto`):
    # reaching one then is no call for the human's attention.
    auto: bool = False


class RunStarted(EventBase):
    type: Literal["run_started"] = "run_started"
    job_id: str
    job_branch: str
    node_ids: list[str]
    parallel: int
    ceiling_usd: float
    tiers: dict[str, str] = Field(default_factory=dict)
    scripted: bool = False
    pid: int = 0
    # "sandbox: on (bwrap)" or "sandbox: off — <why>": the user sees it as the run starts.
    sandbox: str = ""


class RunFinished(EventBase):
    type: Literal["run_finished"] = "run_finished"
    job_id: str
    outcome: Literal["success", "failed", "stopped", "cancelled"]
    message: str = ""
    cost_usd: float = 0.0


class NodeStateChanged(EventBase):
    type: Literal["node_state"] = "node_state"
    node_id: str
    status: str
    attempt: int = 0
    max_attempts: int = 0
    tier: str = ""
    message: str = ""
    # The node is on (or finished after) its escalation attempt: an escalation requested
    # early runs while attempt <= max_attempts, so the attempt count alone cannot say it.
    escalated: bool = False


class AgentStarted(EventBase):
    type: Literal["agent_started"] = "agent_started"
    call_id: str
    role: str
    tier: str
    node_id: str | None = None
    attempt: int = 0
    scripted: bool = False
    # The cluster worker the call runs on ("host/node"); empty: this machine.
    worker: str = ""


class AgentActivity(EventBase):
    """One thing an agent did, the moment its CLI printed it."""

    type: Literal["agent_activity"] = "agent_activity"
    durable: ClassVar[bool] = False
    call_id: str
    role: str
    node_id: str | None = None
    kind: Literal["tool", "text", "reasoning", "step", "error", "raw"]
    tool: str = ""
    status: str = ""
    summary: str = ""
    tokens: int = 0
    cost_usd: float = 0.0
    # A finished step's token counts (kind "step", status "finish"): the run board moves
    # with them, and a call cancelled mid-way is charged the steps it finished.
    usage: TokenUsage | None = None


class AgentFinished(EventBase):
    type: Literal["agent_finished"] = "agent_finished"
    call_id: str
    role: str
    tier: str
    node_id: str | None = None
    exit_reason: str
    message: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    priced: bool = True
    duration_secs: float = 0.0


class GateResult(EventBase):
    type: Literal["gate_result"] = "gate_result"
    node_id: str
    attempt: int
    passed: bool
    check: str
    message: str = ""
    output_tail: str = ""


# TestOutput.node_id of the integration gate's commands (not a node of the plan).
INTEGRATION_OUTPUT = "_integration"


class TestOutput(EventBase):
    type: Literal["test_output"] = "test_output"
    durable: ClassVar[bool] = False
    node_id: str  # or INTEGRATION_OUTPUT
    line: str


TestsPhase = Literal["waiting", "authoring", "red_check", "red", "frozen", "failed"]


class NodeTestsProgress(EventBase):
    """Where a node's tests are in the plan's tests stage (authored in parallel, each in its
    own scratch worktree): ``waiting`` for a slot, ``authoring`` (the test author's
    ``attempt``), ``red_check`` (its tests run), ``red`` (red for the right reason, waiting
    for the nodes before it in plan order), ``frozen`` (committed to the job branch and
    hashed), ``failed`` (out of tries, or stopped; ``message`` says why)."""

    type: Literal["node_tests"] = "node_tests"
    node_id: str
    phase: TestsPhase
    attempt: int = 0
    message: str = ""


class ReviewResult(EventBase):
    type: Literal["review_result"] = "review_result"
    node_id: str
    stage: Literal["one", "two"]
    verdict: str
    blocking: bool
    summary: str = ""
    findings: list[dict[str, str]] = Field(default_factory=list)


class NodeMerged(EventBase):
    type: Literal["node_merged"] = "node_merged"
    node_id: str
    commit: str
    rebased: bool = False


class NodeAwaitingReview(EventBase):
    """A node passed its gates and review and waits for the human before it merges
    (``[review] human``): accept, reject or retry it with comments."""

    type: Literal["node_awaiting_review"] = "node_awaiting_review"
    node_id: str
    commit: str
    reason: str = ""


class CostUpdate(EventBase):
    type: Literal["cost"] = "cost"
    total_usd: float
    ceiling_usd: float
    node_id: str | None = None
    unpriced_calls: int = 0


class IntegrationResult(EventBase):
    type: Literal["integration"] = "integration"
    passed: bool
    command: str = ""
    name: str = ""
    exit_code: int | None = None
    output_tail: str = ""
    suspects: list[str] = Field(default_factory=list)


class ControlApplied(EventBase):
    type: Literal["control"] = "control"
    action: str
    node_id: str | None = None
    ok: bool
    message: str = ""
    request_id: str = ""


class BenchProgress(EventBase):
    """A bench's progress, written to ``.director/bench/events.jsonl`` (see engine/bench/).

    ``plan`` planning moved on; ``start``/``node``/``done``/``error`` one profile run (its
    ``repeat`` counts from 1) started, finished a node (``done`` of ``total``), ended, or
    failed; ``finished`` the whole bench ended and its summary is written."""

    type: Literal["bench"] = "bench"
    bench_id: str
    profile: str
    repeat: int
    phase: Literal["plan", "start", "node", "done", "error", "finished"]
    message: str = ""
    done: int = 0
    total: int = 0
    cost_usd: float = 0.0


class ClusterStatus(EventBase):
    """The Ray cluster a run's attempts go to (``[cluster] engine = "ray"``): its live
    nodes, their CPUs and the attempts in flight; sent when one of them changes."""

    durable: ClassVar[bool] = False
    type: Literal["cluster"] = "cluster"
    workers: int
    cpus: float = 0.0
    in_flight: int = 0


Event = Annotated[
    Notice
    | PlanStageChanged
    | RunStarted
    | RunFinished
    | NodeStateChanged
    | AgentStarted
    | AgentActivity
    | AgentFinished
    | GateResult
    | TestOutput
    | NodeTestsProgress
    | ReviewResult
    | NodeMerged
    | NodeAwaitingReview
    | CostUpdate
    | IntegrationResult
    | ControlApplied
    | BenchProgress
    | ClusterStatus,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

Sink = Callable[[Event], None]


def parse_event(record: dict[str, Any]) -> Event | None:
    """An event from one JSONL record; unknown or malformed records are skipped."""
    try:
        return EVENT_ADAPTER.validate_python(record)
    except ValidationError:
        return None


class EventBus:
    """Appends events to a JSONL file and fans them out to sinks. Thread-safe."""

    def __init__(self, path: Path | None = None, sinks: list[Sink] | None = None) -> None:
        self.path = path
        self.sinks: list[Sink] = list(sinks or [])
        self._lock = threading.Lock()
        self._seq = itertools.count(_last_seq(path) + 1)
        # Group commit (opt-in, the run engine turns it on while it runs): durable events
        # are still written and flushed before emit returns — a killed process loses
        # nothing — but the fsync happens on a background thread, one per batch, so the
        # emitting event loop never waits on the disk.
        self.background_fsync = False
        self._fsync_wanted = threading.Event()
        self._fsync_thread: threading.Thread | None = None
        # Other ledgers appended during group commit; every batch fsyncs them all (a
        # path taken off a to-do set by one batch would let sync() return before that
        # batch's fsync ended).
        self._also_fsync: set[Path] = set()

    def subscribe(self, sink: Sink) -> None:
        self.sinks.append(sink)

    def emit(self, event: EventBase) -> None:
        with self._lock:
            event.seq = next(self._seq)
            if self.path is not None:
                later = event.durable and self.background_fsync
                append_jsonl(
                    self.path, event.model_dump(mode="json"), durable=event.durable and not later
                )
                if later:
                    self._request_fsync()
        for sink in list(self.sinks):
            sink(event)  # type: ignore[arg-type]

    def append_durable(self, path: Path, record: dict[str, Any]) -> None:
        """Append ``record`` to another JSONL ledger of the run (the costs) as durably as
        an event: fsynced before returning, or — during group commit — written and
        flushed now (a killed process loses nothing) and fsynced with the next batch, so
        the event loop does not wait on the disk once per agent call."""
        later = self.background_fsync
        append_jsonl(path, record, durable=not later)
        if later:
            with self._lock:
                self._also_fsync.add(path)
            self._request_fsync()

    def _request_fsync(self) -> None:
        self._fsync_wanted.set()
        if self._fsync_thread is None or not self._fsync_thread.is_alive():
            self._fsync_thread = threading.Thread(
                target=self._fsync_loop, name="events-fsync", daemon=True
            )
            self._fsync_thread.start()

    def _fsync_loop(self) -> None:
        while self._fsync_wanted.wait(timeout=5.0):
            self._fsync_wanted.clear()
            self._fsync_now()

    def _fsync_now(self) -> None:
        with self._lock:
            also = sorted(self._also_fsync)
        for path in (self.path, *also):
            if path is None or not path.exists():
                continue
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def sync(self) -> None:
        """Make every event emitted so far durable (ends a group-commit stretch)."""
        self._fsync_wanted.clear()
        self._fsync_now()


def _last_seq(path: Path | None) -> int:
    """Continue numbering after what an earlier process wrote, so readers can resume."""
    if path is None or not path.exists():
        return 0
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 65536))
        tail = fh.read().splitlines()
    import json

    for line in reversed(tail):
        try:
            return int(json.loads(line).get("seq", 0))
        except (ValueError, AttributeError, TypeError):  # not JSON, not an object, no number
            continue
    return 0
