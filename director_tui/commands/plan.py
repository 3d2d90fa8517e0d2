"""``director plan``: plan a task: recon → spec (Gate 1) → DAG + red tests (Gate 2)."""

from __future__ import annotations

import argparse

from director_tui.commands.common import add_repo_arg, not_built


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "plan",
        help="plan a task: recon → spec (Gate 1) → DAG + red tests (Gate 2)",
        description="plan a task: recon → spec (Gate 1) → DAG + red tests (Gate 2).",
    )
    add_repo_arg(parser)
    parser.set_defaults(handler=lambda args: not_built("plan"))
