"""``director log <node>``: every attempt of a node — its agent calls, gates and reviews —
and with ``--attempt N`` that attempt's transcripts, rendered (text, tool calls, commands
with their output). Reading only: safe while a run goes."""

from __future__ import annotations

import argparse

from director_tui.commands.common import (
    HELP_FORMAT,
    add_repo_arg,
    help_epilog,
    print_json,
    store_for,
)
from director_tui.engine.errors import UsageError
from director_tui.engine.models import Plan
from director_tui.engine.node_attempts import CallStep, call_transcript, node_attempts


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "log",
        help="show a node's attempts: calls, gates, reviews, transcripts",
        description="List every attempt of a node (executor and escalation calls, the "
        "gate's verdict, the review) from the run's events. With --attempt N, print that "
        "attempt's transcripts: the agent's text, its tool calls, the commands it ran "
        "with their output.",
        epilog=help_epilog(
            "director log parse                 # its attempts, one line per step",
            "director log parse --attempt 2     # attempt 2's transcripts, whole",
            "director log parse --attempt 2 --json",
            exit_codes=False,
        ),
        formatter_class=HELP_FORMAT,
        usage="director log [-h] [--repo PATH] [--attempt N] [--json] <node>",
    )
    add_repo_arg(parser)
    parser.add_argument("node", nargs="?", help="the node's id, as `director status` lists it")
    parser.add_argument(
        "--attempt", type=int, metavar="N", help="print attempt N's transcripts (1 = the first)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if not args.node:
        raise UsageError("`director log` needs a node id", hint="director log <node>")
    store = store_for(args)
    plan = store.read_model(store.plan, Plan)
    if plan is None:
        raise UsageError("no plan yet: no node has run", hint='director plan "<task>"')
    if args.node not in plan.ids:
        raise UsageError(
            f"no node {args.node!r} in the plan",
            hint="the nodes: " + ", ".join(plan.ids),
        )
    history = node_attempts(store, args.node)
    attempts = history.attempts
    if args.attempt is not None:
        attempts = history.attempt(args.attempt)
        if not attempts:
            numbers = sorted({a.number for a in history.attempts})
            raise UsageError(
                f"node {args.node} has no attempt {args.attempt}",
                hint="its attempts: " + (", ".join(map(str, numbers)) or "none yet"),
            )
    transcripts = {
        step.call_id: call_transcript(store, step)
        for attempt in attempts
        for step in attempt.steps
        if args.attempt is not None and isinstance(step, CallStep)
    }
    if args.json:
        print_json(
            {
                "node": args.node,
                "attempts": [a.model_dump() for a in attempts],
                "transcripts": {k: t.model_dump() for k, t in transcripts.items()},
            }
        )
        return 0
    from director_tui.views.attempts_view import print_attempts

    print_attempts(args.node, attempts, transcripts)
    if args.attempt is None and attempts:
        print(f"\n`director log {args.node} --attempt N` prints an attempt's transcripts")
    return 0
