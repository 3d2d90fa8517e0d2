"""Deterministic sample ``.director/`` folders for snapshots, screenshots, pilots and the bench.

Built from the engine's own pydantic models and events, so they are exactly what the
engine writes. Every timestamp derives from ``FIXED_NOW`` so pictures never change.
Test support only: it is not part of the package (``make screenshots`` and
``bench/tui_load.py`` import it from the source tree).
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any, Literal

from director_tui.engine.events import (
    AgentActivity,
    AgentFinished,
    AgentStarted,
    CostUpdate,
    EventBase,
    GateResult,
    NodeMerged,
    NodeStateChanged,
    PlanStageChanged,
    ReviewResult,
    RunStarted,
    TestOutput,
)
from director_tui.engine.jobs import job_branch, job_worktree
from director_tui.engine.models import (
    Approval,
    Node,
    NodeState,
    NodeStatus,
    Plan,
    PlanStage,
    RoleUsage,
    RunState,
    Stage,
)
from director_tui.engine.store import Store, append_jsonl, atomic_write_text

FIXED_NOW = 1_767_000_000.0  # the frozen clock every fixture and snapshot uses
JOB_ID = "20260101-120000-demo"
TASK = "Add a `todo` command-line app: add/list/done/remove items stored in a JSON file."

CONFIG = """\
# demo — scripted agents, no model calls
[tiers]
planner = "scripted/frontier"
test_author = "scripted/frontier"
executor = "scripted/cheap"
explorer = "scripted/cheap"
reviewer = "scripted/mid"
escalation = "scripted/mid"

[limits]
parallel = 3
cost_ceiling_usd = 2.0
max_attempts = 2
"""

RECON = """\
# Recon

- `todo/` is an empty package with `__init__.py`.
- Tests run with `pytest -q`; no CLI framework is installed, use `argparse`.
- Storage: none yet. Python 3.11.
"""

SPEC = """\
# Spec: a `todo` CLI

## Goal
A small command-line todo list: `todo add "text"`, `todo list`, `todo done N`, `todo rm N`.

## Design
- `todo/store.py`: load/save a list of items in `~/.todo.json` (path overridable).
- `todo/model.py`: `Item(id, text, done)` with JSON round-trip.
- `todo/cli.py`: argparse sub-commands calling the store.

## Acceptance criteria
- Every sub-command has a test; `todo list` prints `[x]`/`[ ]` markers.

