"""``director demo``: the whole flow on a sample repository, with scripted agents."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import tempfile
from pathlib import Path

from director_tui.commands.common import add_tui_arg, still_at_gate, telling_the_human, want_tui
from director_tui.engine.config import load_config
from director_tui.engine.context import EngineContext
from director_tui.engine.errors import UsageError
from director_tui.engine.store import Store


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from director_tui.demo import DEMO_LABEL

    parser = sub.add_parser(
        "demo",
        help=f"walk the whole flow on a sample repo ({DEMO_LABEL})",
        description=(
            "Create a small sample Python repository with a task worth five nodes, and walk "
            "the whole flow on it: spec at Gate 1, the DAG and its red tests at Gate 2, the "
            "run board with parallel nodes (one retried, one escalated), merges, the "
            "integration gate, and the bench. Every agent is the scripted provider: no "
            "model calls, no keys. With --no-tui (or off a terminal) the same flow runs "
            "headless with --auto --no-critique and ends with the status table."
        ),
    )
    parser.add_argument(
        "--dir",
        metavar="PATH",
        help="where to create the sample repository (must be empty or absent; "
        "default: a new temporary folder)",
    )
    add_tui_arg(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from director_tui.demo import DEMO_LABEL, create_demo_repo, find_python_with_pytest

    python = find_python_with_pytest()
    if python is None:
        raise UsageError(
            "the demo's sample repository is tested with pytest, and no Python here has it",
            hint=f"install it next to director: {sys.executable} -m pip install pytest",
        )
    target = Path(args.dir).expanduser().resolve() if args.dir else _fresh_dir()
    try:
        repo = create_demo_repo(target, python=python)
    except FileExistsError as exc:
        raise UsageError(str(exc), hint="pass --dir with an empty or new folder") from exc
    print(f"director demo ({DEMO_LABEL})")
    print(f"sample repository: {repo}")
    store = Store(repo)
    ctx = EngineContext.open(store, load_config(repo))
    if want_tui(args):
        return _with_tui(ctx)
    return _headless(ctx)


def _fresh_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="director-demo-")) / "wordfreq"


def _headless(ctx: EngineContext) -> int:
    from director_tui.commands.plan import PlanPrinter
    from director_tui.demo import TASK
    from director_tui.engine.metrics import status_summary
    from director_tui.engine.plan import start_plan
    from director_tui.engine.run import run_job
    from director_tui.views.run_view import RunPrinter
    from director_tui.views.status_view import print_status

    plan_printer = PlanPrinter()
    ctx.bus.subscribe(plan_printer)
    with telling_the_human(ctx):
        stage = asyncio.run(start_plan(ctx, TASK, auto=True, critique=False))
        ctx.bus.sinks.remove(plan_printer)
        plan_printer.line(f"[bold green]plan approved[/] on {stage.job_branch}")
        ctx.bus.subscribe(RunPrinter())
        outcome = asyncio.run(run_job(ctx))
    print()
    print_status(status_summary(ctx.store))
    print()
    print(f"the job branch {stage.job_branch} holds the merged work; try:")
    print(f"  git -C {shlex.quote(str(ctx.store.repo))} log --oneline --graph {stage.job_branch}")
    sys.stdout.flush()
    return outcome.exit_code


def _with_tui(ctx: EngineContext) -> int:
    """Plan up to Gate 1 with progress lines, then hand over to the app at the spec."""
    from director_tui.commands.plan import PlanPrinter
    from director_tui.demo import TASK
    from director_tui.engine.plan import start_plan
    from director_tui.tui import launch

    printer = PlanPrinter()
    ctx.bus.subscribe(printer)
    with telling_the_human(ctx):  # Gate 1 rings the terminal before the app opens on it
        asyncio.run(start_plan(ctx, TASK, auto=False, critique=True))
    ctx.bus.sinks.remove(printer)
    return still_at_gate(ctx.store, launch(ctx.store.repo, "gate1"))
