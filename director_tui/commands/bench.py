"""``director bench``: run one frozen plan under several model profiles and compare."""

from __future__ import annotations

import argparse

from director_tui.commands.common import add_repo_arg, not_built


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "bench",
        help="run one frozen plan under several model profiles and compare",
        description="run one frozen plan under several model profiles and compare.",
    )
    add_repo_arg(parser)
    parser.set_defaults(handler=lambda args: not_built("bench"))
