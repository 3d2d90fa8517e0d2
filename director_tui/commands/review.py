"""``director review <node>``: the node's latest attempt as a diff, and your comments on it.

Reading only (safe while a run goes), except ``--comment``, which adds a comment to the
node's review (``.director/reviews/<node>.json``). What to do with a reviewed node is a
control request of its own: ``director accept|reject|retry <node>`` (``reject`` and
``retry`` send the comments to the next attempt).
"""

from __future__ import annotations

import argparse

from director_tui.commands.common import (
    HELP_FORMAT,
    add_repo_arg,
    help_epilog,
    print_json,
    store_for,
)
from director_tui.engine import node_diff, review_comments
from director_tui.engine.errors import UsageError
from director_tui.engine.models import Plan, RunState


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "review",
        help="show a node's latest attempt as a diff; collect comments on it",
        description="Print a node's latest attempt as a diff against its base: the "
        "attempt held for your review when `[review] human` holds it, else the merged, "
        "running or last attempt. Coloured on a terminal, plain when piped. "
        "Then decide with `director accept <node>` (merge the held attempt), "
        "`director reject <node> --comment …` (its next attempt, with your comments) or "
        "`director retry <node> --comment …` (fresh attempts, with your comments).",
        epilog=help_epilog(
            "director review parse                            # the diff, your comments",
            'director review parse --comment "calc/parse.py:12: handle empty input"',
            'director review parse --comment "calc/parse.py:10-14: this hunk is unneeded"',
            "director accept parse                            # merge it",
            "director reject parse                            # next attempt, comments sent",
            "director review parse --tests                    # its frozen tests (Gate 2)",
            "director review parse --json                     # files, hunks, lines",
            exit_codes=False,
        ),
        formatter_class=HELP_FORMAT,
        usage="director review [-h] [--repo PATH] [--comment TEXT ...] [--tests] [--json] <node>",
    )
    add_repo_arg(parser)
    parser.add_argument("node", nargs="?", help="the node's id, as `director status` lists it")
    parser.add_argument(
        "--comment",
        action="append",
        default=[],
        metavar="TEXT",
        help="add a comment, repeatable: 'path:line: text', 'path:10-14: text' (a hunk), "
        "'path: text' or plain text (the node as a whole); sent to the next attempt by "
        "`director reject` or `director retry`",
    )
    parser.add_argument(
        "--tests", action="store_true", help="show the node's frozen tests instead (read-only)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if not args.node:
        raise UsageError("`director review` needs a node id", hint="director review <node>")
    store = store_for(args)
    plan = store.read_model(store.plan, Plan)
    if plan is None:
        raise UsageError("no plan yet: nothing to review", hint='director plan "<task>"')
    review_comments.check_node(store, args.node)
    added = [review_comments.parse(text) for text in args.comment]  # all valid, or none kept
    for comment in added:
        review_comments.add(store, args.node, comment)
    state = store.read_model(store.state, RunState)
    if state is not None and state.job_id != plan.job_id:
        state = None  # an earlier job's state
    if args.tests:
        diff = node_diff.tests_diff(store, plan, args.node)
    else:
        diff = node_diff.node_diff(store, plan, state, args.node)
    comments = review_comments.load(store, args.node)
    st = state.nodes.get(args.node) if state is not None else None
    status = st.status.value if st is not None else "pending"
    if args.json:
        print_json(
            {
                "status": status,
                "diff": diff.model_dump(),
                "comments": [c.model_dump() for c in comments],
            }
        )
        return 0
    from director_tui.views.review_view import print_diff

    print_diff(diff, comments, status=status)
    if args.comment:
        print(
            f"\n{len(args.comment)} comment(s) added; `director reject {args.node}` or "
            f"`director retry {args.node}` sends them to the next attempt"
        )
    elif status == "awaiting_review":
        print(
            f"\nnode {args.node} waits for you: `director accept {args.node}`, or "
            f'`director reject {args.node} --comment "path:line: …"`'
        )
    return 0
