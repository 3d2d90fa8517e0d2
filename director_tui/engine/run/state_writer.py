"""state.json's writer: one thread, the newest snapshot wins, the loop never waits."""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from director_tui.engine.models import RunState
from director_tui.engine.store import atomic_write_text


class StateWriter:
    """Writes a run's ``RunState`` to ``path`` after each transition."""

    def __init__(self, path: Path, state: RunState) -> None:
        self.path = path
        self.state = state
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state")
        self._io = threading.Lock()
        self._version = 0
        self._written = 0
        self._latest: tuple[int, str] = (0, "")
        self._durable = False
        self._node_json: dict[str, str] = {}

    def _snapshot(self, node_id: str | None) -> str:
        """state.json's text. Each node's JSON is cached and re-made only when that node
        changed (``node_id``; None re-makes all): with hundreds of nodes, dumping the
        whole state on every transition would cost the loop milliseconds each time."""
        if node_id is None:
            self._node_json.clear()
        else:
            self._node_json.pop(node_id, None)
        parts = []
        for nid, st in self.state.nodes.items():
            text = self._node_json.get(nid)
            if text is None:
                text = self._node_json[nid] = st.model_dump_json()
            parts.append(f"{json.dumps(nid)}: {text}")
        head = self.state.model_dump_json(exclude={"nodes"})
        return head[:-1] + ', "nodes": {' + ",\n".join(parts) + "}}\n"

    def save(self, *, durable: bool = False, node_id: str | None = None) -> None:
        """Rewrite state.json after a transition, off the event loop.

        The snapshot is taken here (so it is exactly this transition's state) and handed
        to the one writer thread, which writes the newest snapshot it has: temp file +
        rename, so a kill -9 leaves the old or the new file, never a torn one. ``durable``
        writes (outcomes) are also fsynced. The loop never waits on the disk."""
        self._version += 1
        self._latest = (self._version, self._snapshot(node_id))
        self._durable = self._durable or durable
        self._pool.submit(self._write)

    def _write(self) -> None:
        with self._io:
            version, text = self._latest
            if version <= self._written:
                return  # a newer write already covered this one
            durable, self._durable = self._durable, False
            if durable:
                atomic_write_text(self.path, text)
            else:
                tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
                tmp.write_text(text, encoding="utf-8")
                os.replace(tmp, self.path)
            self._written = version

    def flush(self) -> None:
        """Wait until state.json holds the newest snapshot (used at the end of a run)."""
        self._pool.submit(self._write).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
