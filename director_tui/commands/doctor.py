"""``director doctor``: check git, provider binaries and config, and say what to fix."""

from __future__ import annotations

import argparse

from director_tui.commands.common import add_repo_arg, not_built


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "doctor",
        help="check git, provider binaries and config, and say what to fix",
        description="check git, provider binaries and config, and say what to fix.",
    )
    add_repo_arg(parser)
    parser.set_defaults(handler=lambda args: not_built("doctor"))
