"""``director tui``: open the full-screen app (attaches to a running job)."""

from __future__ import annotations

import argparse

from director_tui.commands.common import add_repo_arg, not_built


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "tui",
        help="open the full-screen app (attaches to a running job)",
        description="open the full-screen app (attaches to a running job).",
    )
    add_repo_arg(parser)
    parser.set_defaults(handler=lambda args: not_built("tui"))
