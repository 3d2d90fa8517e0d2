"""The app's errors and its ways out, beneath the event path and engine worker of ``app.py``.

Errors are shown once per session in a modal that says what to do next; quitting asks
first while there are unsaved edits or the app's own engine works, and a run can be
stopped (resumable) or detached to a background process.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import TypeVar

from textual.app import App
from textual.worker import Worker

from director_tui.engine.errors import DirectorError
from director_tui.engine.store import atomic_write_text
from director_tui.tui.board import BoardModel
from director_tui.tui.engine_bridge import EngineBridge, EngineTask
from director_tui.tui.screens.base import DirectorScreen
from director_tui.tui.widgets.modals import ConfirmModal, ErrorModal, QuitDuringRunModal

T = TypeVar("T")


class AppBase(App[int]):
    def __init__(self, bridge: EngineBridge, *, start_run: bool) -> None:
        super().__init__()
        self.bridge = bridge
        self.start_run_on_mount = start_run  # `director run` on a terminal: exit code = outcome
        self.board = BoardModel()
        self.engine_busy: EngineTask | None = None  # while the in-process engine works
        self.errors_seen: set[str] = set()
        self.detaching = False  # the user chose detach; the run moves once the engine stops
        self.farewell = ""  # printed on the terminal after the app has left it
        self.detached_pid = 0
        self.engine_worker: Worker[object] | None = None
        self.run_outcome = ""  # what the app's own engine answered for its run

    # -- errors -------------------------------------------------------------------------
    def show_error(self, title: str, error: BaseException) -> None:
        # The same problem, found by several screens or on every screen resume, is shown
        # once per session; the user has read it and the status lines still tell.
        key = f"{type(error).__name__}:{error}"
        if key in self.errors_seen:
            return
        self.errors_seen.add(key)

        if isinstance(error, DirectorError):
            self.push_screen(ErrorModal(title, error.message, error.hint))
            return
        log = self.bridge.store.logs / "tui-errors.log"
        try:
            text = "".join(traceback.format_exception(error))
            existing = log.read_text(encoding="utf-8") if log.exists() else ""
            atomic_write_text(log, existing + f"\n--- {time.ctime()} {title}\n{text}")
        except OSError:
            pass
        self.push_screen(
            ErrorModal(
                title,
                f"{type(error).__name__}: {error}",
                f"details were written to {log}; the app keeps running",
            )
        )

    def guard(self, title: str, fn: Callable[[], T]) -> T | None:
        """Run ``fn``; an expected error becomes a modal with the next step, not a crash."""
        try:
            return fn()
        except DirectorError as exc:
            self.show_error(title, exc)
        except OSError as exc:
            self.show_error(title, exc)
        return None

    # -- leaving ------------------------------------------------------------------------
    def engine_ended(self, worker: Worker[object]) -> None:
        """The app's: the engine worker's end handled (its result, the board, the gate)."""

    async def action_quit(self) -> None:
        worker = self.engine_worker
        if self.engine_busy and worker is not None and worker.is_finished:
            self.engine_ended(worker)  # its state message has not been handled yet
        if isinstance(self.screen, DirectorScreen) and self.screen.dirty:

            def discard(yes: bool | None) -> None:
                if yes:
                    self.leave()

            self.push_screen(
                ConfirmModal("You have unsaved changes. Quit anyway?", yes="Quit", no="Stay"),
                discard,
            )
            return
        if self.engine_busy == EngineTask.RUN:
            self.push_screen(
                QuitDuringRunModal(
                    "A run is going in this app. Detach: it goes on in the background "
                    "(running agent calls restart there) and `director tui` follows it "
                    "again. Stop: merged work is kept and `director run` resumes the rest."
                ),
                self.quit_during_run,
            )
            return
        if self.engine_busy:

            def decided(stop: bool | None) -> None:
                if stop:
                    self.bridge.send_control("cancel_run")
                    self.leave()

            self.push_screen(
                ConfirmModal(
                    f"The engine is working in this app ({self.engine_busy}). Quit and stop "
                    "it? Merged work is kept; `director run` resumes the rest.",
                    yes="Stop and quit",
                    no="Stay",
                ),
                decided,
            )
            return
        self.leave()

    def quit_during_run(self, choice: str | None) -> None:
        if choice == "stop":
            self.bridge.send_control("cancel_run")
            self.leave()
        elif choice == "detach":
            # The run moves to its own process: this engine stops its calls first (they
            # hold the run lock and the worktrees), then worker_state_changed hands over.
            self.detaching = True
            self.bridge.send_control("cancel_run")
            self.notify("Detaching: stopping the calls running here, then handing over…")

    def hand_over_run(self) -> None:
        """The app's engine has stopped: resume the run in a background process and leave."""
        try:
            pid, log = self.bridge.spawn_headless_run()
        except OSError as exc:
            self.detaching = False
            self.show_error("Could not start the background run", exc)
            return
        self.detached_pid = pid
        self.farewell = (
            f"The run goes on in the background (pid {pid}); its progress lines go to "
            f"{log}.\n`director tui --repo {self.bridge.repo}` follows it live; "
            "`director status` summarises it."
        )
        self.exit(0, return_code=0)

    def exit_code(self) -> int:
        """What `director run` on a terminal returns: 0 only when the run succeeded."""
        if not self.start_run_on_mount:
            return 0
        return 0 if (self.run_outcome or self.board.outcome) == "success" else 1

    def leave(self) -> None:
        if not self.farewell:
            # After a run: where the work is and how to land it, left on the terminal.
            from director_tui.engine.land import where_the_work_is

            work = where_the_work_is(self.bridge.store)
            self.farewell = work.line() if work is not None else ""
        self.exit(self.exit_code(), return_code=self.exit_code())
