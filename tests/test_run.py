"""The run engine on the scripted provider: lifecycle, gates, retries, escalation, merge."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from director_tui.engine import jobs
from director_tui.engine.errors import UsageError
from director_tui.engine.events import GateResult, NodeMerged, Notice, RunFinished
from director_tui.engine.models import NodeStatus, RunState, Stage
from director_tui.engine.store import read_jsonl
from tests.conftest import run_git
from tests.run_fixture import (
    JOB_ID,
    SANDBOX_OFF,
    Recorder,
    build_job,
    job_file,
    run,
    run_with_a_commit_after_the_gate,
    sample_nodes,
    solve,
    write_script,
)


def test_three_node_plan_runs_to_green_and_merges(tmp_path: Path) -> None:
    store = build_job(tmp_path, gates={"all": "python tests/check_power.py"})
    rec = Recorder()
    outcome = run(store, rec, parallel=2)
    assert outcome.success, outcome.message
    assert outcome.exit_code == 0
    assert outcome.done == ["add", "mul", "power"]
    for spec in sample_nodes():
        assert job_file(store, spec.impl_path) == spec.solution
    state = store.read_model(store.state, RunState)
    assert state is not None
    assert all(st.status == NodeStatus.done for st in state.nodes.values())
    assert state.integration == "passed"
    assert all(st.watch_it_fail == "observed" for st in state.nodes.values())
    assert state.cost_usd == pytest.approx(0.03)
    merged = [e.node_id for e in rec.of(NodeMerged)]
    assert merged.index("mul") < merged.index("power")
    # The job worktree shows the merged work (merges move only the branch; it catches up).
    job_wt = jobs.job_worktree(store)
    assert (job_wt / "calc/power.py").read_text() == sample_nodes()[2].solution
    assert run_git(job_wt, "status", "--porcelain", "--untracked-files=no") == ""
    # The user's checkout never moved and merged worktrees are gone.
    assert (store.repo / "calc/add.py").read_text() == "# to be implemented\n"
    assert not jobs.node_worktree(store, "add").exists()
    records = read_jsonl(store.metrics)
    run_rec = [r for r in records if r["kind"] == "run"][-1]
    assert run_rec["executor_tier_completion_rate"] == 1.0
    assert run_rec["n_nodes"] == 3 and run_rec["integration_ok"] is True
    nodes = [r for r in records if r["kind"] == "node"]
    assert {r["node"] for r in nodes} == {"add", "mul", "power"}
    assert nodes[0]["roles"]["executor"]["cost_usd"] == 0.01
    assert rec.of(RunFinished)[-1].outcome == "success"


def test_unapproved_plan_is_refused_with_the_next_step(tmp_path: Path) -> None:
    store = build_job(tmp_path, stage=Stage.gate2)
    with pytest.raises(UsageError) as err:
        run(store)
    assert err.value.exit_code == 2
    assert "Gate 2" in str(err.value) and "--continue" in str(err.value)
    assert not store.state.exists()


def _wrong(spec_id: str, path: str, **extra: object) -> dict[str, object]:
    return {
        "role": "executor",
        "node": spec_id,
        "steps": [{"write": path, "content": "def nope():\n    pass\n"}],
        "cost": 0.01,
        **extra,
    }


def test_editing_a_test_is_rejected_by_hash_and_the_retry_is_told_why(tmp_path: Path) -> None:
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes)
    add = nodes[0]
    write_script(
        store,
        [
            {
                "role": "executor",
                "node": "add",
                "attempt": 1,
                "steps": [{"write": add.test_path, "content": "print('trivially green')\n"}],
            },
            solve(add, attempt=2, prompt_contains="was modified"),
        ],
    )
    rec = Recorder()
    outcome = run(store, rec)
    assert outcome.success, outcome.message
    gate = rec.of(GateResult)
    assert [g.check for g in gate] == ["hashes", "passed"]
    assert "tests/check_add.py" in gate[0].message
    assert "from calc.add import add" in (job_file(store, add.test_path) or "")
    state = store.read_model(store.state, RunState)
    assert state is not None and state.nodes["add"].attempts == 2


def test_write_outside_the_allowlist_is_rejected(tmp_path: Path) -> None:
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes, config="[repository]\nignore = ['*.log']\n")
    add = nodes[0]
    sneaky = solve(add, attempt=1)
    sneaky["steps"] = [
        *sneaky["steps"],
        {"write": "README.md", "content": "hijacked\n"},
        {"write": "debug.log", "content": "ignored byproduct\n"},
    ]
    write_script(store, [sneaky, solve(add, attempt=2, prompt_contains="outside the allowlist")])
    rec = Recorder()
    outcome = run(store, rec)
    assert outcome.success, outcome.message
    first = rec.of(GateResult)[0]
    assert first.check == "allowlist"
    assert "README.md" in first.message and "debug.log" not in first.message
    assert job_file(store, "README.md") == "# calc\n"


def test_symlink_out_of_the_worktree_is_rejected(tmp_path: Path) -> None:
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes, limits={"max_attempts": 1})
    add = nodes[0]
    write_script(
        store,
        [
            {
                "role": "executor",
                "node": "add",
                "steps": [{"run": f"rm {add.impl_path} && ln -s /etc/hostname {add.impl_path}"}],
            }
        ],
    )
    rec = Recorder()
    outcome = run(store, rec)
    assert not outcome.success and outcome.failed == ["add"]
    checks = {g.check for g in rec.of(GateResult)}
    assert checks == {"symlink"}


def test_a_folder_replaced_by_a_symlink_is_a_gate_failure_not_a_crash(tmp_path: Path) -> None:
    """`rm -rf calc && ln -s /etc calc`: git refuses pathspecs beyond the link; the attempt
    must fail at a gate, not crash the node, and the next attempt go on (found by
    outside-in QA)."""
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes, limits={"max_attempts": 2})
    add = nodes[0]
    folder = add.impl_path.rsplit("/", 1)[0]
    sneaky = {"role": "executor", "node": "add", "attempt": 1}
    sneaky["steps"] = [{"run": f"rm -rf {folder} && ln -s /etc {folder}"}]
    write_script(store, [sneaky, solve(add)])
    rec = Recorder()
    outcome = run(store, rec)
    assert outcome.success, outcome.message
    [rejected] = [g for g in rec.of(GateResult) if not g.passed]
    assert rejected.attempt == 1 and rejected.check in ("allowlist", "symlink")
    assert f"{folder}/__init__.py" in rejected.message  # the tracked file it deleted


def test_an_agent_deleting_its_worktrees_git_link_never_reaches_the_users_checkout(
    tmp_path: Path,
) -> None:
    """With .git gone, git in the worktree finds the user's repo: committing the attempt
    (or resetting the worktree for the next one) would land on the user's branch. Sandbox
    off: inside it the .git file is read-only (tests/test_sandbox.py)."""
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes, config=SANDBOX_OFF)
    add = nodes[0]
    (store.repo / "README.md").write_text("# staged by the user\n")
    run_git(store.repo, "add", "README.md")
    breaker = solve(add, attempt=1)
    breaker["steps"] = [*breaker["steps"], {"run": "rm .git"}]
    write_script(store, [breaker, solve(add, attempt=2, prompt_contains=".git")])
    rec = Recorder()
    outcome = run(store, rec)
    assert outcome.success, outcome.message
    assert [g.check for g in rec.of(GateResult)] == ["worktree", "passed"]
    assert run_git(store.repo, "symbolic-ref", "--short", "HEAD") == "main"
    assert run_git(store.repo, "status", "--porcelain", "--untracked-files=no") == "M  README.md"
    assert run_git(store.repo, "log", "--format=%s") == "initial"
    assert job_file(store, add.impl_path) == add.solution


def test_failing_output_reaches_the_second_attempt(tmp_path: Path) -> None:
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes)
    add = nodes[0]
    write_script(
        store,
        [
            _wrong("add", add.impl_path, attempt=1),
            # Only matches when the prompt carries the previous run's failing output.
            solve(add, attempt=2, prompt_contains="ImportError"),
        ],
    )
    outcome = run(store)
    assert outcome.success, outcome.message


def test_exhausted_attempts_escalate_once_then_fail_and_block_dependents(
    tmp_path: Path,
) -> None:
    store = build_job(tmp_path, limits={"max_attempts": 2})
    add, mul, power = sample_nodes()
    write_script(store, [solve(add), _wrong("mul", mul.impl_path), solve(power)])
    outcome = run(store, parallel=3)
    assert outcome.exit_code == 1
    assert outcome.done == ["add"] and outcome.failed == ["mul"]
    assert outcome.blocked == ["power"]
    state = store.read_model(store.state, RunState)
    assert state is not None
    mul_state = state.nodes["mul"]
    assert mul_state.attempts == 3 and mul_state.escalated
    assert mul_state.tier == "scripted/strong"
    assert set(mul_state.usage) == {"executor", "escalation"}
    assert state.integration == "skipped"
    # The failed node's worktree and branch are kept for inspection.
    assert jobs.node_worktree(store, "mul").exists()
    assert (jobs.node_worktree(store, "mul") / mul.impl_path).read_text().startswith("def nope")


def test_escalation_tier_rescues_the_node(tmp_path: Path) -> None:
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes, limits={"max_attempts": 1})
    add = nodes[0]
    write_script(store, [solve(add, model="strong"), _wrong("add", add.impl_path)])
    outcome = run(store)
    assert outcome.success
    assert outcome.escalated == ["add"] and outcome.executor_tier_pct == 0.0
    metrics = [r for r in read_jsonl(store.metrics) if r["kind"] == "run"][-1]
    assert metrics["escalation_rate"] == 1.0


def test_hanging_agent_is_killed_at_the_idle_limit_and_retried(tmp_path: Path) -> None:
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes, limits={"idle_timeout_secs": 0.3, "node_timeout_secs": 1})
    add = nodes[0]
    write_script(
        store,
        [
            {"role": "executor", "node": "add", "attempt": 1, "hang": True},
            solve(add, attempt=2, prompt_contains="idle"),
        ],
    )
    outcome = run(store)
    assert outcome.success, outcome.message
    state = store.read_model(store.state, RunState)
    assert state is not None and state.nodes["add"].attempts == 2


def test_flaky_tests_are_caught_and_recorded(tmp_path: Path) -> None:
    counter = tmp_path / "runs.txt"
    flaky = sample_nodes()[0]
    flaky.test_body = (
        "from calc.add import add\n"
        f"p = {str(counter)!r}\n"
        "n = int(open(p).read()) + 1 if os.path.exists(p) else 1\n"
        "open(p, 'w').write(str(n))\n"
        "assert add(2, 3) == 5\n"
        "assert n != 2, 'second run fails'\n"
    )
    # Sandbox off: the test's run counter lives outside the worktree, where a sandboxed
    # test command cannot write.
    store = build_job(tmp_path, [flaky], limits={"flake_runs": 2}, config=SANDBOX_OFF)
    rec = Recorder()
    outcome = run(store, rec)
    assert outcome.success, outcome.message
    assert [g.check for g in rec.of(GateResult)] == ["flake", "passed"]
    state = store.read_model(store.state, RunState)
    assert state is not None and state.nodes["add"].flaky
    assert counter.read_text() == "4"  # 2 runs per attempt, never more
    node_rec = [r for r in read_jsonl(store.metrics) if r["kind"] == "node"][-1]
    assert node_rec["flaky"] is True


def test_merge_conflict_with_a_moved_job_branch_reruns_on_the_new_head(tmp_path: Path) -> None:
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes)
    add = nodes[0]
    outcome, rec = run_with_a_commit_after_the_gate(store, add)
    assert outcome.success, outcome.message
    state = store.read_model(store.state, RunState)
    assert state is not None
    assert state.nodes["add"].conflicts == 1 and state.nodes["add"].status == NodeStatus.done
    assert job_file(store, add.impl_path) == add.solution
    assert any("moved outside director" in n.message for n in rec.of(Notice))


def test_bad_flags_are_usage_errors(tmp_path: Path) -> None:
    store = build_job(tmp_path, sample_nodes()[:1])
    with pytest.raises(UsageError):
        run(store, parallel=0)
    assert JOB_ID in store.plan.read_text()


def test_node_branch_checked_out_in_the_users_checkout_is_left_alone(tmp_path: Path) -> None:
    """Regression: the node's worktree set-up used to 'remove' whichever worktree had the
    node branch checked out; for the user's own checkout that deleted the whole repo."""
    store = build_job(tmp_path, sample_nodes()[:1])
    run_git(store.repo, "checkout", "-q", "-b", jobs.node_branch(JOB_ID, "add"))
    (store.repo / "precious.txt").write_text("uncommitted work\n")
    outcome = run(store)
    assert outcome.failed == ["add"]
    assert (store.repo / "precious.txt").read_text() == "uncommitted work\n"
    assert (store.repo / ".git").is_dir()
    state = store.read_model(store.state, RunState)
    assert state is not None
    assert "checked out at" in state.nodes["add"].last_error
    assert not state.nodes["add"].last_error.startswith("internal error")