## Out of scope
Due dates, priorities, sync.
"""

NODES = [
    Node(
        id="model",
        title="Item model with JSON round-trip",
        spec="Create `todo/model.py` with a dataclass `Item(id: int, text: str, done: bool)`.",
        files=["todo/model.py"],
        tests=["tests/test_model.py"],
        test_cmd="pytest -q tests/test_model.py",
        estimated_difficulty="easy",
    ),
    Node(
        id="store",
        title="Load and save items",
        spec="`todo/store.py`: `load(path) -> list[Item]`, `save(path, items)`.",
        files=["todo/store.py"],
        depends_on=["model"],
        tests=["tests/test_store.py"],
        test_cmd="pytest -q tests/test_store.py",
    ),
    Node(
        id="format",
        title="Render the list",
        spec="`todo/format.py`: `render(items) -> str` with `[x]`/`[ ]` markers.",
        files=["todo/format.py"],
        depends_on=["model"],
        tests=["tests/test_format.py"],
        test_cmd="pytest -q tests/test_format.py",
        estimated_difficulty="easy",
    ),
    Node(
        id="cli",
        title="argparse sub-commands",
        spec="`todo/cli.py`: `main(argv)` with add/list/done/rm.",
        files=["todo/cli.py"],
        depends_on=["store", "format"],
        tests=["tests/test_cli.py"],
        test_cmd="pytest -q tests/test_cli.py",
        estimated_difficulty="hard",
    ),
    Node(
        id="entry",
        title="console script",
        spec="Add `todo = todo.cli:main` to pyproject.",
        files=["pyproject.toml"],
        depends_on=["cli"],
        tests=["tests/test_entry.py"],
        test_cmd="pytest -q tests/test_entry.py",
        estimated_difficulty="easy",
    ),
    Node(
        id="docs",
        title="README usage",
        spec="Document the commands in README.md.",
        files=["README.md"],
        depends_on=["model"],
        tests=["tests/test_readme.py"],
        test_cmd="pytest -q tests/test_readme.py",
        estimated_difficulty="easy",
    ),
]


def test_source(node: Node) -> str:
    """A test that is red for the right reason: collected, then failing (no module yet)."""
    name = node.id.replace("-", "_")
    return (
        "import importlib\n\n\n"
        f"def test_{name}_exists() -> None:\n"
        f"    assert importlib.util.find_spec('todo.{name}') is not None\n"
    )


def sample_plan(nodes: list[Node] | None = None) -> Plan:
    plan = Plan(
        job_id=JOB_ID,
        job_branch=job_branch(JOB_ID),
        base_commit="0" * 40,
        task=TASK,
        nodes=[n.model_copy(deep=True) for n in (nodes or NODES)],
    )
    for node in plan.nodes:
        for test in node.tests:
            node.test_hashes[test] = hashlib.sha256(test_source(node).encode()).hexdigest()
        node.red_output = (
            f"F\n_ test_{node.id}_exists _\nImportError: cannot import name '{node.id}'\n"
            "1 failed in 0.02s"
        )
    return plan


def big_plan(count: int, *, seed: int = 7, width: int = 8) -> Plan:
    """A layered random DAG of ``count`` nodes with disjoint allowlists (valid)."""
    rng = random.Random(seed)
    nodes: list[Node] = []
    for i in range(count):
        layer_start = max(0, (i // width - 1) * width)
        pool = [n.id for n in nodes[layer_start : (i // width) * width]]
        deps = sorted(rng.sample(pool, k=min(len(pool), rng.randint(0, 2)))) if pool else []
        nodes.append(
            Node(
                id=f"n{i:03d}",
                title=f"node {i}",
                files=[f"src/n{i:03d}.py"],
                tests=[f"tests/test_n{i:03d}.py"],
                test_cmd=f"pytest -q tests/test_n{i:03d}.py",
                depends_on=deps,
                estimated_difficulty=rng.choice(["easy", "medium", "hard"]),
            )
        )
    return Plan(job_id=JOB_ID, job_branch=job_branch(JOB_ID), task="a large plan", nodes=nodes)


def write_config(repo: Path) -> None:
    path = repo / ".director" / "config.toml"
    if not path.exists():
        atomic_write_text(path, CONFIG)


def write_sample(
    repo: Path,
    stage: Literal["gate1", "gate2", "run", "done"],
    *,
    plan: Plan | None = None,
) -> Store:
    """A ``.director/`` at the given point of the flow, inside an existing git repo."""
    store = Store(repo)
    store.ensure()
    write_config(repo)
    atomic_write_text(store.task, TASK + "\n")
    atomic_write_text(store.recon, RECON)
    atomic_write_text(store.spec_generated, SPEC)
    atomic_write_text(store.spec, SPEC)
    base_commit = "0" * 40
    if (repo / ".git").exists():
        from director_tui.engine import git

        base_commit = git.rev(repo)
    approvals = [Approval(gate="gate1", approver="human", at=FIXED_NOW - 600)]
    stage_value = {
        "gate1": Stage.gate1,
        "gate2": Stage.gate2,
        "run": Stage.approved,
        "done": Stage.approved,
    }[stage]
    if stage == "gate1":
        approvals = []
    elif stage in ("run", "done"):
        approvals.append(Approval(gate="gate2", approver="human", at=FIXED_NOW - 300))
    plan_stage = PlanStage(
        job_id=JOB_ID,
        task=TASK,
        stage=stage_value,
        job_branch=job_branch(JOB_ID),
        base_commit=base_commit,
        base_branch="main",
        approvals=approvals,
        updated_at=FIXED_NOW - 300,
    )
    store.write_model(store.plan_stage, plan_stage)
    events: list[EventBase] = [
        PlanStageChanged(job_id=JOB_ID, stage="gate1", ts=FIXED_NOW - 900, message="spec ready")
    ]
    if stage == "gate1":
        _write_job_branch(store, Plan(job_id=JOB_ID, job_branch=job_branch(JOB_ID)))
    else:
        plan = plan or sample_plan()
        _write_job_branch(store, plan)
        store.write_model(store.plan, plan)
        # what the planner wrote, so the pipeline can tell human edits from its own
        store.write_model(store.root / "plan.generated.json", plan)
        events.append(
            PlanStageChanged(job_id=JOB_ID, stage="gate2", ts=FIXED_NOW - 600, message="tests red")
        )
    if stage in ("run", "done") and plan is not None:
        state, run_events = _run_history(plan, finished=stage == "done")
        store.write_model(store.state, state)
        events.extend(run_events)
        started = [e.node_id for e in run_events if isinstance(e, AgentStarted) and e.node_id]
        write_transcripts(store, plan, list(dict.fromkeys(started)))
    for seq, event in enumerate(events, start=1):
        event.seq = seq
        append_jsonl(store.events, event.model_dump(mode="json"))
    return store


def _write_job_branch(store: Store, plan: Plan) -> None:
    """The job branch with the red tests committed, checked out in the job worktree.

    Outside a git repository (pictures only) the tests are plain files in that folder.
    """
    from director_tui.engine import git
    from director_tui.engine.jobs import ensure_job_worktree

    worktree = job_worktree(store)
    is_repo = (store.repo / ".git").exists()
    if is_repo:
        plan.base_commit = git.rev(store.repo)
        if not git.branch_exists(store.repo, plan.job_branch):
            git.create_branch(store.repo, plan.job_branch, plan.base_commit)
        worktree = ensure_job_worktree(store, plan.job_branch)
    for node in plan.nodes:
        for test in node.tests:
            source = test_source(node)
            atomic_write_text(worktree / test, source)
            node.test_hashes.setdefault(test, hashlib.sha256(source.encode()).hexdigest())
    if is_repo:
        git.commit_all(worktree, "director: red tests (fixture)")


def _second_attempt(node: Node, t: float, cost: float, total: float) -> list[EventBase]:
    """The failed node's first gate, and its second attempt (told what failed)."""
    call = f"executor-{node.id}-2"
    return [
        GateResult(
            node_id=node.id,
            attempt=1,
            passed=False,
            check="tests",
            message="2 failed, 1 passed",
            output_tail=FORMAT_FAILURE,
            ts=t + 5.5,
        ),
        NodeStateChanged(
            node_id=node.id,
            status="running",
            attempt=2,
            max_attempts=2,
            ts=t + 6,
            tier="scripted/cheap",
            message="attempt 2",
        ),
        AgentStarted(
            call_id=call,
            role="executor",
            tier="scripted/cheap",
            node_id=node.id,
            attempt=2,
            scripted=True,
            ts=t + 6.2,
        ),
        AgentFinished(
            call_id=call,
            role="executor",
            tier="scripted/cheap",
            node_id=node.id,
            exit_reason="ok",
            input_tokens=2100,
            output_tokens=450,
            cost_usd=cost,
            duration_secs=1.2,
            ts=t + 7.5,
        ),
        CostUpdate(total_usd=round(total, 4), ceiling_usd=2.0, node_id=node.id, ts=t + 7.5),
    ]


