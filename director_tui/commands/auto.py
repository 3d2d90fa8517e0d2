"""``director auto``: plan with critiqued gates, then run, in one go."""

from __future__ import annotations

import argparse

from director_tui.commands.common import add_repo_arg, not_built


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "auto",
        help="plan with critiqued gates, then run, in one go",
        description="plan with critiqued gates, then run, in one go.",
    )
    add_repo_arg(parser)
    parser.set_defaults(handler=lambda args: not_built("auto"))
