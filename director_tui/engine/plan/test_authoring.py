"""The tests stage: the test author writes each node's tests until they are red for the
right reason; then they are frozen (committed and hashed).

Nodes are authored up to ``[limits] parallel`` at once (``director plan --parallel``), each
in its own scratch worktree cut from the job branch as the stage starts
(:mod:`.test_worktrees`), with its own red check there. Their test files are committed to
the job branch strictly in plan order — a node whose tests are red waits for the nodes
before it — so the job branch and plan.json are what a one-at-a-time pass gives. A node
that fails (out of tries, or a fatal agent error) stops new nodes from starting; those
already running finish, the nodes before it are committed, and everything after it stays
in its worktree, where ``director plan --continue`` checks it first."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from director_tui.engine import dag, git
from director_tui.engine.agents.base import MAX_HARNESS_CRASHES, AgentResult
from director_tui.engine.context import EngineContext
from director_tui.engine.errors import DirectorError, PlanInvalidError
from director_tui.engine.events import NodeTestsProgress, TestsPhase
from director_tui.engine.guidance import guidance_prompt
from director_tui.engine.models import Node, Plan, PlanStage
from director_tui.engine.plan.author_slots import TestPlaces
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
from director_tui.engine.plan.test_worktrees import (
    copy_tests,
    remove_test_worktree,
    remove_test_worktrees,
    test_worktree,
)


@dataclass
class _RedTests:
    """A node's tests, red for the right reason in its scratch worktree."""

    worktree: Path
    output: str
    kept: bool  # found there already red (an interrupted pass, or fixed by hand)


async def author_all_tests(ctx: EngineContext, stage: PlanStage, worktree: Path) -> None:
    store = ctx.store
    plan = read_plan(store)
    errors = dag.validate(plan)
    if errors:
        raise PlanInvalidError(errors)
    pending = [node for node in plan.nodes if not tests_frozen(worktree, node)]
    remove_test_worktrees(store, stage.job_id, keep={node.id for node in pending})
    if pending:
        tests = _TestsStage(ctx, stage, plan, worktree)
        try:
            await tests.run(pending)
        finally:
            # With `director auto` the run comes next in this process: it keeps the
            # slots' servers (see author_slots.py).
            await tests.places.close(keep_for_run=stage.auto)
    remove_test_worktrees(store, stage.job_id, keep=set())


class _TestsStage:
    def __init__(self, ctx: EngineContext, stage: PlanStage, plan: Plan, job_wt: Path) -> None:
        self.ctx = ctx
        self.stage = stage
        self.plan = plan
        self.job_wt = job_wt
        self.base = git.rev(job_wt)  # every node's worktree starts here, whenever it starts
        self.slots = asyncio.Semaphore(ctx.config.limits.parallel)
        self.places = TestPlaces(ctx, stage.job_id, self.base, job_wt)
        self.stopped = False  # a node failed: no new node starts

    def progress(self, node: Node, phase: TestsPhase, attempt: int = 0, message: str = "") -> None:
        self.ctx.bus.emit(
            NodeTestsProgress(node_id=node.id, phase=phase, attempt=attempt, message=message)
        )

    async def run(self, pending: list[Node]) -> None:
        for node in pending:
            self.progress(node, "waiting")
        tasks = {node.id: asyncio.create_task(self._author(node)) for node in pending}
        failure: BaseException | None = None
        try:
            for node in pending:  # plan order: a node commits after every node before it
                try:
                    red = await tasks[node.id]
                except Exception as exc:  # raised below, the first in plan order
                    failure = failure or exc
                    continue
                if red is None or failure is not None:
                    continue  # never started, or after a failure: kept for --continue
                self._commit(node, red)
        finally:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
        if failure is not None:
            raise failure

    async def _author(self, node: Node) -> _RedTests | None:
        async with self.slots:
            if self.stopped:
                return None
            try:
                async with self.places.open(node) as wt:
                    red = await _author_node_tests(self, node, wt)
                # Its files are in the node's own scratch worktree now, wherever it worked.
                red = dataclasses.replace(red, worktree=test_worktree(self.ctx.store, node.id))
            except BaseException as exc:
                self.stopped = True
                why = "stopped" if isinstance(exc, asyncio.CancelledError) else str(exc)
                self.progress(node, "failed", message=why.splitlines()[0] if why else "")
                raise
            self.progress(node, "red")
            return red

    def _commit(self, node: Node, red: _RedTests) -> None:
        store = self.ctx.store
        copy_tests(node, red.worktree, self.job_wt)
        freeze(self.job_wt, node, red.output, f"director: tests for {node.id}")
        store.write_model(store.plan, self.plan)  # progress survives an interruption
        remove_test_worktree(store, self.stage.job_id, node.id)
        what = "kept the existing red tests of node" if red.kept else "tests of node"
        tail = "" if red.kept else " committed and hashed"
        notice(self.ctx, f"{what} {node.id}{tail}", node_id=node.id)
        self.progress(node, "frozen")


