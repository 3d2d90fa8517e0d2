"""``director demo``: walk the whole flow on a sample repo with scripted agents (no keys)."""

from __future__ import annotations

import argparse

from director_tui.commands.common import add_repo_arg, not_built


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "demo",
        help="walk the whole flow on a sample repo with scripted agents (no keys)",
        description="walk the whole flow on a sample repo with scripted agents (no keys).",
    )
    add_repo_arg(parser)
    parser.set_defaults(handler=lambda args: not_built("demo"))
