"""`director plan` end to end: the REAL OpenCode binary against the fake model server.

A small Python repo; every planning role runs on OpenCode (explorer, brainstorm and the
planner share the ``planner`` queue of the fake server, in call order). The command runs
as a subprocess, exactly as a user starts it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import OpenCodeEnv, OpenCodeSetup

from director_tui.engine import git
from director_tui.engine.models import Plan, PlanStage, Stage
from director_tui.engine.store import read_jsonl
from tests.conftest import make_repo
from tests.plan_helpers import DIV, MUL, RED_DIV, RED_MUL, SAMPLE_FILES, SPEC, user_view

pytestmark = pytest.mark.e2e

RECON = "## Layout\n- calc/ops.py: add(a: int, b: int) -> int\n\n## Tests and tooling\npytest\n"
PLAN = {"nodes": [MUL, DIV]}


def text(value: str, tokens: int = 400) -> dict[str, Any]:
    return {"text": value, "usage": {"input": tokens, "output": 60}}


def write(path: str, content: str) -> list[dict[str, Any]]:
    return [
        {
            "tool_calls": [
                {"name": "write", "arguments": {"filePath": "{cwd}/" + path, "content": content}}
            ],
            "usage": {"input": 900, "output": 80},
        },
        text("Wrote the tests; they fail until the node is implemented."),
    ]


def script() -> dict[str, list[dict[str, Any]]]:
    """Turns per model. The planner queue serves brainstorm, then planner."""
    return {
        "explorer": [text(RECON)],
        "planner": [text(SPEC), text("Here is the plan:\n```json\n" + json.dumps(PLAN) + "\n```")],
        "test_author": [*write("tests/test_mul.py", RED_MUL), *write("tests/test_div.py", RED_DIV)],
    }


def configure(repo: Path, setup: OpenCodeSetup) -> None:
    """The repo's .director/config.toml from the fixture's config (tiers and limits)."""
    tiers = "".join(f'{role} = "{tier}"\n' for role, tier in setup.config.tiers)
    limits = setup.config.limits
    (repo / ".director").mkdir(exist_ok=True)
    (repo / ".director" / "config.toml").write_text(
        f"[tiers]\n{tiers}\n[limits]\n"
        f"idle_timeout_secs = {limits.idle_timeout_secs}\n"
        f"node_timeout_secs = {limits.node_timeout_secs}\n"
        "gate_timeout_secs = 120\nplan_retries = 1\n"
        # The fake server plays one model's turns in arrival order: two test authors at
        # once would take each other's turns. Parallel authoring is tested with the
        # scripted provider (tests/test_plan_parallel.py).
        "parallel = 1\n"
    )


def director(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "director_tui", *args, "--repo", str(repo), "--no-tui"],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ),  # the fixture's OpenCode variables are set here
        check=False,
    )


def _stage(repo: Path) -> PlanStage:
    return PlanStage.model_validate_json((repo / ".director" / "plan_stage.json").read_text())


def test_plan_gate1_then_gate2_with_real_opencode(
    opencode_env: OpenCodeEnv, tmp_path: Path
) -> None:
    setup = opencode_env(script())
    repo = make_repo(tmp_path / "repo", SAMPLE_FILES)
    configure(repo, setup)
    before = user_view(repo)

    first = director(repo, "plan", "add mul to calc.ops and a new calc.div module")
    assert first.returncode == 3, first.stdout + first.stderr
    assert "Gate 1" in first.stdout
    spec = (repo / ".director" / "spec.md").read_text()
    assert "## Acceptance criteria" in spec
    assert (repo / ".director" / "recon.md").read_text().startswith("## Layout")
    assert user_view(repo) == before

    second = director(repo, "plan", "--continue")
    assert second.returncode == 3, second.stdout + second.stderr
    assert "Gate 2" in second.stdout
    stage = _stage(repo)
    assert stage.stage == Stage.gate2
    plan = Plan.model_validate_json((repo / ".director" / "plan.json").read_text())
    assert plan.ids == ["mul", "div"]
    for node in plan.nodes:
        assert node.red_output and "failed" in node.red_output
        for path in node.tests:
            committed = git.file_at(repo, stage.job_branch, path)
            assert committed is not None
            assert node.test_hashes[path] == hashlib.sha256(committed).hexdigest()
    assert user_view(repo) == before
    # every call is priced in the ledger by role (OpenCode reports the cost)
    ledger = read_jsonl(repo / ".director" / "costs.jsonl")
    assert [r["role"] for r in ledger] == [
        "explorer",
        "brainstorm",
        "planner",
        "test_author",
        "test_author",
    ]
    assert all(r["cost_usd"] > 0 for r in ledger)


def test_plan_auto_no_critique_straight_through(opencode_env: OpenCodeEnv, tmp_path: Path) -> None:
    setup = opencode_env(script())
    repo = make_repo(tmp_path / "repo", SAMPLE_FILES)
    configure(repo, setup)
    done = director(repo, "plan", "add mul and div", "--auto", "--no-critique")
    assert done.returncode == 0, done.stdout + done.stderr
    stage = _stage(repo)
    assert stage.stage == Stage.approved
    assert [a.approver for a in stage.approvals] == ["auto", "auto"]
    assert git.file_at(repo, stage.job_branch, "tests/test_div.py") == RED_DIV.encode()