def test_status_of_a_plan_not_run_yet_shows_every_node_pending(tmp_path: Path) -> None:
    from director_tui.engine.metrics import status_summary

    store = build_job(tmp_path)
    rows = status_summary(store)["nodes"]
    assert [r["id"] for r in rows] == ["add", "mul", "power"]
    for row in rows:
        assert (row["status"], row["attempts"], row["tier"], row["review"]) == (
            "pending",
            0,
            "",
            None,
        )
        assert row["cost_usd"] == 0.0 and isinstance(row["cost_usd"], float)


def test_processes_an_agent_leaves_running_are_stopped_after_its_call(tmp_path: Path) -> None:
    import psutil

    # Sandbox off: inside it the daemon dies with the sandbox's PID namespace before
    # director has anything to stop (tests/test_sandbox.py).
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes, config=SANDBOX_OFF)
    add = nodes[0]
    entry = solve(add, attempt=1)
    marker = f"sleep 3{abs(hash(str(tmp_path))) % 1000:03d}"
    entry["steps"] = [
        # A daemon in its own session (out of reach of the command's process-group kill),
        # already running when the command returns: Popen returns after the exec.
        {
            "run": f'{sys.executable} -c "import subprocess; subprocess.Popen('
            f"{marker.split()!r}, start_new_session=True, stdout=subprocess.DEVNULL, "
            f'stderr=subprocess.DEVNULL)"'
        },
        *entry["steps"],
    ]
    write_script(store, [entry])
    rec = Recorder()
    outcome = run(store, rec)
    assert outcome.success, outcome.message
    survivors = [
        p for p in psutil.process_iter(["cmdline"]) if " ".join(p.info["cmdline"] or []) == marker
    ]
    assert survivors == []
    assert any("stopped what the agent left running" in n.message for n in rec.of(Notice))


