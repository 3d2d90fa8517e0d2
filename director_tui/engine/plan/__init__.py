"""The plan pipeline: recon → spec → Gate 1 → decompose → tests red + hashed → Gate 2.

Public API (used by ``director plan``, ``director auto`` and the TUI; keep it stable)::

    stage = await start_plan(ctx, task, auto=False, critique=True)   # new job
    stage = await continue_plan(ctx, approver="human")                # resume / approve
    stage = await reject_spec(ctx, "comments")   # at Gate 1: brainstorm rewrites spec.md
    stage = await critique(ctx)                  # at a gate: the critic revises it once
    text = restore_edit(ctx)                     # at a gate: the human's kept version back
    new_stage = approve_gate(stage, "human")     # pure: record an approval, advance
    text = next_step(stage)                      # what the user does next, in words
    stage = load_stage(store)                    # plan_stage.json, or None

Each returns the :class:`PlanStage` where the pipeline stopped: ``gate1``/``gate2``
(waiting for an approver — the CLI exits 3), or ``approved``. Expected failures raise
:class:`DirectorError` subclasses (``PlanInvalidError`` exit 2 for a plan that stays
invalid, ``UsageError`` for a dirty checkout, ``LockHeldError`` when another director
process works on the repo); the stage is left where it was, so ``continue_plan`` retries.

Every state change is written to ``.director/plan_stage.json`` and emitted on
``ctx.bus`` as ``PlanStageChanged`` (plus ``Notice`` for retries and warnings,
``GateResult``/``TestOutput`` for red checks, ``NodeTestsProgress`` per node in the
tests stage). Every agent call goes through
``ctx.call_agent``, which records its cost and streams its activity.

Safety: the user's checkout is never touched. Planning refuses a dirty tree (ignoring
``.director/``) or a detached HEAD, creates ``director/job-<id>`` from the current commit
without checking it out, and does all job-branch work in ``jobs.ensure_job_worktree``.
Only test files are ever committed to the job branch; the test author writes them in a
scratch worktree per node (``<worktrees>/_tests/<node>``), up to ``[limits]
parallel`` nodes at once, and they are committed in plan order. An earlier job is archived under
``.director/jobs/<id>/`` before a new one starts, never wiped.

Files: ``task.md``, ``recon.md``, ``spec.generated.md`` (as the agent wrote it) beside
``spec.md`` (what the human approves, possibly edited; the critic revises the edited
version, and ``spec.edited.md`` keeps the human's version when a critic or a rewrite
replaced an edited spec), ``plan.json`` (the DAG with ``test_hashes`` and ``red_output``),
``plan.generated.json`` (the plan as director last produced it at Gate 2, to see human
edits), ``plan.edited.json`` (the human's edited plan, kept when the critic revised it),
``plan_stage.json`` (the bookmark, with every approval: human, critic or auto, and who
wrote the spec and the plan last: ``spec_by``, ``plan_by``).

Modules, one stage each (only :mod:`.pipeline` imports the stages; a stage never imports
another one — the ``lint-imports`` contract in pyproject.toml says so):

- ``pipeline`` — the state machine: start/continue, gates, ``_drive`` through the stages
- ``checkout`` — what the user's checkout must be before planning writes anything
- ``spec`` — reconnaissance, the spec, its rewrite or critique
- ``decompose`` — the planner's plan.json, asked again until it validates
- ``test_authoring`` — the tests stage: each node's tests written until red, side by side
- ``gate2_edits`` — plan and test edits at Gate 2, the critic's plan merged
- ``test_worktrees``, ``red_tests``, ``plan_file``, ``common``, ``prompts`` — what the
  stages share
"""

from __future__ import annotations

from director_tui.engine.plan.checkout import check_checkout
from director_tui.engine.plan.common import AgentFailedError
from director_tui.engine.plan.gate2_edits import plan_is_edited
from director_tui.engine.plan.pipeline import (
    LOCK_PURPOSE,
    Approver,
    approve_gate,
    continue_plan,
    critique,
    load_stage,
    next_step,
    reject_spec,
    require_stage,
    restore_edit,
    start_plan,
)
from director_tui.engine.plan.plan_file import PLAN_EDITED, PLAN_GENERATED, parse_plan
from director_tui.engine.plan.spec import spec_is_edited

__all__ = [
    "LOCK_PURPOSE",
    "PLAN_EDITED",
    "PLAN_GENERATED",
    "AgentFailedError",
    "Approver",
    "approve_gate",
    "check_checkout",
    "continue_plan",
    "critique",
    "load_stage",
    "next_step",
    "parse_plan",
    "plan_is_edited",
    "reject_spec",
    "require_stage",
    "restore_edit",
    "spec_is_edited",
    "start_plan",
]