FORMAT_FAILURE = r"""F.F                                                                      [100%]
=================================== FAILURES ===================================
_____________________________ test_render_marks_done ___________________________

    def test_render_marks_done() -> None:
        items = [Item("a", done=True), Item("b")]
>       assert render(items) == "[x] a\n[ ] b"
E       AssertionError: assert '[ ] a\n[ ] b' == '[x] a\n[ ] b'
E         - [x] a
E         + [ ] a

tests/test_format.py:9: AssertionError
_____________________________ test_render_empty ________________________________

    def test_render_empty() -> None:
>       assert render([]) == ""
E       AssertionError: assert '\n' == ''

tests/test_format.py:13: AssertionError
=========================== short test summary info ============================
FAILED tests/test_format.py::test_render_marks_done - AssertionError
FAILED tests/test_format.py::test_render_empty - AssertionError
2 failed, 1 passed in 0.03s"""


def write_transcripts(store: Store, plan: Plan, started: list[str]) -> None:
    """Each sample call's transcript, as OpenCode's ``--format json`` lines (what
    `opencode run` prints), so the node details read a real CLI's transcript."""

    def step(tokens_in: int, tokens_out: int, cost: float) -> dict[str, Any]:
        tokens = {"input": tokens_in, "output": tokens_out, "reasoning": 0}
        return {"type": "step_finish", "part": {"tokens": tokens | {"cache": {}}, "cost": cost}}

    def tool(name: str, tool_input: dict[str, Any], output: str = "") -> dict[str, Any]:
        state = {"status": "completed", "input": tool_input, "output": output}
        return {"type": "tool_use", "part": {"tool": name, "state": state}}

    def text(words: str) -> dict[str, Any]:
        return {"type": "text", "part": {"text": words}}

    nodes = {node.id: node for node in plan.nodes}
    calls: dict[str, list[dict[str, Any]]] = {}
    for node_id in started:
        node = nodes[node_id]
        red = FORMAT_FAILURE if node_id == "format" else "F\n1 failed in 0.02s"
        calls[f"executor-{node_id}"] = [
            {"type": "step_start", "part": {}},
            tool("read", {"filePath": node.tests[0]}),
            tool("bash", {"command": node.test_cmd}, red),
            tool("write", {"filePath": node.files[0], "content": "..."}),
            text(f"Implemented {node.title.lower()}: the tests I watched fail now pass."),
            step(2100, 450, 0.006),
        ]
    if "format" in started:
        calls["executor-format-2"] = [
            {"type": "step_start", "part": {}},
            text("The gate says `render` never marks done items. Fixing the marker:"),
            tool("edit", {"filePath": "todo/format.py", "oldString": "[ ]", "newString": "[x]"}),
            tool("bash", {"command": "pytest -q tests/test_format.py"}, FORMAT_FAILURE),
            text('- `[x]` for done items\n- an empty list renders as `""`'),
            step(2100, 450, 0.006),
        ]
    for call_id, lines in calls.items():
        atomic_write_text(
            store.logs / f"{call_id}.jsonl", "".join(json.dumps(line) + "\n" for line in lines)
        )


