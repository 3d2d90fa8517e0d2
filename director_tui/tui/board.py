"""The run board's state, rebuilt from events alone (no Textual here).

Any view — this app in-process, this app attached to a headless run, a re-attach after a
disconnect — gets the same board by replaying ``events.jsonl`` through :meth:`apply`.
Rows remember which of them changed since the last repaint, so the table updates only
those cells.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from director_tui.engine.cost import cost_text
from director_tui.engine.events import (
    INTEGRATION_OUTPUT,
    AgentActivity,
    AgentFinished,
    AgentStarted,
    ClusterStatus,
    ControlApplied,
    CostUpdate,
    Event,
    GateResult,
    IntegrationResult,
    NodeMerged,
    NodeStateChanged,
    NodeTestsProgress,
    Notice,
    PlanStageChanged,
    ReviewResult,
    RunFinished,
    RunStarted,
    TestOutput,
)
from director_tui.engine.models import ACTIVE, FINISHED, NodeStatus, Plan, RunState

# Lines kept per node for the live pane; older ones drop off so memory stays flat.
PANE_LINES = 500
GLYPHS = {
    "pending": "·",
    "running": "▶",
    "gating": "◆",
    "reviewing": "◇",
    "merging": "⇢",
    "awaiting_review": "◈",
    "done": "✔",
    "failed": "✘",
    "blocked": "⊘",
    "skipped": "↷",
    "cancelled": "■",
}

# A status the board words for people: a node held for human review waits for *you*.
STATUS_WORDS = {"awaiting_review": "waiting for you"}


@dataclass
class NodeRow:
    node_id: str
    title: str = ""
    status: str = NodeStatus.pending.value
    tier: str = ""
    attempt: int = 0
    max_attempts: int = 0
    escalated: bool = False  # on (or finished after) the escalation attempt
    started_at: float | None = None
    finished_at: float | None = None
    tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0  # calls with no price: the cost is not "$0"
    last_event: str = ""
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=PANE_LINES))
    # lines appended since the pane last showed this node (the pane asks for them)
    new_lines: int = 0
    # the gate checks of the latest gated attempt, and the attempt before (its failure
    # is what the latest one was told to fix)
    gate_output: str = ""
    gate_attempt: int = 0
    gate_previous: str = ""
    review: str = ""
    calls: list[str] = field(default_factory=list)  # agent call ids: transcript file names
    changed: bool = True

    def elapsed(self, now: float) -> float:
        if self.started_at is None:
            return 0.0
        return (self.finished_at or now) - self.started_at

    def cells(self, now: float) -> tuple[str, ...]:
        """What the table shows, in column order (see ``COLUMNS``)."""
        if self.max_attempts and self.attempt > self.max_attempts:
            # every executor attempt used, then the escalation one ('3/2 ↑' read as a bug)
            attempt = f"{self.max_attempts}/{self.max_attempts}+↑"
        elif self.max_attempts and self.escalated:
            attempt = f"{self.attempt}/{self.max_attempts} ↑"  # escalated early (e)
        elif self.max_attempts:
            attempt = f"{self.attempt}/{self.max_attempts}"
        else:
            attempt = str(self.attempt)
        return (
            f"{GLYPHS.get(self.status, '?')} {STATUS_WORDS.get(self.status, self.status)}",
            self.tier.rsplit("/", 1)[-1] if self.tier else "",
            attempt,
            format_secs(self.elapsed(now)) if self.started_at else "",
            format_tokens(self.tokens),
            cost_text(self.cost_usd, self.unpriced_calls, digits=3),
            self.last_event,
        )


# Planning roles' calls are the plan pipeline's progress, not a node's run.
PLAN_ROLES = frozenset({"explorer", "brainstorm", "planner", "critic", "test_author"})
COLUMNS = ("node", "state", "tier", "try", "elapsed", "tokens", "cost", "last event")


def format_secs(secs: float) -> str:
    secs = int(secs)
    if secs < 3600:
        return f"{secs // 60}:{secs % 60:02d}"
    return f"{secs // 3600}h{(secs % 3600) // 60:02d}"


def format_tokens(tokens: int) -> str:
    if tokens >= 1_000_000:
        return f"{tokens / 1_000_000:.1f}M"
    if tokens >= 1_000:
        return f"{tokens / 1_000:.1f}k"
    return str(tokens)


@dataclass
class ControlOutcome:
    action: str
    node_id: str | None
    ok: bool
    message: str
    request_id: str

    def answered_request(self, pending: Mapping[str, tuple[str, str | None]]) -> str:
        """Which pending request this answers: its id, else the first for the same action
        and node (an answer without an id); '' when none."""
        if self.request_id in pending:
            return self.request_id
        return next(
            (rid for rid, request in pending.items() if request == (self.action, self.node_id)),
            "",
        )

    def note(self) -> str:
        target = f" {self.node_id}" if self.node_id else ""
        verdict = "applied" if self.ok else "refused"
        return f"{self.action}{target}: {verdict}" + (f" — {self.message}" if self.message else "")


def gate_words(check: str, passed: bool) -> str:
    """A gate's verdict in plain words. The engine names a node's passing gate "passed"
    and the test author's check "red", which read as "passed passed" and "red passed"."""
    if check == "red":
        return "tests fail before the work, as they should" if passed else "red check failed"
    name = "tests" if check == "passed" else check
    return f"{name} passed" if passed else f"{name} FAILED"


