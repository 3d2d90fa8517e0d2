"""Control requests from inside an attempt, with the REAL OpenCode binary: its bash tool
runs `director skip <other node>` and writes a request file into `.director/control/`.
Both are refused, and the other node still runs and merges."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import OpenCodeEnv
from test_run_e2e import go, solve_turns, start

from director_tui.engine.events import ControlApplied
from director_tui.engine.models import NodeStatus, RunState
from director_tui.engine.run.requests import FILE_DROP_REFUSAL
from tests.run_fixture import sample_nodes

pytestmark = pytest.mark.e2e


def bash_turn(command: str) -> dict[str, Any]:
    return {
        "tool_calls": [{"name": "bash", "arguments": {"command": command, "description": "x"}}],
        "usage": {"input": 500, "output": 20},
    }


def test_an_agents_director_skip_and_request_file_are_refused(
    tmp_path: Path, opencode_env: OpenCodeEnv
) -> None:
    add, mul, _ = sample_nodes()
    repo = tmp_path / "repo"
    request = json.dumps({"action": "skip", "node_id": "mul", "request_id": "agent-file"})
    ctx, rec, _setup = start(
        tmp_path,
        opencode_env,
        {
            "executor": [
                bash_turn(f"{sys.executable} -m director_tui skip mul --repo {repo}"),
                bash_turn(f"echo '{request}' > {repo}/.director/control/0-agent.json"),
                *solve_turns(add),
                *solve_turns(mul),
            ]
        },
        nodes=[add, mul],
        # the sender check itself: in the sandbox neither the socket's repo nor the
        # control folder is visible (tests/test_sandbox.py)
        config={"sandbox": {"mode": "off"}},
    )
    outcome = go(ctx)
    assert outcome.success, outcome.message
    assert outcome.done == ["add", "mul"] and not outcome.skipped
    refusals = [e for e in rec.of(ControlApplied) if not e.ok]
    assert [(e.action, e.node_id) for e in refusals] == [("skip", "mul"), ("skip", "mul")]
    assert "control requests must come from you" in refusals[0].message
    assert any(e.request_id == "agent-file" and FILE_DROP_REFUSAL in e.message for e in refusals)
    state = ctx.store.read_model(ctx.store.state, RunState)
    assert state is not None
    assert state.nodes["mul"].status == NodeStatus.done
    assert len(state.nodes["mul"].refused_controls) == 2
    assert state.nodes["add"].refused_controls  # the sender's record names it too
