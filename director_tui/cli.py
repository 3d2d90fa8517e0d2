"""``director <command>``: argument parsing and dispatch. No logic of its own.

Each command lives in ``director_tui.commands.<name>`` with ``register(subparsers)``;
this module only wires them up and turns expected errors into clean exits.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Sequence

from director_tui import __version__
from director_tui.engine.errors import DirectorError

COMMANDS = (
    "init",
    "plan",
    "run",
    "land",
    "clean",
    "auto",
    "status",
    "control",
    "review",
    "log",
    "bench",
    "tui",
    "demo",
    "sync_agents",
    "doctor",
    "cluster",
)

EPILOG = """\
the flow:
  director init                 write .director/config.toml (roles → models)
  director plan "<task>"        recon → spec (Gate 1) → DAG + red tests (Gate 2)
  director plan --continue      resume after you approved or edited the gate artifact
  director run                  run the approved plan: worktrees, gates, review, merge
  director status               where everything stands (--json for scripts)
  director review <node>        a node's diff; then accept / reject / retry --comment
  director log <node>           a node's attempts; --attempt N prints their transcripts
  director tui                  the same, live, full-screen (attaches to a running job)

exit codes: 0 done · 1 work failed · 2 bad input (nothing written) · 3 stopped at a gate
            · 4 another director process holds the repo · 130 interrupted
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="director",
        description=(
            "Hand a coding task to a team of AI coding agents and stay in control. "
            "A planner turns the task into a spec and a DAG of small nodes with frozen "
            "tests; cheaper executors implement each node in its own git worktree; "
            "deterministic gates decide what merges."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"director-tui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMANDS:
        module = importlib.import_module(f"director_tui.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # The reader of our output went away (`director log x | head`, a pager quit):
        # nothing is wrong with the work, so no traceback. Later writes (the interpreter's
        # own flush at exit) go nowhere; the exit code is the shell's for SIGPIPE.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return OUTPUT_CLOSED


# 128 + SIGPIPE, what a shell reports for `git log | head`'s git.
OUTPUT_CLOSED = 141


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        # Plain `director` opens the app on a terminal and teaches otherwise.
        if sys.stdin.isatty() and sys.stdout.isatty():
            args = parser.parse_args(["tui"])
        else:
            parser.print_help()
            return 2
    try:
        code: int = args.handler(args)
        return code
    except DirectorError as exc:
        print(f"director: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("director: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno not in UNWRITABLE and exc.errno not in FULL:
            raise  # anything else is a bug: keep its traceback
        where = exc.filename or "a file"
        if exc.errno in UNWRITABLE:
            print(
                f"director: cannot write {where}: {exc.strerror}\n"
                "  → director keeps its state in the repository's .director/ folder: make "
                "the repository writable, or work in a writable clone "
                "(`git clone <repo> <folder>`)",
                file=sys.stderr,
            )
            return 2
        print(
            f"director: cannot write {where}: {exc.strerror}\n"
            "  → free some space, then run the command again (a run resumes where it stopped)",
            file=sys.stderr,
        )
        return 1


# A read-only repository (a read-only mount, a folder of another user) and a full disk:
# the environment, not a bug, so a message instead of a traceback.
UNWRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}
FULL = {errno.ENOSPC, errno.EDQUOT}
