"""Bench progress: one run's engine events turned into ``BenchProgress`` on the bench's bus."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from director_tui.engine.events import (
    BenchProgress,
    CostUpdate,
    EventBase,
    EventBus,
    NodeStateChanged,
    PlanStageChanged,
)

ProgressSink = Callable[[EventBase], None]


_FINISHED_NODE = frozenset({"done", "failed", "blocked", "skipped", "cancelled"})


class ProgressRelay:
    """Turns one run's engine events into ``BenchProgress`` on the bench's bus."""

    def __init__(self, bus: EventBus, bench_id: str, profile: str, repeat: int, total: int) -> None:
        self.bus, self.bench_id, self.profile, self.repeat = bus, bench_id, profile, repeat
        self.total = total
        self.finished: dict[str, str] = {}
        self.cost = 0.0

    def emit(self, phase: Any, message: str = "") -> None:
        self.bus.emit(
            BenchProgress(
                bench_id=self.bench_id,
                profile=self.profile,
                repeat=self.repeat,
                phase=phase,
                message=message,
                done=sum(1 for s in self.finished.values() if s == "done"),
                total=self.total,
                cost_usd=round(self.cost, 6),
            )
        )

    def __call__(self, event: EventBase) -> None:
        if isinstance(event, CostUpdate):
            self.cost = event.total_usd
        elif isinstance(event, NodeStateChanged):
            if event.status in _FINISHED_NODE:
                self.finished[event.node_id] = event.status
                self.emit("node", f"{event.node_id} {event.status}")
            else:
                self.finished.pop(event.node_id, None)
        elif isinstance(event, PlanStageChanged):
            self.emit("plan", f"{event.stage}: {event.message}".strip(": "))