def test_daemons_the_nodes_code_starts_in_its_gates_do_not_outlive_the_run(
    tmp_path: Path,
) -> None:
    """Without the sandbox, code the agent wrote that starts a daemon when the tests
    import it (found by QA: a detached `sleep` per gate run outlived the run) is stopped
    after the node's gate and after the integration gate, as after the agent's call."""
    import psutil

    add = sample_nodes()[0]
    marker = f"sleep 4{abs(hash(str(tmp_path))) % 1000:03d}"
    add.solution = (
        "import subprocess\n"
        f"subprocess.Popen({marker.split()!r}, start_new_session=True,"
        " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n\n\n" + add.solution
    )
    store = build_job(tmp_path, [add], config=SANDBOX_OFF, gates={"test": add.test_cmd})
    write_script(store, [solve(add)])
    rec = Recorder()
    outcome = run(store, rec)
    assert outcome.success, outcome.message
    survivors = [
        p for p in psutil.process_iter(["cmdline"]) if " ".join(p.info["cmdline"] or []) == marker
    ]
    for process in survivors:  # never leave them behind, even when the test fails
        process.kill()
    assert survivors == []
    messages = [n.message for n in rec.of(Notice)]
    assert any("node add: stopped what its tests left running" in m for m in messages)
    assert any("integration gate: stopped what it left running" in m for m in messages)
