"""``director sync-agents``: write the role agents as .opencode/agents/*.md and seed config."""

from __future__ import annotations

import argparse

from director_tui.commands.common import add_repo_arg, not_built


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "sync-agents",
        help="write the role agents as .opencode/agents/*.md and seed config",
        description="write the role agents as .opencode/agents/*.md and seed config.",
    )
    add_repo_arg(parser)
    parser.set_defaults(handler=lambda args: not_built("sync-agents"))
