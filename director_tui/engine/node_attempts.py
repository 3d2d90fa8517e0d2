"""A node's attempts, each with what happened in it: the agent calls (executor,
escalation, reviewer, with their transcripts), the gate's verdict, the review.

Read from ``events.jsonl`` alone (the run's record; ``state.json`` keeps only the latest
attempt), so the CLI, the app in-process and the app attached to a headless run list the
same attempts. An attempt is numbered as the run numbered it; a retry that starts the
count again opens a new attempt with the same number.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from director_tui.engine.config import split_tier
from director_tui.engine.events import (
    AgentFinished,
    AgentStarted,
    ControlApplied,
    Event,
    GateResult,
    NodeMerged,
    NodeStateChanged,
    ReviewResult,
    parse_event,
)
from director_tui.engine.store import Store
from director_tui.engine.transcript import Transcript, read_transcript

# A node's states while an attempt is under way: not how it ended.
IN_FLIGHT = frozenset({"running", "gating", "reviewing", "merging"})


class CallStep(BaseModel):
    kind: Literal["call"] = "call"
    call_id: str
    role: str
    tier: str
    at: float = 0.0
    finished: bool = False
    exit_reason: str = ""  # ok, timeout, idle, crashed…; "" while it runs
    message: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    priced: bool = True
    duration_secs: float = 0.0

    @property
    def provider(self) -> str:
        return split_tier(self.tier)[0] if "/" in self.tier else ""

    def label(self) -> str:
        model = self.tier.rsplit("/", 1)[-1]
        how = self.exit_reason or "running"
        return f"{self.role} · {model} · {how}"


class GateStep(BaseModel):
    kind: Literal["gate"] = "gate"
    at: float = 0.0
    passed: bool
    check: str
    message: str = ""
    output_tail: str = ""

    def label(self) -> str:
        name = "tests" if self.check == "passed" else self.check
        return f"gate · {name} {'passed' if self.passed else 'FAILED'}"


class ReviewStep(BaseModel):
    kind: Literal["review"] = "review"
    at: float = 0.0
    stage: str
    verdict: str
    blocking: bool = False
    summary: str = ""
    findings: list[dict[str, str]] = Field(default_factory=list)

    def label(self) -> str:
        return f"review {self.stage} · {self.verdict}" + (" (blocking)" if self.blocking else "")


Step = Annotated[CallStep | GateStep | ReviewStep, Field(discriminator="kind")]


class Attempt(BaseModel):
    number: int
    tier: str = ""
    escalated: bool = False  # the escalation attempt (at the escalation tier)
    steps: list[Step] = Field(default_factory=list)
    outcome: str = ""  # the node's last state in this attempt, in the run's words
    merged: str = ""  # the merge commit, when this attempt's work merged

    def label(self) -> str:
        kind = "escalation" if self.escalated else "attempt"
        model = self.tier.rsplit("/", 1)[-1] if self.tier else ""
        return f"{kind} {self.number}" + (f" · {model}" if model else "")

    def calls(self) -> list[CallStep]:
        return [step for step in self.steps if isinstance(step, CallStep)]


class NodeAttempts(BaseModel):
    node_id: str
    attempts: list[Attempt] = Field(default_factory=list)

    def attempt(self, number: int) -> list[Attempt]:
        """The attempts numbered ``number`` (more than one after a retry)."""
        return [a for a in self.attempts if a.number == number]


def node_attempts(store: Store, node_id: str) -> NodeAttempts:
    """Every attempt of ``node_id`` in the current job's ``events.jsonl``, oldest first."""
    return attempts_from_events(node_id, list(node_events(store.events, node_id)))


# The events a run writes most of (each tool call, each test output line) say nothing
# about attempts: their lines are skipped unparsed (a 60-node run writes ~100k of them).
_NOISE = ('"type":"agent_activity"', '"type":"test_output"')


def node_events(path: Path, node_id: str) -> Iterator[Event]:
    """The events of ``events.jsonl`` that name ``node_id``; other lines are not parsed."""
    needle = json.dumps(node_id)
    try:
        fh = path.open(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    with fh:
        for line in fh:
            if needle not in line or any(noise in line for noise in _NOISE):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a torn last line (killed mid-append)
            event = parse_event(record) if isinstance(record, dict) else None
            if event is not None:
                yield event


def attempts_from_events(node_id: str, events: list[Event]) -> NodeAttempts:
    history = _History(node_id)
    for event in events:
        history.apply(event)
    return NodeAttempts(node_id=node_id, attempts=history.attempts)


def call_transcript(store: Store, step: CallStep) -> Transcript:
    """The call's transcript, read with its provider's parser."""
    return read_transcript(transcript_path(store.logs, step.call_id), step.provider)


def transcript_path(logs: Path, call_id: str) -> Path:
    return logs / f"{call_id}.jsonl"


class _History:
    """Events folded into attempts, one node's."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.attempts: list[Attempt] = []
        self.closed = True  # the next attempt-numbered event opens a new attempt
        self.calls: dict[str, CallStep] = {}

    def current(self, number: int) -> Attempt:
        last = self.attempts[-1] if self.attempts else None
        if last is None or self.closed or (number and number != last.number):
            last = Attempt(number=number or (last.number + 1 if last else 1))
            self.attempts.append(last)
            self.closed = False
        return last

    def apply(self, event: Event) -> None:
        if getattr(event, "node_id", None) != self.node_id:
            return
        match event:
            case NodeStateChanged():
                self._state(event)
            case AgentStarted():
                step = CallStep(
                    call_id=event.call_id, role=event.role, tier=event.tier, at=event.ts
                )
                self.calls[event.call_id] = step
                attempt = self.current(event.attempt)
                attempt.tier = attempt.tier or event.tier
                attempt.steps.append(step)
            case AgentFinished():
                self._finished(event)
            case GateResult():
                self.current(event.attempt).steps.append(
                    GateStep(
                        at=event.ts,
                        passed=event.passed,
                        check=event.check,
                        message=event.message,
                        output_tail=event.output_tail,
                    )
                )
            case ReviewResult():
                self.current(0 if not self.attempts else self.attempts[-1].number).steps.append(
                    ReviewStep(
                        at=event.ts,
                        stage=event.stage,
                        verdict=event.verdict,
                        blocking=event.blocking,
                        summary=event.summary,
                        findings=event.findings,
                    )
                )
            case NodeMerged() if self.attempts:
                self.attempts[-1].merged = event.commit
            case ControlApplied() if event.ok and event.action == "retry":
                self.closed = True  # fresh attempts: the count may start again
            case _:
                pass

    def _state(self, event: NodeStateChanged) -> None:
        if event.status == "pending" or not event.attempt:
            return
        if event.status == "running" and self.attempts and not self.closed:
            last = self.attempts[-1]
            if event.attempt != last.number:
                self.closed = True
        attempt = self.current(event.attempt)
        attempt.tier = event.tier or attempt.tier
        # "escalated" stays on the node's later states; the attempt it started on is the one
        attempt.escalated = attempt.escalated or (event.escalated and event.status == "running")
        if event.status not in IN_FLIGHT:
            attempt.outcome = event.message or event.status

    def _finished(self, event: AgentFinished) -> None:
        step = self.calls.get(event.call_id)
        if step is None:
            return
        step.finished = True
        step.exit_reason = event.exit_reason
        step.message = event.message
        step.input_tokens = event.input_tokens
        step.output_tokens = event.output_tokens
        step.cost_usd = event.cost_usd
        step.priced = event.priced
        step.duration_secs = event.duration_secs
