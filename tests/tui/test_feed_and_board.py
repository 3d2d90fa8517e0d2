"""The pieces under the run board, without Textual: the incremental events.jsonl reader,
the board model rebuilt from events, and the DAG layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

from director_tui.engine import events as events_module  # TestOutput: not a test class
from director_tui.engine.events import (
    AgentActivity,
    AgentFinished,
    AgentStarted,
    ClusterStatus,
    ControlApplied,
    EventBus,
    GateResult,
    NodeStateChanged,
)
from director_tui.engine.models import Node, Plan
from director_tui.tui.board import PANE_LINES, BoardModel
from director_tui.tui.feed import EventBuffer, EventTail


def test_tail_reads_only_appended_bytes_and_waits_for_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    bus = EventBus(path)
    tail = EventTail(path)
    assert tail.read_new().events == []  # no file yet
    bus.emit(NodeStateChanged(node_id="a", status="running"))
    first = tail.read_new()
    assert [e.seq for e in first.events] == [1] and not first.reset
    assert tail.read_new().events == []  # nothing new
    record = NodeStateChanged(node_id="a", status="done", seq=2).model_dump(mode="json")
    line = json.dumps(record)
    with path.open("a") as fh:  # a writer caught mid-append
        fh.write(line[:10])
    assert tail.read_new().events == []
    with path.open("a") as fh:
        fh.write(line[10:] + "\n")
    assert [e.seq for e in tail.read_new().events] == [2]


def test_tail_starts_over_when_the_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    EventBus(path).emit(NodeStateChanged(node_id="a", status="running"))
    tail = EventTail(path)
    assert len(tail.read_new().events) == 1
    os.replace(path, tmp_path / "archived.jsonl")  # a new job archived the old one
    EventBus(path).emit(NodeStateChanged(node_id="b", status="running"))
    result = tail.read_new()
    assert result.reset
    assert [e.node_id for e in result.events] == ["b"]  # type: ignore[union-attr]


def test_buffer_is_drained_in_order() -> None:
    buffer = EventBuffer()
    for i in range(5):
        buffer.push(NodeStateChanged(node_id=f"n{i}", status="running", seq=i + 1))
    assert len(buffer) == 5
    assert [e.seq for e in buffer.drain()] == [1, 2, 3, 4, 5]
    assert buffer.drain() == [] and buffer.received == 5


def test_board_applies_events_once_and_bounds_the_pane() -> None:
    board = BoardModel()
    board.seed(Plan(nodes=[Node(id="a"), Node(id="b")]))
    events = [
        NodeStateChanged(node_id="a", status="running", attempt=1, max_attempts=3, seq=1, ts=100),
        AgentStarted(call_id="c1", role="executor", tier="p/cheap", node_id="a", seq=2),
        AgentFinished(
            call_id="c1",
            role="executor",
            tier="p/cheap",
            node_id="a",
            exit_reason="ok",
            input_tokens=10,
            output_tokens=5,
            cost_usd=0.5,
            seq=3,
        ),
        # a planning call for node b is the pipeline's progress, not b's run
        AgentStarted(call_id="t1", role="test_author", tier="p/big", node_id="b", seq=4),
        AgentFinished(
            call_id="t1",
            role="test_author",
            tier="p/big",
            node_id="b",
            exit_reason="ok",
            cost_usd=2.0,
            seq=5,
        ),
        NodeStateChanged(node_id="a", status="done", attempt=1, seq=6, ts=130),
    ]
    board.apply_all(events)
    board.apply_all(events)  # delivered twice (bus, then file): applied once
    row = board.rows["a"]
    assert (row.status, row.attempt, row.max_attempts, row.tokens) == ("done", 1, 3, 15)
    assert row.cost_usd == 0.5 and board.rows["b"].cost_usd == 0.0
    assert row.elapsed(now=999) == 30
    assert board.applied == 6
    for i in range(PANE_LINES + 100):
        board.apply(events_module.TestOutput(node_id="a", line=f"line {i}", seq=100 + i))
    assert len(board.rows["a"].lines) == PANE_LINES
    assert board.rows["a"].lines[-1].endswith(f"line {PANE_LINES + 99}")


def test_board_records_control_answers_and_pause() -> None:
    board = BoardModel()
    board.apply(ControlApplied(action="pause", ok=True, request_id="r1", seq=1))
    assert board.paused
    board.apply(NodeStateChanged(node_id="x", status="done", message="merged 45c2", seq=2))
    shown = board.rows["x"].last_event
    board.apply(ControlApplied(action="retry", node_id="x", ok=False, message="no", seq=3))
    assert [c.request_id for c in board.controls] == ["r1", ""]
    # a refusal is a notification; the row keeps what the node last did
    assert board.rows["x"].last_event == shown != ""
    board.apply(
        AgentActivity(
            call_id="c",
            role="executor",
            node_id="x",
            kind="tool",
            tool="bash",
            summary="pytest",
            seq=4,
        )
    )
    assert board.rows["x"].lines[-1] == "⚒ bash pytest"


def test_integration_gate_output_is_not_a_node_row() -> None:
    board = BoardModel()
    board.apply(NodeStateChanged(node_id="a", status="done", seq=1))
    board.apply(
        events_module.TestOutput(node_id=events_module.INTEGRATION_OUTPUT, line="3 passed", seq=2)
    )
    board.apply(events_module.TestOutput(node_id="a", line="1 passed", seq=3))
    assert list(board.rows) == ["a"]
    assert list(board.integration_lines) == ["3 passed"]
    assert board.counts() == {"done": 1}


def test_an_early_escalation_is_marked_although_attempts_are_left() -> None:
    board = BoardModel()
    running = {"node_id": "a", "status": "running", "max_attempts": 3, "tier": "x/strong"}
    board.apply(NodeStateChanged(**running, attempt=1, escalated=True))
    assert board.rows["a"].cells(0.0)[2] == "1/3 ↑"
    board.apply(NodeStateChanged(**{**running, "tier": "x/cheap"}, attempt=1))  # a retry
    assert board.rows["a"].cells(0.0)[2] == "1/3"


def test_gate_output_is_the_latest_attempts_with_the_one_before_it() -> None:
    """A node that failed attempt 2 and passed attempt 3 shows attempt 3's checks first,
    not attempt 2's failure as if it were current (found by outside-in QA)."""
    board = BoardModel()
    fail = GateResult(node_id="a", attempt=2, passed=False, check="tests", message="exit 1")
    board.apply(fail.model_copy(update={"output_tail": "FF AssertionError", "seq": 1}))
    board.apply(GateResult(node_id="a", attempt=3, passed=True, check="hashes", seq=2))
    board.apply(GateResult(node_id="a", attempt=3, passed=True, check="tests", seq=3))
    row = board.rows["a"]
    assert row.gate_output == "attempt 3 · hashes passed\nattempt 3 · tests passed\n"
    assert row.gate_previous.startswith("attempt 2 · tests FAILED: exit 1\nFF AssertionError")


