"""``director status``: where the current job stands, from the store alone."""

from __future__ import annotations

import argparse

from director_tui.commands.common import (
    HELP_FORMAT,
    add_repo_arg,
    help_epilog,
    print_json,
    store_for,
)
from director_tui.engine.metrics import status_summary


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "status",
        help="show the job: plan stage, nodes, attempts, cost, metrics",
        description="Show where the current job stands: the plan stage, every node's state, "
        "attempts and cost, the run's metrics, archived jobs, and whether a run is live. "
        "Reads .director/ only: safe while a run goes.",
        epilog=help_epilog(
            "director status",
            "director status --json | jq '.nodes[] | select(.status == \"failed\")'",
            "director tui --screen run         # the same, live",
            exit_codes=False,
        ),
        formatter_class=HELP_FORMAT,
    )
    add_repo_arg(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    summary = status_summary(store_for(args))
    if args.json:
        print_json(summary)
        return 0
    from director_tui.views.status_view import print_status

    print_status(summary)
    return 0
