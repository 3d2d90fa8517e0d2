"""The subprocess loop every agent CLI driver shares.

Start the CLI in its own process group with stdin from ``/dev/null`` (or a prompt file),
its stdout going straight into the transcript file, which is tailed and split into lines
handed to the driver's parser the moment they land (within ``POLL_SECS``); stderr goes
straight to a file beside it,
and watch two clocks: the overall timeout and the idle timeout (no output at all for
that long). Either one kills the whole process tree, TERM then KILL, and the outcome
says which fired.

Memory stays bounded whatever the CLI prints: a line longer than ``max_line_bytes`` is
kept only up to that many bytes (the transcript has all of it) and the parser is
told how much was cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil

from director_tui.engine.proc import (
    KILL_GRACE_SECS,
    group_alive,
    in_thread_or_here,
    kill_process_group_async,
    wait_dead,
)

READ_CHUNK = 64 * 1024
DEFAULT_MAX_LINE_BYTES = 1024 * 1024
STDERR_TAIL_BYTES = 4096
POLL_SECS = 0.05  # how often the transcript is checked for new lines

Watchdog = Literal["timeout", "idle"]
# (line text without its newline, bytes cut from the line because it was too long)
OnLine = Callable[[str, int], None]


@dataclass
class StreamOutcome:
    exit_code: int | None  # None: we killed it, or it never started
    fired: Watchdog | None  # which watchdog killed it, if one did
    duration_secs: float
    stderr_tail: str
    lines: int
    spawn_error: str = ""  # set when the binary could not be started at all

    @property
    def killed_by_signal(self) -> bool:
        return self.exit_code is not None and self.exit_code < 0


class _LineSplitter:
    """Bytes in, complete lines out, with at most ``cap`` bytes kept per line."""

    def __init__(self, cap: int, on_line: OnLine) -> None:
        self.cap = cap
        self.on_line = on_line
        self.buffer = bytearray()
        self.dropped = 0
        self.count = 0

    def feed(self, data: bytes) -> None:
        start = 0
        while True:
            end = data.find(b"\n", start)
            piece = data[start:] if end < 0 else data[start:end]
            room = self.cap - len(self.buffer)
            if room > 0:
                self.buffer += piece[:room]
            self.dropped += max(0, len(piece) - max(room, 0))
            if end < 0:
                return
            self._deliver()
            start = end + 1

    def flush(self) -> None:
        if self.buffer or self.dropped:
            self._deliver()

    def _deliver(self) -> None:
        text = self.buffer.decode("utf-8", errors="replace").rstrip("\r")
        dropped = self.dropped
        self.buffer = bytearray()
        self.dropped = 0
        self.count += 1
        self.on_line(text, dropped)


PR_SET_PDEATHSIG = 1
_prctl: Callable[..., int] | None
try:  # Linux; elsewhere the next run's recovery is the only clean-up
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


def _stderr_tail(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - STDERR_TAIL_BYTES))
            return fh.read().decode("utf-8", errors="replace").strip()
    except OSError:
        return ""


_DIRECTOR_IS_INIT = os.getpid() == 1  # in a container, director may be PID 1 itself


def die_with_parent() -> None:
    """In the agent's process, before exec: ask Linux for SIGTERM when director dies.
    A ``kill -9`` of director otherwise leaves the agent calling its model, with no
    watchdog, until the next ``director run`` finds it (what the agent itself started is
    still stopped then, by process group)."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        # Director killed between the fork and the prctl: no signal will ever come, and
        # the child was handed to init already. (Not when director itself is PID 1.)
        if os.getppid() == 1 and not _DIRECTOR_IS_INIT:
            os._exit(1)


async def kill_tree(pid: int, grace: float = KILL_GRACE_SECS) -> None:
    """Kill the process group led by ``pid`` and any descendant that left the group
    (a tool may start its commands in a session of their own)."""
    try:
        strays = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        strays = []
    await kill_process_group_async(pid, grace)
    for child in strays:
        with contextlib.suppress(psutil.Error):
            if child.is_running():
                child.kill()
    with contextlib.suppress(psutil.Error):
        await in_thread_or_here(wait_dead, strays, 1.0)


async def run_streaming(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    transcript_path: Path,
    stderr_path: Path,
    timeout_secs: float,
    idle_timeout_secs: float,
    on_line: OnLine,
    stdin_path: Path | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    kill_grace_secs: float = KILL_GRACE_SECS,
    poll_secs: float = POLL_SECS,
) -> StreamOutcome:
    """Run ``argv`` under both watchdogs, feeding each stdout line to ``on_line`` live.

    The CLI's stdout is the transcript file itself, which we tail. A pipe would be the
    obvious choice, but a CLI that exits right after a big write loses the part still
    queued for the pipe (OpenCode 1.18 cut a 10 MB answer to 1.7 MB that way, even with
    a reader draining the pipe as fast as it could); writes to a file are never lost.
    """
    started = time.monotonic()
    transcript_path.parent.mkdir(parents=True, exist_ok=True)
    splitter = _LineSplitter(max_line_bytes, on_line)
    with (
        transcript_path.open("wb") as transcript_out,
        stderr_path.open("wb") as stderr_file,
        stdin_path.open("rb") if stdin_path else open(os.devnull, "rb") as stdin_file,
    ):
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=str(cwd),
                env=dict(env),
                stdin=stdin_file,
                stdout=transcript_out,
                stderr=stderr_file,
                start_new_session=True,  # its own process group: we kill the whole tree
                preexec_fn=die_with_parent,
            )
        except OSError as exc:
            return StreamOutcome(
                exit_code=None,
                fired=None,
                duration_secs=time.monotonic() - started,
                stderr_tail="",
                lines=0,
                spawn_error=f"{argv[0]}: {exc.strerror or exc}",
            )
    fired: Watchdog | None = None
    deadline = started + timeout_secs
    last_output = time.monotonic()
    exited = asyncio.ensure_future(proc.wait())
    try:
        with transcript_path.open("rb") as tail:

            def drain() -> bool:
                got = False
                while chunk := tail.read(READ_CHUNK):
                    got = True
                    splitter.feed(chunk)
                return got

            while True:
                if drain():
                    last_output = time.monotonic()
                if exited.done():
                    drain()  # whatever it wrote just before exiting
                    splitter.flush()
                    break
                now = time.monotonic()
                if now >= deadline:
                    fired = "timeout"
                    break
                if now - last_output >= idle_timeout_secs:
                    fired = "idle"
                    break
                await asyncio.wait({exited}, timeout=poll_secs)
        if fired is not None:
            await kill_tree(proc.pid, kill_grace_secs)
            await exited
    finally:
        # Cancelled, a parser error, or a CLI that left helpers behind in its group:
        # nothing it started may outlive the call.
        if proc.returncode is None or group_alive(proc.pid):
            await asyncio.shield(kill_tree(proc.pid, min(kill_grace_secs, 1.0)))
        if not exited.done():
            with contextlib.suppress(ProcessLookupError):
                await asyncio.shield(exited)
    return StreamOutcome(
        exit_code=None if fired else proc.returncode,
        fired=fired,
        duration_secs=time.monotonic() - started,
        stderr_tail=_stderr_tail(stderr_path),
        lines=splitter.count,
    )