def test_the_escalation_attempt_after_every_executor_attempt_reads_k_of_k_plus_one() -> None:
    board = BoardModel()
    board.apply(
        NodeStateChanged(node_id="a", status="running", attempt=3, max_attempts=2, escalated=True)
    )
    assert board.rows["a"].cells(0.0)[2] == "2/2+↑"  # not '3/2 ↑'


def test_gate_wording_says_what_happened_once() -> None:
    """Found by a new user: "attempt 3 · passed passed", "◆ gate passed passed", "gate red
    passed pytest ran the tests and they failed"; and a pass showed no test output."""
    board = BoardModel()
    board.apply(
        GateResult(
            node_id="a", attempt=3, passed=True, check="passed", output_tail="3 passed", seq=1
        )
    )
    row = board.rows["a"]
    assert row.gate_output == "attempt 3 · tests passed\n3 passed\n"
    assert row.last_event == "tests passed"
    assert "passed passed" not in "\n".join(row.lines)
    board.apply(
        GateResult(
            node_id="t",
            attempt=1,
            passed=True,
            check="red",
            message="pytest ran the tests and they failed",
            seq=2,
        )
    )
    red = board.rows["t"]
    assert red.last_event == "tests fail before the work, as they should"
    assert "red passed" not in "\n".join(red.lines) + red.gate_output


def test_the_board_shows_the_cluster_and_each_attempts_worker() -> None:
    board = BoardModel()
    board.apply(NodeStateChanged(node_id="a", status="running", seq=1))
    assert "ray" not in board.header()  # a local run has no cluster line
    board.apply(ClusterStatus(workers=4, cpus=3, in_flight=1, seq=2))
    board.apply(
        AgentStarted(
            call_id="c1", role="executor", tier="t/m", node_id="a", worker="gpu-2/ab12", seq=3
        )
    )
    assert "ray 4 nodes, 3 CPU, 1 in flight" in board.header()
    row = board.rows["a"]
    assert row.last_event == "executor started @ gpu-2/ab12"
    assert row.lines[-1].endswith("@ gpu-2/ab12")
