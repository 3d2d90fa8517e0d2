"""``director tui``: open the full-screen app (attaches to a running job)."""

from __future__ import annotations

import argparse
import sys

from director_tui.commands.common import add_repo_arg, resolve_repo


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "tui",
        help="open the full-screen app (attaches to a running job)",
        description="Open the full-screen app: home, Gate 1 (spec), Gate 2 (plan review), "
        "the run board and bench results. On a repository where a headless `director run` "
        "is going it shows that run live; quitting never stops it.",
    )
    add_repo_arg(parser)
    parser.add_argument(
        "--screen",
        choices=["home", "gate1", "gate2", "run", "bench"],
        default="home",
        help="the screen to open first (default: home)",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    repo = resolve_repo(args)
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        print(
            "director tui: needs a terminal; use `director status` (or --json) instead",
            file=sys.stderr,
        )
        return 2
    from director_tui.tui import launch

    return launch(repo, args.screen)
