"""``director auto``: plan with critiqued gates, then run, in one go.

A critic revises and approves each gate artifact (``--no-critique`` lets the gates pass
without it), then the run engine implements the plan. Run again after an interruption and
it resumes the unfinished job — planning where it stopped, or the run — instead of
starting over; ``--force`` archives that job and starts fresh.

Exit codes: as ``director run`` (0 all merged and integration green, 1 otherwise), 2 bad
input, 4 another director process holds the repository.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from director_tui.commands.common import (
    HELP_FORMAT,
    add_parallel_arg,
    add_repo_arg,
    help_epilog,
    stop_like_ctrl_c,
    store_for,
    telling_the_human,
    with_limits,
    with_parallel,
)
from director_tui.commands.plan import PlanPrinter, read_task
from director_tui.engine import jobs
from director_tui.engine.config import Config, load_config
from director_tui.engine.context import EngineContext
from director_tui.engine.errors import UsageError
from director_tui.engine.models import PlanStage, Stage
from director_tui.engine.store import Store


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "auto",
        help="plan with critiqued gates, then run, in one go",
        description="Plan the task with a critic approving each gate, then run the plan. "
        "Re-running resumes an interrupted job. Always prints progress lines.",
        epilog=help_epilog(
            'director auto "Add a --json flag to the list command" --max-cost 5',
            "director auto                  # resume the interrupted job",
            'director auto "…" --force      # archive the unfinished job, start this one',
            'director auto "…" --parallel 4 # 4 nodes at once: tests at plan time, then the run',
        ),
        formatter_class=HELP_FORMAT,
    )
    parser.add_argument("task", nargs="?", help="what you want done (or use --input)")
    parser.add_argument(
        "--input", metavar="FILE", help="read the task from FILE ('-' for standard input)"
    )
    parser.add_argument(
        "--max-cost",
        type=float,
        metavar="USD",
        help="stop the run when it has cost this much (default: [limits] cost_ceiling_usd)",
    )
    parser.add_argument(
        "--no-critique", action="store_true", help="gates pass without the critic call"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="archive an unfinished job and start a new one instead of resuming it",
    )
    add_parallel_arg(parser, "nodes (their tests when planning, then their work)")
    add_repo_arg(parser)
    parser.set_defaults(handler=handle)


def _with_ceiling(config: Config, ceiling: float | None) -> Config:
    if ceiling is not None and ceiling < 0:
        raise UsageError("--max-cost must be zero or more")
    return with_limits(config, cost_ceiling_usd=ceiling)


async def _plan(
    ctx: EngineContext, task: str | None, stage: PlanStage | None, *, critique: bool, force: bool
) -> PlanStage:
    from director_tui.engine import plan

    resume = jobs.unfinished_job(ctx.store) is not None and not force
    if not resume or stage is None:
        assert task is not None  # refuse_unresumable said so before anything was written
        return await plan.start_plan(ctx, task, auto=True, critique=critique)
    if stage.stage == Stage.approved:
        return stage
    # From here on the resumed job passes its gates without waiting for a human.
    stage.auto = True
    stage.critique = critique
    ctx.store.write_model(ctx.store.plan_stage, stage)
    if stage.stage in (Stage.gate1, Stage.gate2):
        if critique:
            await plan.critique(ctx)
            return await plan.continue_plan(ctx, approver="critic")
        return await plan.continue_plan(ctx, approver="auto")
    return await plan.continue_plan(ctx)


def refuse_unresumable(store: Store, task: str | None, *, force: bool) -> None:
    """``UsageError`` when there is nothing to resume without a task, or a new task would
    shadow the unfinished job. Reading only: called before the store makes its folders
    and markers, so exit 2 leaves nothing behind."""
    if force and task is None:
        # --force archives the unfinished job to start a new one: it needs that new task.
        raise UsageError(
            "--force starts a new job, so it needs the task",
            hint='director auto "<task>" --force (without --force, `director auto` resumes '
            "the unfinished job)",
        )
    unfinished = None if force else jobs.unfinished_job(store)
    if unfinished is None:
        if task is None:
            raise UsageError("there is no unfinished job to resume", hint='director auto "<task>"')
        return
    if task is not None and task != unfinished.task:
        raise UsageError(
            f"an unfinished job ({unfinished.job_id}: {unfinished.task.splitlines()[0][:60]!r}) "
            "is in this repository",
            hint="run `director auto` without a task to resume it, or add --force to archive "
            "it and start this task",
        )


def handle(args: argparse.Namespace) -> int:
    # An empty task given ("$TASK" unset) is an error, not "resume the unfinished job".
    given = args.task is not None or args.input is not None
    task = read_task(args.task, args.input, "auto") if given else None
    store = store_for(args)
    store.check_free()  # exit 4 "busy" before any check that would misread a busy repo
    refuse_unresumable(store, task, force=args.force)
    config = with_parallel(_with_ceiling(load_config(store.repo), args.max_cost), args.parallel)
    ctx = EngineContext.open(store, config)
    with stop_like_ctrl_c(), telling_the_human(ctx):
        return asyncio.run(_auto(ctx, task, critique=not args.no_critique, force=args.force))


async def _auto(ctx: EngineContext, task: str | None, *, critique: bool, force: bool) -> int:
    """Plan, then run, in one event loop: the OpenCode servers the test authors used in
    the slot worktrees serve the run's attempts there (no second start)."""
    from director_tui.engine.plan import load_stage
    from director_tui.engine.run import run_job
    from director_tui.views.run_view import RunPrinter

    printer = PlanPrinter()
    ctx.bus.subscribe(printer)
    async with ctx.servers.session():
        stage = await _plan(ctx, task, load_stage(ctx.store), critique=critique, force=force)
        if stage.stage != Stage.approved:  # the engine stops only at approved in auto mode
            printer.line(f"[red]planning stopped at {stage.stage.value}[/]")
            return 1
        printer.line(f"[bold green]plan approved[/] on branch {stage.job_branch}: running it")
        ctx.bus.sinks.remove(printer)
        run_printer = RunPrinter()
        ctx.bus.subscribe(run_printer)
        outcome = await run_job(ctx)
    run_printer.summary(outcome)
    sys.stdout.flush()
    return outcome.exit_code
