"""Load test of the run board: 500 nodes, ~2,000 events per second for ~30 s, headless.

The events take the real in-process path: an engine ``EventBus`` in another thread appends
each one to ``.director/events.jsonl`` and hands it to the app's ``EventBuffer``; the app
drains the buffer on its UI timer into the board and the table. Meanwhile a key is
pressed every 0.25 s and the time until the app has handled it and repainted is taken.

Printed at the end: events sent / applied / in the file (none may be lost), whether the
screen matches a fresh replay of the file, key latency percentiles, and the process's
memory over time (it must stay flat: the live pane and per-node buffers are bounded).

    .venv/bin/python bench/tui_load.py [--nodes 500] [--rate 2000] [--seconds 30]

Numbers, not assertions: this is a measurement, never a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from textual import events  # noqa: E402
from textual.widgets import DataTable  # noqa: E402

from director_tui.engine.events import (  # noqa: E402
    AgentActivity,
    AgentFinished,
    AgentStarted,
    CostUpdate,
    EventBase,
    EventBus,
    GateResult,
    NodeMerged,
    NodeStateChanged,
    ReviewResult,
    RunStarted,
    TestOutput,
    parse_event,
)
from director_tui.engine.store import Store, read_jsonl  # noqa: E402
from director_tui.tui.app import DirectorApp, prefer_ui_thread  # noqa: E402
from director_tui.tui.board import BoardModel  # noqa: E402
from director_tui.tui.engine_bridge import EngineTask  # noqa: E402
from tests.support.sample_job import big_plan, init_sample_repo, write_sample  # noqa: E402

ACTIVITY_PER_ATTEMPT = 50
PARALLEL = 16


def node_events(
    node_id: str, ceiling: float, spent: list[float], activity_per_attempt: int
) -> Iterator[EventBase]:
    """Two attempts per node: the first fails its gate, the second merges."""
    for attempt in (1, 2):
        call = f"executor-{node_id}-{attempt}"
        yield NodeStateChanged(node_id=node_id, status="running", attempt=attempt, max_attempts=2)
        yield AgentStarted(
            call_id=call, role="executor", tier="scripted/cheap", node_id=node_id, attempt=attempt
        )
        for i in range(activity_per_attempt):
            kind = "tool" if i % 3 == 0 else "text"
            yield AgentActivity(
                call_id=call,
                role="executor",
                node_id=node_id,
                kind=kind,
                tool="bash" if kind == "tool" else "",
                summary=f"step {i} of attempt {attempt}",
            )
        for i in range(5):
            yield TestOutput(node_id=node_id, line=f"test line {i}")
        spent[0] += 0.01
        yield AgentFinished(
            call_id=call,
            role="executor",
            tier="scripted/cheap",
            node_id=node_id,
            exit_reason="ok",
            input_tokens=1000,
            output_tokens=200,
            cost_usd=0.01,
        )
        yield CostUpdate(total_usd=round(spent[0], 4), ceiling_usd=ceiling, node_id=node_id)
        passed = attempt == 2
        yield GateResult(node_id=node_id, attempt=attempt, passed=passed, check="tests")
        if not passed:
            yield NodeStateChanged(
                node_id=node_id, status="gating", attempt=attempt, message="retrying"
            )
    yield ReviewResult(node_id=node_id, stage="one", verdict="pass", blocking=False)
    yield NodeMerged(node_id=node_id, commit="f" * 40)
    yield NodeStateChanged(node_id=node_id, status="done", attempt=2, max_attempts=2)


def all_events(
    node_ids: list[str], ceiling: float, activity: int = ACTIVITY_PER_ATTEMPT
) -> Iterator[EventBase]:
    """Nodes run PARALLEL at a time, their events interleaved like a real scheduler's."""
    spent = [0.0]
    waiting = list(node_ids)
    active: list[Iterator[EventBase]] = []
    turn = 0
    while waiting or active:
        while waiting and len(active) < PARALLEL:
            active.append(node_events(waiting.pop(0), ceiling, spent, activity))
        turn = (turn + 1) % len(active)
        try:
            yield next(active[turn])
        except StopIteration:
            active.pop(turn)
            turn = 0


