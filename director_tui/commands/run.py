"""``director run``: run the approved plan: worktrees, gates, review, merge."""

from __future__ import annotations

import argparse

from director_tui.commands.common import add_repo_arg, not_built


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "run",
        help="run the approved plan: worktrees, gates, review, merge",
        description="run the approved plan: worktrees, gates, review, merge.",
    )
    add_repo_arg(parser)
    parser.set_defaults(handler=lambda args: not_built("run"))
