"""What a run checks before it starts: its flags and an approved, valid plan."""

from __future__ import annotations

from director_tui.engine import dag, git
from director_tui.engine.context import EngineContext
from director_tui.engine.errors import PlanInvalidError, UsageError
from director_tui.engine.models import Plan, PlanStage, Stage


def check_run_flags(parallel: int | None, max_attempts: int | None) -> None:
    """``UsageError`` for a ``--parallel``/``--max-attempts`` below 1 (None: the config's)."""
    if parallel is not None and parallel < 1:
        raise UsageError("--parallel must be at least 1")
    if max_attempts is not None and max_attempts < 1:
        raise UsageError("--max-attempts must be at least 1")


def load_approved_plan(ctx: EngineContext) -> Plan:
    """The plan, if it exists, is approved and is valid; else a UsageError naming the step."""
    store = ctx.store
    stage = store.read_model(store.plan_stage, PlanStage)
    plan = store.read_model(store.plan, Plan)
    if plan is None or stage is None:
        raise UsageError(
            f"no plan to run in {store.repo}", hint='make one with `director plan "<task>"`'
        )
    if stage.stage != Stage.approved:
        where = {
            Stage.gate1: "waiting at Gate 1 (spec)",
            Stage.gate2: "waiting at Gate 2 (DAG + tests)",
        }.get(stage.stage, f"at stage {stage.stage.value!r}")
        raise UsageError(
            f"the plan is not approved yet: it is {where}",
            hint="review it, then `director plan --continue` (or `director tui`) to approve",
        )
    errors = dag.validate(plan)
    if errors:
        raise PlanInvalidError(errors)
    if not plan.job_branch or not git.branch_exists(store.repo, plan.job_branch):
        raise UsageError(
            f"the plan's job branch {plan.job_branch!r} does not exist",
            hint='re-plan with `director plan "<task>"`',
        )
    return plan
