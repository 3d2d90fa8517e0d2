"""The one place the TUI touches the engine's entry points.

Screens call these methods, never engine internals. Each job-starting method returns an
``EngineJob``: what the job is (an ``EngineTask``) and the coroutine that does it, which
the app runs in its one engine worker. The engine's functions are imported and called
directly, so mypy checks every argument passed to them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from director_tui.engine import bench, control, dag, node_diff, plan, review_comments, run
from director_tui.engine.budget import NEXT_RUN
from director_tui.engine.config import Config, load_config
from director_tui.engine.context import EngineContext
from director_tui.engine.errors import PlanInvalidError, UsageError
from director_tui.engine.events import ControlApplied, EventBase, EventBus
from director_tui.engine.models import Plan, PlanStage, RunState
from director_tui.engine.node_diff import NodeDiff
from director_tui.engine.review_comments import ReviewComment
from director_tui.engine.store import Store, atomic_write_text

EventSink = Callable[[EventBase], None]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


# Offline requests after which the app starts the run at once.
STARTS_THE_RUN = ("retry", "escalate", "accept", "reject")


class EngineTask(StrEnum):
    """What the app's engine worker is doing; the value is how the screens name it."""

    PLAN = "planning"
    DECOMPOSE = "decomposing the spec"
    REWRITE_SPEC = "rewriting the spec"
    CRITIQUE = "critiquing the spec"
    CRITIQUE_PLAN = "critiquing the plan"
    APPROVE_GATE2 = "approving Gate 2"
    RUN = "running"
    LAND = "landing"
    BENCH = "bench"

    @property
    def ends_at_a_gate(self) -> bool:
        """A plan-pipeline job: when it succeeds, a gate waits for the human."""
        return self in (
            EngineTask.PLAN,
            EngineTask.DECOMPOSE,
            EngineTask.REWRITE_SPEC,
            EngineTask.CRITIQUE,
            EngineTask.CRITIQUE_PLAN,
        )


@dataclass(frozen=True)
class EngineJob:
    """One job for the engine worker: what it is, and the call that does it."""

    task: EngineTask
    call: Callable[[EngineContext], Awaitable[object]]


