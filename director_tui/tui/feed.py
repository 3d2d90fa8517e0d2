"""How engine events reach the UI: a thread-safe buffer and an incremental file reader.

Neither imports Textual. The engine's bus (in-process) or the file reader (attached to
a headless run) pushes events into :class:`EventBuffer`; the app drains it on a timer,
so the UI never receives one message per engine event.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from director_tui.engine.events import Event, EventBase, parse_event


class EventBuffer:
    """Events waiting to be applied; producers may be any thread, the consumer is the UI."""

    def __init__(self) -> None:
        self._items: deque[Event] = deque()
        self._lock = threading.Lock()
        self.received = 0

    def push(self, event: EventBase) -> None:
        with self._lock:
            self._items.append(event)  # type: ignore[arg-type]
            self.received += 1

    def extend(self, events: list[Event]) -> None:
        with self._lock:
            self._items.extend(events)
            self.received += len(events)

    def drain(self) -> list[Event]:
        with self._lock:
            items = list(self._items)
            self._items.clear()
        return items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


@dataclass
class TailResult:
    events: list[Event]
    reset: bool  # the file was replaced or truncated: the reader started again from 0


class EventTail:
    """Reads only the bytes appended to ``events.jsonl`` since the last call.

    A torn last line (the writer is mid-append) stays unread until its newline arrives.
    When the file shrinks or is replaced (a new job archived the old one), reading starts
    over and the caller is told to rebuild its state from scratch.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._inode: int | None = None

    def read_new(self) -> TailResult:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            reset = self.offset > 0
            self.offset, self._inode = 0, None
            return TailResult([], reset)
        reset = False
        if (self._inode is not None and stat.st_ino != self._inode) or stat.st_size < self.offset:
            self.offset = 0
            reset = True
        self._inode = stat.st_ino
        if stat.st_size == self.offset:
            return TailResult([], reset)
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read(stat.st_size - self.offset)
        end = chunk.rfind(b"\n")
        if end < 0:
            return TailResult([], reset)
        self.offset += end + 1
        events: list[Event] = []
        for raw in chunk[: end + 1].splitlines():
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                event = parse_event(record)
                if event is not None:
                    events.append(event)
        return TailResult(events, reset)

    def skip_to_end(self) -> None:
        """Mark everything in the file as read (another path already delivered it)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self.offset, self._inode = 0, None
            return
        self.offset, self._inode = stat.st_size, stat.st_ino
