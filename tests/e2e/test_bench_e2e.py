"""`director bench` end to end: the REAL OpenCode binary against the fake model server.

A small repo and two profiles that differ only in the executor model (``frontier`` at
$5/$25 per million tokens, ``cheap`` at $0.25/$1.25), ``--repeat 2``. Planning runs once
on OpenCode (explorer; brainstorm, the critic twice and the planner share the
``planner`` queue; the test author writes each node's test). Runs go one after another,
so each model's turn queue is consumed in a known
order: runs round-robin (frontier #1, cheap #1, frontier #2, cheap #2). The one node,
``add``, the cheap model gets wrong once in its first run only, so its cost varies
between repeats.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import OpenCodeEnv

from director_tui.engine import git
from director_tui.engine.store import read_jsonl
from tests.conftest import make_repo
from tests.test_bench import ADD_OK, ADD_WRONG, SPEC, TEST_ADD, node

pytestmark = pytest.mark.e2e

PRICES = {"frontier": (5.0, 25.0), "cheap": (0.25, 1.25)}
# One node keeps the agent sessions (≈3-4 s of OpenCode start-up each) to eleven.
PLAN = {"nodes": [node("add")]}


def text(value: str, usage: tuple[int, int] = (400, 60)) -> dict[str, Any]:
    return {"text": value, "usage": {"input": usage[0], "output": usage[1]}}


def write(path: str, content: str, usage: tuple[int, int]) -> list[dict[str, Any]]:
    return [
        {
            "tool_calls": [
                {"name": "write", "arguments": {"filePath": "{cwd}/" + path, "content": content}}
            ],
            "usage": {"input": usage[0], "output": usage[1]},
        },
        text("done", (usage[0] + 100, 5)),
    ]


FRONTIER = (2000, 400)
CHEAP = (4000, 800)


def script() -> dict[str, list[dict[str, Any]]]:
    return {
        "explorer": [text("## Layout\ncalc/ is an empty package\n")],
        "planner": [
            text(SPEC),  # brainstorm
            text(SPEC),  # critic at Gate 1
            text("```json\n" + json.dumps(PLAN) + "\n```"),  # planner
            text(json.dumps(PLAN)),  # critic at Gate 2
        ],
        "test_author": write("tests/check_add.py", TEST_ADD, (900, 80)),
        "frontier": write("calc/add.py", ADD_OK, FRONTIER) * 2,
        "cheap": [
            *write("calc/add.py", ADD_WRONG, CHEAP),  # run 1, attempt 1
            *write("calc/add.py", ADD_OK, CHEAP),  # run 1, attempt 2
            *write("calc/add.py", ADD_OK, CHEAP),  # run 2
        ],
    }


def profile(executor: str) -> str:
    tiers = {
        "planner": "opencode/fake/planner",
        "test_author": "opencode/fake/test_author",
        "explorer": "opencode/fake/explorer",
        "reviewer": "opencode/fake/reviewer",
        "escalation": "opencode/fake/escalation",
        "executor": executor,
    }
    return (
        "[tiers]\n"
        + "".join(f'{k} = "{v}"\n' for k, v in tiers.items())
        + "\n[limits]\nmax_attempts = 2\nflake_runs = 1\nparallel = 1\n"
        + "idle_timeout_secs = 60\nnode_timeout_secs = 120\ngate_timeout_secs = 60\n"
        + "plan_retries = 1\ncost_ceiling_usd = 0\n"
        + f'\n[gates]\ntest = "{sys.executable} tests/check_add.py"\n'
    )


def git_out(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def test_bench_two_profiles_repeat_2_with_real_opencode(
    opencode_env: OpenCodeEnv, tmp_path: Path
) -> None:
    setup = opencode_env(script(), prices=PRICES)
    repo = make_repo(tmp_path / "repo", {"README.md": "# calc\n", "calc/__init__.py": ""})
    profiles = repo / ".director" / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "all-frontier.toml").write_text(profile("opencode/fake/frontier"))
    (profiles / "cheap-cloud.toml").write_text(profile("opencode/fake/cheap"))
    git_out(repo, "add", ".director/profiles")  # profiles are committed, as a team would
    git_out(repo, "commit", "-q", "-m", "bench profiles")
    head = git_out(repo, "rev-parse", "HEAD")

    done = subprocess.run(
        [
            sys.executable, "-m", "director_tui", "bench", "add add and mul to calc",
            "--profiles", "all-frontier,cheap-cloud", "--repeat", "2", "--parallel", "1",
            "--no-tui", "--repo", str(repo),
        ],
        capture_output=True, text=True, timeout=600, env=dict(os.environ), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert git_out(repo, "rev-parse", "HEAD") == head
    assert git_out(repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert git_out(repo, "status", "--porcelain") == ""

    summary = json.loads((repo / ".director" / "bench" / "summary.json").read_text())
    assert summary["status"] == "finished", summary.get("error")
    runs = {(r["profile"], r["repeat"]): r for r in summary["runs"]}
    for key, run in runs.items():
        assert run["error"] is None, (key, run["error"])
        assert (run["done"], run["acceptance_passed"], run["integration_ok"]) == (1, 1, True)
        assert run["hashes_ok"] is True
        assert git.file_at(repo, run["branch"], "tests/check_add.py") == TEST_ADD.encode()
        assert git.file_at(repo, run["branch"], "calc/add.py") == ADD_OK.encode()
        ledger = read_jsonl(Path(run["store_root"]) / "costs.jsonl")
        assert all(not r["scripted"] and r["cost_usd"] > 0 for r in ledger)
        assert run["run_cost"] == pytest.approx(sum(r["cost_usd"] for r in ledger))
    assert runs[("cheap-cloud", 1)]["tokens_by_role"]["executor"]["calls"] == 2
    assert runs[("cheap-cloud", 2)]["tokens_by_role"]["executor"]["calls"] == 1
    assert runs[("all-frontier", 1)]["tokens_by_role"]["executor"]["calls"] == 1

    # OpenCode prices the usage the server reported with the profile's model prices:
    # one session = a write turn + a final turn, (input, output) summed over both.
    def session(model: str, usage: tuple[int, int]) -> float:
        tokens_in, tokens_out = usage[0] + usage[0] + 100, usage[1] + 5
        return (tokens_in * PRICES[model][0] + tokens_out * PRICES[model][1]) / 1e6

    frontier_run, cheap_session = session("frontier", FRONTIER), session("cheap", CHEAP)
    assert (frontier_run, cheap_session) == pytest.approx((0.030625, 0.00303125))
    assert runs[("all-frontier", 1)]["run_cost"] == pytest.approx(frontier_run)
    assert runs[("all-frontier", 2)]["run_cost"] == pytest.approx(frontier_run)
    assert runs[("cheap-cloud", 1)]["run_cost"] == pytest.approx(2 * cheap_session)
    assert runs[("cheap-cloud", 2)]["run_cost"] == pytest.approx(cheap_session)
    assert runs[("all-frontier", 1)]["tokens_by_role"]["executor"]["tokens"] == 4100 + 405
    frontier = next(r for r in summary["rows"] if r["profile"] == "all-frontier")
    cheap = next(r for r in summary["rows"] if r["profile"] == "cheap-cloud")
    mean = 1.5 * cheap_session
    assert cheap["run_cost"] == pytest.approx(mean)
    assert cheap["run_cost_std"] == pytest.approx(cheap_session / 2**0.5)  # sample std of 2
    assert (cheap["run_cost_min"], cheap["run_cost_max"]) == pytest.approx(
        (cheap_session, 2 * cheap_session)
    )
    assert frontier["run_cost_std"] == 0
    assert cheap["cost_cut_pct"] == pytest.approx(100 * (1 - mean / frontier_run))  # 85.15
    assert cheap["cut_target_met"] is True
    assert cheap["quality_held"] is True and cheap["acceptance_pct"] == 100
    assert summary["hash_check"]["ok"] and summary["hash_check"]["branches_checked"] == 4
    assert summary["plan_cost"] > 0
    assert "saving >80%" in done.stdout and "hash check ✔" in done.stdout
    # every scripted turn was played: nothing left over, nothing missing
    assert not [r for r in setup.server.requests if r.model not in script()]