class EngineBridge:
    """One repository as the TUI sees it: its store, its config, its engine entry points.

    ``parallel``/``max_attempts`` override the config for runs started from this app (and
    for the background run a detach hands over to)."""

    def __init__(
        self, repo: Path, *, parallel: int | None = None, max_attempts: int | None = None
    ) -> None:
        self.store = Store(repo)
        self.parallel = parallel
        self.max_attempts = max_attempts
        self._config: Config | None = None

    @property
    def repo(self) -> Path:
        return self.store.repo

    def config(self) -> Config:
        """The merged config; a broken file raises ConfigError with the file and the line."""
        if self._config is None:
            self._config = load_config(self.repo)
        return self._config

    def reload_config(self) -> Config:
        self._config = None
        return self.config()

    def context(self, sink: EventSink | None) -> EngineContext:
        """A fresh engine context whose events also reach ``sink`` (called from the engine's thread)."""
        self.store.ensure()
        bus = EventBus(self.store.events)
        if sink is not None:
            bus.subscribe(sink)
        return EngineContext(store=self.store, config=self.config(), bus=bus)

    # -- reading the store --------------------------------------------------------------
    def plan_stage(self) -> PlanStage | None:
        return self.store.read_model(self.store.plan_stage, PlanStage)

    def plan(self) -> Plan | None:
        return self.store.read_model(self.store.plan, Plan)

    def save_plan(self, plan: Plan) -> None:
        """Edits made at Gate 2 go straight to plan.json; the pipeline re-validates it."""
        self.store.write_model(self.store.plan, plan)

    def save_spec(self, text: str) -> None:
        atomic_write_text(self.store.spec, text)

    def run_state(self) -> RunState | None:
        """state.json when it is the current plan's job's (None before its first run)."""
        state = self.store.read_model(self.store.state, RunState)
        current = self.plan()
        if state is None or current is None or state.job_id != current.job_id:
            return None
        return state

    # -- reviewing a node's diff (git runs: call these off the UI thread) -----------------
    def node_diff(self, node_id: str) -> NodeDiff:
        """The node's latest attempt as a diff (``engine/node_diff.py``)."""
        current = self.plan()
        if current is None:
            return NodeDiff(node_id=node_id, source="", note="no plan yet")
        return node_diff.node_diff(self.store, current, self.run_state(), node_id)

    def tests_diff(self, node_id: str) -> NodeDiff:
        """The node's frozen tests, as Gate 2 shows them (read-only)."""
        current = self.plan()
        if current is None:
            return NodeDiff(node_id=node_id, source="", note="no plan yet")
        return node_diff.tests_diff(self.store, current, node_id)

    def review_comments(self, node_id: str) -> list[ReviewComment]:
        """The human's comments on the node, not sent to an attempt yet."""
        return review_comments.load(self.store, node_id)

    def add_review_comment(self, node_id: str, comment: ReviewComment) -> list[ReviewComment]:
        """Kept in ``.director/reviews/<node>.json``: a retry or reject sends them."""
        return review_comments.add(self.store, node_id, comment)

    def running_elsewhere(self) -> dict[str, Any] | None:
        """Who holds the run lock when it is another process (a headless run), if anyone."""
        holder = self.store.lock_holder()
        if holder is not None and holder.get("pid") == os.getpid():
            return None  # our own engine worker
        return holder

    def profile_names(self) -> list[str]:
        return sorted(path.stem for path in self.store.profiles.glob("*.toml"))

    # -- the plan pipeline (run inside the engine worker) -------------------------------
    def start_plan(self, task: str) -> EngineJob:
        return EngineJob(EngineTask.PLAN, lambda ctx: plan.start_plan(ctx, task))

    def approve_spec(self) -> EngineJob:
        return EngineJob(
            EngineTask.DECOMPOSE, lambda ctx: plan.continue_plan(ctx, approver="human")
        )

    def reject_spec(self, comment: str) -> EngineJob:
        return EngineJob(EngineTask.REWRITE_SPEC, lambda ctx: plan.reject_spec(ctx, comment))

    def critique(self) -> EngineJob:
        """The critic revises the spec at Gate 1 (the user's edited one, when they edited it)."""
        return EngineJob(EngineTask.CRITIQUE, plan.critique)

    def critique_plan(self) -> EngineJob:
        """The critic revises the plan at Gate 2 (the user's edited one, when they edited it)."""
        return EngineJob(EngineTask.CRITIQUE_PLAN, plan.critique)

    # -- the user's edits and the critic ------------------------------------------------
    def spec_is_edited(self) -> bool:
        return plan.spec_is_edited(self.store)

    def plan_is_edited(self) -> bool:
        return plan.plan_is_edited(self.store)

    def kept_spec(self) -> str:
        """The user's edited spec kept when an agent replaced it ('' when none)."""
        return _read(self.store.spec_edited)

    def kept_plan(self) -> str:
        """The user's edited plan kept when the critic replaced it ('' when none)."""
        return _read(self.store.root / plan.PLAN_EDITED)

    def restore_edit(self) -> str:
        """The user's kept version of the open gate's artifact put back (no agent)."""
        return plan.restore_edit(self.context(None))

    def approve_gate2(self) -> EngineJob:
        """Approve the plan at Gate 2; a plan that does not validate is refused here."""
        current = self.plan()
        if current is None:
            raise UsageError("there is no plan.json to approve", hint="run `director plan` first")
        errors = dag.validate(current)
        if errors:
            raise PlanInvalidError(errors, hint="fix the nodes shown in red, then approve")
        return EngineJob(
            EngineTask.APPROVE_GATE2, lambda ctx: plan.continue_plan(ctx, approver="human")
        )

    # -- the run and the bench ----------------------------------------------------------
    def run_job(self) -> EngineJob:
        return EngineJob(
            EngineTask.RUN,
            lambda ctx: run.run_job(ctx, parallel=self.parallel, max_attempts=self.max_attempts),
        )

    def land_job(self) -> EngineJob:
        """`director land`: the finished job merged into the user's branch, gated first."""
        from director_tui.engine.land import land

        return EngineJob(EngineTask.LAND, lambda ctx: land(ctx))

    def run_bench(self, task: str, profiles: list[str]) -> EngineJob:
        """A bench keeps its own stores under .director/bench/ (the job's are untouched);
        its progress goes to .director/bench/events.jsonl, which the bench screen follows."""
        return EngineJob(EngineTask.BENCH, lambda ctx: bench.run_bench(ctx.store, task, profiles))

    def spawn_headless_run(self) -> tuple[int, Path]:
        """Start `director run --no-tui` in its own session (it outlives this app); returns
        its pid and the log its progress lines go to. Used to detach: the app's own engine
        stops first, and the new process resumes from state.json."""
        command = [sys.executable, "-m", "director_tui", "run", "--no-tui"]
        command += ["--repo", str(self.repo)]
        if self.parallel is not None:
            command += ["--parallel", str(self.parallel)]
        if self.max_attempts is not None:
            command += ["--max-attempts", str(self.max_attempts)]
        self.store.logs.mkdir(parents=True, exist_ok=True)
        log = self.store.logs / "detached-run.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                command,
                cwd=self.repo,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a hang-up of the app's terminal must not reach it
            )
        return process.pid, log

    # -- control requests ---------------------------------------------------------------
    def apply_offline(
        self, action: str, node_id: str | None, sink: EventSink | None = None
    ) -> tuple[bool, str]:
        """No engine is live: apply the request to state.json now (under the run lock), and
        answer it with the same ControlApplied event a live engine would append."""
        with self.store.run_lock("control"):
            record = control.apply_offline(self.store, action, node_id)
            if record.ok and action in STARTS_THE_RUN:
                # the app starts the run right after (DirectorApp.send_control)
                record.message = record.message.replace(NEXT_RUN, " now: the app starts the run")
            bus = EventBus(self.store.events, [sink] if sink else None)
            bus.emit(
                ControlApplied(
                    action=record.action,
                    node_id=record.node_id,
                    ok=record.ok,
                    message=record.message,
                    request_id=record.request_id,
                )
            )
        return record.ok, record.message

    def send_control(self, action: str, node_id: str | None = None) -> str:
        """A request file in control/ for the live engine (in this process or a headless
        one); returns its request id, which the engine's ControlApplied event carries."""
        return control.send_control(self.store, action, node_id)
