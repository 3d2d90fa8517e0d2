"""Helpers the command modules share: repo resolution, output, the TUI switch."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from director_tui.engine import git
from director_tui.engine.config import Config, load_config
from director_tui.engine.store import Store

if TYPE_CHECKING:
    from director_tui.engine.context import EngineContext

EXIT_CODES = (
    "exit codes: 0 done · 1 the work failed · 2 bad input (nothing written)\n"
    "            3 stopped at a gate · 4 another director process holds the repo · 130 interrupted"
)


def help_epilog(*examples: str, exit_codes: bool = True) -> str:
    """The end of a command's ``--help``: examples a user can copy, and the exit codes."""
    lines = ["examples:", *(f"  {example}" for example in examples)]
    return "\n".join(lines) + ("\n\n" + EXIT_CODES if exit_codes else "")


HELP_FORMAT = argparse.RawDescriptionHelpFormatter


def add_repo_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repo", default=".", metavar="PATH", help="the git repository to work on (default: .)"
    )


def add_tui_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-tui",
        action="store_true",
        help="print progress lines instead of opening the app (automatic when not a terminal)",
    )


def add_parallel_arg(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--parallel",
        type=int,
        metavar="N",
        help=f"{what} at once (default: [limits] parallel)",
    )


def with_parallel(config: Config, parallel: int | None) -> Config:
    """``config`` with ``--parallel`` as its ``[limits] parallel`` (exit 2 below 1): the
    tests stage of planning and the run both read it there."""
    if parallel is not None and parallel < 1:
        from director_tui.engine.errors import UsageError

        raise UsageError("--parallel must be at least 1")
    return with_limits(config, parallel=parallel)


def with_limits(config: Config, **flags: object) -> Config:
    """``config`` with the ``[limits]`` a command's flags give (None: the flag was not)."""
    given = {key: value for key, value in flags.items() if value is not None}
    if not given:
        return config
    return config.model_copy(update={"limits": config.limits.model_copy(update=given)})


def resolve_repo(args: argparse.Namespace) -> Path:
    return git.repo_root(Path(args.repo).expanduser().resolve())


def store_for(args: argparse.Namespace) -> Store:
    """The repository's store, after checking its configuration: a broken config.toml
    (bad TOML, an unknown provider, a wrong type) stops every command with exit 2 and
    the file and line, before anything is read or written — not only the commands that
    call an agent."""
    store = Store(resolve_repo(args))
    checked_config(store.repo)
    return store


def checked_config(repo: Path) -> Config:
    """The merged user + repo config; ConfigError (exit 2, file and line) when broken."""
    return load_config(repo)


def want_tui(args: argparse.Namespace) -> bool:
    if getattr(args, "no_tui", False) or getattr(args, "json", False):
        return False
    return sys.stdout.isatty() and sys.stdin.isatty() and os.environ.get("TERM") != "dumb"


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def not_built(name: str) -> int:
    print(f"director {name}: not built yet in this version", file=sys.stderr)
    return 1


@contextlib.contextmanager
def stop_like_ctrl_c() -> Iterator[None]:
    """While a headless plan/run works, ``kill <pid>`` (SIGTERM) and a closed terminal
    or SSH session (SIGHUP) stop it the way Ctrl-C does: state saved, agents stopped,
    exit 130, and ``director run`` resumes. By default either signal killed the process
    on the spot, leaving its agents running (and spending) until the next run's recovery.
    A signal the caller chose to ignore (``nohup`` ignores SIGHUP) stays ignored."""

    def as_interrupt(signum: int, frame: FrameType | None) -> None:
        on_interrupt = signal.getsignal(signal.SIGINT)
        if callable(on_interrupt):  # asyncio's (cancels the main task) or Python's
            on_interrupt(signal.SIGINT, frame)
        else:  # SIGINT ignored (a background job): still stop, cleanly
            raise KeyboardInterrupt

    previous: dict[signal.Signals, Any] = {}
    for stop in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(stop) is signal.SIG_DFL:
            previous[stop] = signal.signal(stop, as_interrupt)
    try:
        yield
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)


@contextlib.contextmanager
def telling_the_human(ctx: EngineContext) -> Iterator[None]:
    """While a headless plan or run works: when it needs the human (a gate, a failed node,
    the cost ceiling) or finishes, the `[notify] command` runs and, on a terminal, stderr
    rings (BEL and a desktop notification escape). Queued commands finish before it ends."""
    from director_tui.engine.notify import attention_on, ringable

    with attention_on(ctx.bus, ctx.config.notify, ctx.repo, terminal=ringable(sys.stderr)):
        yield


def still_at_gate(store: Store, code: int) -> int:
    """The app's exit code, or 3 when the user quit it while the job still waits at a gate
    — what `director plan` returns at a gate without the app."""
    from director_tui.engine.errors import DirectorError, GateStop
    from director_tui.engine.models import PlanStage, Stage

    if code != 0:
        return code
    try:
        stage = store.read_model(store.plan_stage, PlanStage)
    except DirectorError:
        return code
    at_gate = stage is not None and stage.stage in (Stage.gate1, Stage.gate2)
    return GateStop.exit_code if at_gate else code