def _run_history(plan: Plan, *, finished: bool) -> tuple[RunState, list[EventBase]]:
    """A run in progress: some nodes merged, one failed once, some running, some pending."""
    t0 = FIXED_NOW - 240
    state = RunState(job_id=JOB_ID, job_branch=plan.job_branch, started_at=t0)
    events: list[EventBase] = [
        RunStarted(
            job_id=JOB_ID,
            job_branch=plan.job_branch,
            node_ids=plan.ids,
            parallel=3,
            ceiling_usd=2.0,
            tiers={"executor": "scripted/cheap", "escalation": "scripted/mid"},
            scripted=True,
            ts=t0,
        )
    ]
    script: dict[str, str] = {
        "model": "done",
        "store": "done",
        "format": "failed",
        "docs": "running",
        "cli": "pending",
        "entry": "pending",
    }
    if finished:
        script = dict.fromkeys(script, "done") | {"format": "failed", "cli": "blocked"}
        script["entry"] = "blocked"
    total = 0.0
    t = t0
    for node in plan.nodes:
        outcome = script.get(node.id, "pending")
        st = NodeState(tier="scripted/cheap")
        state.nodes[node.id] = st
        if outcome == "pending":
            continue
        t += 7
        call = f"executor-{node.id}"
        st.status = NodeStatus.running
        st.attempts = 1
        st.started_at = t
        events += [
            NodeStateChanged(
                node_id=node.id,
                status="running",
                attempt=1,
                max_attempts=2,
                ts=t,
                tier="scripted/cheap",
                message="attempt 1",
            ),
            AgentStarted(
                call_id=call,
                role="executor",
                tier="scripted/cheap",
                node_id=node.id,
                attempt=1,
                scripted=True,
                ts=t + 0.5,
            ),
            AgentActivity(
                call_id=call,
                role="executor",
                node_id=node.id,
                kind="tool",
                tool="bash",
                summary=node.test_cmd,
                ts=t + 1,
            ),
            TestOutput(node_id=node.id, line="1 failed in 0.02s", ts=t + 2),
            AgentActivity(
                call_id=call,
                role="executor",
                node_id=node.id,
                kind="tool",
                tool="write",
                summary=node.files[0],
                ts=t + 3,
            ),
            AgentActivity(
                call_id=call,
                role="executor",
                node_id=node.id,
                kind="text",
                summary=f"Implemented {node.title.lower()}.",
                ts=t + 4,
            ),
        ]
        if outcome == "running":
            continue
        cost = 0.012 if node.estimated_difficulty == "easy" else 0.031
        usage = RoleUsage(input_tokens=4200, output_tokens=900, cost_usd=cost, calls=1)
        st.usage["executor"] = usage
        calls = 2 if outcome == "failed" else 1  # the failed node's two attempts share it
        total += cost / calls
        events += [
            AgentFinished(
                call_id=call,
                role="executor",
                tier="scripted/cheap",
                node_id=node.id,
                exit_reason="ok",
                input_tokens=4200 // calls,
                output_tokens=900 // calls,
                cost_usd=cost / calls,
                duration_secs=4.0,
                ts=t + 5,
            ),
            CostUpdate(total_usd=round(total, 4), ceiling_usd=2.0, node_id=node.id, ts=t + 5),
        ]
        if outcome == "failed":
            total += cost / calls
            events += _second_attempt(node, t, cost / calls, total)
            st.status = NodeStatus.failed
            st.attempts = 2
            st.finished_at = t + 9
            st.last_error = "test_cmd failed: 1 failed, 2 passed"
            events += [
                GateResult(
                    node_id=node.id,
                    attempt=2,
                    passed=False,
                    check="tests",
                    message="1 failed, 2 passed",
                    output_tail="E   AssertionError: '[ ] a' != '[x] a'",
                    ts=t + 8,
                ),
                NodeStateChanged(
                    node_id=node.id,
                    status="failed",
                    attempt=2,
                    max_attempts=2,
                    tier="scripted/cheap",
                    message="attempts exhausted",
                    ts=t + 9,
                ),
            ]
        elif outcome == "blocked":
            st.status = NodeStatus.blocked
            events.append(
                NodeStateChanged(
                    node_id=node.id,
                    status="blocked",
                    message="depends on failed 'format'",
                    ts=t + 9,
                )
            )
        else:
            st.status = NodeStatus.done
            st.finished_at = t + 8
            st.merge_commit = hashlib.sha1(node.id.encode()).hexdigest()
            events += [
                GateResult(node_id=node.id, attempt=1, passed=True, check="tests", ts=t + 6),
                ReviewResult(
                    node_id=node.id,
                    stage="one",
                    verdict="pass",
                    blocking=False,
                    summary="gate passed",
                    ts=t + 6.5,
                ),
                NodeMerged(node_id=node.id, commit=st.merge_commit, ts=t + 7),
                NodeStateChanged(
                    node_id=node.id,
                    status="done",
                    attempt=1,
                    max_attempts=2,
                    tier="scripted/cheap",
                    message="merged",
                    ts=t + 8,
                ),
            ]
    state.cost_usd = round(total, 4)
    return state, events


