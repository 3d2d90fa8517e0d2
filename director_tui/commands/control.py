"""``director retry|escalate|skip|pause|resume|cancel``: control requests to a run."""

from __future__ import annotations

import argparse

from director_tui.commands.common import add_repo_arg, not_built

ACTIONS = {
    "retry": "retry a failed (or blocked) node with a fresh attempt",
    "escalate": "run a node at the escalation tier now",
    "skip": "skip a node (its dependents become blocked)",
    "pause": "stop scheduling new nodes (running ones finish)",
    "resume": "resume scheduling after a pause",
    "cancel": "cancel a running node, or the whole run without a node",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for action, what in ACTIONS.items():
        parser = sub.add_parser(action, help=what, description=what + ".")
        add_repo_arg(parser)
        parser.add_argument("node", nargs="?", help="node id")
        parser.set_defaults(handler=lambda args, a=action: not_built(a))
