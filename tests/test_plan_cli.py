"""`director plan` and `director auto` as a user runs them: real processes, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from director_tui.engine.models import PlanStage, Stage
from director_tui.engine.store import Store
from tests.cli import director_here_on as director
from tests.plan_helpers import (
    DIV,
    MUL,
    base_entries,
    entry,
    good_tests,
    make_sample,
    user_view,
)


def _stage(repo: Path) -> PlanStage:
    return PlanStage.model_validate_json((repo / ".director" / "plan_stage.json").read_text())


def test_plan_stops_at_each_gate_then_approves(tmp_path: Path) -> None:
    repo, _ = make_sample(tmp_path, [*base_entries(), *good_tests()])
    before = user_view(repo)
    first = director(repo, "plan", "add mul and div", "--no-tui")
    assert first.returncode == 3, first.stderr
    assert "Gate 1" in first.stdout and "--continue" in first.stdout
    assert "(scripted)" in first.stdout
    assert _stage(repo).stage == Stage.gate1

    second = director(repo, "plan", "--continue", "--no-tui")
    assert second.returncode == 3, second.stderr
    assert "Gate 2" in second.stdout and "red ✓" in second.stdout

    third = director(repo, "plan", "--continue", "--no-tui")
    assert third.returncode == 0, third.stderr
    assert "plan approved" in third.stdout and "director run" in third.stdout
    assert user_view(repo) == before


def test_a_new_task_does_not_archive_a_resumable_job_without_force(tmp_path: Path) -> None:
    """Like `director auto`: an approved plan that never ran (paid for) is not archived
    by a mistyped `director plan` (found by outside-in QA)."""
    repo, _ = make_sample(tmp_path, [*base_entries(), *good_tests(), *base_entries()])
    assert director(repo, "plan", "add mul and div", "--auto", "--no-critique").returncode == 0
    first = _stage(repo)
    refused = director(repo, "plan", "something else", "--no-tui")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "is approved and its run has not finished" in refused.stderr
    assert "director run" in refused.stderr and "--force" in refused.stderr
    assert _stage(repo).job_id == first.job_id  # nothing archived
    forced = director(repo, "plan", "something else", "--no-tui", "--force")
    assert forced.returncode == 3, forced.stdout + forced.stderr  # at Gate 1 of the new job
    assert (repo / ".director" / "jobs" / first.job_id / "plan.json").exists()


def test_task_from_stdin_and_auto_no_critique(tmp_path: Path) -> None:
    repo, _ = make_sample(tmp_path, [*base_entries(), *good_tests()])
    done = director(repo, "plan", "--input", "-", "--auto", "--no-critique", stdin="add mul\n")
    assert done.returncode == 0, done.stdout + done.stderr
    stage = _stage(repo)
    assert stage.task == "add mul" and stage.stage == Stage.approved
    assert [a.approver for a in stage.approvals] == ["auto", "auto"]


def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    repo, _ = make_sample(tmp_path, [])
    task_file = tmp_path / "task.md"
    task_file.write_text("add mul\n")
    for args in (
        ["plan", "   "],
        ["plan"],
        ["plan", "x", "--input", str(task_file)],
        ["plan", "--continue", "x"],
        ["plan", "--input", str(tmp_path / "missing.md")],
        ["plan", "--continue"],  # nothing to continue
        ["plan", "x", "--parallel", "0"],
    ):
        result = director(repo, *args, "--no-tui")
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert result.stderr.startswith("director: ")
    auto = director(repo, "auto", "x", "--parallel", "0")
    assert auto.returncode == 2 and "--parallel must be at least 1" in auto.stderr
    assert not (repo / ".director" / "plan_stage.json").exists()


def test_task_file_that_is_not_utf8_exits_2(tmp_path: Path) -> None:
    """Regression: a binary --input file ended in a UnicodeDecodeError traceback."""
    repo, _ = make_sample(tmp_path, [])
    task_file = tmp_path / "task.bin"
    task_file.write_bytes(b"\xff\xfe not text")
    result = director(repo, "plan", "--input", str(task_file), "--no-tui")
    assert result.returncode == 2, result.stderr
    assert "not UTF-8 text" in result.stderr and "Traceback" not in result.stderr


def test_cyclic_plan_exits_2_showing_the_cycle(tmp_path: Path) -> None:
    cyclic = {"nodes": [{**MUL, "depends_on": ["div"]}, {**DIV, "depends_on": ["mul"]}]}
    repo, _ = make_sample(tmp_path, base_entries(json.dumps(cyclic)), plan_retries=1)
    result = director(repo, "plan", "add mul and div", "--auto", "--no-critique")
    assert result.returncode == 2
    assert "dependency cycle" in result.stderr
    assert "rejected" in result.stdout  # the retry was shown as it happened


def test_dirty_checkout_is_refused_with_exit_2(tmp_path: Path) -> None:
    repo, _ = make_sample(tmp_path, [*base_entries(), *good_tests()])
    (repo / "README.md").write_text("local edit\n")
    result = director(repo, "plan", "add mul", "--no-tui")
    assert result.returncode == 2
    assert "README.md" in result.stderr and "uncommitted" in result.stderr
    assert (repo / "README.md").read_text() == "local edit\n"


def _impl(node_id: str, path: str, content: str) -> dict[str, object]:
    return entry(
        "executor",
        "implemented",
        node=node_id,
        steps=[{"write": path, "content": content}],
    )


def test_auto_plans_then_runs_to_green(tmp_path: Path) -> None:
    ops = (
        "def add(a: int, b: int) -> int:\n    return a + b\n\n\n"
        "def mul(a: int, b: int) -> int:\n    return a * b\n"
    )
    div = "def div(a: int, b: int) -> float:\n    return a / b\n"
    calls = [
        *base_entries(),
        *good_tests(),
        _impl("mul", "calc/ops.py", ops),
        _impl("div", "calc/div.py", div),
        entry("reviewer", '{"verdict": "pass", "summary": "fine", "findings": []}'),
    ]
    repo, _ = make_sample(tmp_path, calls)
    before = user_view(repo)
    result = director(repo, "auto", "add mul and div", "--no-critique", "--max-cost", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    stage = _stage(repo)
    assert stage.stage == Stage.approved
    div_on_branch = subprocess.run(
        ["git", "show", f"{stage.job_branch}:calc/div.py"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert div_on_branch.stdout == div  # the run merged the node into the job branch
    assert user_view(repo) == before
    # a second `auto` without a task finds nothing unfinished to resume
    again = director(repo, "auto")
    assert again.returncode == 2 and "no unfinished job" in again.stderr


def test_auto_resumes_a_job_stopped_at_a_gate(tmp_path: Path) -> None:
    ops = (
        "def add(a: int, b: int) -> int:\n    return a + b\n\n\n"
        "def mul(a: int, b: int) -> int:\n    return a * b\n"
    )
    div = "def div(a: int, b: int) -> float:\n    return a / b\n"
    from tests.plan_helpers import GOOD_PLAN, SPEC

    calls = [
        *base_entries(),
        *good_tests(),
        entry("critic", SPEC, prompt_contains="Spec to review"),
        entry("critic", json.dumps(GOOD_PLAN), prompt_contains="Plan to review"),
        _impl("mul", "calc/ops.py", ops),
        _impl("div", "calc/div.py", div),
        entry("reviewer", '{"verdict": "pass", "summary": "fine", "findings": []}'),
    ]
    repo, _ = make_sample(tmp_path, calls)
    assert director(repo, "plan", "add mul and div", "--no-tui").returncode == 3
    other = director(repo, "auto", "a different task")
    assert other.returncode == 2 and "--force" in other.stderr
    resumed = director(repo, "auto")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    stage = _stage(repo)
    assert stage.task == "add mul and div"
    assert [(a.gate, a.approver) for a in stage.approvals] == [
        ("gate1", "critic"),
        ("gate2", "critic"),
    ]


def test_run_and_a_new_plan_while_a_plan_holds_the_lock_exit_4(tmp_path: Path) -> None:
    """A `director plan` in another shell holds the repository: `director run` and a new
    `director plan "<task>"` say "busy" (exit 4) and how to wait for the planning — not
    exit 2 with "no plan to run" or a missing agent CLI (found by outside-in QA)."""
    repo, _ = make_sample(tmp_path, [entry("explorer", hang=True)])
    planning = subprocess.Popen(
        [sys.executable, "-m", "director_tui", "plan", "add mul", "--no-tui", "--repo", str(repo)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        store = Store(repo)
        while (store.lock_holder() or {}).get("purpose") != "plan":
            assert planning.poll() is None, "the planning process ended before taking the lock"
            time.sleep(0.05)
        for args in (("run", "--no-tui"), ("plan", "something else", "--no-tui"), ("auto", "x")):
            busy = director(repo, *args)
            assert busy.returncode == 4, (args, busy.stdout, busy.stderr)
            assert f"pid {planning.pid}, plan since" in busy.stderr
            assert "wait for the planning" in busy.stderr
            assert "no plan to run" not in busy.stderr
    finally:
        planning.terminate()
        planning.wait(timeout=60)