BENCH_ROWS: list[dict[str, Any]] = [
    {
        "profile": "all-frontier",
        "n_nodes": 6,
        "done": 6,
        "executor_pct": 100.0,
        "escalated": 0,
        "review_pct": 17.0,
        "integration_ok": True,
        "run_cost": 1.84,
        "run_cost_std": 0.21,
        "wall_secs": 312.0,
        "error": None,
    },
    {
        "profile": "cheap-cloud",
        "n_nodes": 6,
        "done": 6,
        "executor_pct": 83.0,
        "escalated": 1,
        "review_pct": 33.0,
        "integration_ok": True,
        "run_cost": 0.29,
        "run_cost_std": 0.08,
        "wall_secs": 401.0,
        "error": None,
    },
    {
        "profile": "local-first",
        "n_nodes": 6,
        "done": 5,
        "executor_pct": 67.0,
        "escalated": 2,
        "review_pct": 50.0,
        "integration_ok": False,
        "run_cost": 0.06,
        "run_cost_std": 0.02,
        "wall_secs": 655.0,
        "error": None,
    },
]


# Three repeats per profile: (run cost, acceptance tests passed %) of each run.
BENCH_RUNS: dict[str, list[tuple[float, float]]] = {
    "all-frontier": [(1.63, 100.0), (1.84, 100.0), (2.05, 100.0)],
    "cheap-cloud": [(0.21, 100.0), (0.29, 100.0), (0.37, 100.0)],
    "local-first": [(0.04, 100.0), (0.06, 83.33), (0.08, 66.67)],
}