async def _author_node_tests(tests: _TestsStage, node: Node, worktree: Path) -> _RedTests:
    """Ask the test author (in the node's scratch worktree) until the node's tests are red
    for the right reason."""
    ctx, stage, plan = tests.ctx, tests.stage, tests.plan
    keep = {dag.normalise_path(t) for t in node.tests}
    kept, feedback = await _keep_leftover_tests(tests, node, worktree, keep)
    if kept is not None:
        return kept
    last_reason = ""
    recon = read_text(ctx.store.recon)
    guidance = guidance_prompt(worktree, [*node.files, *node.tests])
    attempts = 1 + ctx.config.limits.plan_retries
    crashes_forgiven = 0
    attempt = 0
    while attempt < attempts:
        attempt += 1
        prompt = test_author_prompt(
            stage.task, plan, node, recon=recon, guidance=guidance, feedback=feedback
        )
        tests.progress(node, "authoring", attempt)
        result, _ = await ctx.call_agent(
            "test_author", prompt, worktree, node_id=node.id, attempt=attempt
        )
        if result.harness_error and crashes_forgiven < MAX_HARNESS_CRASHES:
            # The CLI's own machinery failed (OpenCode's database locked by a parallel
            # session), not the agent: the same attempt again, not charged — as in a run.
            crashes_forgiven += 1
            attempt -= 1
            notice(
                ctx,
                f"tests of node {node.id}: the agent CLI crashed on its own machinery "
                f"({result.message}); running it again, not counted as a try",
                "warning",
                node.id,
            )
            continue
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
            tests.progress(node, "red_check", attempt)
            verdict, output = await red_check(ctx, node, worktree, attempt)
            if verdict.ok:
                return _RedTests(worktree, output, kept=False)
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
    where = test_worktree(ctx.store, node.id)
    raise DirectorError(
        f"the tests of node {node.id} are still not red for the right reason after "
        f"{attempts} attempt(s): {last_reason}",
        hint=(
            f"the last attempt is left uncommitted in {where}; fix it there "
            "or let the agent retry with `director plan --continue`"
        ),
    )


async def _keep_leftover_tests(
    tests: _TestsStage, node: Node, worktree: Path, keep: set[str]
) -> tuple[_RedTests | None, str]:
    """Test files left from an interrupted run (or fixed by hand) are checked before any
    agent is asked: if they are already red for the right reason they are kept. Returns
    them when they were, and else what the test author is told about them."""
    leftovers = all((worktree / t).is_file() for t in node.tests) and any(
        git.file_at(worktree, "HEAD", t) != (worktree / t).read_bytes() for t in node.tests
    )
    if not leftovers:
        return None, ""
    revert_outside(worktree, keep)
    tests.progress(node, "red_check")
    verdict, output = await red_check(tests.ctx, node, worktree, 0)
    if verdict.ok:
        return _RedTests(worktree, output, kept=True), ""
    return None, red_feedback(verdict.reason, node.test_cmd, output, reverted=[])


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
        # Without its .git link, git in the worktree reaches the user's checkout.
        raise AgentFailedError(
            f"the test_author agent of node {node.id} deleted or replaced the .git link "
            f"of {worktree}; nothing was committed",
            hint="`director plan --continue` resumes the tests stage on a fresh worktree "
            "for that node",
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
