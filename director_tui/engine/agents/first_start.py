"""One first start at a time per agent HOME.

OpenCode creates and migrates its database on its first start in a HOME; two first
starts at once (``--parallel 2`` with a fresh ``DIRECTOR_AGENT_HOME``) race on it and one
dies with ``Failed query: CREATE TABLE …``. So the first call in a HOME takes a file lock
(``flock``: freed by the kernel if director dies) and holds it until its CLI has printed
its first line — it has a working database then — or has ended; the calls waiting start
after it. A marker file beside the lock records that a first start went through, and every
later call skips the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import time
from collections.abc import Callable
from pathlib import Path

LOCK_NAME = "director-first-start.lock"
DONE_NAME = "director-first-start.done"
POLL_SECS = 0.1
# A first start that never prints (a model that hangs before the first event) must not
# hold every other call back for its whole idle timeout: after this, the others go.
MAX_WAIT_SECS = 60.0

Release = Callable[[bool], None]  # release(started): started=True marks the HOME as done


def _nothing(_started: bool) -> None:
    return None


async def first_start_turn(state_dir: Path, *, max_wait: float = MAX_WAIT_SECS) -> Release:
    """Wait for this call's turn to start a CLI whose state lives in ``state_dir``.

    Returns ``release``: call it with True once the CLI printed its first line (the
    HOME is set up for good), with False when it ended without one. Calls after the
    first successful start return at once."""
    done = state_dir / DONE_NAME
    if done.exists():
        return _nothing
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        handle = (state_dir / LOCK_NAME).open("a+", encoding="utf-8")
    except OSError:
        return _nothing  # an unwritable HOME: the CLI will say what is wrong with it
    deadline = time.monotonic() + max_wait
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.close()
                return _nothing
            await asyncio.sleep(POLL_SECS)
    if done.exists():  # the call before us set the HOME up while we waited
        handle.close()
        return _nothing

    def release(started: bool) -> None:
        if handle.closed:
            return
        if started:
            with contextlib.suppress(OSError):
                done.touch()
        handle.close()

    return release
