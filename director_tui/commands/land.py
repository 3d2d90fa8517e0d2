"""``director land``: merge the finished job branch into your branch, gated."""

from __future__ import annotations

import argparse
import asyncio

from director_tui.commands.common import (
    HELP_FORMAT,
    add_repo_arg,
    checked_config,
    help_epilog,
    store_for,
)
from director_tui.engine.context import EngineContext
from director_tui.engine.events import EventBus, Notice
from director_tui.engine.land import land


def handle_land(args: argparse.Namespace) -> int:
    store = store_for(args)
    config = checked_config(store.repo)
    # Not EngineContext.open: a refused land ("nothing to land") writes nothing.
    ctx = EngineContext(store=store, config=config, bus=EventBus(store.events))
    ctx.bus.subscribe(_print_notice)  # "sandbox: off — <why>" when auto finds none
    result = asyncio.run(land(ctx, squash=args.squash))
    if result.how == "already landed":
        print(f"{result.job_branch} is already in {result.branch}: nothing to land")
        return 0
    print(
        f"landed {result.job_branch} on {result.branch} ({result.how}, now at "
        f"{result.commit[:12]}); {result.gates}"
    )
    if result.note:
        print(f"note: {result.note}")
    print("`director clean` removes director's branches whose work is now merged")
    return 0


def _print_notice(event: object) -> None:
    if isinstance(event, Notice):
        print(event.message)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "land",
        help="merge the finished job branch into your branch, after your gates pass on it",
        description="Merge the finished job's branch (director/job-<id>) into the branch "
        "you are on: a fast-forward when your branch has not moved, else a merge commit "
        "(--squash: one commit). Refuses, touching nothing, when the job is not finished "
        "or your checkout has uncommitted changes; builds the result in a temporary "
        "worktree and runs the repository's [gates] there first — a conflict or a failed "
        "gate leaves your branch as it was (exit 1).",
        epilog=help_epilog(
            "director land",
            "director land --squash       # the job as one commit",
        ),
        formatter_class=HELP_FORMAT,
    )
    add_repo_arg(parser)
    parser.add_argument("--squash", action="store_true", help="land the job as one commit")
    parser.set_defaults(handler=handle_land)
