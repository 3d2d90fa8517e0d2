"""The one place the TUI touches the engine's entry points.

Screens call these functions, never engine internals. The plan pipeline
(``engine/plan.py``), the run engine (``engine/run/``) and control requests
(``engine/control.py``) are looked up at call time, so the app works — with a clear
message — on a build where one of them is missing, and wiring a changed signature is
done here only.

Expected engine interfaces (see the TUI issue report):
    plan.start_plan(ctx, task, *, auto=False, critique=True) -> Any   (async)
    plan.continue_plan(ctx, *, approver="human") -> Any               (async)
    plan.reject_spec(ctx, comment) -> Any                             (async)
    plan.critique(ctx) -> Any                                         (async)
    run.run_job(ctx, *, parallel=None, max_attempts=None) -> Any      (async)
    control.send_control(store, action, node_id=None) -> str   (request id; a file in control/)
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from director_tui.engine import dag
from director_tui.engine.config import Config, load_config
from director_tui.engine.context import EngineContext
from director_tui.engine.errors import DirectorError, PlanInvalidError, UsageError
from director_tui.engine.events import ControlApplied, EventBase, EventBus, Notice
from director_tui.engine.models import Approval, Plan, PlanStage, Stage
from director_tui.engine.store import Store, atomic_write_text

CONTROL_ACTIONS = ("retry", "escalate", "skip", "pause", "resume", "cancel", "cancel_run")
EngineJob = Callable[[EngineContext], Awaitable[Any]]


class EngineMissingError(DirectorError):
    """The part of the engine an action needs is not in this build."""


def _engine_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"director_tui.engine.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"director_tui.engine.{name}":
            return None
        raise


def _entry(module: str, name: str) -> Callable[..., Any]:
    mod = _engine_module(module)
    fn = getattr(mod, name, None) if mod is not None else None
    if fn is None:
        raise EngineMissingError(
            f"engine.{module}.{name} is not available in this build",
            hint=f"use the command line (`director {'plan' if module == 'plan' else 'run'}`)",
        )
    return fn


def has_entry(module: str, name: str) -> bool:
    mod = _engine_module(module)
    return mod is not None and getattr(mod, name, None) is not None


async def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call an engine entry point, passing only the keyword arguments it accepts."""
    params = inspect.signature(fn).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in kwargs.items() if accepts_any or k in params}
    result = fn(*args, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result


class EngineBridge:
    """One repository as the TUI sees it: its store, its config, its engine entry points."""

    def __init__(self, repo: Path) -> None:
        self.store = Store(repo)
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

    def context(self, sink: Callable[[EventBase], None] | None) -> EngineContext:
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

    def running_elsewhere(self) -> dict[str, Any] | None:
        """Who holds the run lock when it is another process (a headless run), if anyone."""
        holder = self.store.lock_holder()
        if holder is not None and holder.get("pid") == os.getpid():
            return None  # our own engine worker
        return holder

    # -- the plan pipeline (async; run inside the engine worker) -------------------------
    def start_plan(self, task: str, *, auto: bool = False, critique: bool = True) -> EngineJob:
        fn = _entry("plan", "start_plan")
        return lambda ctx: _call(fn, ctx, task, auto=auto, critique=critique)

    def continue_plan(self, approver: str = "human") -> EngineJob:
        fn = _entry("plan", "continue_plan")
        return lambda ctx: _call(fn, ctx, approver=approver)

    def reject_spec(self, comment: str) -> EngineJob:
        fn = _entry("plan", "reject_spec")
        return lambda ctx: _call(fn, ctx, comment)

    def critique(self) -> EngineJob:
        fn = _entry("plan", "critique")
        return lambda ctx: _call(fn, ctx)

    def run_job(self, parallel: int | None = None, max_attempts: int | None = None) -> EngineJob:
        fn = _entry("run", "run_job")
        return lambda ctx: _call(fn, ctx, parallel=parallel, max_attempts=max_attempts)

    def spawn_headless_run(
        self, parallel: int | None = None, max_attempts: int | None = None
    ) -> tuple[int, Path]:
        """Start `director run --no-tui` in its own session (it outlives this app); returns
        its pid and the log its progress lines go to. Used to detach: the app's own engine
        stops first, and the new process resumes from state.json."""
        command = [
            sys.executable,
            "-m",
            "director_tui",
            "run",
            "--no-tui",
            "--repo",
            str(self.repo),
        ]
        if parallel is not None:
            command += ["--parallel", str(parallel)]
        if max_attempts is not None:
            command += ["--max-attempts", str(max_attempts)]
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

    def profile_names(self) -> list[str]:
        return sorted(path.stem for path in self.store.profiles.glob("*.toml"))

    def run_bench(self, task: str, profiles: list[str]) -> EngineJob:
        """A bench keeps its own stores under .director/bench/ (the job's are untouched);
        its progress goes to .director/bench/events.jsonl, which the bench screen follows."""
        fn = _entry("bench", "run_bench")
        return lambda ctx: _call(fn, ctx.store, task, profiles)

    def approve_gate2(self) -> EngineJob:
        """Approve the plan at Gate 2: the pipeline when present, else record it ourselves."""
        plan = self.plan()
        if plan is None:
            raise UsageError("there is no plan.json to approve", hint="run `director plan` first")
        errors = dag.validate(plan)
        if errors:
            raise PlanInvalidError(errors, hint="fix the nodes shown in red, then approve")
        if has_entry("plan", "continue_plan"):
            return self.continue_plan("human")

        async def record(ctx: EngineContext) -> None:
            self.record_gate2_approval(ctx)

        return record

    def record_gate2_approval(self, ctx: EngineContext) -> None:
        stage = self.plan_stage()
        if stage is None or stage.stage != Stage.gate2:
            where = stage.stage.value if stage else "no plan"
            raise UsageError(f"the plan is not waiting at Gate 2 (stage: {where})")
        stage.approvals.append(Approval(gate="gate2", approver="human"))
        stage.stage = Stage.approved
        stage.updated_at = time.time()
        self.store.write_model(self.store.plan_stage, stage)
        ctx.bus.emit(Notice(message="Gate 2 approved by a human: the plan is frozen"))

    def apply_offline(
        self, action: str, node_id: str | None, sink: Callable[[EventBase], None] | None = None
    ) -> tuple[bool, str]:
        """No engine is live: apply the request to state.json now (under the run lock), and
        answer it with the same ControlApplied event a live engine would append."""
        fn = _entry("control", "apply_offline")
        with self.store.run_lock("control"):
            record = fn(self.store, action, node_id)
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
        return bool(record.ok), str(record.message)

    # -- control requests (files, so a headless engine in another process sees them) -----
    def send_control(self, action: str, node_id: str | None = None) -> str:
        if action not in CONTROL_ACTIONS:
            raise UsageError(f"unknown control action {action!r}")
        mod = _engine_module("control")
        writer = getattr(mod, "send_control", None) if mod is not None else None
        if writer is not None:
            return str(writer(self.store, action, node_id=node_id))
        request_id = uuid.uuid4().hex[:12]
        record = {
            "request_id": request_id,
            "action": action,
            "node_id": node_id,
            "ts": time.time(),
            "source": "tui",
        }
        name = f"{time.time_ns()}-{request_id}.json"
        atomic_write_text(self.store.control / name, json.dumps(record) + "\n")
        return request_id
