"""The director app: five modes over one repository, fed by the engine's event stream.

Events reach the UI one way: into ``EventBuffer`` (from the in-process engine's bus, or
from ``events.jsonl`` when attached to a headless run), drained every ``tick`` seconds
into ``BoardModel`` inside ``batch_update``; the active screen then repaints what changed.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from director_tui.engine.attention import Attention, AttentionTracker, terminal_alert
from director_tui.engine.errors import DirectorError
from director_tui.engine.events import Event, PlanStageChanged, RunFinished
from director_tui.engine.models import RunState
from director_tui.engine.notify import attention_on
from director_tui.engine.run import RunOutcome
from director_tui.tui.app_base import AppBase
from director_tui.tui.board import BoardModel
from director_tui.tui.engine_bridge import STARTS_THE_RUN, EngineBridge, EngineJob, EngineTask
from director_tui.tui.feed import EventBuffer, EventTail
from director_tui.tui.messages import EngineJobFinished, SendControl, StartEngineJob, StartRun
from director_tui.tui.palette import binding_commands
from director_tui.tui.screens.base import DirectorScreen
from director_tui.tui.screens.bench import BenchScreen
from director_tui.tui.screens.home import HomeScreen
from director_tui.tui.screens.plan_review import PlanReviewScreen
from director_tui.tui.screens.run_board import RunBoardScreen
from director_tui.tui.screens.spec import SpecScreen

SCREEN_NAMES = ("home", "gate1", "gate2", "run", "bench")
# How often Python may hand the GIL to another thread (default 5 ms). The engine runs in a
# thread of this process; a shorter slice lets the UI thread answer a key sooner while the
# engine is busy (measured by bench/tui_load.py).
UI_SWITCH_INTERVAL = 0.001
# Below this width the header's scripted-agents label takes its short form.
WIDE_TITLE_COLUMNS = 100
# Below it, what needs the human takes at most this much of the header.
NARROW_HEADLINE = 24
GATE_SCREENS = {"gate1": "gate1", "gate2": "gate2"}  # the screen of each stage a human decides

if TYPE_CHECKING:
    from textual.message_pump import MessagePump

    from director_tui.tui.screens.base import ScreenHost


def prefer_ui_thread() -> None:
    sys.setswitchinterval(UI_SWITCH_INTERVAL)


class DirectorApp(AppBase):
    TITLE = "director"
    CSS_PATH = ["global.tcss"]
    MODES = {
        "home": HomeScreen,
        "gate1": SpecScreen,
        "gate2": PlanReviewScreen,
        "run": RunBoardScreen,
        "bench": BenchScreen,
    }
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True, tooltip="Leave the app"),
        Binding("f1", "open('home')", "Home", id="app.home", tooltip="Repository and jobs"),
        Binding("f2", "open('gate1')", "Spec", id="app.gate1", tooltip="Gate 1: the spec"),
        Binding("f3", "open('gate2')", "Plan", id="app.gate2", tooltip="Gate 2: the DAG"),
        Binding("f4", "open('run')", "Run", id="app.run", tooltip="The run board"),
        Binding("f5", "open('bench')", "Bench", id="app.bench", tooltip="Bench results"),
        Binding(
            "ctrl+t",
            "toggle_theme",
            "Light/dark",
            id="app.theme",
            show=False,
            tooltip="Switch between the light and dark theme",
        ),
    ]

    def __init__(
        self,
        repo: Path,
        *,
        start: str = "home",
        clock: Callable[[], float] = time.time,
        tick: float = 0.2,
        watch: bool = True,
        start_run: bool = False,
        parallel: int | None = None,
        max_attempts: int | None = None,
    ) -> None:
        bridge = EngineBridge(repo, parallel=parallel, max_attempts=max_attempts)
        super().__init__(bridge, start_run=start_run)
        self.start_screen = start if start in SCREEN_NAMES else "home"
        self.clock = clock
        self.tick = tick
        self.watch_files = watch
        self.buffer = EventBuffer()
        self.tail = EventTail(self.bridge.store.events)
        self.engine_requester: MessagePump | None = None  # hears EngineJobFinished
        self.pending_controls: dict[str, tuple[str, str | None]] = {}
        self.scripted_label = ""
        # What needs the human (or finished), from the events: the header says it, and
        # each new occasion rings the terminal (`rang` keeps them, newest last).
        self.attention = AttentionTracker()
        self.rang: list[Attention] = []

    # -- start-up -----------------------------------------------------------------------
    def on_mount(self) -> None:
        self.label_scripted_agents()
        self.rebuild_board()
        self.set_interval(self.tick, self.flush_events, name="flush-events")
        if self.watch_files:
            self.watch_events()
        self.switch_mode(self.start_screen)
        if self.start_run_on_mount:
            self.call_later(self.start_run)

    def label_scripted_agents(self) -> None:
        """The header of every screen says so when agents are replayed scripts."""
        try:
            label = self.bridge.config().scripted_label()
        except DirectorError:
            return  # a broken config is reported where it is used, with its line
        self.scripted_label = label or ""
        self.fit_title()

    def fit_title(self) -> None:
        """On a narrow terminal the long label pushed the screen's name out of the header
        ("… — Gate 1 — …" at 80 columns): there it shrinks so the name always shows. What
        needs the human (or that the job finished) is in the header too; narrow, it comes
        first, in place of the app's name."""
        narrow = self.size.width < WIDE_TITLE_COLUMNS
        label = self.scripted_label
        if label and narrow:
            label = "scripted agents"
        parts = ["director", *([label] if label else [])]
        headline = self.attention.headline()
        waiting = headline is not None and headline.level == "needs_you"
        if headline is not None:
            more = self.attention.needs_you() - 1 if waiting else 0
            said = f"{'⚑' if waiting else '✓'} {headline.headline}"
            if narrow and len(said) > NARROW_HEADLINE:
                said = said[: NARROW_HEADLINE - 1] + "…"
            said += f" (+{more})" if more > 0 else ""
            parts = [said, *parts[1:]] if narrow else [*parts, said]
        self.title = " · ".join(parts)
        # The header's colour: waiting for you and finished read differently.
        self.set_class(waiting, "-needs-you")
        self.set_class(headline is not None and not waiting, "-finished")

    def rebuild_board(self) -> None:
        """Replay the store into a fresh board: what re-attaching after a disconnect shows."""
        try:
            plan = self.bridge.plan()
            state = self.bridge.store.read_model(self.bridge.store.state, RunState)
        except DirectorError as exc:
            # shown once the first screen is up (a modal now would sit on the wrong mode)
            self.call_after_refresh(self.show_error, "Cannot read the job", exc)
            plan, state = None, None
        self.tail = EventTail(self.bridge.store.events)
        history = self.tail.read_new().events
        self.board = BoardModel.replayed(plan, history, state)
        self.attention = AttentionTracker.replayed(history)  # history rings nothing
        self.fit_title()

    def reset_board(self, events: list[Event]) -> None:
        plan = self.guard("Cannot read plan.json", self.bridge.plan)
        self.buffer.drain()  # anything queued belongs to the replaced file
        self.board = BoardModel.replayed(plan, events)
        # All of the new file happened since the last read: what it calls for rings.
        self.attention = AttentionTracker()
        occasions = [item for item in map(self.attention.see, events) if item is not None]
        self.fit_title()
        self.ring(occasions)
        for screen in self.screen_stack:
            if isinstance(screen, DirectorScreen):
                screen.board_replaced()
        self.refresh_active(stage_changed=True)

    # -- the event path -----------------------------------------------------------------
    @work(exclusive=True, group="watch", exit_on_error=False, description="watch events.jsonl")
    async def watch_events(self) -> None:
        """Attach: read only what was appended to events.jsonl, ~5 times a second at most."""
        from watchfiles import awatch

        root = self.bridge.store.root
        root.mkdir(parents=True, exist_ok=True)
        name = self.bridge.store.events.name
        async for _changes in awatch(
            root,
            debounce=200,
            recursive=False,
            watch_filter=lambda _change, path: Path(path).name == name,
        ):
            await self.read_appended()

    async def read_appended(self) -> None:
        if self.engine_busy:
            return  # the in-process bus already delivers these events
        result = await asyncio.to_thread(self.tail.read_new)
        if result.reset:
            # A new job replaced the file: the events just read (from its start) are the
            # whole new history, so the board starts over from them.
            self.reset_board(result.events)
            return
        if result.events:
            self.buffer.extend(result.events)

    def flush_events(self) -> None:
        events = self.buffer.drain()
        if not events:
            self.refresh_clock()
            return
        stage_changed = False
        run_finished = False
        occasions: list[Attention] = []
        with self.batch_update():
            for event in events:
                self.board.apply(event)
                occasion = self.attention.see(event)
                if occasion is not None:
                    occasions.append(occasion)
                if isinstance(event, PlanStageChanged):
                    stage_changed = True
                elif isinstance(event, RunFinished):
                    run_finished = True
            self.confirm_controls()
            self.notify_notices()
            self.refresh_active(stage_changed=stage_changed)
            self.fit_title()
        self.ring(occasions)
        if run_finished:
            outcome = self.board.outcome
            self.notify(
                f"Run {outcome}: {self.board.outcome_message or self.board.header()}",
                severity="information" if outcome == "success" else "warning",
            )

    def ring(self, occasions: list[Attention]) -> None:
        """The terminal's bell and a desktop notification, once per drained batch, for the
        newest occasion that needs the human (else the newest): five nodes failing in one
        tick ring once. The notify command is the engine's (``engine/notify.py``)."""
        try:
            notify = self.bridge.config().notify
        except DirectorError:
            return
        wanted = [item for item in occasions if item.kind in notify.events]
        if not wanted:
            return
        waiting = [item for item in wanted if item.level == "needs_you"]
        item = (waiting or wanted)[-1]
        self.rang.append(item)
        if notify.bell:
            self.bell()
        alert = terminal_alert(
            item, bell=False, desktop=notify.desktop, in_tmux=bool(os.environ.get("TMUX"))
        )
        # Textual has no public call for a raw escape; App.bell writes its BEL the same way.
        if alert and not self.is_headless and self._driver is not None:
            self._driver.write(alert)

    def ready_screen(self) -> DirectorScreen | None:
        """The visible screen once it has composed; None while a modal is up, while screens
        are swapped or the app is shutting down (the flush timer can fire after the last
        screen is popped)."""
        if not self.is_running or not self.screen_stack:
            return None  # shutting down: the screens' widgets are being removed
        screen = self.screen
        return screen if isinstance(screen, DirectorScreen) and screen.ready else None

    def refresh_clock(self) -> None:
        screen = self.ready_screen()
        if screen is not None:
            screen.refresh_clock()

    def refresh_active(self, *, stage_changed: bool = False) -> None:
        screen = self.ready_screen()
        if screen is None:
            return
        screen.refresh_from_board()
        if stage_changed:
            screen.reload()

    def confirm_controls(self) -> None:
        """Every control request is confirmed by the engine's ControlApplied event."""
        for outcome in self.board.controls:
            self.pending_controls.pop(outcome.answered_request(self.pending_controls), None)
            self.notify(outcome.note(), severity="information" if outcome.ok else "warning")
        self.board.controls.clear()

    def notify_notices(self) -> None:
        while self.board.notices:
            level, message = self.board.notices.popleft()
            if level in ("warning", "error"):  # info notices are on the screens already
                self.notify(message, severity="warning" if level == "warning" else "error")

    # -- the engine worker --------------------------------------------------------------
    @on(StartEngineJob)
    def engine_job_asked(self, message: StartEngineJob) -> None:
        if self.start_engine(message.job, requester=message.requester) and message.started:
            self.notify(message.started)

    def start_engine(self, job: EngineJob, *, requester: MessagePump | None = None) -> bool:
        """Run one engine job off the UI thread; False if one is already running."""
        label = job.task.value
        if self.engine_busy:
            self.notify(
                f"The engine is busy ({self.engine_busy}); wait for it to finish.",
                severity="warning",
            )
            return False
        holder = self.bridge.running_elsewhere()
        if holder is not None:
            self.notify(
                f"Another director process (pid {holder.get('pid')}) is working on this "
                "repository; this app follows it live.",
                severity="warning",
            )
            return False
        try:
            # Read the config as it is now (it may have been edited since the app opened);
            # a broken file stops the job here, before the screen says it started.
            self.bridge.reload_config()
        except DirectorError as exc:
            already_shown = f"{type(exc).__name__}:{exc}" in self.errors_seen
            self.show_error(f"Cannot start {label}: the config is broken", exc)
            if already_shown:
                self.notify(f"Not started ({label}): {exc.message}", severity="error")
            return False
        self.engine_busy = job.task
        self.engine_requester = requester
        self.refresh_active()
        self.engine_worker = self._engine_worker(job)
        return True

    @work(thread=True, exclusive=True, group="engine", exit_on_error=False)
    def _engine_worker(self, job: EngineJob) -> object:
        ctx = self.bridge.context(self.buffer.push)

        async def main() -> object:
            return await job.call(ctx)

        # The notify command runs here, where the engine runs; the app rings the terminal.
        with attention_on(ctx.bus, ctx.config.notify, ctx.repo, wait=False):
            return asyncio.run(main())

    @on(Worker.StateChanged)
    def worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker.group == "watch" and event.state == WorkerState.ERROR:
            self.notify(
                f"Stopped following events.jsonl: {worker.error}. Reopen the app to re-attach.",
                severity="warning",
            )
            return
        if worker.group != "engine" or event.state not in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            return
        self.engine_ended(worker)

    def engine_ended(self, worker: Worker[object]) -> None:
        """The engine worker is done: what it answered, once (quitting right as a run
        ends can get here before the worker's state message does)."""
        if self.engine_busy is None or worker is not self.engine_worker:
            return
        task, requester = self.engine_busy, self.engine_requester
        self.engine_busy, self.engine_requester = None, None
        if task == EngineTask.RUN and isinstance(worker.result, RunOutcome):
            # The exit code of `director run` is the engine's own answer, not the board's
            # view of it: its RunFinished may still wait in the buffer for the next tick.
            self.run_outcome = worker.result.outcome
            self.flush_events()
        # Everything the engine wrote was delivered by its bus: skip those bytes on disk.
        self.tail.skip_to_end()
        ok = worker.state == WorkerState.SUCCESS
        if worker.state == WorkerState.ERROR and worker.error is not None:
            self.show_error(f"{task or 'The engine'} stopped", worker.error)
        if self.detaching and task == EngineTask.RUN:
            if isinstance(worker.result, RunOutcome) and worker.result.outcome == "cancelled":
                self.hand_over_run()
            else:  # it ended on its own before the stop arrived: nothing left to hand over
                self.flush_events()
                self.leave()
            return
        if requester is not None and task is not None:
            requester.post_message(EngineJobFinished(task, ok, worker.result if ok else None))
        self.refresh_active(stage_changed=True)
        if ok and task is not None and task.ends_at_a_gate:
            self.call_later(self.open_current_gate)

    async def open_current_gate(self) -> None:
        """After a plan job: show the gate that now waits for the human."""
        stage = self.guard("Cannot read plan_stage.json", self.bridge.plan_stage)
        target = GATE_SCREENS.get(stage.stage.value) if stage is not None else None
        if target is None or self.current_mode == target:
            return
        self.notify(f"{target.replace('gate', 'Gate ')} is open: your review, please.")
        await self.action_open(target)

    # -- actions ------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The key of the screen already shown is hidden: the footer has room for the rest.
        showing_it = action == "open" and bool(parameters) and parameters[0] == self.current_mode
        return not showing_it

    async def action_open(self, name: str) -> None:
        if name not in SCREEN_NAMES or self.current_mode == name:
            return
        screen = self.screen
        if isinstance(screen, DirectorScreen) and screen.dirty:
            screen.check_leave(name)  # asks about unsaved changes, then comes back here
            return
        await self.switch_mode(name)

    @on(StartRun)
    async def start_run(self) -> None:
        """Start (or resume) the run in this app's engine worker and show the board."""
        job = self.guard("Cannot start the run", self.bridge.run_job)
        await self.action_open("run")
        if job is not None and self.start_engine(job):
            self.notify("Run started.")

    @on(SendControl)
    def control_asked(self, message: SendControl) -> None:
        self.send_control(message.action, message.node_id)

    def send_control(self, action: str, node_id: str | None) -> None:
        """A control request: to the live engine as a file (confirmed by its ControlApplied
        event), or — when no run is live — applied to state.json at once."""
        target = f" {node_id}" if node_id else ""
        if not self.engine_busy and not self.bridge.running_elsewhere():
            result = self.guard(
                f"Cannot {action}{target}",
                lambda: self.bridge.apply_offline(action, node_id, self.buffer.push),
            )
            if result is None:
                return
            ok, _message = result  # the ControlApplied event in the buffer says it on screen
            if ok and action in STARTS_THE_RUN:
                self.call_later(self.start_run)
            return
        request_id = self.guard(
            f"Cannot send {action}", lambda: self.bridge.send_control(action, node_id)
        )
        if request_id is None:
            return
        self.pending_controls[str(request_id)] = (action, node_id)
        self.notify(f"{action}{target} requested; waiting for the engine to apply it…")
        self.refresh_active()

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    # -- the command palette: one entry per binding of the app and the current screen ----
    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from binding_commands(screen, self)


if TYPE_CHECKING:

    def _keeps_the_screen_contract(app: DirectorApp) -> ScreenHost:
        return app  # mypy checks here that the app offers everything screens are promised