class BoardModel:
    """Rows keyed by node id, a header, and the outcome of control requests."""

    def __init__(self) -> None:
        self.rows: dict[str, NodeRow] = {}
        self.job_id = ""
        self.parallel = 0
        self.ceiling_usd = 0.0
        self.cost_usd = 0.0
        self.unpriced_calls = 0
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.outcome = ""
        self.outcome_message = ""
        self.paused = False
        self.scripted = False
        self.integration = ""
        self.integration_lines: deque[str] = deque(maxlen=PANE_LINES)
        self.last_seq = 0
        self.applied = 0
        self.notices: deque[tuple[str, str]] = deque(maxlen=200)
        self.controls: list[ControlOutcome] = []
        self.order_changed = False
        self.plan_progress = ""  # the plan pipeline's latest step, for the gate screens
        self.cluster = ""  # the Ray cluster the attempts run on, when they do
        self.tests_phase: dict[str, str] = {}  # node → where its tests are (tests stage)
        self._call_nodes: dict[str, str] = {}
        # Tokens and cost of the steps a running call finished, shown live until the
        # call's AgentFinished brings its final numbers.
        self._live_usage: dict[str, tuple[int, float]] = {}

    @classmethod
    def replayed(
        cls, plan: Plan | None, events: list[Event], state: RunState | None = None
    ) -> BoardModel:
        """A board rebuilt from the store: the plan's rows, then its events (state.json
        only when there are none). Notices and control answers replayed are not news."""
        board = cls()
        board.seed(plan)
        board.apply_all(events)
        if state is not None and not events:
            board.seed(None, state)
        board.notices.clear()
        board.controls.clear()
        return board

    # -- seeding ------------------------------------------------------------------------
    def seed(self, plan: Plan | None, state: RunState | None = None) -> None:
        """Rows for every planned node, with what state.json already knows."""
        if plan is not None:
            self.job_id = self.job_id or plan.job_id
            for node in plan.nodes:
                row = self._row(node.id)
                row.title = node.title
        if state is not None:
            self.paused = state.paused
            self.cost_usd = max(self.cost_usd, state.cost_usd)
            self.unpriced_calls = sum(
                u.unpriced_calls for st in state.nodes.values() for u in st.usage.values()
            )
            self.integration = state.integration
            for node_id, st in state.nodes.items():
                row = self._row(node_id)
                row.status = st.status.value
                row.tier = st.tier
                row.attempt = st.attempts
                row.escalated = st.escalated
                row.tokens = st.tokens
                row.cost_usd = st.cost_usd
                row.unpriced_calls = sum(u.unpriced_calls for u in st.usage.values())
                row.started_at = st.started_at
                row.finished_at = st.finished_at
                row.last_event = st.last_error[:80] if st.last_error else row.last_event
                row.changed = True

    def _row(self, node_id: str) -> NodeRow:
        row = self.rows.get(node_id)
        if row is None:
            row = self.rows[node_id] = NodeRow(node_id)
            self.order_changed = True
        return row

    # -- events -------------------------------------------------------------------------
    def apply_all(self, events: list[Event]) -> None:
        for event in events:
            self.apply(event)

    def apply(self, event: Event) -> None:
        # The same event can arrive twice (in-process sink, then the file): seq dedupes.
        if event.seq:
            if event.seq <= self.last_seq:
                return
            self.last_seq = event.seq
        self.applied += 1
        match event:
            case AgentActivity():
                self._activity(event)
            case TestOutput() if event.node_id == INTEGRATION_OUTPUT:
                self.integration_lines.append(event.line)
            case TestOutput():
                self._line(event.node_id, f"│ {event.line}")
            case NodeStateChanged():
                self._node_state(event)
            case AgentStarted():
                self._agent_started(event)
            case AgentFinished():
                self._agent_finished(event)
            case GateResult():
                self._gate(event)
            case ReviewResult():
                self._review(event)
            case NodeMerged():
                row = self._row(event.node_id)
                row.last_event = f"merged {event.commit[:8]}"
                row.changed = True
                self._line(event.node_id, f"⇢ merged {event.commit[:8]}")
            case CostUpdate():
                self.cost_usd = event.total_usd + sum(c for _t, c in self._live_usage.values())
                self.unpriced_calls = event.unpriced_calls
                self.ceiling_usd = event.ceiling_usd or self.ceiling_usd
            case RunStarted():
                self._run_started(event)
            case RunFinished():
                self.finished_at = event.ts
                self.outcome = event.outcome
                self.outcome_message = event.message
                self.cost_usd = event.cost_usd or self.cost_usd
            case IntegrationResult():
                self.integration = "passed" if event.passed else "failed"
                self.notices.append(
                    ("info" if event.passed else "error", f"integration {self.integration}")
                )
            case ControlApplied():
                self._control(event)
            case NodeTestsProgress():
                self._tests_progress(event)
            case ClusterStatus():
                self.cluster = (
                    f"ray {event.workers} nodes, {event.cpus:g} CPU, {event.in_flight} in flight"
                )
            case PlanStageChanged():
                self.plan_progress = f"{event.stage}" + (
                    f": {event.message}" if event.message else ""
                )
            case Notice():
                self.notices.append((event.level, event.message))
                if not event.node_id:
                    self.plan_progress = event.message
                if event.node_id:
                    self._line(event.node_id, f"! {event.message}")
            case _:
                pass

    def _tests_progress(self, event: NodeTestsProgress) -> None:
        attempt = f" {event.attempt}" if event.phase == "authoring" else ""
        self.tests_phase[event.node_id] = event.phase.replace("_", " ") + attempt
        counts: dict[str, int] = {}
        for phase in self.tests_phase.values():
            word = phase.split(" ")[0]
            counts[word] = counts.get(word, 0) + 1
        self.plan_progress = "tests: " + ", ".join(f"{n} {p}" for p, n in counts.items())

    def _agent_started(self, event: AgentStarted) -> None:
        if not event.node_id or event.role in PLAN_ROLES:
            where = f" on {event.node_id}" if event.node_id else ""
            self.plan_progress = f"{event.role} working{where} ({event.tier})"
            return
        self._call_nodes[event.call_id] = event.node_id
        row = self._row(event.node_id)
        row.tier = event.tier
        row.calls.append(event.call_id)
        on = f" @ {event.worker}" if event.worker else ""  # a cluster worker's name
        row.last_event = f"{event.role} started{on}"
        row.changed = True
        self._line(event.node_id, f"▶ {event.role} on {event.tier}{on}")

    def _agent_finished(self, event: AgentFinished) -> None:
        self._call_nodes.pop(event.call_id, None)
        live_tokens, live_cost = self._live_usage.pop(event.call_id, (0, 0.0))
        if not event.node_id or event.role in PLAN_ROLES:
            return
        row = self._row(event.node_id)
        # The final numbers replace what its steps showed while it ran.
        row.tokens += event.input_tokens + event.output_tokens - live_tokens
        row.cost_usd += event.cost_usd - live_cost
        self.cost_usd -= live_cost  # the CostUpdate that follows has the call in its total
        row.unpriced_calls += not event.priced
        row.last_event = f"{event.role} {event.exit_reason}"
        row.changed = True
        self._line(
            event.node_id,
            f"■ {event.role} {event.exit_reason} "
            f"({event.duration_secs:.1f}s, "
            f"{cost_text(event.cost_usd) if event.priced else 'unpriced'})",
        )

    def _gate(self, event: GateResult) -> None:
        row = self._row(event.node_id)
        said = gate_words(event.check, event.passed)
        row.last_event = said
        if event.attempt != row.gate_attempt:
            row.gate_previous = row.gate_output or row.gate_previous
            row.gate_output, row.gate_attempt = "", event.attempt
        line = f"attempt {event.attempt} · {said}"
        if not event.passed:
            line += f": {event.message}"
        row.gate_output += f"{line}\n{event.output_tail}".rstrip() + "\n"
        row.changed = True
        detail = f": {event.message}" if event.message else ""
        self._line(event.node_id, f"◆ {said}{detail}")

    def _review(self, event: ReviewResult) -> None:
        row = self._row(event.node_id)
        row.review = event.summary + "".join(
            f"\n- [{f.get('severity', '?')}] {f.get('file', '')} {f.get('summary', '')}"
            for f in event.findings
        )
        row.last_event = f"review {event.stage}: {event.verdict}"
        row.changed = True
        self._line(event.node_id, f"◇ review {event.stage}: {event.verdict}")

    def _run_started(self, event: RunStarted) -> None:
        self.job_id = event.job_id
        self.parallel = event.parallel
        self.ceiling_usd = event.ceiling_usd
        self.scripted = event.scripted
        self.started_at = event.ts
        self.finished_at = None
        self.outcome = ""
        for node_id in event.node_ids:
            self._row(node_id)

    def _control(self, event: ControlApplied) -> None:
        if event.action in ("pause", "resume") and event.ok:
            self.paused = event.action == "pause"
        self.controls.append(
            ControlOutcome(event.action, event.node_id, event.ok, event.message, event.request_id)
        )
        if event.node_id and event.ok:
            # A refusal changes nothing about the node: it is answered on screen as a
            # notification, and the row keeps what it last did ('merged …').
            row = self._row(event.node_id)
            row.last_event = f"{event.action} applied"
            row.changed = True

    def _node_state(self, event: NodeStateChanged) -> None:
        row = self._row(event.node_id)
        row.status = event.status
        row.escalated = event.escalated
        if event.attempt:
            row.attempt = event.attempt
        if event.max_attempts:
            row.max_attempts = event.max_attempts
        if event.tier:
            row.tier = event.tier
        if event.status == NodeStatus.running.value and (
            row.started_at is None or row.finished_at is not None
        ):
            row.started_at = event.ts
            row.finished_at = None
        if event.status in {s.value for s in FINISHED}:
            row.finished_at = event.ts
        row.last_event = event.message or event.status
        row.changed = True
        self._line(
            event.node_id, f"• {event.status}" + (f": {event.message}" if event.message else "")
        )

    def _activity(self, event: AgentActivity) -> None:
        if event.role in PLAN_ROLES:
            if event.kind == "tool":
                self.plan_progress = f"{event.role}: {event.tool} {event.summary}"[:120]
            return
        node_id = event.node_id or self._call_nodes.get(event.call_id)
        if not node_id:
            return
        row = self._row(node_id)
        if event.kind == "step" and event.status == "finish" and event.usage is not None:
            # A step the model finished: the row's tokens and cost (and the run's) move now.
            tokens = event.usage.input_tokens + event.usage.output_tokens
            before_tokens, before_cost = self._live_usage.get(event.call_id, (0, 0.0))
            self._live_usage[event.call_id] = (before_tokens + tokens, before_cost + event.cost_usd)
            row.tokens += tokens
            row.cost_usd += event.cost_usd
            self.cost_usd += event.cost_usd
            row.changed = True
        if event.kind == "tool":
            text = f"⚒ {event.tool} {event.summary}".rstrip()
        elif event.kind == "text":
            text = f"  {event.summary}"
        else:
            text = f"  [{event.kind}] {event.summary}"
        if event.tool or event.kind == "tool":
            row.last_event = f"{event.tool} {event.summary}"[:80]
            row.changed = True
        self._line(node_id, text)

    def _line(self, node_id: str, text: str) -> None:
        row = self._row(node_id)
        for part in text.splitlines() or [""]:
            row.lines.append(part)
            row.new_lines += 1

    # -- summaries ----------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for row in self.rows.values():
            out[row.status] = out.get(row.status, 0) + 1
        return out

    def active(self) -> int:
        return sum(1 for r in self.rows.values() if r.status in {s.value for s in ACTIVE})

    def header(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        counts = self.counts()
        total = len(self.rows)
        done = counts.get("done", 0)
        # Each named apart: a blocked node waits on another one and a skipped one was the
        # user's choice; counting them as "failed" sent people looking for a failure row.
        failed = counts.get("failed", 0)
        blocked = counts.get("blocked", 0)
        skipped = counts.get("skipped", 0)
        waiting = counts.get("awaiting_review", 0)
        wall = ""
        if self.started_at is not None:
            wall = format_secs((self.finished_at or now) - self.started_at)
        ceiling = f" / ${self.ceiling_usd:.2f}" if self.ceiling_usd else ""
        parts = [
            f"{done}/{total} done",
            f"{waiting} waiting for you" if waiting else "",
            f"{failed} failed" if failed else "",
            f"{blocked} blocked" if blocked else "",
            f"{skipped} skipped" if skipped else "",
            f"cost {cost_text(self.cost_usd, self.unpriced_calls, digits=3)}{ceiling}",
            f"wall {wall}" if wall else "",
            f"slots {self.active()}/{self.parallel}" if self.parallel else "",
            self.cluster,
            "PAUSED" if self.paused else "",
            f"run {self.outcome}" if self.outcome else "",
            f"integration {self.integration}" if self.integration not in ("", "pending") else "",
        ]
        return " · ".join(p for p in parts if p)
