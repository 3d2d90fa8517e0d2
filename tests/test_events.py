"""The event bus: every event on disk and in sinks, numbered, readable back."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from director_tui.engine.events import (
    AgentActivity,
    EventBus,
    NodeStateChanged,
    Notice,
    parse_event,
)
from director_tui.engine.store import read_jsonl


def test_events_reach_file_and_sinks_in_order(tmp_path: Path) -> None:
    seen: list[object] = []
    bus = EventBus(tmp_path / "events.jsonl", [seen.append])
    bus.emit(Notice(message="hello"))
    bus.emit(NodeStateChanged(node_id="a", status="running", attempt=1))
    bus.emit(
        AgentActivity(call_id="c1", role="executor", kind="tool", tool="bash", summary="pytest")
    )
    records = read_jsonl(tmp_path / "events.jsonl")
    assert [r["type"] for r in records] == ["notice", "node_state", "agent_activity"]
    assert [r["seq"] for r in records] == [1, 2, 3]
    parsed = [parse_event(r) for r in records]
    assert isinstance(parsed[1], NodeStateChanged) and parsed[1].node_id == "a"
    assert isinstance(parsed[2], AgentActivity) and parsed[2].tool == "bash"
    assert seen == parsed


def test_a_new_bus_continues_numbering_after_an_earlier_process(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    EventBus(path).emit(Notice(message="one"))
    EventBus(path).emit(Notice(message="two"))
    assert [r["seq"] for r in read_jsonl(path)] == [1, 2]


def test_garbage_at_the_end_of_the_file_does_not_stop_a_new_bus(tmp_path: Path) -> None:
    """Regression: a last line with a non-numeric seq raised TypeError in every command."""
    path = tmp_path / "events.jsonl"
    EventBus(path).emit(Notice(message="one"))
    with path.open("a") as fh:
        fh.write('{"seq": null}\n[1, 2]\n"text"\nnot json\n')
    bus = EventBus(path)
    bus.emit(Notice(message="two"))
    assert [r["seq"] for r in read_jsonl(path) if "message" in r] == [1, 2]


def test_unknown_records_are_skipped_not_fatal() -> None:
    assert parse_event({"type": "from-the-future", "x": 1}) is None
    assert parse_event({"type": "notice"}) is None  # missing message


def test_concurrent_emitters_lose_nothing(tmp_path: Path) -> None:
    bus = EventBus(tmp_path / "events.jsonl")

    def spam(worker: int) -> None:
        for i in range(200):
            bus.emit(
                AgentActivity(call_id=f"w{worker}", role="executor", kind="text", summary=str(i))
            )

    threads = [threading.Thread(target=spam, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = read_jsonl(tmp_path / "events.jsonl")
    assert len(records) == 800
    assert sorted(r["seq"] for r in records) == list(range(1, 801))


def test_a_ledger_appended_during_group_commit_is_written_at_once_and_fsynced_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cost ledger follows the events' durability: fsynced before append_durable
    returns outside group commit; during it, on disk for any reader at once (a killed
    process loses nothing) and fsynced off the caller's thread, at the latest by sync()."""
    synced: list[tuple[int, str]] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append((os.fstat(fd).st_ino, threading.current_thread().name))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    ledger = tmp_path / "costs.jsonl"
    bus = EventBus(tmp_path / "events.jsonl")
    bus.append_durable(ledger, {"n": 1})
    assert synced == [(ledger.stat().st_ino, threading.current_thread().name)]
    synced.clear()
    bus.background_fsync = True
    bus.append_durable(ledger, {"n": 2})
    assert [r["n"] for r in read_jsonl(ledger)] == [1, 2]
    assert threading.current_thread().name not in {name for _, name in synced}
    bus.sync()
    assert ledger.stat().st_ino in {ino for ino, _ in synced}
