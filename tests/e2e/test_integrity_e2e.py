"""Integrity holes closed, driven by the REAL OpenCode binary's own tool calls (the fake
model server scripts them): what it writes and runs is exactly what an agent would.

Nodes run one at a time (``parallel=1``); see ``test_run_e2e`` for the helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import OpenCodeEnv
from test_run_e2e import go, solve_turns, start, write_turns

from director_tui.engine.events import GateResult
from tests.conftest import run_git
from tests.run_fixture import job_file, sample_nodes
from tests.test_gate_clean_checkout import ADD, CONFTEST

pytestmark = pytest.mark.e2e


def _bash(command: str) -> dict[str, Any]:
    return {
        "tool_calls": [
            {"name": "bash", "arguments": {"command": command, "description": "run it"}}
        ],
        "usage": {"input": 900, "output": 40},
    }


def test_a_conftest_hidden_by_a_new_gitignore_fails_the_gate(
    tmp_path: Path, opencode_env: OpenCodeEnv
) -> None:
    """OpenCode writes a conftest.py that fakes the module and a .gitignore hiding both:
    its tests pass in its worktree, but not on the clean checkout of its commit."""
    ctx, rec, _setup = start(
        tmp_path,
        opencode_env,
        {
            "executor": [
                *write_turns("conftest.py", CONFTEST, final="")[:1],
                *write_turns(".gitignore", "conftest.py\n.gitignore\n", final="")[:1],
                _bash(ADD.test_cmd),
                {"text": "The tests pass.", "usage": {"input": 1000, "output": 5}},
                *solve_turns(ADD),
            ]
        },
        nodes=[ADD],
    )
    outcome = go(ctx)
    assert outcome.success, outcome.message
    first, second = rec.of(GateResult)
    assert (first.check, first.passed) == ("tests", False)
    assert ".gitignore (an ignore rule)" in first.message and "conftest.py" in first.message
    assert second.check == "passed"
    assert job_file(ctx.store, ADD.impl_path) == ADD.solution
    assert job_file(ctx.store, "conftest.py") is None


def test_a_git_stash_in_the_shared_repository_is_put_back(
    tmp_path: Path, opencode_env: OpenCodeEnv
) -> None:
    """OpenCode's bash tool runs `git stash` in its worktree: the stash lands in the
    user's refs/stash (every worktree shares it). The attempt fails naming it, and the
    user's own stash is the only one left, its reflog as it was."""
    add = sample_nodes()[0]
    ctx, rec, _setup = start(
        tmp_path,
        opencode_env,
        {
            "executor": [
                _bash("echo scratch >> calc/add.py && git stash push -q -m agents"),
                {"text": "Stashed.", "usage": {"input": 1000, "output": 5}},
                *solve_turns(add),
            ]
        },
        nodes=[add],
        config={"sandbox": {"mode": "off"}},  # the detection layer: in the sandbox it fails
    )
    repo = ctx.store.repo
    (repo / "README.md").write_text("# calc\nwork in progress\n")
    run_git(repo, "stash", "push", "-q", "-m", "users own stash")
    stash_before = run_git(repo, "stash", "list", "--format=%H %gs")
    log_before = (repo / ".git/logs/refs/stash").read_bytes()
    outcome = go(ctx)
    assert outcome.success, outcome.message
    first, second = rec.of(GateResult)
    assert first.check == "outside_worktree" and "refs/stash" in first.message
    assert second.check == "passed"
    assert run_git(repo, "stash", "list", "--format=%H %gs") == stash_before
    assert (repo / ".git/logs/refs/stash").read_bytes() == log_before


def test_a_write_into_another_nodes_worktree_fails_the_writer(
    tmp_path: Path, opencode_env: OpenCodeEnv
) -> None:
    """OpenCode's write tool aims at the sibling node's worktree (``../mul/…``): the
    attempt fails naming it, and mul merges only its own solution."""
    add, mul = sample_nodes()[:2]
    sibling_file = "{cwd}/../mul/" + mul.impl_path
    ctx, rec, _setup = start(
        tmp_path,
        opencode_env,
        {
            "executor": [
                {
                    "tool_calls": [
                        {
                            "name": "write",
                            "arguments": {"filePath": sibling_file, "content": "BACKDOOR = 1\n"},
                        }
                    ],
                    "usage": {"input": 800, "output": 50},
                },
                {"text": "done", "usage": {"input": 900, "output": 5}},
                *solve_turns(add),
                *solve_turns(mul),
            ]
        },
        nodes=[add, mul],
    )
    outcome = go(ctx)
    assert outcome.success, outcome.message
    first = rec.of(GateResult)[0]
    assert (first.node_id, first.check) == ("add", "outside_worktree")
    assert "node mul's" in first.message and mul.impl_path in first.message
    assert job_file(ctx.store, mul.impl_path) == mul.solution
