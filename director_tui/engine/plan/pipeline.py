"""The plan pipeline's state machine: start or continue a job, drive it through the
stages until a gate waits for an approver, approve gates (human, critic or auto).

The public API and the files it writes are described in the package docstring
(``director_tui/engine/plan/__init__.py``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Literal

from director_tui.engine import git, jobs, worktree_moves
from director_tui.engine.agent_servers import READER_ROLES
from director_tui.engine.agents import PLAN_ROLES, require_binaries
from director_tui.engine.agents.model_check import Lister, list_served_models, require_models
from director_tui.engine.agents.opencode_server import OpenCodeServer
from director_tui.engine.context import EngineContext
from director_tui.engine.errors import UsageError
from director_tui.engine.events import PlanStageChanged
from director_tui.engine.models import Approval, PlanStage, Stage, now
from director_tui.engine.plan.author_slots import warm_slots
from director_tui.engine.plan.checkout import check_checkout
from director_tui.engine.plan.common import notice, read_text
from director_tui.engine.plan.decompose import decompose_spec
from director_tui.engine.plan.gate2_edits import (
    critique_plan,
    edit_note,
    reconcile_plan_edits,
    restore_edited_plan,
)
from director_tui.engine.plan.plan_file import snapshot_plan
from director_tui.engine.plan.spec import (
    critique_spec,
    restore_edited_spec,
    rewrite_spec,
    write_recon,
    write_spec,
)
from director_tui.engine.plan.test_authoring import author_all_tests
from director_tui.engine.store import Store, atomic_write_text

Approver = Literal["human", "critic", "auto"]


LOCK_PURPOSE = "plan"


def load_stage(store: Store) -> PlanStage | None:
    return store.read_model(store.plan_stage, PlanStage)


def require_stage(store: Store) -> PlanStage:
    """The plan in progress; ``UsageError`` when there is none. Reading only: commands
    call it before anything is written (exit 2 says "nothing written")."""
    stage = load_stage(store)
    if stage is None:
        raise UsageError(
            "there is no plan in progress in this repository",
            hint='start one with `director plan "<task>"`',
        )
    return stage


def _save(ctx: EngineContext, stage: PlanStage, message: str = "") -> None:
    stage.updated_at = now()
    ctx.store.write_model(ctx.store.plan_stage, stage)
    ctx.bus.emit(
        PlanStageChanged(
            job_id=stage.job_id, stage=stage.stage.value, message=message, auto=stage.auto
        )
    )


_NEXT_AFTER_GATE = {Stage.gate1: Stage.decompose, Stage.gate2: Stage.approved}


def approve_gate(stage: PlanStage, approver: Approver, note: str = "") -> PlanStage:
    """The stage after ``approver`` approved the gate it waits at (a new object)."""
    if stage.stage not in _NEXT_AFTER_GATE:
        raise UsageError(
            f"the plan is at stage {stage.stage.value!r}, not waiting at a gate",
            hint="`director status` shows where it is",
        )
    gate: Literal["gate1", "gate2"] = "gate1" if stage.stage == Stage.gate1 else "gate2"
    approval = Approval(gate=gate, approver=approver, note=note)
    return stage.model_copy(
        update={
            "stage": _NEXT_AFTER_GATE[stage.stage],
            "approvals": [*stage.approvals, approval],
            "updated_at": now(),
        }
    )


def next_step(stage: PlanStage, job_worktree: Path | None = None) -> str:
    """What the user does next, in one or two lines (``job_worktree``: where the job
    branch is checked out, named at Gate 2)."""
    if stage.stage == Stage.gate1:
        return (
            "Gate 1: review (and edit if you like) .director/spec.md, then run "
            "`director plan --continue` to approve it and decompose."
        )
    if stage.stage == Stage.gate2:
        return (
            "Gate 2: review .director/plan.json and the red tests on branch "
            f"{stage.job_branch} (checked out at {job_worktree or 'the job worktree'}), then run "
            "`director plan --continue` to approve."
        )
    if stage.stage == Stage.approved:
        return "The plan is approved: run `director run` to implement it."
    return f"Planning stopped at stage {stage.stage.value!r}: run `director plan --continue` to resume."


async def start_plan(
    ctx: EngineContext, task: str, *, auto: bool = False, critique: bool = True
) -> PlanStage:
    """Start a new job for ``task`` and run until the first gate that waits for a human
    (or, with ``auto``, to the approved plan)."""
    task = task.strip()
    if not task:
        raise UsageError("the task is empty", hint='director plan "<what you want done>"')
    # Read-only, before the lock: a refused checkout leaves no .director/ behind.
    base_branch, base_commit = check_checkout(ctx.repo)
    require_binaries(ctx.config, PLAN_ROLES, "planning")
    async with ctx.servers.session():
        models_note = await require_models(ctx.config, ctx.repo, PLAN_ROLES, "planning")
        ctx.require_sandbox()
        return await _start_job(ctx, task, base_branch, base_commit, auto, critique, models_note)


async def _start_job(
    ctx: EngineContext,
    task: str,
    base_branch: str,
    base_commit: str,
    auto: bool,
    critique: bool,
    models_note: str = "",
) -> PlanStage:
    store = ctx.store
    with store.run_lock(LOCK_PURPOSE) as took_over:
        if took_over:
            notice(ctx, took_over, "warning")
        archived = jobs.archive_current(store)
        if archived:
            notice(ctx, f"the previous job was archived under .director/jobs/{archived}/")

        # run_lock → store.ensure() already keeps .director/ out of git status through
        # .git/info/exclude, so the user's .gitignore is never edited.
        job_id = jobs.new_job_id()
        branch = jobs.job_branch(job_id)
        git.create_branch(ctx.repo, branch, base_commit)
        atomic_write_text(store.task, task + "\n")
        stage = PlanStage(
            job_id=job_id,
            task=task,
            stage=Stage.recon,
            job_branch=branch,
            base_commit=base_commit,
            base_branch=base_branch,
            auto=auto,
            critique=critique,
        )
        _save(ctx, stage, f"job {job_id} on branch {branch} from {base_branch}@{base_commit[:10]}")
        if models_note:  # said in the new job's events, not the archived one's
            notice(ctx, models_note)
        submodules = git.submodule_paths(ctx.repo, base_commit)
        if submodules:
            # `git worktree add` leaves submodules empty, and filling them per node means
            # a clone each: say it once, before a gate fails on a missing file.
            notice(
                ctx,
                f"this repository has git submodules ({', '.join(submodules[:5])}"
                f"{', …' if len(submodules) > 5 else ''}): director's worktrees do not check "
                "them out, so the agents, the tests and the gate commands see them as empty "
                "folders",
                "warning",
            )
        return await _drive(ctx, stage)


async def continue_plan(ctx: EngineContext, *, approver: Approver = "human") -> PlanStage:
    """Resume where the pipeline stopped. At a gate this approves the (possibly edited)
    artifact as ``approver``; after a failure it retries the failed step."""
    store = ctx.store
    with store.run_lock(LOCK_PURPOSE) as took_over:
        if took_over:
            notice(ctx, took_over, "warning")
        stage = require_stage(store)
        if stage.stage == Stage.approved:
            notice(ctx, "the plan is already approved")
            return stage
        require_binaries(ctx.config, PLAN_ROLES, "planning")
        async with ctx.servers.session():
            models_note = await require_models(
                ctx.config, ctx.repo, PLAN_ROLES, "planning", lister=_lister(ctx)
            )
            if models_note:
                notice(ctx, models_note)
            ctx.require_sandbox()
            return await _continue(ctx, stage, approver)


async def _continue(ctx: EngineContext, stage: PlanStage, approver: Approver) -> PlanStage:
    """Under the lock, models checked: approve the gate it waits at, then drive on."""
    worktree = _job_worktree(ctx, stage)
    if stage.stage == Stage.gate1:
        stage = _approve_spec(ctx, stage, approver)
    elif stage.stage == Stage.gate2:
        needs_tests, retested = await reconcile_plan_edits(ctx, stage, worktree)
        if needs_tests:
            stage.stage = Stage.tests
            _save(ctx, stage, "plan.json names tests that are not written yet")
        else:
            stage = approve_gate(stage, approver, edit_note(ctx.store, retested))
            _save(ctx, stage, f"Gate 2 approved by {approver}")
    return await _drive(ctx, stage)


def _reader(ctx: EngineContext, worktree: Path) -> OpenCodeServer | None:
    """The server of the planning roles that only read, for the job worktree (None when
    they do not run on OpenCode servers)."""
    servers = ctx.servers
    if not any(servers.wanted(role) for role in READER_ROLES):
        return None
    return servers.server(
        worktree, writable=False, roles=READER_ROLES, name="opencode-server-planner"
    )


def _lister(ctx: EngineContext) -> Lister | None:
    """When the job worktree is there (a pass that continues a job), the planner's server
    answers the model check (``model_check.list_served_models``, in the directory it
    serves) instead of a cold ``opencode models``: its start is paid once, not twice."""
    worktree = jobs.job_worktree(ctx.store)
    if not worktree.is_dir() or not git.worktree_intact(ctx.repo, worktree):
        return None
    reader = _reader(ctx, worktree)
    if reader is None:
        return None
    return lambda: list_served_models(reader, worktree)


async def reject_spec(ctx: EngineContext, comment: str) -> PlanStage:
    """At Gate 1: send ``comment`` to the brainstorm agent and rewrite spec.md."""
    if not comment.strip():
        raise UsageError("a rejection needs a comment saying what to change")
    store = ctx.store
    with store.run_lock(LOCK_PURPOSE):
        stage = require_stage(store)
        if stage.stage != Stage.gate1:
            raise UsageError(
                f"the spec can only be rejected at Gate 1 (the plan is at {stage.stage.value!r})"
            )
        worktree = _job_worktree(ctx, stage)
        async with _serving(ctx, worktree):
            kept = await rewrite_spec(ctx, stage, worktree, comment)
        stage.rejection = comment.strip()
        _save(ctx, stage, "spec rewritten after the reviewer's comments" + kept)
        return stage


async def critique(ctx: EngineContext) -> PlanStage:
    """At a gate: the critic re-reads the artifact against the task and revises it once.
    The gate still waits for an approver afterwards."""
    store = ctx.store
    with store.run_lock(LOCK_PURPOSE):
        stage = require_stage(store)
        worktree = _job_worktree(ctx, stage)
        if stage.stage not in (Stage.gate1, Stage.gate2):
            raise UsageError(
                f"nothing to critique: the plan is at {stage.stage.value!r}, not at a gate"
            )
        async with _serving(ctx, worktree):
            if stage.stage == Stage.gate1:
                await critique_spec(ctx, stage, worktree)
            else:
                await _critique_plan(ctx, stage, worktree)
        _save(ctx, stage, "the critic revised the gate artifact")
        return stage


def restore_edit(ctx: EngineContext) -> str:
    """At a gate: put back the human's version of the artifact the critic (or a rewrite)
    replaced. No agent is called; approving goes on from the restored version. Returns
    what was done."""
    store = ctx.store
    with store.run_lock(LOCK_PURPOSE):
        stage = require_stage(store)
        if stage.stage == Stage.gate1:
            restore_edited_spec(store)
            message = "your edited spec is back in .director/spec.md"
        elif stage.stage == Stage.gate2:
            restore_edited_plan(store)
            message = "your edited plan is back in .director/plan.json"
        else:
            raise UsageError(
                f"nothing to restore: the plan is at {stage.stage.value!r}, not at a gate"
            )
        notice(ctx, message)
        return message


async def _critique_plan(ctx: EngineContext, stage: PlanStage, worktree: Path) -> None:
    needs_tests = await critique_plan(ctx, stage, worktree)
    if needs_tests is None:
        return
    if needs_tests:
        await author_all_tests(ctx, stage, worktree)
    snapshot_plan(ctx.store)
    notice(ctx, "the critic revised .director/plan.json")


def _job_worktree(ctx: EngineContext, stage: PlanStage) -> Path:
    if not git.branch_exists(ctx.repo, stage.job_branch):
        raise UsageError(
            f"the job branch {stage.job_branch} no longer exists",
            hint='start again with `director plan "<task>"`',
        )
    # Worktrees an older version left inside the checkout go where they belong first.
    for moved in worktree_moves.relocate(ctx.store):
        notice(ctx, moved, "warning" if moved.startswith("left") else "info")
    return jobs.ensure_job_worktree(ctx.store, stage.job_branch)


def _approve_spec(ctx: EngineContext, stage: PlanStage, approver: Approver) -> PlanStage:
    spec = read_text(ctx.store.spec)
    if not spec.strip():
        raise UsageError(
            ".director/spec.md is missing or empty",
            hint="write the spec there (or restore .director/spec.generated.md), then continue",
        )
    edited = spec != read_text(ctx.store.spec_generated)
    stage = approve_gate(stage, approver, "spec.md edited at the gate" if edited else "")
    _save(ctx, stage, f"Gate 1 approved by {approver}" + (" (edited spec)" if edited else ""))
    return stage


async def _pass_gate_automatically(
    ctx: EngineContext, stage: PlanStage, worktree: Path
) -> PlanStage:
    approver: Approver = "auto"
    if stage.critique:
        if stage.stage == Stage.gate1:
            await critique_spec(ctx, stage, worktree)
        else:
            await _critique_plan(ctx, stage, worktree)
        approver = "critic"
    gate_name = "Gate 1" if stage.stage == Stage.gate1 else "Gate 2"
    stage = approve_gate(stage, approver)
    _save(ctx, stage, f"{gate_name} approved by {approver}")
    return stage


async def _write_tests(ctx: EngineContext, stage: PlanStage, worktree: Path) -> None:
    await author_all_tests(ctx, stage, worktree)
    snapshot_plan(ctx.store)


StageStep = Callable[[EngineContext, PlanStage, Path], Awaitable[None]]
# The working stages in order: what each runs, the stage after it, what is said then.
_STEPS: dict[Stage, tuple[StageStep, Stage, str]] = {
    Stage.recon: (write_recon, Stage.spec, "recon written to .director/recon.md"),
    Stage.spec: (write_spec, Stage.gate1, "spec written to .director/spec.md"),
    Stage.decompose: (decompose_spec, Stage.tests, "plan.json written and validated"),
    Stage.tests: (
        _write_tests,
        Stage.gate2,
        "tests written, red for the right reason, hashed and committed",
    ),
}


@contextlib.asynccontextmanager
async def _serving(
    ctx: EngineContext, worktree: Path, stage: PlanStage | None = None
) -> AsyncIterator[None]:
    """The planning pass's OpenCode servers (``agent_servers.py``) for what runs inside:
    the roles that only read are sessions on one server in the job worktree that can
    write nothing there (started at its first call, stopped as the pass ends); the test
    authors' slot servers are the tests stage's (``author_slots.py``), the first one
    started early, beside the planner's, when this pass (``stage``) goes on to the tests
    stage without waiting at a gate, and a second once the planner's first session says
    sessions outlast a server's start."""
    servers = ctx.servers
    async with servers.session():
        reader = _reader(ctx, worktree)
        if stage is not None and _reaches_tests(stage):
            base = await asyncio.to_thread(git.rev, worktree)

            async def start_reader() -> None:
                if reader is not None:
                    with contextlib.suppress(Exception):  # its first call says why
                        await reader.ensure_running()

            async def warm() -> None:
                # Side by side: the first slot's server is what the tests stage waits for
                # (bench/job_wall.py --opencode: plan 1.0 s shorter at 0 s latency).
                await asyncio.gather(start_reader(), warm_slots(ctx, stage.job_id, base, reader))

            servers.prepare_soon(warm())
        try:
            yield
        finally:
            served = servers.get(worktree)
            if served is not None and not served.writable:
                await servers.stop(worktree)


def _reaches_tests(stage: PlanStage) -> bool:
    """Whether driving on from ``stage`` comes to the tests stage without a human's gate."""
    return stage.stage == Stage.decompose or (
        stage.auto and stage.stage in (Stage.recon, Stage.spec, Stage.gate1)
    )


async def _drive(ctx: EngineContext, stage: PlanStage) -> PlanStage:
    """Run stages until a gate waits for a human or the plan is approved."""
    worktree = _job_worktree(ctx, stage)
    async with _serving(ctx, worktree, stage):
        return await _drive_in(ctx, stage, worktree)


async def _drive_in(ctx: EngineContext, stage: PlanStage, worktree: Path) -> PlanStage:
    while True:
        step = _STEPS.get(stage.stage)
        if step is not None:
            run_stage, after, message = step
            await run_stage(ctx, stage, worktree)
            stage.stage = after
            _save(ctx, stage, message)
        elif stage.stage in (Stage.gate1, Stage.gate2):
            if not stage.auto:
                return stage
            stage = await _pass_gate_automatically(ctx, stage, worktree)
        else:
            return stage
