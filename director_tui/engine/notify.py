"""Telling the human: the user's ``[notify] command`` for each attention occasion, and the
hook that wires it (and, headless, the terminal's bell) onto an engine's event bus.

The command runs in the process that runs the engine — headless ``director plan``/``run``/
``auto``, or the app's engine worker — so an occasion runs it once, whoever watches. It
runs on a thread of its own, one occasion after another, under ``timeout_secs``: a slow or
broken command never holds up the run, and its failure is a warning event, not a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from director_tui.engine.attention import Attention, AttentionTracker, terminal_alert
from director_tui.engine.config import Notify
from director_tui.engine.events import EventBase, EventBus, Notice

# What is kept of a failing command's output in the warning.
OUTPUT_TAIL_CHARS = 300


def run_notify_command(notify: Notify, item: Attention, cwd: Path) -> str:
    """Run the command for ``item`` and wait for it (up to the timeout); '' when it went
    well, else why not, in one line."""
    argv = notify.argv()
    if not argv:
        return ""
    env = {**os.environ, **item.env(), "DIRECTOR_REPO": str(cwd)}
    payload = json.dumps({**item.as_json(), "repo": str(cwd)}) + "\n"
    # Its output goes to a file, not a pipe: a command that leaves a process of its own
    # behind (`setsid … &`, a daemon it starts) keeps a pipe open, and reading it to its
    # end waited for that process — past the timeout, holding up the run's exit.
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as err:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=err,
                text=True,
                start_new_session=True,  # its own process group: a timeout ends all of it
            )
        except OSError as exc:
            return f"{argv[0]}: {exc.strerror or exc}"
        try:
            proc.communicate(payload, timeout=notify.timeout_secs)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return f"{argv[0]} took longer than {notify.timeout_secs:g}s and was stopped"
        if proc.returncode != 0:
            err.seek(0)
            tail = " ".join(err.read().split())[-OUTPUT_TAIL_CHARS:]
            return f"{argv[0]} exited with {proc.returncode}" + (f": {tail}" if tail else "")
    return ""


_DONE = None  # the end of a notifier's queue


class CommandNotifier:
    """Runs the notify command for each occasion handed to it, in order, off the caller's
    thread; ``close`` ends it (optionally waiting for what is queued)."""

    def __init__(self, notify: Notify, cwd: Path, on_failure: Callable[[str], None]) -> None:
        self.notify = notify
        self.cwd = cwd
        self.on_failure = on_failure
        self._queue: queue.Queue[Attention | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def submit(self, item: Attention) -> None:
        if not self.notify.argv():
            return
        if self._thread is None:
            # Not a daemon: a process ending right after a gate still tells the human.
            self._thread = threading.Thread(target=self._work, name="notify-command")
            self._thread.start()
        self._queue.put(item)

    def close(self, *, wait: bool) -> None:
        if self._thread is None:
            return
        self._queue.put(_DONE)
        if wait:
            self._thread.join()

    def _work(self) -> None:
        while (item := self._queue.get()) is not _DONE:
            try:
                failure = run_notify_command(self.notify, item, self.cwd)
            except Exception as exc:  # never let the notifier take anything down
                failure = f"{type(exc).__name__}: {exc}"
            if failure:
                with contextlib.suppress(Exception):
                    self.on_failure(f"[notify] command for {item.kind}: {failure}")


@dataclass
class AttentionHook:
    """On an engine's bus: each new occasion runs the notify command and, when a terminal
    is given (headless on a tty), rings it."""

    notify: Notify
    notifier: CommandNotifier
    terminal: TextIO | None = None
    tracker: AttentionTracker | None = None

    def __post_init__(self) -> None:
        if self.tracker is None:
            self.tracker = AttentionTracker()

    def __call__(self, event: EventBase) -> None:
        assert self.tracker is not None
        item = self.tracker.see(event)
        if item is None or item.kind not in self.notify.events:
            return
        self.notifier.submit(item)
        if self.terminal is not None:
            self._ring(item, self.terminal)

    def _ring(self, item: Attention, terminal: TextIO) -> None:
        alert = terminal_alert(
            item,
            bell=self.notify.bell,
            desktop=self.notify.desktop,
            in_tmux=bool(os.environ.get("TMUX")),
        )
        with contextlib.suppress(OSError, ValueError):  # a closed terminal rings no more
            terminal.write(alert)
            terminal.flush()


def ringable(stream: TextIO) -> TextIO | None:
    """``stream`` when it is a terminal that takes escapes, else None."""
    try:
        is_tty = stream.isatty()
    except (AttributeError, ValueError):
        return None
    return stream if is_tty and os.environ.get("TERM") != "dumb" else None


@contextlib.contextmanager
def attention_on(
    bus: EventBus,
    notify: Notify,
    cwd: Path,
    *,
    terminal: TextIO | None = None,
    wait: bool = True,
) -> Iterator[AttentionHook]:
    """While the block runs, the bus's occasions reach the human; at its end the notify
    commands still queued finish first (``wait``) or go on in the background."""

    def warn(message: str) -> None:
        bus.emit(Notice(level="warning", message=message))

    hook = AttentionHook(notify, CommandNotifier(notify, cwd, warn), terminal)
    bus.subscribe(hook)
    try:
        yield hook
    finally:
        with contextlib.suppress(ValueError):
            bus.sinks.remove(hook)
        hook.notifier.close(wait=wait)
