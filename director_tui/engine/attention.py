"""When the job needs the human — or is finished — from the engine's events alone.

``AttentionTracker`` reads the event stream (live, or ``events.jsonl`` replayed) and
says, once per occasion, that a gate waits for approval, a node waits for the human's
review, a node failed for good, the cost ceiling stopped the run, or the run ended.
Each occasion stays *open* until an event shows the human acted (the gate was approved,
the node retried, a new run started), so a repeated event does not ring twice and a view
can show what is still waiting. Ringing is the views' (the terminal escapes built here);
running the user's ``[notify] command`` is ``engine/notify.py``'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from director_tui.engine.events import (
    AgentStarted,
    EventBase,
    NodeAwaitingReview,
    NodeMerged,
    NodeStateChanged,
    PlanStageChanged,
    RunFinished,
    RunStarted,
)
from director_tui.engine.models import NodeStatus

AttentionKind = Literal[
    "gate_reached", "review_waiting", "node_failed", "ceiling_stopped", "job_finished"
]
# needs_you: the job waits for the human; finished: it is done, nothing waits.
AttentionLevel = Literal["needs_you", "finished"]

GATE_NAMES = {"gate1": "Gate 1", "gate2": "Gate 2"}
# A node held for the human's review before it merges (``[review] human``): told by its
# ``NodeAwaitingReview`` event or by the node state (whichever comes first; once per hold).
REVIEW_STATUS = NodeStatus.awaiting_review.value


@dataclass(frozen=True)
class Attention:
    """One occasion the human is told of."""

    kind: AttentionKind
    level: AttentionLevel
    job_id: str
    message: str  # a sentence: what happened and what to do
    headline: str  # a few words for a header: "Gate 1 needs you"
    node_id: str = ""
    gate: str = ""  # "gate1" or "gate2" for gate_reached
    seq: int = 0  # the event's number in events.jsonl
    ts: float = 0.0

    @property
    def key(self) -> str:
        """What makes two occasions the same one (so it is told once while open)."""
        return f"{self.kind}:{self.node_id}:{self.gate}"

    @property
    def title(self) -> str:
        return "director: needs you" if self.level == "needs_you" else "director: finished"

    def as_json(self) -> dict[str, object]:
        return {
            "event": self.kind,
            "level": self.level,
            "job": self.job_id,
            "node": self.node_id,
            "gate": self.gate,
            "title": self.title,
            "message": self.message,
            "headline": self.headline,
            "seq": self.seq,
            "ts": self.ts,
        }

    def env(self) -> dict[str, str]:
        """The same, as environment variables for a notify command."""
        return {
            "DIRECTOR_EVENT": self.kind,
            "DIRECTOR_LEVEL": self.level,
            "DIRECTOR_JOB": self.job_id,
            "DIRECTOR_NODE": self.node_id,
            "DIRECTOR_GATE": self.gate,
            "DIRECTOR_TITLE": self.title,
            "DIRECTOR_MESSAGE": self.message,
        }


@dataclass
class AttentionTracker:
    """Events in, new occasions out; what is still open for a header."""

    job_id: str = ""
    open: dict[str, Attention] = field(default_factory=dict)

    @classmethod
    def replayed(cls, events: Iterable[EventBase]) -> AttentionTracker:
        """A tracker that has read ``events`` (history: nothing is told of them)."""
        tracker = cls()
        for event in events:
            tracker.see(event)
        return tracker

    def see(self, event: EventBase) -> Attention | None:
        """The occasion ``event`` starts, if it starts one not already open."""
        self._close_what(event)
        item = self._occasion(event)
        if item is None or item.key in self.open:
            return None
        self.open[item.key] = item
        return item

    def headline(self) -> Attention | None:
        """What a header shows: the newest occasion that needs the human, else the newest."""
        waiting = [item for item in self.open.values() if item.level == "needs_you"]
        items = waiting or list(self.open.values())
        return max(items, key=lambda item: item.seq) if items else None

    def needs_you(self) -> int:
        return sum(1 for item in self.open.values() if item.level == "needs_you")

    # -- what starts an occasion ----------------------------------------------------------
    def _occasion(self, event: EventBase) -> Attention | None:
        if isinstance(event, PlanStageChanged | RunStarted):
            self.job_id = event.job_id
        if isinstance(event, PlanStageChanged):
            gate = GATE_NAMES.get(event.stage)
            if gate is None or event.auto:
                return None
            what = "the spec" if event.stage == "gate1" else "the plan and its red tests"
            return self._item(
                event,
                "gate_reached",
                f"{gate} waits for you: review {what}, then approve or reject",
                f"{gate} needs you",
                gate=event.stage,
            )
        node_id = str(getattr(event, "node_id", "") or "")
        if isinstance(event, NodeAwaitingReview) or (
            isinstance(event, NodeStateChanged) and event.status == REVIEW_STATUS
        ):
            return self._item(
                event,
                "review_waiting",
                f"node {node_id} passed its gates and waits for your review: "
                "accept, reject or retry it with comments",
                f"review {node_id}",
                node_id=node_id,
            )
        if isinstance(event, NodeStateChanged) and event.status == "failed":
            why = f": {event.message}" if event.message else ""
            return self._item(
                event,
                "node_failed",
                f"node {node_id} failed{why} — `director retry {node_id}` runs it again",
                f"{node_id} failed",
                node_id=node_id,
            )
        if isinstance(event, RunFinished):
            return self._run_end(event)
        return None

    def _run_end(self, event: RunFinished) -> Attention | None:
        job = event.job_id or self.job_id
        if event.outcome == "stopped":
            return self._item(
                event, "ceiling_stopped", f"the run stopped: {event.message}", "cost ceiling hit"
            )
        if event.outcome == "success":
            return self._item(
                event,
                "job_finished",
                f"job {job} finished: {event.message}",
                "job finished",
                level="finished",
            )
        if event.outcome == "failed":
            return self._item(
                event,
                "job_finished",
                f"job {job} ended with work not merged: {event.message}",
                "run ended, not all merged",
            )
        return None  # cancelled: the human did it

    def _item(
        self,
        event: EventBase,
        kind: AttentionKind,
        message: str,
        headline: str,
        *,
        node_id: str = "",
        gate: str = "",
        level: AttentionLevel = "needs_you",
    ) -> Attention:
        return Attention(
            kind=kind,
            level=level,
            job_id=str(getattr(event, "job_id", "") or self.job_id),
            message=message,
            headline=headline,
            node_id=node_id,
            gate=gate,
            seq=event.seq,
            ts=event.ts,
        )

    # -- what closes one: the human acted, or the work moved on ----------------------------
    def _close_what(self, event: EventBase) -> None:
        if isinstance(event, PlanStageChanged):
            if event.job_id != self.job_id:
                self.open.clear()  # a new job
            else:  # the gate was approved, or the job moved on to the other one
                self._close("gate_reached", unless_gate=event.stage)
        elif isinstance(event, AgentStarted) and event.node_id is None:
            self._close("gate_reached")  # an agent rewrites or critiques at the gate
        elif isinstance(event, RunStarted):
            self._close("gate_reached", "ceiling_stopped", "job_finished")
        elif isinstance(event, NodeStateChanged):
            if event.status != "failed":
                self._close("node_failed", node_id=event.node_id)
            if event.status != REVIEW_STATUS:
                self._close("review_waiting", node_id=event.node_id)
        elif isinstance(event, NodeMerged):
            self._close("review_waiting", node_id=event.node_id)

    def _close(self, *kinds: str, node_id: str | None = None, unless_gate: str = "") -> None:
        for key, item in list(self.open.items()):
            if item.kind not in kinds or (node_id is not None and item.node_id != node_id):
                continue
            if unless_gate and item.gate == unless_gate:
                continue
            del self.open[key]


# -- the terminal's side: a bell and a desktop notification ------------------------------
BEL = "\a"
ESC = "\x1b"


def _clean(text: str) -> str:
    """No control characters (they would end or break the escape) and no ';' in a field."""
    return "".join(ch if ch.isprintable() else " " for ch in text).replace(";", ",")


def terminal_alert(item: Attention, *, bell: bool, desktop: str, in_tmux: bool) -> str:
    """The bytes that ring the terminal for ``item``: BEL, then the desktop notification
    escapes (OSC 9 ``message``; OSC 777 ``notify;title;body``). Inside tmux the OSCs go
    through its passthrough (``allow-passthrough on``), which hands them to the outer
    terminal; without it tmux drops them silently. The BEL needs no passthrough: tmux
    marks the window's bell flag and passes the bell on itself."""
    parts = [BEL] if bell else []
    body = _clean(item.message)
    oscs = []
    if desktop in ("both", "osc9"):
        # "director: …" also keeps ConEmu from reading a leading number as its sub-command.
        oscs.append(f"{ESC}]9;{_clean(item.title)}: {body}{BEL}")
    if desktop in ("both", "osc777"):
        oscs.append(f"{ESC}]777;notify;{_clean(item.title)};{body}{BEL}")
    for osc in oscs:
        parts.append(_tmux_passthrough(osc) if in_tmux else osc)
    return "".join(parts)


def _tmux_passthrough(sequence: str) -> str:
    return f"{ESC}Ptmux;{sequence.replace(ESC, ESC + ESC)}{ESC}\\"
