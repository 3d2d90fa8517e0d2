"""The plan pipeline end to end on the scripted provider: real git, real pytest runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from director_tui.engine import git, jobs
from director_tui.engine.errors import PlanInvalidError, UsageError
from director_tui.engine.models import Plan, PlanStage, Stage
from director_tui.engine.plan import (
    AgentFailedError,
    approve_gate,
    continue_plan,
    critique,
    reject_spec,
    restore_edit,
    start_plan,
)
from director_tui.engine.store import read_jsonl
from tests.plan_helpers import (
    ALREADY_PASSING,
    DIV,
    GOOD_PLAN,
    MUL,
    RED_DIV,
    RED_MUL,
    SPEC,
    SYNTAX_ERROR,
    base_entries,
    context,
    entry,
    git_out,
    good_tests,
    make_sample,
    set_script,
    user_view,
    write_test,
)


def _plan(repo: Path) -> Plan:
    return Plan.model_validate_json((repo / ".director" / "plan.json").read_text())


def _stage(repo: Path) -> PlanStage:
    return PlanStage.model_validate_json((repo / ".director" / "plan_stage.json").read_text())


async def test_gate1_then_gate2_then_approved(tmp_path: Path) -> None:
    repo, _ = make_sample(tmp_path, [*base_entries(), *good_tests()])
    before = user_view(repo)
    ctx = context(repo)
    stage = await start_plan(ctx, "add mul and div")
    assert stage.stage == Stage.gate1
    assert (repo / ".director" / "recon.md").read_text().startswith("## Layout")
    # the fence around the spec is removed; the generated copy is kept beside it
    assert (repo / ".director" / "spec.md").read_text() == SPEC
    assert (repo / ".director" / "spec.generated.md").read_text() == SPEC
    assert git.branch_exists(repo, stage.job_branch)
    assert git.rev(repo, stage.job_branch) == before["head"]
    assert user_view(repo) == before

    # the human edits the spec at the gate
    edited = SPEC.replace("ints only", "ints only; div by zero raises ZeroDivisionError")
    (repo / ".director" / "spec.md").write_text(edited)
    stage = await continue_plan(context(repo))
    assert stage.stage == Stage.gate2
    assert stage.approvals[0].gate == "gate1" and stage.approvals[0].approver == "human"
    assert "edited" in stage.approvals[0].note
    plan = _plan(repo)
    assert plan.ids == ["mul", "div"]
    assert plan.job_branch == stage.job_branch and plan.base_commit == before["head"]
    worktree = jobs.job_worktree(ctx.store)
    for n in plan.nodes:
        for path in n.tests:
            committed = git.file_at(repo, stage.job_branch, path)
            assert committed is not None
            assert n.test_hashes[path] == git.sha256_file(worktree / path)
        assert "failed" in n.red_output
    # only the tests are on the job branch: no .director/, no caches
    changed = git_out(repo, "diff", "--name-only", before["head"], stage.job_branch).split()
    assert sorted(changed) == ["tests/test_div.py", "tests/test_mul.py"]
    assert user_view(repo) == before

    stage = await continue_plan(context(repo))
    assert stage.stage == Stage.approved
    assert [(a.gate, a.approver) for a in stage.approvals] == [
        ("gate1", "human"),
        ("gate2", "human"),
    ]
    assert user_view(repo) == before
    # every agent call is in the cost ledger, by role
    roles = [r["role"] for r in read_jsonl(repo / ".director" / "costs.jsonl")]
    assert roles == ["explorer", "brainstorm", "planner", "test_author", "test_author"]
    kinds = {e["type"] for e in read_jsonl(repo / ".director" / "events.jsonl")}
    assert {"plan_stage", "agent_started", "agent_finished", "gate_result"} <= kinds


async def test_auto_no_critique_goes_straight_through(tmp_path: Path) -> None:
    repo, _ = make_sample(tmp_path, [*base_entries(), *good_tests()])
    stage = await start_plan(context(repo), "add mul and div", auto=True, critique=False)
    assert stage.stage == Stage.approved
    assert [(a.gate, a.approver) for a in stage.approvals] == [
        ("gate1", "auto"),
        ("gate2", "auto"),
    ]


async def test_auto_with_critic_revises_both_artifacts(tmp_path: Path) -> None:
    revised_spec = SPEC.replace("Nothing else.", "Floats.")
    # The critic drops nothing but retitles a node and tries to change frozen test fields.
    critic_plan = json.loads(json.dumps(GOOD_PLAN))
    critic_plan["nodes"][0]["title"] = "multiply"
    critic_plan["nodes"][0]["test_cmd"] = "echo sneaky"
    calls = [
        *base_entries(),
        *good_tests(),
        entry("critic", revised_spec, prompt_contains="Spec to review"),
        entry("critic", json.dumps(critic_plan), prompt_contains="Plan to review"),
    ]
    repo, _ = make_sample(tmp_path, calls)
    stage = await start_plan(context(repo), "add mul and div", auto=True)
    assert stage.stage == Stage.approved
    assert [a.approver for a in stage.approvals] == ["critic", "critic"]
    assert (repo / ".director" / "spec.md").read_text() == revised_spec
    plan = _plan(repo)
    assert plan.node("mul").title == "multiply"
    assert plan.node("mul").test_cmd == MUL["test_cmd"]  # frozen facts are kept
    assert plan.node("mul").test_hashes


async def test_prose_wrapped_json_with_trailing_comma_is_recovered(tmp_path: Path) -> None:
    body = json.dumps(GOOD_PLAN, indent=2)
    sloppy = body.replace('"easy"\n    }', '"easy",\n    }')  # trailing commas
    assert sloppy != body
    answer = f"Here is the plan:\n\n```json\n{sloppy}\n```\n\nHope this helps!"
    repo, _ = make_sample(tmp_path, [*base_entries(answer), *good_tests()])
    stage = await start_plan(context(repo), "add mul and div", auto=True, critique=False)
    assert stage.stage == Stage.approved
    assert _plan(repo).ids == ["mul", "div"]
    planner_calls = [
        r for r in read_jsonl(repo / ".director" / "costs.jsonl") if r["role"] == "planner"
    ]
    assert len(planner_calls) == 1  # recovered without asking again


async def test_invalid_dag_is_reasked_with_the_errors_then_fixed(tmp_path: Path) -> None:
    cyclic = {"nodes": [{**MUL, "depends_on": ["div"]}, {**DIV, "depends_on": ["mul"]}]}
    calls = [
        *base_entries()[:2],
        entry("planner", json.dumps(cyclic), attempt=1),
        entry("planner", json.dumps(GOOD_PLAN), attempt=2, prompt_contains="dependency cycle"),
        *good_tests(),
    ]
    repo, _ = make_sample(tmp_path, calls)
    stage = await start_plan(context(repo), "add mul and div", auto=True, critique=False)
    assert stage.stage == Stage.approved


async def test_cyclic_dag_twice_stops_with_the_cycle_and_commits_nothing(tmp_path: Path) -> None:
    cyclic = {"nodes": [{**MUL, "depends_on": ["div"]}, {**DIV, "depends_on": ["mul"]}]}
    calls = [*base_entries(json.dumps(cyclic)), *good_tests()]
    repo, _ = make_sample(tmp_path, calls, plan_retries=1)
    before = user_view(repo)
    with pytest.raises(PlanInvalidError) as caught:
        await start_plan(context(repo), "add mul and div", auto=True, critique=False)
    assert "dependency cycle" in str(caught.value)
    assert "mul" in str(caught.value) and "div" in str(caught.value)
    stage = _stage(repo)
    assert stage.stage == Stage.decompose  # --continue asks again
    assert not (repo / ".director" / "plan.json").exists()
    assert git.rev(repo, stage.job_branch) == before["head"]  # nothing committed
    planner_calls = [
        r for r in read_jsonl(repo / ".director" / "costs.jsonl") if r["role"] == "planner"
    ]
    assert len(planner_calls) == 2
    assert not [
        r for r in read_jsonl(repo / ".director" / "costs.jsonl") if r["role"] == "test_author"
    ]
    assert user_view(repo) == before


async def test_syntax_error_in_test_is_sent_back_then_fixed(tmp_path: Path) -> None:
    calls = [
        *base_entries(),
        write_test("mul", "tests/test_mul.py", SYNTAX_ERROR, attempt=1),
        entry(
            "test_author",
            "fixed",
            node="mul",
            attempt=2,
            prompt_contains="SyntaxError",  # the failing output reached the author
            steps=[{"write": "tests/test_mul.py", "content": RED_MUL}],
        ),
        write_test("div", "tests/test_div.py", RED_DIV),
    ]
    repo, _ = make_sample(tmp_path, calls)
    stage = await start_plan(context(repo), "add mul and div", auto=True, critique=False)
    assert stage.stage == Stage.approved
    committed = git.file_at(repo, stage.job_branch, "tests/test_mul.py")
    assert committed is not None and committed.decode() == RED_MUL
    events = read_jsonl(repo / ".director" / "events.jsonl")
    red = [(e["node_id"], e["attempt"], e["passed"]) for e in events if e["type"] == "gate_result"]
    # div is authored beside mul ([limits] parallel): mul's own checks, in order
    assert [r for r in red if r[0] == "mul"] == [("mul", 1, False), ("mul", 2, True)]
    wrong = next(e for e in events if e["type"] == "gate_result" and not e["passed"])
    assert "exit 2" in wrong["message"]


async def test_tests_that_already_pass_are_sent_back(tmp_path: Path) -> None:
    calls = [
        *base_entries(),
        write_test("mul", "tests/test_mul.py", ALREADY_PASSING, attempt=1),
        entry(
            "test_author",
            "fixed",
            node="mul",
            attempt=2,
            prompt_contains="passed before any implementation",
            steps=[{"write": "tests/test_mul.py", "content": RED_MUL}],
        ),
        write_test("div", "tests/test_div.py", RED_DIV),
    ]
    repo, _ = make_sample(tmp_path, calls)
    stage = await start_plan(context(repo), "add mul and div", auto=True, critique=False)
    assert stage.stage == Stage.approved
    assert _plan(repo).node("mul").test_hashes


async def test_tests_never_red_stop_after_bounded_retries(tmp_path: Path) -> None:
    calls = [*base_entries(), write_test("mul", "tests/test_mul.py", ALREADY_PASSING)]
    repo, _ = make_sample(tmp_path, calls, plan_retries=1)
    with pytest.raises(Exception, match="still not red") as caught:
        await start_plan(context(repo), "add mul and div", auto=True, critique=False)
    assert getattr(caught.value, "exit_code", 0) == 1
    stage = _stage(repo)
    assert stage.stage == Stage.tests
    calls_made = [
        r
        for r in read_jsonl(repo / ".director" / "costs.jsonl")
        if r["role"] == "test_author" and r["node_id"] == "mul"
    ]
    assert len(calls_made) == 2  # div is authored beside it ([limits] parallel)


async def test_test_author_writing_outside_its_tests_is_undone(tmp_path: Path) -> None:
    calls = [
        *base_entries(),
        entry(
            "test_author",
            "wrote tests and cheated",
            node="mul",
            steps=[
                {"write": "tests/test_mul.py", "content": RED_MUL},
                {"write": "calc/ops.py", "content": "def mul(a, b):\n    return a * b\n"},
            ],
        ),
        write_test("div", "tests/test_div.py", RED_DIV),
    ]
    repo, _ = make_sample(tmp_path, calls)
    stage = await start_plan(context(repo), "add mul and div", auto=True, critique=False)
    assert stage.stage == Stage.approved
    ops = git.file_at(repo, stage.job_branch, "calc/ops.py")
    assert ops is not None and b"mul" not in ops
    notices = [
        e["message"]
        for e in read_jsonl(repo / ".director" / "events.jsonl")
        if e["type"] == "notice"
    ]
    assert any("calc/ops.py" in m for m in notices)


async def test_test_author_deleting_the_job_worktrees_git_link_is_stopped(
    tmp_path: Path,
) -> None:
    """Without its .git, git in the job worktree reaches the user's checkout: the stage
    stops with a clear error, and --continue resumes on a fresh job worktree."""
    breaker = entry(
        "test_author",
        "wrote tests",
        node="mul",
        steps=[{"write": "tests/test_mul.py", "content": RED_MUL}, {"run": "rm .git"}],
    )
    repo, script = make_sample(tmp_path, [*base_entries(), breaker])
    # Sandbox off: inside it the .git file is read-only and `rm .git` fails.
    with (repo / ".director" / "config.toml").open("a") as config:
        config.write('[sandbox]\nmode = "off"\n')
    before = user_view(repo)
    with pytest.raises(AgentFailedError, match=r"\.git link"):
        await start_plan(context(repo), "add mul and div", auto=True, critique=False)
    assert user_view(repo) == before
    set_script(script, good_tests())
    stage = await continue_plan(context(repo))
    assert stage.stage == Stage.approved
    assert git.file_at(repo, stage.job_branch, "tests/test_mul.py") == RED_MUL.encode()
    assert user_view(repo) == before


async def test_dirty_tree_and_detached_head_are_refused(tmp_path: Path) -> None:
    repo, _ = make_sample(tmp_path, [*base_entries(), *good_tests()])
    (repo / "calc" / "ops.py").write_text("# my work in progress\n")
    (repo / "notes.txt").write_text("untracked\n")
    before = user_view(repo)
    with pytest.raises(UsageError, match="uncommitted changes") as caught:
        await start_plan(context(repo), "add mul")
    assert "calc/ops.py" in str(caught.value) and "notes.txt" in str(caught.value)
    assert user_view(repo) == before
    assert git_out(repo, "branch", "--list", "director/*") == ""

    git_out(repo, "checkout", "-q", "--", "calc/ops.py")
    (repo / "notes.txt").unlink()
    git_out(repo, "checkout", "-q", "--detach")
    with pytest.raises(UsageError, match="detached"):
        await start_plan(context(repo), "add mul")


async def test_user_changes_made_during_gates_are_untouched(tmp_path: Path) -> None:
    repo, _ = make_sample(tmp_path, [*base_entries(), *good_tests()])
    stage = await start_plan(context(repo), "add mul and div")
    assert stage.stage == Stage.gate1
    # the user goes on working in their checkout while the plan waits at the gate
    (repo / "calc" / "ops.py").write_text("# half-done local edit\n")
    (repo / "scratch.py").write_text("print('mine')\n")
    git_out(repo, "add", "scratch.py")
    before = user_view(repo)
    stage = await continue_plan(context(repo))
    assert stage.stage == Stage.gate2
    assert user_view(repo) == before
    stage = await continue_plan(context(repo))
    assert stage.stage == Stage.approved
    assert user_view(repo) == before
    assert (repo / "scratch.py").read_text() == "print('mine')\n"


async def test_planning_again_archives_the_previous_job(tmp_path: Path) -> None:
    repo, _ = make_sample(tmp_path, [*base_entries(), *good_tests()])
    first = await start_plan(context(repo), "add mul and div")
    second = await start_plan(context(repo), "add mul and div again")
    assert first.job_id != second.job_id
    archived = repo / ".director" / "jobs" / first.job_id
    assert (archived / "spec.md").exists() and (archived / "plan_stage.json").exists()
    listed = [j.job_id for j in jobs.list_jobs(context(repo).store)]
    assert listed == [second.job_id, first.job_id]


async def test_gate2_edits_are_revalidated_rechecked_and_rehashed(tmp_path: Path) -> None:
    repo, _ = make_sample(tmp_path, [*base_entries(), *good_tests()])
    ctx = context(repo)
    await start_plan(ctx, "add mul and div")
    stage = await continue_plan(context(repo))
    assert stage.stage == Stage.gate2
    plan_path = repo / ".director" / "plan.json"
    worktree = jobs.job_worktree(ctx.store)

    # 1. an invalid edit is refused (exit 2) and the gate keeps waiting
    good_text = plan_path.read_text()
    broken = json.loads(good_text)
    broken["nodes"][0]["depends_on"] = ["nope"]
    plan_path.write_text(json.dumps(broken))
    with pytest.raises(PlanInvalidError, match="unknown node 'nope'"):
        await continue_plan(context(repo))
    assert _stage(repo).stage == Stage.gate2

    # 2. an edited test that passes already is refused
    plan_path.write_text(good_text)
    (worktree / "tests" / "test_mul.py").write_text(ALREADY_PASSING)
    with pytest.raises(UsageError, match="not red"):
        await continue_plan(context(repo))
    assert _stage(repo).stage == Stage.gate2

    # 3. a better edit is re-checked red, committed and re-hashed
    stronger = (
        RED_MUL
        + "\n\ndef test_mul_zero():\n    from calc.ops import mul\n\n    assert mul(0, 5) == 0\n"
    )
    (worktree / "tests" / "test_mul.py").write_text(stronger)
    old_hash = _plan(repo).node("mul").test_hashes["tests/test_mul.py"]
    stage = await continue_plan(context(repo))
    assert stage.stage == Stage.approved
    new_hash = _plan(repo).node("mul").test_hashes["tests/test_mul.py"]
    assert new_hash != old_hash
    assert new_hash == git.sha256_file(worktree / "tests" / "test_mul.py")
    committed = git.file_at(repo, stage.job_branch, "tests/test_mul.py")
    assert committed is not None and committed.decode() == stronger
    assert stage.approvals[-1].note == "tests edited at the gate: mul"


async def test_gate2_plan_edit_adding_a_node_gets_its_tests_written(tmp_path: Path) -> None:
    from tests.plan_helpers import node

    sub = node("sub", ["calc/sub.py"], ["tests/test_sub.py"])
    red_sub = "def test_sub():\n    from calc.sub import sub\n\n    assert sub(3, 1) == 2\n"
    calls = [*base_entries(), *good_tests(), write_test("sub", "tests/test_sub.py", red_sub)]
    repo, _ = make_sample(tmp_path, calls)
    await start_plan(context(repo), "add mul and div")
    await continue_plan(context(repo))
    plan_path = repo / ".director" / "plan.json"
    data = json.loads(plan_path.read_text())
    data["nodes"] = [n for n in data["nodes"] if n["id"] != "div"] + [sub]
    plan_path.write_text(json.dumps(data))
    stage = await continue_plan(context(repo))
    # new tests were written: the human sees them at Gate 2 before approving
    assert stage.stage == Stage.gate2
    plan = _plan(repo)
    assert plan.ids == ["mul", "sub"] and plan.node("sub").test_hashes
    assert git.file_at(repo, stage.job_branch, "tests/test_div.py") is None  # removed node
    stage = await continue_plan(context(repo))
    assert stage.stage == Stage.approved


async def test_reject_spec_and_critique_at_gate1(tmp_path: Path) -> None:
    rewritten = SPEC.replace("ints only", "floats too")
    critiqued = SPEC.replace("Nothing else.", "No CLI.")
    calls = [
        entry("brainstorm", rewritten, prompt_contains="support floats"),
        entry("critic", critiqued, prompt_contains="Spec to review"),
        *base_entries(),
        *good_tests(),
    ]
    repo, _ = make_sample(tmp_path, calls)
    await start_plan(context(repo), "add mul and div")
    stage = await reject_spec(context(repo), "please support floats")
    assert stage.stage == Stage.gate1 and stage.rejection == "please support floats"
    assert (repo / ".director" / "spec.md").read_text() == rewritten
    stage = await critique(context(repo))
    assert stage.stage == Stage.gate1
    assert (repo / ".director" / "spec.md").read_text() == critiqued
    with pytest.raises(UsageError):
        await reject_spec(context(repo), "")


async def test_an_agent_rewriting_an_edited_spec_keeps_the_humans_version(
    tmp_path: Path,
) -> None:
    mine = SPEC.replace("Nothing else.", "Also a sub function.")
    critiqued = SPEC.replace("Nothing else.", "No CLI.")
    calls = [
        entry("critic", critiqued, prompt_contains="Also a sub function."),
        entry("brainstorm", SPEC, prompt_contains="shorter"),
        *base_entries(),
        *good_tests(),
    ]
    repo, _ = make_sample(tmp_path, calls)
    await start_plan(context(repo), "add mul and div")
    spec, kept = repo / ".director" / "spec.md", repo / ".director" / "spec.edited.md"
    spec.write_text(mine)
    await critique(context(repo))  # the critic is shown the human's version...
    assert spec.read_text() == critiqued
    assert kept.read_text() == mine  # ...and that version is not lost to it
    assert (repo / ".director" / "spec.generated.md").read_text() == critiqued
    await reject_spec(context(repo), "shorter please")
    assert kept.read_text() == mine  # the critic's spec was not edited: nothing new to keep


async def test_the_critic_revises_the_users_edited_spec_and_it_can_be_restored(
    tmp_path: Path,
) -> None:
    mine = SPEC.replace("Nothing else.", "Also a sub function.")
    critiqued = mine.replace("ints only", "ints and floats")
    calls = [
        # matched only when the prompt says the spec is the user's and carries their edit
        entry("critic", critiqued, prompt_contains="The user edited this spec at the gate"),
        *base_entries(),
        *good_tests(),
    ]
    repo, script = make_sample(tmp_path, calls)
    await start_plan(context(repo), "add mul and div")
    assert _stage(repo).spec_by == "brainstorm"
    spec, kept = repo / ".director" / "spec.md", repo / ".director" / "spec.edited.md"
    spec.write_text(mine)
    set_script(
        script,
        [
            entry(
                "critic",
                critiqued,
                prompt_contains="## Spec to review (edited by the user)\n\n" + mine.strip(),
            ),
            *base_entries(),
            *good_tests(),
        ],
    )
    stage = await critique(context(repo))
    assert stage.spec_by == "critic" and _stage(repo).spec_by == "critic"
    assert spec.read_text() == critiqued  # the critic's revision of the user's version
    assert kept.read_text() == mine
    events = read_jsonl(repo / ".director" / "events.jsonl")
    said = [e["message"] for e in events if e.get("type") == "notice"]
    assert any("your edited .director/spec.md" in m and "spec.edited.md" in m for m in said)

    spec.write_text(critiqued + "a later edit of the user's\n")
    with pytest.raises(UsageError, match="restoring would lose them"):
        restore_edit(context(repo))  # never over an edit made after the critic's
    spec.write_text(critiqued)
    message = restore_edit(context(repo))
    assert "spec.md" in message
    assert spec.read_text() == mine  # the user's version is back...
    assert (repo / ".director" / "spec.generated.md").read_text() == critiqued  # ...over this
    stage = await continue_plan(context(repo))
    assert stage.approvals[0].note == "spec.md edited at the gate"


async def test_a_critique_of_an_unedited_spec_says_nothing_of_an_edit(tmp_path: Path) -> None:
    critiqued = SPEC.replace("Nothing else.", "No CLI.")
    calls = [entry("critic", critiqued), *base_entries(), *good_tests()]
    repo, script = make_sample(tmp_path, calls)
    await start_plan(context(repo), "add mul and div")
    wrong = SPEC.replace("Nothing else.", "told of an edit that was never made")
    set_script(
        script,
        [
            entry("critic", wrong, prompt_contains="The user edited"),
            entry("critic", critiqued, prompt_contains="## Spec to review\n"),
        ],
    )
    await critique(context(repo))
    assert (repo / ".director" / "spec.md").read_text() == critiqued
    assert not (repo / ".director" / "spec.edited.md").exists()
    with pytest.raises(UsageError, match="no edited spec to restore"):
        restore_edit(context(repo))


async def test_the_critic_revises_the_users_edited_plan_and_it_can_be_restored(
    tmp_path: Path,
) -> None:
    repo, script = make_sample(tmp_path, [*base_entries(), *good_tests()])
    await start_plan(context(repo), "add mul and div")
    await continue_plan(context(repo))  # Gate 1 approved: at Gate 2
    plan_path = repo / ".director" / "plan.json"
    data = json.loads(plan_path.read_text())
    data["nodes"][1]["title"] = "divide, mine"  # the user's edit at Gate 2
    plan_path.write_text(json.dumps(data))
    mine = plan_path.read_text()
    critic_plan = json.loads(json.dumps(GOOD_PLAN))
    critic_plan["nodes"][1]["title"] = "divide, mine"
    critic_plan["nodes"][0]["title"] = "multiply"
    set_script(
        script,
        [
            entry(
                "critic",
                json.dumps(critic_plan),
                prompt_contains="The user edited this plan at the gate",
            )
        ],
    )
    stage = await critique(context(repo))
    assert stage.plan_by == "critic"
    revised = _plan(repo)
    assert revised.node("mul").title == "multiply" and revised.node("div").title == "divide, mine"
    kept = repo / ".director" / "plan.edited.json"
    assert kept.read_text() == mine
    said = [
        e["message"]
        for e in read_jsonl(repo / ".director" / "events.jsonl")
        if e.get("type") == "notice"
    ]
    assert any("plan.edited.json" in m and "--restore-edit" in m for m in said)

    restore_edit(context(repo))
    assert plan_path.read_text() == mine
    stage = await continue_plan(context(repo))  # approving goes on from the user's plan
    assert stage.stage == Stage.approved
    assert _plan(repo).node("mul").title == MUL["title"]
    assert stage.approvals[-1].note == "plan.json edited at the gate"


async def test_continue_retries_a_failed_step(tmp_path: Path) -> None:
    calls = [entry("explorer", "", exit="api_error", message="rate limited")]
    repo, script = make_sample(tmp_path, calls)
    with pytest.raises(Exception, match="rate limited"):
        await start_plan(context(repo), "add mul and div")
    assert _stage(repo).stage == Stage.recon
    set_script(script, [*base_entries(), *good_tests()])
    stage = await continue_plan(context(repo))
    assert stage.stage == Stage.gate1


def test_approve_gate_is_pure_and_only_at_gates() -> None:
    stage = PlanStage(job_id="j", task="t", stage=Stage.gate1)
    approved = approve_gate(stage, "critic", "looks fine")
    assert stage.stage == Stage.gate1 and not stage.approvals  # unchanged
    assert approved.stage == Stage.decompose
    assert approved.approvals[0].approver == "critic" and approved.approvals[0].note == "looks fine"
    assert approve_gate(approved.model_copy(update={"stage": Stage.gate2}), "human").stage == (
        Stage.approved
    )
    with pytest.raises(UsageError):
        approve_gate(approved, "human")


async def test_continue_without_a_plan_is_a_usage_error(tmp_path: Path) -> None:
    repo, _ = make_sample(tmp_path, [])
    with pytest.raises(UsageError, match="no plan in progress"):
        await continue_plan(context(repo))


async def test_test_author_gets_the_guidance_that_applies_to_its_node(tmp_path: Path) -> None:
    guidance = {
        "AGENTS.md": "Root rule: no print statements.\n",
        "calc/CLAUDE.md": "Calc rule: every function is typed.\n",
        "docs/AGENTS.md": "Docs rule: British spelling.\n",
    }
    mul_entry = write_test("mul", "tests/test_mul.py", RED_MUL)
    # the scripted entry only matches when both applicable files are in the prompt
    mul_entry["prompt_contains"] = "Calc rule: every function is typed."
    calls = [
        *base_entries(),
        mul_entry,
        write_test("div", "tests/test_div.py", RED_DIV),
    ]
    repo, _ = make_sample(tmp_path, calls, extra_files=guidance)
    stage = await start_plan(context(repo), "add mul and div", auto=True, critique=False)
    assert stage.stage == Stage.approved
    from director_tui.engine.guidance import guidance_prompt
    from director_tui.engine.plan.prompts import test_author_prompt

    worktree = jobs.job_worktree(context(repo).store)
    plan = _plan(repo)
    prompt = test_author_prompt(
        "t", plan, plan.node("mul"), guidance=guidance_prompt(worktree, ["calc/ops.py"])
    )
    assert "Root rule" in prompt and "Calc rule" in prompt and "Docs rule" not in prompt


async def test_test_author_that_writes_nothing_is_told_which_files_are_missing(
    tmp_path: Path,
) -> None:
    calls = [
        *base_entries(),
        entry("test_author", "I think the tests are fine", node="mul", attempt=1),
        entry(
            "test_author",
            "wrote them",
            node="mul",
            attempt=2,
            prompt_contains="You did not create these test files: `tests/test_mul.py`",
            steps=[{"write": "tests/test_mul.py", "content": RED_MUL}],
        ),
        write_test("div", "tests/test_div.py", RED_DIV),
    ]
    repo, _ = make_sample(tmp_path, calls)
    stage = await start_plan(context(repo), "add mul and div", auto=True, critique=False)
    assert stage.stage == Stage.approved