class Producer(threading.Thread):
    def __init__(self, bus: EventBus, events: Iterator[EventBase], rate: float, seconds: float):
        super().__init__(daemon=True, name="bench-producer")
        self.bus, self.events, self.rate, self.seconds = bus, events, rate, seconds
        self.sent = 0
        self.elapsed = 0.0

    def run(self) -> None:
        start = time.perf_counter()
        slice_secs = 0.01
        per_slice = max(1, int(self.rate * slice_secs))
        deadline = start + self.seconds
        for event in self.events:
            self.bus.emit(event)
            self.sent += 1
            if self.sent % per_slice == 0:
                ahead = start + self.sent / self.rate - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)
                if time.perf_counter() > deadline:
                    break
        self.elapsed = time.perf_counter() - start


async def key_to_repaint(app: DirectorApp, table: DataTable[object], key: str) -> float | None:
    """Milliseconds from a key event entering the app to the first repaint that shows it.

    ``Pilot.press`` is no use here: it waits for the whole process to go idle, which a
    busy producer thread never lets happen. The key goes in as the driver would post it;
    ``call_after_refresh`` fires after the screen has been updated.
    """
    row = table.cursor_row
    start = time.perf_counter()
    app.post_message(events.Key(key, None))
    deadline = start + 5
    while table.cursor_row == row and time.perf_counter() < deadline:
        await asyncio.sleep(0.0005)
    if table.cursor_row == row:
        return None
    painted = asyncio.get_running_loop().create_future()
    app.call_after_refresh(lambda: painted.done() or painted.set_result(time.perf_counter()))
    end = await asyncio.wait_for(painted, timeout=5)
    return float((end - start) * 1000)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def produce(repo: Path, nodes: int, rate: float, seconds: float, activity: int) -> int:
    """The producer as its own process: a headless engine the app attaches to."""
    plan = big_plan(nodes)
    bus = EventBus(Store(repo).events)
    bus.emit(
        RunStarted(
            job_id=plan.job_id,
            job_branch=plan.job_branch,
            node_ids=plan.ids,
            parallel=PARALLEL,
            ceiling_usd=100.0,
            scripted=True,
        )
    )
    producer = Producer(bus, all_events(plan.ids, 100.0, activity), rate, seconds)
    producer.run()
    print(f"{producer.sent + 1} {producer.elapsed:.3f}")
    return 0


