"""The tests stage authors nodes side by side (``[limits] parallel``): the job branch and
plan.json are byte for byte what a one-at-a-time pass gives, at most N test authors run
at once, a failing node keeps the plan order, and a killed planning resumes without a
duplicated commit. Scripted provider, real git, real test commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from director_tui.engine import git
from director_tui.engine.errors import DirectorError
from director_tui.engine.models import Plan, PlanStage, Stage
from director_tui.engine.plan import continue_plan, start_plan
from director_tui.engine.store import Store, read_jsonl
from tests.plan_helpers import PY, base_entries, context, entry, git_out, make_sample, set_script

NODES = ["alpha", "beta", "gamma", "delta", "eps"]


def _check(node_id: str) -> str:
    """A test that fails the same way every time (no timings, no paths in its output)."""
    return f"print('{node_id}: not implemented yet')\nraise SystemExit(1)\n"


def _plan_json(ids: list[str]) -> str:
    nodes = [
        {
            "id": nid,
            "title": f"implement {nid}",
            "spec": f"Implement {nid} in calc/{nid}.py.",
            "files": [f"calc/{nid}.py"],
            "depends_on": [],
            "test_cmd": f"{PY} tests/check_{nid}.py",
            "tests": [f"tests/check_{nid}.py"],
            "estimated_difficulty": "easy",
        }
        for nid in ids
    ]
    return json.dumps({"nodes": nodes})


def _author(node_id: str, sleep: float = 0.0, **kw: Any) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"sleep": sleep}] if sleep else []
    steps.append({"write": f"tests/check_{node_id}.py", "content": _check(node_id)})
    return entry("test_author", f"wrote the tests of {node_id}", node=node_id, steps=steps, **kw)


def _sample(root: Path, calls: list[dict[str, Any]], parallel: int, **kw: Any) -> Path:
    repo, _ = make_sample(root, calls, **kw)
    config = repo / ".director" / "config.toml"
    config.write_text(config.read_text() + f"parallel = {parallel}\n")
    return repo


def _calls(ids: list[str], sleeps: dict[str, float]) -> list[dict[str, Any]]:
    return [
        *base_entries(_plan_json(ids)),
        *(_author(nid, sleeps.get(nid, 0.0)) for nid in ids),
    ]


def _job_history(repo: Path, stage: PlanStage) -> list[tuple[str, str]]:
    """(subject, tree) of every commit the job branch has over its base."""
    log = git_out(
        repo, "log", "--reverse", "--format=%s%x09%T", f"{stage.base_commit}..{stage.job_branch}"
    )
    return [tuple(line.split("\t")) for line in log.splitlines()]  # type: ignore[misc]


def _plan_text(repo: Path, stage: PlanStage) -> str:
    """plan.json byte for byte, but for what names this very job."""
    text = (repo / ".director" / "plan.json").read_text()
    for value in (stage.job_branch, stage.job_id, stage.base_commit):
        text = text.replace(value, "<job>")
    return text


def _scratch_left(repo: Path) -> tuple[list[str], str]:
    folder = Store(repo).worktrees / "_tests"
    left = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    return left, git_out(repo, "for-each-ref", "--format=%(refname)", "refs/heads/director/tests-*")


def _events(repo: Path, kind: str) -> list[dict[str, Any]]:
    return [e for e in read_jsonl(repo / ".director" / "events.jsonl") if e["type"] == kind]


async def test_parallel_pass_is_byte_identical_to_the_sequential_one(tmp_path: Path) -> None:
    # The first node is the slowest: the others are red long before it and must wait.
    sleeps = {"alpha": 1.0, "beta": 0.3}
    results = {}
    for parallel in (1, 4):
        repo = _sample(tmp_path / f"p{parallel}", _calls(NODES, sleeps), parallel)
        stage = await start_plan(context(repo), "add five things", auto=True, critique=False)
        assert stage.stage == Stage.approved
        assert _scratch_left(repo) == ([], "")
        results[parallel] = (_job_history(repo, stage), _plan_text(repo, stage))
    history, plan_text = results[4]
    assert [subject for subject, _ in history] == [f"director: tests for {n}" for n in NODES]
    assert history == results[1][0]  # same commits, same trees, in the same order
    assert plan_text == results[1][1]
    plan = Plan.model_validate_json(plan_text)
    assert all(n.test_hashes and "not implemented yet" in n.red_output for n in plan.nodes)
    # the parallel pass really overlapped: a later node was red before alpha was frozen
    progress = _events(tmp_path / "p4" / "repo", "node_tests")
    order = [(e["node_id"], e["phase"]) for e in progress]
    assert order.index(("gamma", "red")) < order.index(("alpha", "frozen"))
    frozen = [e["node_id"] for e in progress if e["phase"] == "frozen"]
    assert frozen == NODES


async def test_at_most_parallel_test_authors_run_at_once(tmp_path: Path) -> None:
    ids = [f"n{i}" for i in range(6)]
    repo = _sample(tmp_path, _calls(ids, {nid: 0.4 for nid in ids}), parallel=2)
    stage = await start_plan(context(repo), "add six things", auto=True, critique=False)
    assert stage.stage == Stage.approved
    running, most = 0, 0
    for event in read_jsonl(repo / ".director" / "events.jsonl"):  # in emission order
        if event.get("role") != "test_author":
            continue
        if event["type"] == "agent_started":
            running += 1
        elif event["type"] == "agent_finished":
            running -= 1
        most = max(most, running)
    assert most == 2  # never more than --parallel, and the slots were used


async def test_a_failing_node_keeps_plan_order_and_continue_finishes(tmp_path: Path) -> None:
    ids = ["alpha", "beta", "gamma"]
    never_red = entry(
        "test_author",
        "passing tests",
        node="beta",
        steps=[{"write": "tests/check_beta.py", "content": "print('fine')\n"}],
    )
    calls = [*base_entries(_plan_json(ids)), _author("alpha"), never_red, _author("gamma")]
    repo = _sample(tmp_path, calls, parallel=3, plan_retries=1)
    with pytest.raises(DirectorError, match="node beta are still not red") as caught:
        await start_plan(context(repo), "add three things", auto=True, critique=False)
    assert str(Store(repo).worktrees / "_tests" / "beta") in (caught.value.hint or "")
    stage = PlanStage.model_validate_json((repo / ".director" / "plan_stage.json").read_text())
    assert stage.stage == Stage.tests
    # alpha (before the failure) is committed; gamma, red already, waits in its worktree
    assert [s for s, _ in _job_history(repo, stage)] == ["director: tests for alpha"]
    assert _scratch_left(repo)[0] == ["beta", "gamma"]
    set_script(tmp_path / "script.json", [_author("beta")])
    stage = await continue_plan(context(repo))
    assert stage.stage == Stage.approved
    assert [s for s, _ in _job_history(repo, stage)] == [f"director: tests for {n}" for n in ids]
    gamma_calls = [
        r
        for r in read_jsonl(repo / ".director" / "costs.jsonl")
        if r["role"] == "test_author" and r["node_id"] == "gamma"
    ]
    assert len(gamma_calls) == 1  # its red tests were kept, not written again
    assert _scratch_left(repo) == ([], "")


def test_planning_killed_mid_authoring_resumes_without_duplicated_commits(
    tmp_path: Path,
) -> None:
    ids = ["alpha", "beta", "gamma"]
    # beta hangs: alpha is committed, gamma is red and waits for beta when the kill comes
    repo = _sample(tmp_path, _calls(ids, {"beta": 600}), parallel=3)
    planning = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "director_tui",
            "plan",
            "add three things",
            "--auto",
            "--no-critique",
            "--no-tui",
            "--repo",
            str(repo),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    events = repo / ".director" / "events.jsonl"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert planning.poll() is None, "the planning ended before the kill"
            assert time.monotonic() < deadline, "alpha frozen and gamma red never both seen"
            seen = {
                (e.get("node_id"), e.get("phase"))
                for e in (read_jsonl(events) if events.exists() else [])
            }
            if {("alpha", "frozen"), ("gamma", "red")} <= seen:
                break
            time.sleep(0.1)
    finally:
        os.killpg(planning.pid, signal.SIGKILL)
        planning.wait(timeout=60)
    stage = PlanStage.model_validate_json((repo / ".director" / "plan_stage.json").read_text())
    assert [s for s, _ in _job_history(repo, stage)] == ["director: tests for alpha"]

    set_script(tmp_path / "script.json", _calls(ids, {}))
    stage = _continue(repo)
    assert stage.stage == Stage.approved
    history = _job_history(repo, stage)
    assert [s for s, _ in history] == [f"director: tests for {n}" for n in ids]
    plan = Plan.model_validate_json((repo / ".director" / "plan.json").read_text())
    for node in plan.nodes:
        for path, digest in node.test_hashes.items():
            committed = git.file_at(repo, stage.job_branch, path)
            assert committed is not None and committed.decode() == _check(node.id)
            assert git.sha256_file(Store(repo).worktrees / "_job" / path) == digest
    authored = [
        r["node_id"]
        for r in read_jsonl(repo / ".director" / "costs.jsonl")
        if r["role"] == "test_author"
    ]
    # alpha and gamma were written once (gamma's red tests kept), beta again after the kill
    assert sorted(authored) == ["alpha", "beta", "gamma"]
    assert _scratch_left(repo) == ([], "")


def _continue(repo: Path) -> PlanStage:
    import asyncio

    return asyncio.run(continue_plan(context(repo)))
