"""A sample job ready to run, built without the plan pipeline.

``build_job`` makes a real git repo, a job branch with committed red tests, ``plan.json``
(with sha256 test hashes and the captured failing output), ``plan_stage.json`` at stage
``approved`` and a config whose tiers are all scripted. ``write_script`` writes the
scripted provider's script. Tests are tiny Python scripts (faster than pytest).
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from director_tui.engine import jobs
from director_tui.engine.config import load_config
from director_tui.engine.context import EngineContext
from director_tui.engine.events import EventBase, GateResult, NodeStateChanged
from director_tui.engine.models import Node, Plan, PlanStage, Stage
from director_tui.engine.run import RunOutcome, run_job
from director_tui.engine.store import Store
from tests.conftest import make_repo, run_git

PY = sys.executable
JOB_ID = "20260101-000000-test"

TEST_PRELUDE = "import os, sys\nsys.path.insert(0, os.getcwd())\n"


@dataclass
class NodeSpec:
    id: str
    impl_path: str
    test_body: str  # python asserts run by the test script
    solution: str  # content that makes the test pass
    depends_on: list[str] = field(default_factory=list)
    stub: str = "# to be implemented\n"
    extra_files: list[str] = field(default_factory=list)

    @property
    def test_path(self) -> str:
        return f"tests/check_{self.id}.py"

    @property
    def test_cmd(self) -> str:
        return f"{PY} {self.test_path}"


def sample_nodes() -> list[NodeSpec]:
    """A 3-node plan: add, mul, and power (which uses mul)."""
    return [
        NodeSpec(
            "add",
            "calc/add.py",
            "from calc.add import add\nassert add(2, 3) == 5\nprint('add ok')\n",
            "def add(a, b):\n    return a + b\n",
        ),
        NodeSpec(
            "mul",
            "calc/mul.py",
            "from calc.mul import mul\nassert mul(4, 3) == 12\nprint('mul ok')\n",
            "def mul(a, b):\n    return a * b\n",
        ),
        NodeSpec(
            "power",
            "calc/power.py",
            "from calc.power import power\nassert power(2, 5) == 32\nprint('power ok')\n",
            "from calc.mul import mul\n\n\ndef power(a, n):\n    out = 1\n    for _ in range(n):\n"
            "        out = mul(out, a)\n    return out\n",
            depends_on=["mul"],
        ),
    ]


# The config line for a test of what happens without the OS sandbox (the detection and
# clean-up layers beneath it).
SANDBOX_OFF = '[sandbox]\nmode = "off"\n'
# Every passing node held for the human before it merges (no LLM review in the way).
HUMAN_ALWAYS = '[review]\nhuman = "always"\nstage_two = false\n'


def build_job(
    root: Path,
    nodes: list[NodeSpec] | None = None,
    *,
    config: str = "",
    gates: dict[str, str] | None = None,
    stage: Stage = Stage.approved,
    limits: dict[str, Any] | None = None,
) -> Store:
    nodes = nodes if nodes is not None else sample_nodes()
    template, base, plan_nodes = _job_repo(nodes)
    repo = root / "repo"
    repo.mkdir(parents=True, exist_ok=True)
    # A copy of real git data (objects, refs, index with its stat info): the repository is
    # the one the steps in _job_repo made, at this test's own path.
    subprocess.run(["cp", "-a", f"{template}/.", str(repo)], check=True)
    # The index's stat data (inode, ctime) is the template's: refreshed, its files read as
    # clean again (git sparse-checkout kept a "modified" file in the tree without it).
    run_git(repo, "update-index", "-q", "--refresh")
    store = Store(repo)
    store.ensure()
    branch = jobs.job_branch(JOB_ID)
    plan = Plan(job_id=JOB_ID, job_branch=branch, base_commit=base, task="calc", nodes=plan_nodes)
    store.write_model(store.plan, plan)
    store.write_model(
        store.plan_stage,
        PlanStage(job_id=JOB_ID, task="calc", stage=stage, job_branch=branch, base_commit=base),
    )
    limit_values: dict[str, Any] = {
        "flake_runs": 1,
        "idle_timeout_secs": 5,
        "node_timeout_secs": 60,
        "gate_timeout_secs": 60,
        **(limits or {}),
    }
    gate_lines = "".join(f'{k} = "{v}"\n' for k, v in (gates or {}).items())
    store.config.write_text(
        "[tiers]\n"
        'planner = "scripted/planner"\n'
        'test_author = "scripted/planner"\n'
        'executor = "scripted/cheap"\n'
        'explorer = "scripted/cheap"\n'
        'reviewer = "scripted/reviewer"\n'
        'escalation = "scripted/strong"\n'
        "[limits]\n"
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in limit_values.items())
        + config
        + ("\n[gates]\n" + gate_lines if gate_lines else "")
    )
    write_script(store, [solve(s) for s in nodes])
    return store


# Per process: the node specs -> (the repository's folder, the job branch's base, the nodes).
_JOB_REPOS: dict[tuple[Any, ...], tuple[Path, str, list[Node]]] = {}


def _job_repo(nodes: list[NodeSpec]) -> tuple[Path, str, list[Node]]:
    """The git part of a job (main with the stubs, the job branch with the committed red
    tests, each test seen failing), made once per process for each set of node specs and
    copied by build_job: its 15 git processes and a Python per node cost seconds per test
    on a loaded 2-core machine, and 140 tests build a job. Nothing in it names its path
    but the captured red output (an ImportError's file path), which no test reads."""
    # What the repository and the nodes are made of (a subclass's own test_cmd too).
    key = tuple(_spec_key(s) for s in nodes)
    if key not in _JOB_REPOS:
        root = Path(tempfile.mkdtemp(prefix="director-job-repo-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _JOB_REPOS[key] = _make_job_repo(root, nodes)
    repo, base, plan_nodes = _JOB_REPOS[key]
    return repo, base, [n.model_copy(deep=True) for n in plan_nodes]


def _spec_key(s: NodeSpec) -> tuple[Any, ...]:
    made_of = (s.id, s.impl_path, s.test_path, s.test_cmd, s.test_body, s.stub)
    return (*made_of, tuple(s.extra_files), tuple(s.depends_on))


def _make_job_repo(root: Path, nodes: list[NodeSpec]) -> tuple[Path, str, list[Node]]:
    files = {"README.md": "# calc\n", "calc/__init__.py": ""}
    for spec in nodes:
        files[spec.impl_path] = spec.stub
    repo = make_repo(root / "repo", files)
    branch = jobs.job_branch(JOB_ID)
    run_git(repo, "branch", branch)
    # Commit the red tests onto the job branch through a temporary worktree.
    wt = root / "author"
    run_git(repo, "worktree", "add", "-q", str(wt), branch)
    plan_nodes = []
    for spec in nodes:
        test_file = wt / spec.test_path
        test_file.parent.mkdir(parents=True, exist_ok=True)
        test_file.write_text(TEST_PRELUDE + spec.test_body)
    run_git(wt, "add", "-A")
    run_git(wt, "commit", "-q", "-m", "red tests")
    for spec in nodes:
        red = subprocess.run(
            spec.test_cmd, shell=True, cwd=wt, capture_output=True, text=True, check=False
        )
        assert red.returncode != 0, f"test of {spec.id} must fail first"
        plan_nodes.append(
            Node(
                id=spec.id,
                title=f"implement {spec.id}",
                spec=f"Implement {spec.id} in {spec.impl_path}.",
                files=[spec.impl_path, *spec.extra_files],
                depends_on=spec.depends_on,
                test_cmd=spec.test_cmd,
                tests=[spec.test_path],
                test_hashes={
                    spec.test_path: hashlib.sha256((wt / spec.test_path).read_bytes()).hexdigest()
                },
                red_output=(red.stdout + red.stderr)[-2000:],
            )
        )
    base = run_git(wt, "rev-parse", "HEAD")
    run_git(repo, "worktree", "remove", "--force", str(wt))
    return repo, base, plan_nodes


def solve(spec: NodeSpec, **extra: Any) -> dict[str, Any]:
    """A script entry that watches the test fail, then writes the solution."""
    return {
        "role": "executor",
        "node": spec.id,
        "steps": [
            {"run": spec.test_cmd},
            {"write": spec.impl_path, "content": spec.solution},
        ],
        "tokens": {"input": 1000, "output": 200},
        "cost": 0.01,
        **extra,
    }


def write_script(store: Store, calls: list[dict[str, Any]]) -> None:
    (store.root / "script.json").write_text(json.dumps({"calls": calls}))


class Recorder:
    def __init__(self) -> None:
        self.events: list[EventBase] = []

    def __call__(self, event: EventBase) -> None:
        self.events.append(event)

    def of(self, kind: type[EventBase]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


def context(store: Store) -> EngineContext:
    return EngineContext.open(store, load_config(store.repo))


def run(store: Store, recorder: Recorder | None = None, **kw: Any) -> RunOutcome:
    ctx = context(store)
    if recorder is not None:
        ctx.bus.subscribe(recorder)
    return asyncio.run(run_job(ctx, **kw))


async def start_run(store: Store, rec: Recorder, **kw: Any) -> asyncio.Task[RunOutcome]:
    """A run of the job as a task of the running loop, its events into ``rec``."""
    ctx = context(store)
    ctx.bus.subscribe(rec)
    return asyncio.create_task(run_job(ctx, **kw))


async def until(rec: Recorder, check: Callable[[EventBase], bool], timeout: float = 20) -> None:
    """Wait until ``rec`` has an event ``check`` accepts (AssertionError after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(check(e) for e in rec.events):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("event never came")


def status_is(node: str, status: str) -> Callable[[EventBase], bool]:
    return lambda e: isinstance(e, NodeStateChanged) and e.node_id == node and e.status == status


def run_until_held(store: Store, node: str) -> None:
    """Run the job (``[review] human`` on) until ``node`` waits for the human, then stop
    the run as Ctrl-C does: the node stays held in state.json."""

    async def stop_while_held() -> None:
        rec = Recorder()
        task = await start_run(store, rec)
        await until(rec, status_is(node, "awaiting_review"))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(stop_while_held())


def job_file(store: Store, path: str) -> str | None:
    proc = subprocess.run(
        ["git", "show", f"{jobs.job_branch(JOB_ID)}:{path}"],
        cwd=store.repo,
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout if proc.returncode == 0 else None


def run_with_a_commit_after_the_gate(store: Store, node: NodeSpec) -> tuple[RunOutcome, Recorder]:
    """Run ``node`` while someone commits a conflicting change onto the job branch once
    attempt 1 passed its gate: after its watched window closed, right before its merge.
    (An executor doing this during its call is rejected instead:
    tests/test_outside_worktree.py.) Attempt 2 is told about the conflict."""
    job_wt = jobs.job_worktree(store)

    class SomeoneCommitsOntoTheJobBranch(Recorder):
        committed = False

        def __call__(self, event: EventBase) -> None:
            super().__call__(event)
            if isinstance(event, GateResult) and event.passed and not self.committed:
                self.committed = True
                (job_wt / node.impl_path).write_text("VERSION = 2\n")
                run_git(job_wt, "commit", "-q", "-am", "someone else")

    write_script(store, [solve(node, prompt_contains="conflicted"), solve(node, attempt=1)])
    rec = SomeoneCommitsOntoTheJobBranch()
    return run(store, rec), rec
