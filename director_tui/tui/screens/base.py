"""The contract between the app and its screens.

The app calls the hooks declared on ``DirectorScreen`` (each has a default that does
nothing); a screen reads the app only through ``ScreenHost`` and asks it for work with
the messages of ``tui/messages.py`` (start an engine job, start the run, send a control
request), answered by ``EngineJobFinished``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar, cast

from textual import events, on
from textual.screen import Screen

from director_tui.tui.board import BoardModel
from director_tui.tui.engine_bridge import EngineBridge, EngineJob, EngineTask
from director_tui.tui.messages import EngineJobFinished, SendControl, StartEngineJob, StartRun

T = TypeVar("T")


class ScreenHost(Protocol):
    """What a screen may read of the app (``DirectorApp`` implements it)."""

    @property
    def bridge(self) -> EngineBridge:
        """The repository: its store, config and engine entry points."""

    @property
    def board(self) -> BoardModel:
        """The live model of the job, fed by the engine's events."""

    @property
    def engine_busy(self) -> EngineTask | None:
        """The job the app's engine worker is doing, if any."""

    @property
    def pending_controls(self) -> Mapping[str, tuple[str, str | None]]:
        """Control requests sent to the live engine and not answered yet."""

    def clock(self) -> float:
        """Now, as the screens show it (frozen in tests and screenshots)."""

    def show_error(self, title: str, error: BaseException) -> None:
        """A modal that says what went wrong and what to do (once per session)."""

    def guard(self, title: str, fn: Callable[[], T]) -> T | None:
        """``fn()``; an expected error becomes ``show_error`` and None, not a crash."""

    async def action_open(self, name: str) -> None:
        """Switch to the screen ``name`` (the unsaved-changes guard asks first)."""

    def fit_title(self) -> None:
        """Fit the header's title to the terminal's width."""


class DirectorScreen(Screen[Any]):
    # Set at the end of each screen's on_mount: before that its widgets do not exist, and
    # the app's timer or a stage change must not ask it to repaint.
    ready = False

    @property
    def director(self) -> ScreenHost:
        return cast(ScreenHost, self.app)

    # -- hooks the app calls (on the visible screen once it is ready) --------------------
    @property
    def dirty(self) -> bool:
        """Unsaved edits: leaving or quitting asks first (see ``check_leave``)."""
        return False

    def check_leave(self, then: str) -> None:
        """Called instead of switching to ``then`` while ``dirty``: ask, then switch."""
        self.app.call_later(self.director.action_open, then)

    def reload(self) -> None:
        """Re-read the store (after a stage change or an engine job)."""

    def refresh_from_board(self) -> None:
        """New events were applied to the board (or the engine started or stopped)."""

    def refresh_clock(self) -> None:
        """A tick without events: repaint what depends on the time only."""

    def board_replaced(self) -> None:
        """A new job's events replaced the board: forget what was drawn from the old one."""

    # -- asking the app ------------------------------------------------------------------
    def start_engine_job(self, job: EngineJob | None, started: str) -> None:
        """Ask the app to run ``job`` (None: building it failed, already shown); the app
        says ``started`` once it has, and this screen hears ``EngineJobFinished``."""
        if job is not None:
            self.post_message(StartEngineJob(job, started, requester=self))

    def start_run(self) -> None:
        self.post_message(StartRun())

    def send_control(self, action: str, node_id: str | None = None) -> None:
        self.post_message(SendControl(action, node_id))

    def action_land(self) -> None:
        """`director land` from the app: the finished job merged into the user's branch."""
        job = self.director.guard("Cannot land", self.director.bridge.land_job)
        self.start_engine_job(job, "Landing: your gates run on the merged result first…")

    @on(EngineJobFinished)
    def landed(self, message: EngineJobFinished) -> None:
        if message.task != EngineTask.LAND or not message.ok:
            return  # a refusal is shown by the app's error modal, with the reason
        from director_tui.engine.land import LandResult

        result = message.result
        if isinstance(result, LandResult):
            self.notify(
                f"Landed {result.job_branch} on {result.branch} ({result.how}); {result.gates}."
                + (f" Note: {result.note}." if result.note else "")
            )
        self.reload()

    # -- shared event handlers -------------------------------------------------------------
    def on_screen_resume(self) -> None:
        if self.ready:
            self.reload()

    def on_resize(self, event: events.Resize) -> None:
        # the app's title (shared by every screen) fits itself to the new width
        self.director.fit_title()
