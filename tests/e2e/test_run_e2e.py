"""The run engine end to end: the REAL OpenCode binary against the fake model server.

Each test builds the sample job (``tests/run_fixture.py``: a repo, a job branch with
committed red tests, an approved plan) and runs it with every role on OpenCode. Nodes run
one at a time (``parallel=1``) so the server's per-model turn queues are consumed in a
known order: the scheduler starts the node with the longest remaining chain first (mul,
then add, then power).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import OpenCodeEnv

from director_tui.engine.context import EngineContext
from director_tui.engine.events import GateResult
from director_tui.engine.models import RunState
from director_tui.engine.run import RunOutcome, run_job
from director_tui.engine.store import read_jsonl
from tests.run_fixture import NodeSpec, Recorder, build_job, job_file, sample_nodes

pytestmark = pytest.mark.e2e

LIMITS = {"flake_runs": 1, "gate_timeout_secs": 60}


def solve_turns(spec: NodeSpec) -> list[dict[str, Any]]:
    """Watch it fail, read the stub, write the solution, report."""
    return [
        {
            "tool_calls": [
                {
                    "name": "bash",
                    "arguments": {"command": spec.test_cmd, "description": "run the tests"},
                }
            ],
            "usage": {"input": 900, "output": 40},
        },
        {
            "tool_calls": [{"name": "read", "arguments": {"filePath": "{cwd}/" + spec.impl_path}}],
            "usage": {"input": 1000, "output": 30},
        },
        {
            "tool_calls": [
                {
                    "name": "write",
                    "arguments": {"filePath": "{cwd}/" + spec.impl_path, "content": spec.solution},
                }
            ],
            "usage": {"input": 1100, "output": 80},
        },
        {"text": "Implemented; the tests pass.", "usage": {"input": 1200, "output": 10}},
    ]


def write_turns(path: str, content: str, final: str = "done") -> list[dict[str, Any]]:
    return [
        {
            "tool_calls": [
                {"name": "write", "arguments": {"filePath": "{cwd}/" + path, "content": content}}
            ],
            "usage": {"input": 800, "output": 50},
        },
        {"text": final, "usage": {"input": 900, "output": 5}},
    ]


def read_then_write(path: str, content: str) -> list[dict[str, Any]]:
    return [
        {
            "tool_calls": [{"name": "read", "arguments": {"filePath": "{cwd}/" + path}}],
            "usage": {"input": 700, "output": 20},
        },
        *write_turns(path, content),
    ]


def start(
    tmp_path: Path,
    opencode_env: OpenCodeEnv,
    script: dict[str, list[dict[str, Any]]],
    nodes: list[NodeSpec] | None = None,
    **options: Any,
) -> tuple[EngineContext, Recorder, Any]:
    store = build_job(tmp_path, nodes)
    limits = {**LIMITS, **options.pop("limits", {})}
    setup = opencode_env(script, config={"limits": limits, **options.pop("config", {})}, **options)
    ctx = EngineContext.open(store, setup.config)
    rec = Recorder()
    ctx.bus.subscribe(rec)
    return ctx, rec, setup


def go(ctx: EngineContext, **kw: Any) -> RunOutcome:
    return asyncio.run(run_job(ctx, parallel=1, **kw))


def test_three_node_plan_runs_to_green_and_merges(
    tmp_path: Path, opencode_env: OpenCodeEnv
) -> None:
    add, mul, power = sample_nodes()
    ctx, _rec, _setup = start(
        tmp_path,
        opencode_env,
        {"executor": [*solve_turns(mul), *solve_turns(add), *solve_turns(power)]},
        config={"gates": {"all": "python tests/check_power.py && python tests/check_add.py"}},
    )
    outcome = go(ctx)
    assert outcome.success, outcome.message
    assert outcome.done == ["add", "mul", "power"]
    for spec in (add, mul, power):
        assert job_file(ctx.store, spec.impl_path) == spec.solution
    state = ctx.store.read_model(ctx.store.state, RunState)
    assert state is not None and state.integration == "passed"
    assert all(st.watch_it_fail == "observed" for st in state.nodes.values())
    assert state.cost_usd > 0  # OpenCode reported a real cost from the fake prices
    costs = read_jsonl(ctx.store.costs)
    assert {c["node_id"] for c in costs} == {"add", "mul", "power"}
    assert all(not c["scripted"] for c in costs)


def test_executor_editing_a_test_is_rejected_by_hash(
    tmp_path: Path, opencode_env: OpenCodeEnv
) -> None:
    add = sample_nodes()[0]
    ctx, rec, setup = start(
        tmp_path,
        opencode_env,
        {
            "executor": [
                *read_then_write(add.test_path, "print('green, honest')\n"),
                *solve_turns(add),
            ]
        },
        nodes=[add],
    )
    outcome = go(ctx)
    assert outcome.success, outcome.message
    checks = [g.check for g in rec.of(GateResult)]
    assert checks == ["hashes", "passed"]
    assert "from calc.add import add" in (job_file(ctx.store, add.test_path) or "")
    # The second attempt was told why the first was rejected.
    second_prompt = _first_user_text(setup.server.requests, "executor", nth_session=1)
    assert "was modified" in second_prompt


def test_write_outside_the_allowlist_is_rejected(tmp_path: Path, opencode_env: OpenCodeEnv) -> None:
    add = sample_nodes()[0]
    ctx, rec, _setup = start(
        tmp_path,
        opencode_env,
        {
            "executor": [
                *write_turns("notes.txt", "not on the list\n"),
                *solve_turns(add),
            ]
        },
        nodes=[add],
    )
    outcome = go(ctx)
    assert outcome.success, outcome.message
    first = rec.of(GateResult)[0]
    assert first.check == "allowlist" and "notes.txt" in first.message
    assert job_file(ctx.store, "notes.txt") is None


def test_second_attempt_gets_the_failing_output(tmp_path: Path, opencode_env: OpenCodeEnv) -> None:
    add = sample_nodes()[0]
    wrong = "def add(a, b):\n    return a - b\n"
    ctx, rec, setup = start(
        tmp_path,
        opencode_env,
        {"executor": [*read_then_write(add.impl_path, wrong), *solve_turns(add)]},
        nodes=[add],
    )
    outcome = go(ctx)
    assert outcome.success, outcome.message
    assert [g.check for g in rec.of(GateResult)] == ["tests", "passed"]
    second_prompt = _first_user_text(setup.server.requests, "executor", nth_session=1)
    assert "AssertionError" in second_prompt and "exited with code 1" in second_prompt


def test_hanging_agent_is_killed_at_the_idle_limit_and_retried(
    tmp_path: Path, opencode_env: OpenCodeEnv
) -> None:
    add = sample_nodes()[0]
    ctx, _rec, setup = start(
        tmp_path,
        opencode_env,
        {
            "executor": [
                {"text": "let me think about this " * 4, "hang_after": 2},
                *solve_turns(add),
            ]
        },
        nodes=[add],
        # The idle clock of a session on a slot server starts once the prompt is sent to
        # the started, primed server: its start-up is not counted. The second attempt's
        # events come 0.1-0.3 s apart at load 1, so 8 s leaves it a wide margin under load.
        idle_timeout_secs=8,
    )
    outcome = go(ctx)
    assert outcome.success, outcome.message
    state = ctx.store.read_model(ctx.store.state, RunState)
    assert state is not None and state.nodes["add"].attempts == 2
    second_prompt = _first_user_text(setup.server.requests, "executor", nth_session=1)
    assert "idle" in second_prompt


def test_exhausted_attempts_escalate_once(tmp_path: Path, opencode_env: OpenCodeEnv) -> None:
    add = sample_nodes()[0]
    wrong = "def add(a, b):\n    return 0\n"
    ctx, _rec, _setup = start(
        tmp_path,
        opencode_env,
        {
            "executor": read_then_write(add.impl_path, wrong),
            "escalation": solve_turns(add),
            # Escalated nodes always get the stage-two review.
            "reviewer": [{"text": '{"verdict": "pass", "summary": "correct", "findings": []}'}],
        },
        nodes=[add],
        limits={"max_attempts": 1},
    )
    outcome = go(ctx)
    assert outcome.success, outcome.message
    assert outcome.escalated == ["add"]
    state = ctx.store.read_model(ctx.store.state, RunState)
    assert state is not None
    st = state.nodes["add"]
    assert st.attempts == 2 and st.tier == "opencode/fake/escalation"
    assert st.stage_two and st.review is not None and st.review.verdict == "pass"
    assert set(st.usage) == {"executor", "escalation", "reviewer"}


def _first_user_text(requests: list[Any], model: str, *, nth_session: int) -> str:
    """The prompt of the ``nth_session``-th agent session (0-based) on ``model``."""
    sessions: list[str] = []
    for req in requests:
        if req.model != model:
            continue
        users = [m for m in req.body.get("messages", []) if m.get("role") == "user"]
        if len(users) == 1 and not any(m.get("role") == "tool" for m in req.body["messages"]):
            content = users[0].get("content")
            text = (
                content
                if isinstance(content, str)
                else " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            )
            sessions.append(text)
    return sessions[nth_session] if len(sessions) > nth_session else ""
