"""A stand-in for a headless ``director run`` in another process, for the attach tests.

It holds the repository's run lock, appends real events through the engine's EventBus,
and answers control requests sent to its control socket the way the engine does (a
``ControlApplied`` event with the same request id). It stops when ``<repo>/stop-stub``
appears or after ``seconds``.

    python -m tests.tui.headless_stub <repo> <seconds>
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from director_tui.engine.control_channel import ControlServer, take_deliveries
from director_tui.engine.events import AgentActivity, ControlApplied, EventBus, NodeStateChanged
from director_tui.engine.store import Store


def main(repo: Path, seconds: float) -> int:
    store = Store(repo)
    with store.run_lock("run"):
        asyncio.run(_live(store, seconds))
    return 0


async def _live(store: Store, seconds: float) -> None:
    repo = store.repo
    bus = EventBus(store.events)
    async with ControlServer(store, lambda pid: ("", None)):
        (repo / "stub-ready").write_text("1")
        bus.emit(NodeStateChanged(node_id="cli", status="running", attempt=1, max_attempts=2))
        deadline = time.monotonic() + seconds
        tick = 0
        while time.monotonic() < deadline and not (repo / "stop-stub").exists():
            for request in take_deliveries(store):
                bus.emit(
                    ControlApplied(
                        action=request.action,
                        node_id=request.node_id,
                        ok=True,
                        message="applied by the stub",
                        request_id=request.request_id,
                    )
                )
            tick += 1
            bus.emit(
                AgentActivity(
                    call_id="stub-call",
                    role="executor",
                    node_id="cli",
                    kind="tool",
                    tool="bash",
                    summary=f"step {tick}",
                )
            )
            await asyncio.sleep(0.1)
        bus.emit(NodeStateChanged(node_id="cli", status="done", attempt=1, max_attempts=2))


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), float(sys.argv[2])))