def write_bench_summary(store: Store) -> None:
    """A finished bench of three profiles × three runs: director-cli's field names, the
    spread and every run (what the chart draws), the verdicts against all-frontier."""
    import statistics

    rows = [dict(r) for r in BENCH_ROWS]
    base_cost = float(rows[0]["run_cost"])
    runs = []
    for row in rows:
        measured = BENCH_RUNS[str(row["profile"])]
        qualities = [q for _, q in measured]
        row["acceptance_pct"] = round(statistics.fmean(qualities), 2)
        row["acceptance_pct_std"] = round(statistics.stdev(qualities), 2)
        row["run_cost_min"] = min(c for c, _ in measured)
        row["run_cost_max"] = max(c for c, _ in measured)
        row["repeats"] = row["runs_ok"] = len(measured)
        if row["profile"] != "all-frontier":
            cut = 100.0 * (1 - float(row["run_cost"]) / base_cost)
            row["cost_cut_pct"] = round(cut, 2)
            row["cut_target_met"] = cut > 80
            row["quality_held"] = row["acceptance_pct"] >= 100.0
        runs += [
            {"profile": row["profile"], "repeat": k, "run_cost": cost, "acceptance_pct": quality}
            for k, (cost, quality) in enumerate(measured, 1)
        ]
    summary = {
        "bench_id": "20251231-090000-ab12",
        "status": "finished",
        "task": TASK,
        "plan_profile": "all-frontier",
        "plan_cost": 0.42,
        "job_id": JOB_ID,
        "repeat": 3,
        "baseline": "all-frontier",
        "cut_target_pct": 80.0,
        "rows": rows,
        "runs": runs,
    }
    older = dict(summary, bench_id="20251230-170000-cd34", status="interrupted")
    atomic_write_text(store.bench / "summary.json", json.dumps(summary, indent=2) + "\n")
    for entry in (summary, older):
        folder = store.bench / str(entry["bench_id"])
        atomic_write_text(folder / "summary.json", json.dumps(entry, indent=2) + "\n")


def init_sample_repo(path: Path) -> Path:
    """A small git repository with one commit (for screenshots and the load bench)."""
    import os
    import subprocess

    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "director",
        "GIT_AUTHOR_EMAIL": "director@localhost",
        "GIT_COMMITTER_NAME": "director",
        "GIT_COMMITTER_EMAIL": "director@localhost",
    }
    path.mkdir(parents=True, exist_ok=True)
    (path / "todo").mkdir(exist_ok=True)
    (path / "todo" / "__init__.py").write_text("")
    (path / "README.md").write_text("# todo\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "initial"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True)
    return path
