"""The run half of ``bench/job_wall.py --opencode``: a job's run with the REAL OpenCode
against the project's fake model server (``tests/fake_model_server.py``), each model turn
answered after a fixed latency, through the slots' ``opencode serve`` next to
``[opencode] server = false`` (a cold ``opencode run`` per call).

The job is built directly (an approved plan whose red tests are committed on the job
branch: ``tests/run_fixture.build_job``), the same shape as ``job_wall``'s plan: node
``f<i>`` writes ``calc/f<i>.py``, every other node depends on the one before it. Each
executor call plays ``EXECUTOR_TURNS`` turns (read the stub, run the tests, write the
solution, run them again, answer), routed to its node by the prompt (``"executor|
Implement f<i> in"``), so nodes running side by side each get their own."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from agent_clis import ensure_cli  # noqa: E402
from fake_model_server import FakeModelServer  # noqa: E402

from director_tui.engine.config import ROLES, load_config  # noqa: E402
from director_tui.engine.context import EngineContext  # noqa: E402
from director_tui.engine.events import (  # noqa: E402
    AgentFinished,
    AgentStarted,
    EventBase,
    NodeStateChanged,
)
from director_tui.engine.run import run_job  # noqa: E402
from tests.run_fixture import PY, NodeSpec, build_job  # noqa: E402

EXECUTOR_TURNS = 5


def node_specs(count: int) -> list[NodeSpec]:
    ids = [f"f{i}" for i in range(count)]
    return [
        NodeSpec(
            nid,
            f"calc/{nid}.py",
            f"from calc.{nid} import {nid}\nassert {nid}() == {i}\nprint('{nid} ok')\n",
            f"def {nid}():\n    return {i}\n",
            depends_on=[ids[i - 1]] if i % 2 else [],
        )
        for i, nid in enumerate(ids)
    ]


def _turn(latency: float, **fields: Any) -> dict[str, Any]:
    return {**fields, "latency": latency, "usage": {"input": 1000, "output": 50}}


def _tool(latency: float, name: str, **arguments: Any) -> dict[str, Any]:
    return _turn(latency, tool_calls=[{"name": name, "arguments": arguments}])


def executor_turns(spec: NodeSpec, latency: float) -> list[dict[str, Any]]:
    test = f"{PY} {spec.test_path}"
    turns = [
        _tool(latency, "read", filePath="{cwd}/" + spec.impl_path),
        _tool(latency, "bash", command=test, description="run the tests"),
        _tool(latency, "write", filePath="{cwd}/" + spec.impl_path, content=spec.solution),
        _tool(latency, "bash", command=test, description="run the tests again"),
        _turn(latency, text="Implemented; the tests pass."),
    ]
    assert len(turns) == EXECUTOR_TURNS
    return turns


@dataclass
class RunWall:
    secs: float
    load_before: float
    load_after: float
    calls: list[
        float
    ]  # each executor call's wall time (the slot's first includes its server's start)
    first_calls: list[
        float
    ]  # the first call of each slot (servers) or of the run's first wave (cold)
    gates: list[float]  # each node's gate (tests on a clean checkout, commit)

    def where(self) -> str:
        def med(values: list[float]) -> str:
            return f"{statistics.median(values):.1f}s" if values else "-"

        return (
            f"executor calls: median {med(self.calls)} (first per slot {med(self.first_calls)}), "
            f"sum {sum(self.calls):.0f}s; gates: median {med(self.gates)}"
        )


class _Timeline:
    """Wall times of the run's calls and gates, from its events as they happen."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.calls: list[tuple[float, float]] = []  # (start, wall)
        self.gating: dict[str, float] = {}
        self.gates: list[float] = []

    def __call__(self, event: EventBase) -> None:
        now = time.perf_counter()
        if isinstance(event, AgentStarted) and event.role == "executor":
            self.started[event.call_id] = now
        elif isinstance(event, AgentFinished) and event.call_id in self.started:
            began = self.started.pop(event.call_id)
            self.calls.append((began, now - began))
        elif isinstance(event, NodeStateChanged) and event.node_id:
            if event.status == "gating":
                self.gating[event.node_id] = now
            elif event.node_id in self.gating:
                self.gates.append(now - self.gating.pop(event.node_id))


class OpenCodeBench:
    """The pinned OpenCode, a fake model server and a private agent HOME for the bench."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.binary = ensure_cli("opencode")
        self.fake = FakeModelServer().start()
        home = root / "agent-home"
        home.mkdir()
        models = {
            role: {"name": role, "limit": {"context": 200_000, "output": 32_000}} for role in ROLES
        }
        os.environ.update(
            {
                "DIRECTOR_OPENCODE_BIN": str(self.binary),
                "DIRECTOR_AGENT_HOME": str(home),
                "OPENCODE_DISABLE_AUTOUPDATE": "1",
                "OPENCODE_DISABLE_MODELS_FETCH": "1",
                "OPENCODE_CONFIG_CONTENT": json.dumps(
                    {
                        "provider": {
                            "fake": {
                                "npm": "@ai-sdk/openai-compatible",
                                "name": "Fake model server",
                                "options": {"baseURL": self.fake.url, "apiKey": "fake-key"},
                                "models": models,
                            }
                        }
                    }
                ),
            }
        )

    def close(self) -> None:
        self.fake.stop()

    def run(self, nodes: int, latency: float, parallel: int, *, server: bool) -> RunWall:
        specs = node_specs(nodes)
        with tempfile.TemporaryDirectory(prefix="director-job-wall-oc-", dir=self.root) as tmp:
            store = build_job(Path(tmp), specs)
            tiers = "".join(f'{role} = "opencode/fake/{role}"\n' for role in ROLES)
            store.config.write_text(
                f"[tiers]\n{tiers}\n[limits]\nparallel = {parallel}\nflake_runs = 1\n"
                "idle_timeout_secs = 300\nnode_timeout_secs = 900\ngate_timeout_secs = 120\n"
                f"\n[opencode]\nserver = {'true' if server else 'false'}\n"
            )
            self.fake.load(
                {
                    f"executor|Implement {spec.id} in": executor_turns(spec, latency)
                    for spec in specs
                }
            )
            ctx = EngineContext.open(store, load_config(store.repo))
            timeline = _Timeline()
            ctx.bus.subscribe(timeline)
            load_before = os.getloadavg()[0]
            began = time.perf_counter()
            outcome = asyncio.run(run_job(ctx, parallel=parallel))
            secs = time.perf_counter() - began
            if not outcome.success:
                raise SystemExit(f"the bench run failed: {outcome.message}")
            ordered = sorted(timeline.calls)
            return RunWall(
                secs,
                load_before,
                os.getloadavg()[0],
                calls=[wall for _start, wall in ordered],
                first_calls=[wall for _start, wall in ordered[:parallel]],
                gates=timeline.gates,
            )
