"""The tests stage: the test author writes each node's tests until they are red for the
right reason; then they are frozen (committed and hashed)."""

from __future__ import annotations

from pathlib import Path

from director_tui.engine import dag, git
from director_tui.engine.agents.base import AgentResult
from director_tui.engine.context import EngineContext
from director_tui.engine.errors import DirectorError, PlanInvalidError
from director_tui.engine.guidance import guidance_prompt
from director_tui.engine.models import Node, Plan, PlanStage
from director_tui.engine.plan.common import FATAL_EXITS, AgentFailedError, notice, read_text
from director_tui.engine.plan.plan_file import read_plan
from director_tui.engine.plan.prompts import (
    red_feedback,
    test_author_prompt,
)
from director_tui.engine.plan.red_tests import (
    freeze,
    is_junk,
    red_check,
    revert_outside,
    tests_frozen,
)


async def author_all_tests(ctx: EngineContext, stage: PlanStage, worktree: Path) -> None:
    store = ctx.store
    plan = read_plan(store)
    errors = dag.validate(plan)
    if errors:
        raise PlanInvalidError(errors)
    for node in plan.nodes:
        if tests_frozen(worktree, node):
            continue
        unfrozen = {
            dag.normalise_path(t)
            for other in plan.nodes
            if other.id == node.id or not tests_frozen(worktree, other)
            for t in other.tests
        }
        await _author_node_tests(ctx, stage, plan, node, worktree, unfrozen)
        store.write_model(store.plan, plan)  # progress survives an interruption
        revert_outside(worktree, unfrozen - set(map(dag.normalise_path, node.tests)))


async def _author_node_tests(
    ctx: EngineContext,
    stage: PlanStage,
    plan: Plan,
    node: Node,
    worktree: Path,
    keep: set[str],
) -> None:
    """Ask the test author until the node's tests are red for the right reason."""
    kept, feedback = await _keep_leftover_tests(ctx, node, worktree, keep)
    if kept:
        return
    last_reason = ""
    recon = read_text(ctx.store.recon)
    guidance = guidance_prompt(worktree, [*node.files, *node.tests])
    attempts = 1 + ctx.config.limits.plan_retries
    for attempt in range(1, attempts + 1):
        prompt = test_author_prompt(
            stage.task, plan, node, recon=recon, guidance=guidance, feedback=feedback
        )
        result, _ = await ctx.call_agent(
            "test_author", prompt, worktree, node_id=node.id, attempt=attempt
        )
        reverted = _check_after_agent(ctx, node, worktree, keep, result)
        missing = [t for t in node.tests if not (worktree / t).is_file()]
        red_checked = False
        if not result.ok:
            last_reason = f"the agent failed ({result.exit_reason.value}: {result.message})"
            feedback = (
                f"Your previous attempt ended early ({result.exit_reason.value}): "
                f"{result.message}. Write the test files listed below."
            )
        elif missing:
            last_reason = f"test file(s) not written: {', '.join(missing)}"
            feedback = (
                "You did not create these test files: "
                + ", ".join(f"`{m}`" for m in missing)
                + ". Create exactly the files listed below."
            )
        else:
            verdict, output = await red_check(ctx, node, worktree, attempt)
            if verdict.ok:
                freeze(worktree, node, output, f"director: tests for {node.id}")
                notice(ctx, f"tests of node {node.id} committed and hashed", node_id=node.id)
                return
            last_reason = verdict.reason
            red_checked = True  # the GateResult event already showed why
            feedback = red_feedback(verdict.reason, node.test_cmd, output, reverted=reverted)
        left = attempts - attempt
        notice(
            ctx,
            f"tests of node {node.id} sent back to the test author"
            + ("" if red_checked else f": {last_reason}")
            + (f" ({left} tr{'y' if left == 1 else 'ies'} left)" if left else " (no tries left)"),
            "warning",
            node.id,
        )
    raise DirectorError(
        f"the tests of node {node.id} are still not red for the right reason after "
        f"{attempts} attempt(s): {last_reason}",
        hint=(
            "the last attempt is left uncommitted in .director/worktrees/_job; fix it there "
            "or let the agent retry with `director plan --continue`"
        ),
    )


async def _keep_leftover_tests(
    ctx: EngineContext, node: Node, worktree: Path, keep: set[str]
) -> tuple[bool, str]:
    """Test files left from an interrupted run (or fixed by hand) are checked before any
    agent is asked: if they are already red for the right reason they are kept. Returns
    whether they were, and else what the test author is told about them."""
    leftovers = all((worktree / t).is_file() for t in node.tests) and any(
        git.file_at(worktree, "HEAD", t) != (worktree / t).read_bytes() for t in node.tests
    )
    if not leftovers:
        return False, ""
    revert_outside(worktree, keep)
    verdict, output = await red_check(ctx, node, worktree, 0)
    if verdict.ok:
        freeze(worktree, node, output, f"director: tests for {node.id}")
        notice(ctx, f"kept the existing red tests of node {node.id}", node_id=node.id)
        return True, ""
    return False, red_feedback(verdict.reason, node.test_cmd, output, reverted=[])


def _check_after_agent(
    ctx: EngineContext, node: Node, worktree: Path, keep: set[str], result: AgentResult
) -> list[str]:
    """Stop on a failure no retry can fix; undo the test author's changes to files that are
    not its tests and return them (build junk left out)."""
    if result.exit_reason in FATAL_EXITS:
        raise AgentFailedError(
            f"the test_author agent failed ({result.exit_reason.value}): {result.message}",
            hint="fix the cause, then `director plan --continue` resumes the tests stage",
        )
    if not git.worktree_intact(ctx.store.repo, worktree):
        # Without its .git link, git in the job worktree reaches the user's checkout.
        raise AgentFailedError(
            f"the test_author agent of node {node.id} deleted or replaced the .git link "
            f"of {worktree}; nothing was committed",
            hint="`director plan --continue` moves the folder aside and resumes the "
            "tests stage on a fresh job worktree",
        )
    reverted = [
        p for p in revert_outside(worktree, keep) if not is_junk(p, ctx.config.repository.ignore)
    ]
    if reverted:
        notice(
            ctx,
            f"the test author of node {node.id} changed files that are not its tests; "
            f"undone: {', '.join(reverted)}",
            "warning",
            node.id,
        )
    return reverted
