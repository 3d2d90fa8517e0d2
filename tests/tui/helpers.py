"""Helpers shared by the TUI tests, the screenshot script and the load bench."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from textual.message import Message
from textual.notifications import Notify

from director_tui.engine.models import Plan
from director_tui.tui.app import DirectorApp
from tests.gitrepo import make_repo
from tests.support.sample_job import FIXED_NOW, write_bench_summary, write_sample

FIXED_ROOT = Path(tempfile.gettempdir()) / "director-tui-snapshots"


@contextlib.contextmanager
def fixed_root_lock() -> Iterator[None]:
    """Hold the fixed fixture folder: test runs from other shells share this machine."""
    FIXED_ROOT.mkdir(parents=True, exist_ok=True)
    with (FIXED_ROOT / ".lock").open("a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def fixed_repo(stage: str, name: str = "repo", *, plan: Plan | None = None) -> Path:
    """A repository at a fixed path, so the screens (which show the path) snapshot stably.
    Call it while holding ``fixed_root_lock``. ``plan``: another plan than the sample's."""
    root = FIXED_ROOT / stage
    if root.exists():
        shutil.rmtree(root)
    repo = make_repo(root / name)
    store = write_sample(repo, stage, plan=plan)  # type: ignore[arg-type]
    write_bench_summary(store)
    return repo


def frozen_app(repo: Path, start: str, **kwargs: Any) -> DirectorApp:
    """The app as tests and screenshots see it: frozen clock, no file watcher unless asked."""
    kwargs.setdefault("watch", False)
    return DirectorApp(repo, start=start, clock=lambda: FIXED_NOW, **kwargs)


def screen_text(app: DirectorApp) -> str:
    """The characters on the app's screen now, one line per row (what a user reads)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


async def wait_until(
    pilot: Any, condition: Callable[[], bool], timeout: float = 10.0, step: float = 0.05
) -> bool:
    """Let the app run until ``condition`` holds (a real wait on real work, never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await pilot.pause(step)
    return condition()


async def wait_engine(app: DirectorApp, pilot: Any, timeout: float = 30.0) -> None:
    """Wait for the engine worker to finish and the app to have handled its end."""
    await wait_until(pilot, lambda: not app.engine_busy, timeout=timeout)
    # the engine's last events are in the buffer until the next UI tick applies them
    await wait_until(pilot, lambda: len(app.buffer) == 0, timeout=timeout)
    await asyncio.sleep(0)
    await pilot.pause()


class Recorder:
    """A ``message_hook`` that keeps every message the app handled (notifications included)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def __call__(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def notes(self) -> list[str]:
        return [m.notification.message for m in self.messages if isinstance(m, Notify)]

    def saw(self, text: str) -> bool:
        return any(text in note for note in self.notes)
