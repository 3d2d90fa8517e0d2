"""``director cluster status``: the Ray cluster's nodes and resources, and the job's
attempts in flight with the worker each runs on (``[cluster] engine = "ray"``)."""

from __future__ import annotations

import argparse

from director_tui.commands.common import (
    HELP_FORMAT,
    add_repo_arg,
    help_epilog,
    print_json,
    store_for,
)
from director_tui.engine.config import load_config

MEMORY = ("memory", "object_store_memory")  # bytes: long numbers nobody schedules by here


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "cluster",
        help="the Ray cluster attempts run on: workers, resources, attempts in flight",
        description="Ask the Ray cluster ([cluster] address, else $RAY_ADDRESS, else the one "
        "running on this machine) for its nodes and their resources, and show the job's "
        "attempts in flight with the worker each runs on (docs/cluster.md).",
        epilog=help_epilog(
            "director cluster status",
            "director cluster status --address head:6379 --json",
        ),
        formatter_class=HELP_FORMAT,
    )
    actions = parser.add_subparsers(dest="action", metavar="<action>", required=True)
    status = actions.add_parser(
        "status", help="workers, resources, attempts in flight", formatter_class=HELP_FORMAT
    )
    add_repo_arg(status)
    status.add_argument("--address", metavar="ADDR", help="the Ray cluster to ask")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=handle_status)


def handle_status(args: argparse.Namespace) -> int:
    from director_tui.engine import cluster

    store = store_for(args)
    address = args.address or load_config(store.repo).cluster.address
    report = cluster.cluster_status(store, address)
    if args.json:
        print_json(report.model_dump(mode="json"))
        return 0
    alive = [n for n in report.nodes if n.alive]
    print(f"cluster {report.address}: {len(alive)} node(s) alive of {len(report.nodes)}")
    for node in report.nodes:
        shown = ", ".join(
            f"{k}={v:g}" for k, v in sorted(node.resources.items()) if k not in MEMORY
        )
        print(f"  {node.name:<28} {'alive' if node.alive else 'dead '}  {shown}")
    print(f"attempts in flight: {len(report.in_flight)}")
    for item in report.in_flight:
        where = item.worker or "(not placed yet)"
        print(f"  {item.node_id:<20} attempt {item.attempt:<3} {item.status:<8} on {where}")
    return 0
