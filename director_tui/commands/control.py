"""``director retry|escalate|skip|pause|resume|cancel|accept|reject``: control requests.

With a run live (in this shell's TUI, another shell, anywhere on this machine), the
request goes to it over its socket (which refuses a request sent from inside an attempt)
and we wait a few seconds for the engine's answer. With no run live, retry/escalate/skip/resume and ``cancel <node>`` are written
straight into ``state.json`` for the next ``director run`` (an approved plan that has not
run yet included); pause and a whole-run cancel need a live run.
"""

from __future__ import annotations

import argparse
import sys
import time

from director_tui.commands.common import (
    HELP_FORMAT,
    add_repo_arg,
    checked_config,
    help_epilog,
    resolve_repo,
)
from director_tui.engine import control, review_comments
from director_tui.engine.control_channel import NoLiveRun
from director_tui.engine.errors import ConfigError, LockHeldError
from director_tui.engine.store import Store

ACTIONS = {
    "retry": "retry a failed (or blocked, or held) node with fresh attempts",
    "escalate": "run a node at the escalation tier now",
    "skip": "skip a node (its dependents become blocked)",
    "pause": "stop scheduling new nodes (running ones finish)",
    "resume": "resume scheduling after a pause",
    "cancel": "cancel a running node, or the whole run without a node",
    "accept": "merge a node that waits for your review ([review] human)",
    "reject": "send a node that waits for your review back for its next attempt",
}
ANSWER_WAIT_SECS = 5.0
NODE_ARG = {
    "retry": "required",
    "escalate": "required",
    "skip": "required",
    "pause": "",
    "resume": "",
    "cancel": "optional",
    "accept": "required",
    "reject": "required",
}
CONTROL_NOTE = {
    "live": "It goes to the live run (headless, in the app, any shell) and its answer is "
    "printed; with no run live it is refused: there is nothing to {action}.",
    "offline": "With a run live (headless, in the app, any shell) the request is queued for "
    "it and its answer printed; with none, it is written into the job's state for the next "
    "`director run`.",
}
# pause and a whole-run cancel only mean something to a run that goes.
NEEDS_LIVE_RUN = {"pause"}
CONTROL_EXAMPLES = {
    "retry": [
        "director retry parse            # fresh attempts after a failure",
        'director retry parse --comment "calc/parse.py:12: handle empty input"',
    ],
    "escalate": ["director escalate parse         # the escalation tier, now"],
    "skip": ["director skip parse             # its dependents become blocked"],
    "pause": ["director pause                  # while a run goes: no new node starts"],
    "resume": ["director resume                 # scheduling goes on (live or next run)"],
    "cancel": [
        "director cancel parse           # stop that node's attempt",
        "director cancel                 # stop the whole run (resume with `director run`)",
    ],
    "accept": [
        "director review parse           # read its diff first",
        "director accept parse           # it merges (now, or at the next `director run`)",
    ],
    "reject": [
        'director reject parse --comment "calc/parse.py:12: handle empty input"',
        "director reject parse           # no comment: 'do it differently'",
    ],
}
# The requests that carry review comments to the node's next attempt.
COMMENT_HELP = (
    "a review comment for the next attempt, repeatable: 'path:line: text', "
    "'path:10-14: text' (a hunk), 'path: text' or plain text; added to the comments "
    "`director review <node> --comment` collected, and sent with them"
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for action, what in ACTIONS.items():
        takes = NODE_ARG[action]
        parser = sub.add_parser(
            action,
            help=what,
            description=what[0].upper()
            + what[1:]
            + ". "
            + CONTROL_NOTE["live" if action in NEEDS_LIVE_RUN else "offline"].format(action=action)
            + (" Without a node, the run must be live." if action == "cancel" else "")
            + " Exit 1 when the request is refused (the answer says why).",
            epilog=help_epilog(*CONTROL_EXAMPLES[action], exit_codes=False),
            formatter_class=HELP_FORMAT,
            # argparse would print the node as "[node]": it is optional to argparse only.
            usage=f"director {action} [-h] [--repo PATH] [--no-wait]"
            + (" [--comment TEXT ...]" if action in control.COMMENTED_ACTIONS else "")
            + " <node>"
            if takes == "required"
            else None,
        )
        add_repo_arg(parser)
        if takes:
            # Optional for argparse even when required: check_request says what is
            # missing in director's own words (and main() returns 2 instead of exiting).
            parser.add_argument(
                "node",
                nargs="?",
                help="the node's id, as `director status` lists it"
                + ("; without it, the whole run" if takes == "optional" else " (required)"),
            )
        else:
            parser.set_defaults(node=None)
        parser.add_argument(
            "--no-wait", action="store_true", help="queue the request and return at once"
        )
        if action in control.COMMENTED_ACTIONS:
            parser.add_argument(
                "--comment", action="append", default=[], metavar="TEXT", help=COMMENT_HELP
            )
        parser.set_defaults(handler=lambda args, a=action: handle(a, args))


def handle(action: str, args: argparse.Namespace) -> int:
    store = Store(resolve_repo(args))
    control.check_request(action, args.node)
    comments = [review_comments.parse(text) for text in getattr(args, "comment", [])]
    if comments:
        review_comments.check_node(store, args.node)
        for comment in comments:
            review_comments.add(store, args.node, comment)
    live = store.lock_holder() is not None
    try:
        checked_config(store.repo)
    except ConfigError as exc:
        if not live:
            raise
        # A live run read its config when it started; a file broken since must not keep
        # the user from pausing or cancelling it. Say so, and deliver the request.
        print(f"director: warning: {exc}", file=sys.stderr)
    if not live:
        try:
            with store.run_lock("control"):
                record = control.apply_offline(store, action, args.node)
        except LockHeldError:
            record = None  # a run started meanwhile: fall through to queueing
        if record is not None:
            return _say(record.ok, record.message, bool(comments), args.node)
    request_id = _send(store, action, args.node)
    if request_id is None:
        return 1
    if args.no_wait:
        print(f"queued {action} (request {request_id})")
        return 0
    deadline = time.monotonic() + ANSWER_WAIT_SECS
    while time.monotonic() < deadline:
        answer = control.find_answer(store, request_id)
        if answer is not None:
            return _say(answer.ok, answer.message, bool(comments), args.node)
        time.sleep(0.1)
    print(f"queued {action} (request {request_id}); the run has not answered yet")
    return 0


def _say(ok: bool, message: str, commented: bool, node: str | None) -> int:
    print(("" if ok else "refused: ") + message)
    if commented and not ok:
        print(f"your comments are kept for the next retry or reject (`director review {node}`)")
    return 0 if ok else 1


def _send(store: Store, action: str, node: str | None) -> str | None:
    """The request handed to the live run over its socket, or None after saying why not.
    A run that just took the lock opens its socket a moment later: try for a few seconds."""
    deadline = time.monotonic() + ANSWER_WAIT_SECS
    while True:
        try:
            return control.send_control(store, action, node, in_process=False)
        except control.ControlRefused as exc:
            print(f"refused: {exc.message}")
            return None
        except NoLiveRun:
            holder = store.lock_holder()
            if holder is None or time.monotonic() >= deadline:
                doing = (
                    f"{holder.get('purpose', 'run')} (pid {holder.get('pid')})" if holder else ""
                )
                print(
                    "refused: "
                    + (
                        f"the process holding the repository, {doing}, takes no control "
                        "requests (a run takes them while it goes)"
                        if holder
                        else "the run ended meanwhile: try again"
                    )
                )
                return None
            time.sleep(0.2)
