"""``director plan``: recon → spec (Gate 1) → DAG + red tests (Gate 2).

Exit codes: 0 the plan is approved; 3 stopped at a gate (the next step is printed);
2 bad input (empty task, dirty checkout, a plan that stays invalid — nothing committed);
1 an agent or the tests failed (``--continue`` retries the step); 4 another director
process holds the repository.

Headless it prints one line per step. On a terminal (unless ``--no-tui``) the pipeline
runs the same way and, when it stops at a gate, the app opens on that gate's screen.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

from director_tui.commands.common import (
    HELP_FORMAT,
    add_parallel_arg,
    add_repo_arg,
    add_tui_arg,
    help_epilog,
    still_at_gate,
    stop_like_ctrl_c,
    store_for,
    telling_the_human,
    want_tui,
    with_parallel,
)
from director_tui.engine import jobs
from director_tui.engine.config import load_config
from director_tui.engine.context import EngineContext
from director_tui.engine.errors import GateStop, UsageError
from director_tui.engine.events import (
    AgentFinished,
    AgentStarted,
    EventBase,
    GateResult,
    NodeTestsProgress,
    Notice,
    PlanStageChanged,
)
from director_tui.engine.models import PlanStage, Stage
from director_tui.engine.store import Store


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "plan",
        help="plan a task: recon → spec (Gate 1) → DAG + red tests (Gate 2)",
        description="Plan a task: an explorer surveys the repo, a planner writes the spec "
        "(Gate 1), decomposes it into a DAG of small nodes, and a test author writes each "
        "node's tests, verified red and frozen by hash (Gate 2). Stops at each gate for you "
        "to review or edit the artifact; `--continue` resumes.",
        epilog=help_epilog(
            'director plan "Add rate limiting to the /login endpoint"',
            "director plan --input task.md            # a longer task from a file ('-': stdin)",
            "$EDITOR .director/spec.md && director plan --continue   # edit, then approve Gate 1",
            'director plan "…" --auto --no-tui        # critic-approved gates, progress lines',
            "director plan --continue --parallel 4    # write 4 nodes' tests at once",
        ),
        formatter_class=HELP_FORMAT,
    )
    parser.add_argument("task", nargs="?", help="what you want done (or use --input)")
    parser.add_argument(
        "--input", metavar="FILE", help="read the task from FILE ('-' for standard input)"
    )
    parser.add_argument(
        "--continue",
        dest="resume",
        action="store_true",
        help="resume where planning stopped (approves the gate artifact, edits included)",
    )
    parser.add_argument(
        "--restore-edit",
        action="store_true",
        help="at a gate: put back your edited spec or plan that the critic revised "
        "(kept in .director/spec.edited.md or plan.edited.json); no agent is called",
    )
    parser.add_argument(
        "--auto",
        action="store_true",
        help="do not stop at the gates: a critic revises each artifact once and approves it",
    )
    parser.add_argument(
        "--no-critique",
        action="store_true",
        help="gates pass automatically, without the critic call (implies --auto)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="archive an unfinished job (at a gate, or approved and not run to its end) and "
        "plan this task",
    )
    add_parallel_arg(parser, "nodes whose tests are written")
    add_tui_arg(parser)
    add_repo_arg(parser)
    parser.set_defaults(handler=handle)


def refuse_to_archive(store: Store, command: str) -> None:
    """``UsageError`` when a new task would archive a job that can still be resumed."""
    stage = jobs.unfinished_job(store)
    if stage is None:
        return
    where = {
        Stage.gate1: "waits at Gate 1",
        Stage.gate2: "waits at Gate 2",
        Stage.approved: "is approved and its run has not finished",
    }.get(stage.stage, f"stopped at {stage.stage.value}")
    resume = "director run" if stage.stage == Stage.approved else "director plan --continue"
    raise UsageError(
        f"the current job ({stage.job_id}: {stage.task.splitlines()[0][:60]!r}) {where}",
        hint=f"resume it with `{resume}`, or add --force to archive it (under "
        f".director/jobs/) and start this task with `director {command}`",
    )


def read_task(task: str | None, input_path: str | None, command: str = "plan") -> str:
    """The task from the argument, a file, or standard input; exactly one source."""
    if task is not None and input_path:
        raise UsageError("give the task as an argument or with --input, not both")
    if input_path == "-":
        try:
            text = sys.stdin.read()
        except UnicodeDecodeError as exc:
            raise UsageError("the task on standard input is not UTF-8 text") from exc
    elif input_path:
        path = Path(input_path).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read the task from {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise UsageError(f"cannot read the task from {path}: not UTF-8 text") from exc
    else:
        text = task or ""
    if not text.strip():
        raise UsageError("the task is empty", hint=f'director {command} "<what you want done>"')
    return text.strip()


# What the tests stage's per-node progress prints (an agent start already says "authoring",
# a notice "committed and hashed").
_TESTS_PHASE_LINES = {
    "red_check": "red check running",
    "red": "red for the right reason; committed in plan order",
    "failed": "[red]failed[/]",
}


class PlanPrinter:
    """Progress lines for a headless plan, from the engine's events."""

    def __init__(self, write: Callable[[str], None] | None = None) -> None:
        from director_tui.views.console import ProgressConsole

        self.console = ProgressConsole(highlight=False, soft_wrap=True)
        self._write = write

    def line(self, text: str) -> None:
        if self._write is not None:
            self._write(text)
        else:
            self.console.print(text)

    def __call__(self, event: EventBase) -> None:
        from rich.markup import escape

        if isinstance(event, PlanStageChanged):
            self.line(f"[bold cyan]▸ {event.stage}[/] {escape(event.message)}")
        elif isinstance(event, AgentStarted):
            where = f" {event.node_id}" if event.node_id else ""
            retry = f" (attempt {event.attempt})" if event.attempt > 1 else ""
            label = " [magenta](scripted)[/]" if event.scripted else ""
            self.line(f"  [dim]…[/] {event.role}{where}{retry} on {escape(event.tier)}{label}")
        elif isinstance(event, AgentFinished):
            cost = f"${event.cost_usd:.4f}" if event.priced else "unpriced"
            ok = event.exit_reason == "ok"
            mark = "[green]✓[/]" if ok else "[red]✗[/]"
            why = "" if ok else f" {event.exit_reason}: {escape(event.message)}"
            where = f" {event.node_id}" if event.node_id else ""  # nodes run side by side
            self.line(
                f"  {mark} {event.role}{where} {event.duration_secs:.1f}s "
                f"{event.input_tokens}+{event.output_tokens} tok {cost}{why}"
            )
        elif isinstance(event, NodeTestsProgress) and event.phase in _TESTS_PHASE_LINES:
            why = f": {escape(event.message)}" if event.message else ""
            self.line(f"  ◦ tests of {event.node_id}: {_TESTS_PHASE_LINES[event.phase]}{why}")
        elif isinstance(event, GateResult) and event.check == "red":
            mark = "[green]red ✓[/]" if event.passed else "[yellow]not red[/]"
            self.line(f"  {mark} {event.node_id}: {escape(event.message)}")
        elif isinstance(event, Notice):
            style = {"info": "dim", "warning": "yellow", "error": "red"}[event.level]
            self.line(f"  [{style}]{escape(event.message)}[/]")


