"""``bench/job_wall.py --opencode``: a whole job (plan + run) with the REAL OpenCode
against the project's fake model server (``tests/fake_model_server.py``), each model turn
answered after a fixed latency, through persistent ``opencode serve`` processes (the
planner's, one per slot shared by the test authors and the run, as ``director auto``
does) next to ``[opencode] server = false`` (a cold ``opencode run`` per call) with the
test authors one node at a time.

``OpenCodeBench.warm_home`` runs one ``opencode models`` in the bench's fresh agent HOME
before any job, untimed: OpenCode's first start there migrates its database (seconds),
which would otherwise be paid by whichever mode runs first and spared the other.

The model check (``model_check``): with ``kept_models`` (the default, what a user's
second job in a repository sees) every job's repository is made at the same path and
``keep_models`` asks OpenCode once before any job, untimed, so each job's check is
answered by the kept pass in both modes; without it each job asks OpenCode afresh
(a cold ``opencode models``, a first job in a repository), in both modes.

``OpenCodeBench.job`` plans the job (``start_plan`` auto, no critic: recon, spec,
decompose, a test author per node) and runs it in one event loop.

The job has the shape of ``job_wall``'s plan: node ``f<i>`` writes ``calc/f<i>.py``,
every other node depends on the one before it. Recon, spec and plan are a turn each; a
test author writes its node's check and answers (two turns); each executor call plays
``EXECUTOR_TURNS`` turns (read, run the tests, write the solution, run them again,
answer). Calls of nodes side by side are routed by their prompts (``"test_author|tests
for node `f<i>`"``, ``"executor|Implement f<i> in"``), so each gets its own turns."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from agent_clis import ensure_cli  # noqa: E402
from fake_model_server import FakeModelServer  # noqa: E402

from director_tui.engine.agents import model_check  # noqa: E402
from director_tui.engine.config import ROLES, load_config  # noqa: E402
from director_tui.engine.context import EngineContext  # noqa: E402
from director_tui.engine.events import AgentFinished, EventBase  # noqa: E402
from director_tui.engine.models import Stage  # noqa: E402
from director_tui.engine.plan import start_plan  # noqa: E402
from director_tui.engine.run import run_job  # noqa: E402
from director_tui.engine.store import Store  # noqa: E402
from tests.conftest import make_repo  # noqa: E402
from tests.run_fixture import PY, TEST_PRELUDE, NodeSpec  # noqa: E402

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


def plan_turns(specs: list[NodeSpec], latency: float) -> dict[str, list[dict[str, Any]]]:
    """The planning calls' turns: recon, spec, the plan, and each node's test author
    (keyed by its prompt: authors of several nodes run side by side)."""
    plan = {
        "nodes": [
            {
                "id": spec.id,
                "title": f"implement {spec.id}",
                "spec": f"Implement {spec.id} in {spec.impl_path}.",
                "files": [spec.impl_path],
                "depends_on": spec.depends_on,
                "test_cmd": spec.test_cmd,
                "tests": [spec.test_path],
                "estimated_difficulty": "easy",
            }
            for spec in specs
        ]
    }
    turns: dict[str, list[dict[str, Any]]] = {
        "explorer": [_turn(latency, text="## Layout\ncalc/ holds one module per function.\n")],
        # The brainstorm role borrows the planner's tier: its spec comes first in that queue.
        "planner": [
            _turn(latency, text="# Functions\n\n## Goal\nOne function per module.\n"),
            _turn(latency, text="```json\n" + json.dumps(plan) + "\n```"),
        ],
    }
    for spec in specs:
        turns[f"test_author|tests for node `{spec.id}`"] = [
            _tool(
                latency,
                "write",
                filePath="{cwd}/" + spec.test_path,
                content=TEST_PRELUDE + spec.test_body,
            ),
            _turn(latency, text="Wrote the tests; they fail until the node is implemented."),
        ]
    return turns


@dataclass
class JobWall:
    plan_secs: float
    run_secs: float
    load_before: float
    load_after: float
    calls: dict[
        str, list[float]
    ]  # each agent call's wall time (a server's start included), by role

    @property
    def secs(self) -> float:
        return self.plan_secs + self.run_secs

    def where(self) -> str:
        """Each role's calls: how many, the first's wall time and the median."""
        return "; ".join(
            f"{role} {len(walls)}× first {walls[0]:.1f}s median {statistics.median(walls):.1f}s"
            for role, walls in self.calls.items()
        )


def ratio_line(warm: list[JobWall], cold: list[JobWall]) -> str:
    """Servers over cold: plan, run and whole job, each a ratio of the medians."""

    def median(walls: list[JobWall], part: str) -> float:
        return statistics.median(getattr(wall, part) for wall in walls)

    ratios = {
        part: median(warm, part) / median(cold, part) for part in ("plan_secs", "run_secs", "secs")
    }
    of = f" (medians of {len(warm)} rounds)" if len(warm) > 1 else ""
    return (
        f"  ratio servers/cold{of}: plan {ratios['plan_secs']:.2f}, run "
        f"{ratios['run_secs']:.2f}, whole job {ratios['secs']:.2f}\n"
    )


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

    def warm_home(self) -> float:
        """One ``opencode models`` in the agent HOME (its first start: the database
        migration), so neither mode pays it; the seconds it took."""
        began = time.perf_counter()
        done = subprocess.run(
            [str(self.binary), "models"],
            cwd=self.root,
            env=model_check.opencode_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"`opencode models` failed: {done.stderr.decode()[-400:]}")
        return time.perf_counter() - began

    @property
    def repo_path(self) -> Path:
        """Every job's repository is made here (and removed after it): the kept model
        check's fingerprint names the repository's path."""
        return self.root / "job-repo"

    def _new_repo(self) -> Path:
        shutil.rmtree(self.repo_path, ignore_errors=True)
        return make_repo(self.repo_path, {"README.md": "# calc\n", "calc/__init__.py": ""})

    def keep_models(self) -> float:
        """Ask OpenCode for the models once, untimed, as a first job in the repository
        would: its pass is kept, so every job's check after it is answered from it. The
        seconds it took."""
        repo = self._new_repo()
        store = Store(repo)
        store.ensure()
        store.config.write_text(self.config(1, True))
        began = time.perf_counter()
        asyncio.run(model_check.require_models(load_config(repo), repo, ROLES, "the bench"))
        took = time.perf_counter() - began
        shutil.rmtree(repo, ignore_errors=True)
        return took

    def config(self, parallel: int, server: bool) -> str:
        tiers = "".join(f'{role} = "opencode/fake/{role}"\n' for role in ROLES)
        return (
            f"[tiers]\n{tiers}\n[limits]\nparallel = {parallel}\nflake_runs = 1\n"
            "idle_timeout_secs = 300\nnode_timeout_secs = 900\ngate_timeout_secs = 120\n"
            f"\n[opencode]\nserver = {'true' if server else 'false'}\n"
        )

    def job(
        self, nodes: int, latency: float, parallel: int, *, server: bool, kept_models: bool
    ) -> JobWall:
        """Plan (auto, no critic) and run a job in one event loop, as ``director auto``
        does. Cold (``server=False``): test authors one node at a time."""
        specs = node_specs(nodes)
        try:
            repo = self._new_repo()
            store = Store(repo)
            store.ensure()
            store.config.write_text(self.config(parallel if server else 1, server))
            self.fake.load(
                plan_turns(specs, latency)
                | {f"executor|Implement {s.id} in": executor_turns(s, latency) for s in specs}
            )
            # Each job is a command of its own: nothing remembered in this process. The
            # passes kept on disk answer it (kept_models) or are forgotten first.
            model_check._PASSED.clear()
            model_check._LISTED.clear()
            if not kept_models:
                Path(os.environ["DIRECTOR_MODEL_CHECK_CACHE"]).unlink(missing_ok=True)
            ctx = EngineContext.open(store, load_config(store.repo))
            calls: dict[str, list[float]] = {}

            def on_event(event: EventBase) -> None:
                if isinstance(event, AgentFinished):
                    calls.setdefault(event.role, []).append(event.duration_secs)

            ctx.bus.subscribe(on_event)
            load_before = os.getloadavg()[0]

            async def whole() -> tuple[float, float]:
                began = time.perf_counter()
                async with ctx.servers.session():
                    stage = await start_plan(
                        ctx, "one function per module", auto=True, critique=False
                    )
                    planned = time.perf_counter()
                    if stage.stage != Stage.approved:
                        raise SystemExit(f"the bench plan stopped at {stage.stage.value}")
                    outcome = await run_job(ctx, parallel=parallel)
                    if not outcome.success:
                        raise SystemExit(f"the bench run failed: {outcome.message}")
                return planned - began, time.perf_counter() - planned

            plan_secs, run_secs = asyncio.run(whole())
            return JobWall(plan_secs, run_secs, load_before, os.getloadavg()[0], calls)
        finally:
            shutil.rmtree(self.repo_path, ignore_errors=True)
