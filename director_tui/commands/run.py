"""``director run``: run the approved plan: worktrees, gates, review, merge.

Exit codes: 0 every node merged and the integration gate green; 1 otherwise (a node
failed, the run stopped at the cost ceiling or was cancelled); 2 bad input (no approved
plan, bad flags); 4 another director process holds the repository; 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from director_tui.commands.common import (
    HELP_FORMAT,
    add_repo_arg,
    add_tui_arg,
    help_epilog,
    stop_like_ctrl_c,
    store_for,
    telling_the_human,
    want_tui,
)
from director_tui.engine.config import CLUSTER_ADDRESS_ENV, CLUSTER_ENGINE_ENV, load_config
from director_tui.engine.context import EngineContext
from director_tui.engine.models import PlanStage


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "run",
        help="run the approved plan: worktrees, gates, review, merge",
        description="Run the approved plan: each node in its own worktree, executor → "
        "deterministic gate → review → merge queue, then the integration gate. Safe to "
        "re-run after an interruption: merged nodes stay merged.",
        epilog=help_epilog(
            "director run                        # on a terminal: the run board",
            "director run --no-tui --parallel 3  # headless; attach later with `director tui`",
            "director retry <node> / director pause / director cancel   # from another shell",
            "director run                        # again after Ctrl-C, kill or a failure: resumes",
            "director run --cluster ray --address head:6379   # attempts on a Ray cluster",
        ),
        formatter_class=HELP_FORMAT,
    )
    add_repo_arg(parser)
    parser.add_argument(
        "--parallel", type=int, metavar="N", help="nodes at once (default: [limits] parallel)"
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        metavar="K",
        help="executor attempts per node before one escalation (default: [limits] max_attempts)",
    )
    parser.add_argument(
        "--cluster",
        choices=("local", "ray"),
        help="where node attempts run (default: [cluster] engine; ray: docs/cluster.md)",
    )
    parser.add_argument(
        "--address",
        metavar="ADDR",
        help="the Ray cluster to join (default: [cluster] address, else $RAY_ADDRESS, "
        "else a Ray started here for the run)",
    )
    add_tui_arg(parser)
    parser.set_defaults(handler=handle)


def apply_cluster_flags(args: argparse.Namespace) -> None:
    """``--cluster``/``--address`` for this process, whichever thread runs the engine."""
    if args.cluster:
        os.environ[CLUSTER_ENGINE_ENV] = args.cluster
    if args.address:
        os.environ[CLUSTER_ADDRESS_ENV] = args.address


def handle(args: argparse.Namespace) -> int:
    from director_tui.engine.run import check_run_flags

    # Before the app opens: its run board would only meet a bad flag later, in a worker.
    check_run_flags(args.parallel, args.max_attempts)
    store = store_for(args)
    store.check_free()  # exit 4 "busy" before any check that would misread a busy repo
    apply_cluster_flags(args)
    config = load_config(store.repo)
    if config.cluster.engine == "ray":
        from director_tui.engine.cluster import require_ray

        require_ray()  # exit 2 naming the extra, before the app opens
    ctx = EngineContext.open(store, config)
    if want_tui(args):
        from director_tui.tui import launch  # Textual loads only on this branch

        return launch(
            store.repo,
            "run",
            start_run=True,
            parallel=args.parallel,
            max_attempts=args.max_attempts,
        )
    from director_tui.engine.run import run_job
    from director_tui.views.run_view import RunPrinter

    printer = RunPrinter()
    ctx.bus.subscribe(printer)
    plan_stage = store.read_model(store.plan_stage, PlanStage)
    with stop_like_ctrl_c(), telling_the_human(ctx):
        outcome = asyncio.run(run_job(ctx, parallel=args.parallel, max_attempts=args.max_attempts))
    printer.summary(outcome)
    sys.stdout.flush()
    if not store.plan.exists():
        # Someone deleted .director/ (or plan.json) under the run: the node errors above
        # ("FileNotFoundError …") do not say that, and `director run` cannot resume.
        branch = plan_stage.job_branch if plan_stage else "director/job-<id>"
        print(
            f"director: {store.plan} disappeared while the run went (was .director/ deleted?); "
            "the run could not go on and cannot be resumed\n"
            f"  → what was merged is on {branch} (`git log {branch}`); to start over: "
            '`director init` if config.toml went too, then `director plan "<task>"`',
            file=sys.stderr,
        )
    return outcome.exit_code
