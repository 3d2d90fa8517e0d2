"""The decompose stage: the planner turns the approved spec into plan.json, asked again with
the reasons until the plan validates."""

from __future__ import annotations

from pathlib import Path

from director_tui.engine.context import EngineContext
from director_tui.engine.errors import PlanInvalidError
from director_tui.engine.models import PlanStage
from director_tui.engine.plan.common import ask, notice, read_text
from director_tui.engine.plan.plan_file import parse_plan
from director_tui.engine.plan.prompts import (
    decompose_prompt,
)
from director_tui.engine.store import atomic_write_text


async def decompose_spec(ctx: EngineContext, stage: PlanStage, worktree: Path) -> None:
    store = ctx.store
    spec = read_text(store.spec)
    recon = read_text(store.recon)
    attempts = 1 + ctx.config.limits.plan_retries
    answer = ""
    errors: list[str] = []
    for attempt in range(1, attempts + 1):
        prompt = decompose_prompt(stage.task, spec, recon, previous_answer=answer, errors=errors)
        answer = await ask(ctx, "planner", prompt, worktree, attempt=attempt)
        plan, errors = parse_plan(answer)
        if plan is not None and not errors:
            plan.job_id = stage.job_id
            plan.job_branch = stage.job_branch
            plan.base_commit = stage.base_commit
            plan.task = stage.task
            store.write_model(store.plan, plan)
            stage.plan_by = "planner"
            return
        left = attempts - attempt
        notice(
            ctx,
            f"planner answer {attempt} rejected ({len(errors)} problem(s)); "
            + (
                f"asking again ({left} tr{'y' if left == 1 else 'ies'} left)"
                if left
                else "giving up"
            ),
            "warning",
        )
    rejected = store.logs / f"plan-rejected-{stage.job_id}.txt"
    atomic_write_text(rejected, answer)
    raise PlanInvalidError(
        errors,
        hint=(
            f"the planner's last answer is in {rejected.relative_to(store.repo)}; nothing was "
            "committed. `director plan --continue` asks the planner again; you may edit "
            ".director/spec.md first"
        ),
    )
