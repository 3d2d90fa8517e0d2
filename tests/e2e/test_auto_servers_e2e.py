"""`director auto` on persistent OpenCode servers, end to end: the REAL OpenCode binary
against the fake model server, plan and run in one command at ``--parallel 2``.

The planning roles that only read talk to one read-only server (which also answers the
model check); the test authors of the two nodes work in slot worktrees, each slot with a
server of its own (one slot or two: with the fake model's instant answers, sessions end
sooner than a server starts, so they may take turns in one — ``pick_slot``, tested in
tests/test_agent_servers.py); the run's attempts then use those very slots and servers —
each server is started once for the whole command."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import OpenCodeEnv
from test_plan_e2e import RECON, text, write

from director_tui.engine import git
from director_tui.engine.models import PlanStage, Stage
from director_tui.engine.store import read_jsonl
from tests.cli import director_on
from tests.conftest import make_repo
from tests.plan_helpers import DIV, MUL, RED_DIV, RED_MUL, SAMPLE_FILES, SPEC

pytestmark = pytest.mark.e2e

OPS = "def add(a: int, b: int) -> int:\n    return a + b\n\n\ndef mul(a: int, b: int) -> int:\n    return a * b\n"
DIVISION = "def div(a: int, b: int) -> float:\n    return a / b\n"


def solve(path: str, content: str) -> list[dict[str, Any]]:
    return [
        {
            "tool_calls": [
                {"name": "write", "arguments": {"filePath": "{cwd}/" + path, "content": content}}
            ],
            "usage": {"input": 900, "output": 80},
        },
        text("Implemented; the tests pass."),
    ]


def script() -> dict[str, list[dict[str, Any]]]:
    plan = {"nodes": [MUL, DIV]}
    return {
        "explorer": [text(RECON)],
        "planner": [text(SPEC), text("```json\n" + json.dumps(plan) + "\n```")],
        # Side by side: each node's test author and executor get their own turns.
        "test_author|tests for node `mul`": write("tests/test_mul.py", RED_MUL),
        "test_author|tests for node `div`": write("tests/test_div.py", RED_DIV),
        "executor|Implement mul in": solve("calc/ops.py", OPS),
        "executor|Implement div in": solve("calc/div.py", DIVISION),
    }


def test_auto_plans_and_runs_on_servers_each_started_once(
    opencode_env: OpenCodeEnv, tmp_path: Path
) -> None:
    setup = opencode_env(script())
    repo = make_repo(tmp_path / "repo", SAMPLE_FILES)
    tiers = "".join(f'{role} = "{tier}"\n' for role, tier in setup.config.tiers)
    (repo / ".director").mkdir(exist_ok=True)
    (repo / ".director" / "config.toml").write_text(
        f"[tiers]\n{tiers}\n[limits]\nparallel = 2\nidle_timeout_secs = 60\n"
        "node_timeout_secs = 120\ngate_timeout_secs = 120\nplan_retries = 1\nflake_runs = 1\n"
        "\n[review]\nstage_two = false\n"
    )

    done = director_on(repo, "auto", "add mul and div", "--no-critique", "--parallel", "2")

    assert done.returncode == 0, done.stdout + done.stderr
    stage = PlanStage.model_validate_json((repo / ".director" / "plan_stage.json").read_text())
    assert stage.stage == Stage.approved
    assert git.file_at(repo, stage.job_branch, "calc/div.py") == DIVISION.encode()
    assert git.file_at(repo, stage.job_branch, "tests/test_mul.py") == RED_MUL.encode()
    # One start per server for plan and run together: the planner's, and one per slot
    # (test authors, then the run's attempts, in the same worktree).
    logs = repo / ".director" / "logs"
    starts = {
        path.stem: len(re.findall(r"listening on http", path.read_text()))
        for path in logs.glob("opencode-server-*.out")
    }
    slots = {name.removeprefix("opencode-server-slot-") for name in starts} - {
        "opencode-server-planner"
    }
    assert slots in ({"0"}, {"0", "1"}), starts
    assert set(starts.values()) == {1}, starts
    # The test authors and the executors worked in the worktrees of those slots.
    cwds = {r.model: set() for r in setup.server.requests}
    for r in setup.server.requests:
        cwds[r.model].add(Path(r.cwd).name)
    served = {f"_slot-{k}" for k in slots}
    assert cwds["test_author"] <= served, (cwds, starts)
    assert cwds["executor"] <= served, (cwds, starts)
    assert cwds["explorer"] == {"_job"}, cwds
    # Every call priced, named by its role and node, as with per-call CLIs.
    ledger = read_jsonl(repo / ".director" / "costs.jsonl")
    roles = [(r["role"], r.get("node_id")) for r in ledger]
    assert roles[:3] == [("explorer", None), ("brainstorm", None), ("planner", None)]
    assert sorted(roles[3:5]) == [("test_author", "div"), ("test_author", "mul")]
    assert sorted(roles[5:]) == [("executor", "div"), ("executor", "mul")]
    assert all(r["cost_usd"] > 0 for r in ledger)