async def main(nodes: int, rate: float, seconds: float, attach: bool, activity: int) -> int:
    repo = init_sample_repo(Path(tempfile.mkdtemp(prefix="director-tui-load-")) / "repo")
    plan = big_plan(nodes)
    store: Store = write_sample(repo, "gate2", plan=plan)
    store.events.unlink()  # start the stream from nothing
    prefer_ui_thread()  # as `launch` does
    app = DirectorApp(repo, start="run", watch=attach, tick=0.2)
    proc = psutil.Process()
    latencies: list[float] = []
    memory: list[tuple[float, float]] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        table = app.screen.query_one("#board", DataTable)
        table.focus()
        started = time.perf_counter()
        producer: Producer | subprocess.Popen[str]
        if attach:  # another process appends to events.jsonl; the app follows the file
            producer = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--produce",
                    str(repo),
                    "--nodes",
                    str(nodes),
                    "--rate",
                    str(rate),
                    "--seconds",
                    str(seconds),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
        else:  # the engine's bus in a thread of this process, as the engine worker does
            bus = EventBus(store.events, [app.buffer.push])
            bus.emit(
                RunStarted(
                    job_id=plan.job_id,
                    job_branch=plan.job_branch,
                    node_ids=plan.ids,
                    parallel=PARALLEL,
                    ceiling_usd=100.0,
                    scripted=True,
                )
            )
            app.engine_busy = EngineTask.RUN  # as while the engine worker runs
            producer = Producer(bus, all_events(plan.ids, 100.0, activity), rate, seconds)
            producer.start()

        def producing() -> bool:
            if isinstance(producer, Producer):
                return producer.is_alive()
            return producer.poll() is None

        key = "down"
        while producing():
            latency = await key_to_repaint(app, table, key)
            if latency is not None:
                latencies.append(latency)
            if table.cursor_row >= table.row_count - 1:
                key = "up"
            elif table.cursor_row == 0:
                key = "down"
            memory.append((time.perf_counter() - started, proc.memory_info().rss / 2**20))
            await asyncio.sleep(0.25)
        if isinstance(producer, Producer):
            producer.join()
            sent, elapsed = producer.sent + 1, producer.elapsed
        else:
            out, _ = producer.communicate()
            sent_text, elapsed_text = out.split()
            sent, elapsed = int(sent_text), float(elapsed_text)
        # let the UI apply what is still on its way, then compare with the file
        deadline = time.perf_counter() + 15
        while app.board.applied < sent and time.perf_counter() < deadline:
            await pilot.pause(0.1)
        await pilot.pause(0.3)
        app.engine_busy = None
        board = app.board
        records = read_jsonl(store.events)
        replay = BoardModel()
        replay.seed(plan)
        replay.apply_all([e for e in (parse_event(r) for r in records) if e is not None])
        mismatched_rows = 0
        now = app.clock()
        for node_id, row in board.rows.items():
            other = replay.rows[node_id]
            on_screen = str(table.get_cell(node_id, "state"))
            if (row.status, row.attempt, row.tokens, round(row.cost_usd, 6)) != (
                other.status,
                other.attempt,
                other.tokens,
                round(other.cost_usd, 6),
            ) or on_screen != row.cells(now)[0]:
                mismatched_rows += 1
        counts = board.counts()
    print(
        f"mode                  {'attached to another process (watchfiles)' if attach else 'engine thread in this process (bus → buffer)'}"
    )
    print(f"machine load average  {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"nodes                 {nodes}")
    print(f"events sent           {sent} in {elapsed:.1f} s ({sent / elapsed:.0f}/s)")
    print(f"events applied by UI  {board.applied}")
    print(f"events in the file    {len(records)}")
    print(f"lost                  {sent - board.applied}")
    print(f"rows on screen        {len(board.rows)}; state counts {counts}")
    print(f"rows differing from a replay of the file (or from the table): {mismatched_rows}")
    print(
        f"key → handled+repainted latency over {len(latencies)} presses: "
        f"p50 {percentile(latencies, 50):.1f} ms, p95 {percentile(latencies, 95):.1f} ms, "
        f"max {max(latencies):.1f} ms"
    )
    if memory:
        quarters = [memory[min(len(memory) - 1, len(memory) * q // 4)][1] for q in range(5)]
        print(
            "RSS MiB at 0/25/50/75/100% of the run: "
            + " / ".join(f"{m:.1f}" for m in quarters)
            + f" (second half grew {quarters[4] - quarters[2]:+.1f})"
        )
    lines_kept = max(len(r.lines) for r in board.rows.values())
    print(f"largest per-node pane buffer: {lines_kept} lines (bounded)")
    return 0 if sent == board.applied and not mismatched_rows else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument(
        "--attach", action="store_true", help="produce from another process (the attach path)"
    )
    parser.add_argument(
        "--activity",
        type=int,
        default=ACTIVITY_PER_ATTEMPT,
        help="agent activity events per attempt (more: longer per-node streams, to see "
        "the bounded pane buffers hold memory flat)",
    )
    parser.add_argument("--produce", metavar="REPO", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.produce:
        sys.exit(produce(Path(args.produce), args.nodes, args.rate, args.seconds, args.activity))
    sys.exit(asyncio.run(main(args.nodes, args.rate, args.seconds, args.attach, args.activity)))