def finish(stage: PlanStage, printer: PlanPrinter, job_worktree: Path) -> int:
    """Print where planning stopped and the next step; the exit code."""
    from director_tui.engine.plan import next_step

    if stage.stage == Stage.approved:
        approvers = ", ".join(f"{a.gate}: {a.approver}" for a in stage.approvals)
        printer.line(f"[bold green]plan approved[/] ({approvers}) on branch {stage.job_branch}")
        printer.line(next_step(stage, job_worktree))
        return 0
    printer.line(f"[bold yellow]stopped at {stage.stage.value}[/]")
    printer.line(next_step(stage, job_worktree))
    return GateStop.exit_code


def handle(args: argparse.Namespace) -> int:
    from director_tui.engine.plan import continue_plan, require_stage, restore_edit, start_plan

    if args.resume and (args.task or args.input):
        raise UsageError("--continue resumes the current plan: give no task with it")
    if args.restore_edit:
        if args.task or args.input or args.resume or args.auto or args.no_critique:
            raise UsageError("--restore-edit takes no task and no other mode")
        store = store_for(args)
        store.check_free()
        require_stage(store)  # before the store's folders and markers are made
        ctx = EngineContext.open(store, load_config(store.repo))
        print(restore_edit(ctx) + "; `director plan --continue` approves it")
        return 0
    task = None if args.resume else read_task(args.task, args.input)
    store = store_for(args)
    store.check_free()  # exit 4 "busy" before any check that would misread a busy repo
    if args.resume:
        require_stage(store)  # before the store's folders and markers are made
    elif not args.force:
        refuse_to_archive(store, "plan")
    ctx = EngineContext.open(store, with_parallel(load_config(store.repo), args.parallel))
    printer = PlanPrinter()
    ctx.bus.subscribe(printer)
    with stop_like_ctrl_c(), telling_the_human(ctx):
        if args.resume:
            stage = asyncio.run(continue_plan(ctx))
        else:
            assert task is not None
            auto = args.auto or args.no_critique
            stage = asyncio.run(start_plan(ctx, task, auto=auto, critique=not args.no_critique))
    code = finish(stage, printer, jobs.job_worktree(store))
    sys.stdout.flush()
    if code == GateStop.exit_code and want_tui(args):
        from director_tui.tui import launch

        return still_at_gate(
            store, launch(store.repo, "gate1" if stage.stage == Stage.gate1 else "gate2")
        )
    return code
