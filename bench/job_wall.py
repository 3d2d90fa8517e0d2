"""Wall time of a whole job (plan + run) with a model that answers after a fixed latency per
turn: the tests stage authoring nodes side by side (``--parallel``) next to the same job
with test authoring forced one node at a time, in one run.

The model is the **scripted provider** (not the real OpenCode against
``tests/fake_model_server.py``: on this 2-core machine a cold ``opencode run`` costs
3.5–8 s of CPU per session, which would drown the latency being measured and take the
machine from the other helpers for the length of the bench). Each agent call plays
``turns[role]`` model turns, each a ``sleep`` of the latency; the repo, git, worktrees,
red checks, gates and merges are all real. Planning is ``auto`` without the critic.

    .venv/bin/python bench/job_wall.py [--latency 0 3] [--nodes 3 8] [--parallel 4]

Goal (issue 13): with 3 s latency the 8-node job's plan stage ≤ 0.4× the sequential one.
With the same turns per call for every role that cannot be met at parallel 4 (recon, spec
and decompose stay serial: (3 + 8/4) / (3 + 8) = 0.45); the default turns say what a
session does (a test author reads, writes, runs its tests and answers), and the floor the
turns allow is printed beside each ratio.

Sessions (``--opencode``): the same job shape, plan + run, with the REAL OpenCode against
the fake model server (``bench/_opencode_run.py``), each model turn answered after the
latency: through persistent ``opencode serve`` processes with test authors side by side,
as ``director auto`` does, next to ``[opencode] server = false`` (a cold ``opencode run``
per call) with test authors one at a time, in one run.

    .venv/bin/python bench/job_wall.py --opencode [--latency 0 3] [--nodes 3 8] [--model-check kept|fresh] [--repeat N]

The model check is kept from a first ask (a user's second job in a repository) unless
``--model-check fresh`` (every job asks OpenCode: a first job), the same in both modes.

Goal (issue 13): with 0 s latency the whole happy job ≤ 0.35× of the cold-start version.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from director_tui.engine.config import load_config
from director_tui.engine.context import EngineContext
from director_tui.engine.events import Event, PlanStageChanged
from director_tui.engine.models import Stage
from director_tui.engine.plan import start_plan
from director_tui.engine.run import run_job
from director_tui.engine.store import Store

PY = sys.executable
# Model turns per agent call, by role (each one latency long).
TURNS = {
    "explorer": 4,  # list, read a few files, answer
    "brainstorm": 2,  # read, write the spec
    "planner": 1,  # the plan's JSON
    "test_author": 4,  # read the code, write the tests, run them, answer
    "executor": 5,  # read, write, run the tests, fix, answer
    "reviewer": 2,
}
SPEC = "# Functions\n\n## Goal\nOne function per module under calc/.\n"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def node_ids(count: int) -> list[str]:
    return [f"f{i}" for i in range(count)]


def plan_json(ids: list[str]) -> str:
    nodes = [
        {
            "id": nid,
            "title": f"implement {nid}",
            "spec": f"calc/{nid}.py defines {nid}() returning {i}.",
            "files": [f"calc/{nid}.py"],
            # a second layer: every other node uses the one before it
            "depends_on": [ids[i - 1]] if i % 2 else [],
            "test_cmd": f"{PY} tests/check_{nid}.py",
            "tests": [f"tests/check_{nid}.py"],
            "estimated_difficulty": "easy",
        }
        for i, nid in enumerate(ids)
    ]
    return json.dumps({"nodes": nodes})


def call(role: str, latency: float, text: str = "done", **kw: Any) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    for turn in range(TURNS[role]):
        if latency:
            steps.append({"sleep": latency})
        steps.append({"text": f"turn {turn + 1}"})
    steps.extend(kw.pop("writes", []))
    return {
        "role": role,
        "steps": steps,
        "text": text,
        "tokens": {"input": 1000, "output": 200},
        "cost": 0.001,
        **kw,
    }


def script(ids: list[str], latency: float) -> dict[str, Any]:
    calls = [
        call("explorer", latency, "## Layout\ncalc/ holds one module per function.\n"),
        call("brainstorm", latency, "```markdown\n" + SPEC + "```"),
        call("planner", latency, plan_json(ids)),
    ]
    for i, nid in enumerate(ids):
        check = (
            "import os, sys\nsys.path.insert(0, os.getcwd())\n"
            f"from calc.{nid} import {nid}\nassert {nid}() == {i}\nprint('{nid} ok')\n"
        )
        calls.append(
            call(
                "test_author",
                latency,
                node=nid,
                writes=[{"write": f"tests/check_{nid}.py", "content": check}],
            )
        )
        calls.append(
            call(
                "executor",
                latency,
                node=nid,
                writes=[{"write": f"calc/{nid}.py", "content": f"def {nid}():\n    return {i}\n"}],
            )
        )
    calls.append(call("reviewer", latency, '{"verdict": "approve", "findings": []}'))
    return {"calls": calls}


def make_repo(root: Path, ids: list[str], latency: float, plan_parallel: int) -> Store:
    repo = root / "repo"
    (repo / "calc").mkdir(parents=True)
    (repo / "calc" / "__init__.py").write_text("")
    (repo / "tests").mkdir()
    (repo / "README.md").write_text("# calc\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "bench@localhost")
    git(repo, "config", "user.name", "bench")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    store = Store(repo)
    store.ensure()
    script_path = root / "script.json"
    script_path.write_text(json.dumps(script(ids, latency)))
    roles = ("planner", "test_author", "executor", "explorer", "reviewer", "escalation")
    store.config.write_text(
        "[tiers]\n"
        + "".join(f'{role} = "scripted/bench"\n' for role in roles)
        + f"\n[scripted]\nscript = {json.dumps(str(script_path))}\n"
        + f"\n[limits]\nparallel = {plan_parallel}\nflake_runs = 1\n"
    )
    return store


@dataclass
class JobWall:
    plan_secs: float
    tests_secs: float
    run_secs: float

    @property
    def total(self) -> float:
        return self.plan_secs + self.run_secs


async def one_job(store: Store, run_parallel: int) -> JobWall:
    ctx = EngineContext.open(store, load_config(store.repo))
    marks: dict[str, float] = {}

    def on_event(event: Event) -> None:
        if isinstance(event, PlanStageChanged):
            marks.setdefault(event.stage, time.perf_counter())

    ctx.bus.subscribe(on_event)
    began = time.perf_counter()
    stage = await start_plan(ctx, "one function per module", auto=True, critique=False)
    planned = time.perf_counter()
    assert stage.stage == Stage.approved, stage.stage
    outcome = await run_job(ctx, parallel=run_parallel)
    assert outcome.success, outcome.message
    ran = time.perf_counter()
    tests = marks.get("gate2", planned) - marks.get("tests", began)
    return JobWall(planned - began, tests, ran - planned)


def measure(nodes: int, latency: float, plan_parallel: int, run_parallel: int) -> JobWall:
    with tempfile.TemporaryDirectory(prefix="director-job-wall-") as tmp:
        store = make_repo(Path(tmp), node_ids(nodes), latency, plan_parallel)
        return asyncio.run(one_job(store, run_parallel))


def plan_floor(nodes: int, parallel: int) -> float:
    """The plan stage's ratio if only model turns took time (recon, spec, decompose serial)."""
    serial = TURNS["explorer"] + TURNS["brainstorm"] + TURNS["planner"]
    waves = -(-nodes // parallel)
    return (serial + waves * TURNS["test_author"]) / (serial + nodes * TURNS["test_author"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 3.0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[3, 8])
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument(
        "--opencode",
        action="store_true",
        help="the whole job with the real OpenCode: servers next to cold `opencode run`",
    )
    parser.add_argument(
        "--model-check",
        choices=["kept", "fresh"],
        default="kept",
        help="--opencode: each job's model check answered by a pass kept from before, as "
        "from a user's second job in a repository (kept), or asked of OpenCode (fresh)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="--opencode: rounds of both modes, alternating; the ratios are of the medians "
        "(one job's wall time on 2 cores varies by 10-20%% from run to run)",
    )
    args = parser.parse_args()
    if args.opencode:
        return sessions(
            args.latency, args.nodes, args.parallel, args.model_check == "kept", args.repeat
        )
    print(f"scripted model; turns per call {TURNS}; run at --parallel {args.parallel}")
    print(f"{os.cpu_count()} cores; load average at start {os.getloadavg()[0]:.1f}")
    header = (
        f"{'latency':>7} {'nodes':>5} {'tests':>10} {'plan s':>7} {'tests s':>7} "
        f"{'run s':>6} {'job s':>6} {'load':>5}"
    )
    for latency in args.latency:
        for nodes in args.nodes:
            print(header)
            walls = {}
            for label, plan_parallel in (
                ("sequential", 1),
                (f"parallel {args.parallel}", args.parallel),
            ):
                wall = measure(nodes, latency, plan_parallel, args.parallel)
                walls[label] = wall
                print(
                    f"{latency:>6.1f}s {nodes:>5} {label:>10} {wall.plan_secs:>7.1f} "
                    f"{wall.tests_secs:>7.1f} {wall.run_secs:>6.1f} {wall.total:>6.1f} "
                    f"{os.getloadavg()[0]:>5.1f}",
                    flush=True,
                )
            seq, par = walls["sequential"], walls[f"parallel {args.parallel}"]
            print(
                f"  ratio parallel/sequential: plan stage {par.plan_secs / seq.plan_secs:.2f} "
                f"(turns alone allow {plan_floor(nodes, args.parallel):.2f}), tests stage "
                f"{par.tests_secs / seq.tests_secs:.2f}, whole job {par.total / seq.total:.2f}\n",
                flush=True,
            )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


def sessions(
    latencies: list[float],
    node_counts: list[int],
    parallel: int,
    kept_models: bool,
    repeat: int = 1,
) -> int:
    from bench._opencode_run import EXECUTOR_TURNS, OpenCodeBench, ratio_line
    from bench._opencode_run import JobWall as SessionsWall

    print(
        f"real OpenCode + fake model; {EXECUTOR_TURNS} turns per executor call; plan + run "
        f"at --parallel {parallel} (cold: test authors one at a time); {os.cpu_count()} "
        f"cores; load average at start {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    header = f"{'latency':>7} {'nodes':>5} {'sessions':>9} {'plan s':>7} {'run s':>7} {'job s':>7} {'load':>11}"
    with tempfile.TemporaryDirectory(prefix="director-job-wall-") as tmp:
        bench = OpenCodeBench(Path(tmp))
        try:
            took = bench.warm_home()
            print(
                f"agent HOME warmed first (one `opencode models`, {took:.1f}s, not timed): "
                f"neither mode pays OpenCode's first-start migration; load "
                f"{os.getloadavg()[0]:.1f}",
                flush=True,
            )
            if kept_models:
                took = bench.keep_models()
                print(
                    f"models asked once first ({took:.1f}s, not timed): every job's model "
                    "check is answered by that kept pass, in both modes, as for a user's "
                    "second job in a repository (--model-check fresh: each job asks OpenCode)",
                    flush=True,
                )
            else:
                print("each job asks OpenCode for its models (a first job), in both modes")
            for latency in latencies:
                for nodes in node_counts:
                    print(header)
                    walls: dict[str, list[SessionsWall]] = {"servers": [], "cold": []}
                    for _round in range(repeat):
                        for label, server in (("servers", True), ("cold", False)):
                            wall = bench.job(
                                nodes, latency, parallel, server=server, kept_models=kept_models
                            )
                            walls[label].append(wall)
                            print(
                                f"{latency:>6.1f}s {nodes:>5} {label:>9} {wall.plan_secs:>7.1f} "
                                f"{wall.run_secs:>7.1f} {wall.secs:>7.1f} "
                                f"{wall.load_before:>5.1f}→{wall.load_after:<5.1f}\n"
                                f"        {wall.where()}",
                                flush=True,
                            )
                    print(ratio_line(walls["servers"], walls["cold"]), flush=True)
        finally:
            bench.close()
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
