"""``director clean``: remove director's worktrees and branches whose work is merged, never the rest."""

from __future__ import annotations

import argparse

from director_tui.commands.common import HELP_FORMAT, add_repo_arg, help_epilog, store_for
from director_tui.engine.land import clean_branches


def handle_clean(args: argparse.Namespace) -> int:
    result = clean_branches(store_for(args))
    for line in result.notes:
        print(line)
    for line in result.removed:
        print(f"removed {line}")
    for branch, why in result.kept:
        print(f"kept    {branch}: {why}")
    if not result.removed and not result.kept:
        print("no director branches or worktrees")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    clean = sub.add_parser(
        "clean",
        help="remove director's worktrees and branches whose work is merged (never unmerged work)",
        description="Delete the worktrees and branches director made (node, job and bench "
        "branches, refs/heads/director/*) whose every commit is already in a branch that "
        "stays: a node's in its job branch or one of yours, a job's or a bench's in one of "
        "yours. A worktree goes only with nothing uncommitted in it; the repository's "
        "worktree folder goes once empty. A branch with work found nowhere else, or "
        "checked out in a worktree that stays, is kept and said so.",
        epilog=help_epilog("director clean", exit_codes=False),
        formatter_class=HELP_FORMAT,
    )
    add_repo_arg(clean)
    clean.set_defaults(handler=handle_clean)
