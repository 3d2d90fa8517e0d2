"""Running a bench: plan once, then every profile × repeat on its own fork of the frozen
plan, measured, with the summary rewritten after each run."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from director_tui.engine import cost, git, jobs
from director_tui.engine.agents import missing_binaries
from director_tui.engine.bench.layout import (
    bench_branch,
    bench_dir,
    check_profile_names,
    events_path,
    history_path,
    new_bench_id,
    plan_root,
    run_job_id,
    run_root,
)
from director_tui.engine.bench.model import BenchSummary
from director_tui.engine.bench.progress import ProgressRelay, ProgressSink
from director_tui.engine.bench.stats import BASELINE, RunResult, build_summary, tokens_by_role
from director_tui.engine.bench.summary_io import (
    history_entry,
    publish_streams,
    write_summary,
)
from director_tui.engine.config import Config, load_profile
from director_tui.engine.context import EngineContext
from director_tui.engine.errors import DirectorError, UsageError
from director_tui.engine.events import (
    BenchProgress,
    EventBus,
)
from director_tui.engine.models import Plan, PlanStage, Stage
from director_tui.engine.proc import run_command
from director_tui.engine.store import (
    Store,
    append_jsonl,
    read_jsonl,
)


class BenchError(DirectorError):
    """The bench could not produce a frozen plan; nothing was run."""


@dataclass
class _Bench:
    store: Store
    bench_id: str
    task: str
    profiles: list[str]
    configs: dict[str, Config]
    plan_profile: str
    plan_config: Config
    repeat: int
    parallel: int | None
    max_attempts: int | None
    bus: EventBus
    meta: dict[str, Any] = field(default_factory=dict)
    runs: list[RunResult] = field(default_factory=list)
    frozen_hashes: dict[str, str] = field(default_factory=dict)

    @property
    def repo(self) -> Path:
        return self.store.repo

    @property
    def folder(self) -> Path:
        return bench_dir(self.store, self.bench_id)

    def write_summary(self) -> BenchSummary:
        summary = build_summary(self.meta, self.profiles, self.runs, self.frozen_hashes)
        write_summary(self.store, summary)
        return summary

    # -- planning -------------------------------------------------------------------------
    async def plan(self) -> tuple[Plan, PlanStage]:
        from director_tui.engine.plan import start_plan

        plan_store = Store(self.repo, root=plan_root(self.store, self.bench_id))
        ctx = EngineContext.open(plan_store, self.plan_config)
        progress = ProgressRelay(self.bus, self.bench_id, self.plan_profile, 0, 0)
        ctx.bus.subscribe(progress)
        progress.emit("plan", f"planning once under {self.plan_profile}")
        try:
            stage = await start_plan(ctx, self.task, auto=True, critique=True)
        finally:
            self.meta["plan_cost"] = round(cost.total(plan_store.costs), 6)
        plan = plan_store.read_model(plan_store.plan, Plan)
        if stage.stage != Stage.approved or plan is None:
            raise BenchError(
                f"planning stopped at {stage.stage.value!r} instead of an approved plan",
                hint=f"look at {plan_store.root}",
            )
        self.meta.update(
            job_id=plan.job_id,
            job_branch=plan.job_branch,
            base_commit=stage.base_commit,
            n_nodes=len(plan.nodes),
            frozen_head=git.rev(self.repo, plan.job_branch),
        )
        for node in plan.nodes:
            self.frozen_hashes.update(node.test_hashes)
        # The frozen branch is what the runs fork from; its worktree is not needed.
        git.remove_worktree(self.repo, jobs.job_worktree(plan_store))
        progress.emit(
            "plan",
            f"plan frozen: {len(plan.nodes)} nodes on {plan.job_branch}, "
            f"plan cost ${self.meta['plan_cost']:.4f}",
        )
        return plan, stage

    # -- one profile × repeat ---------------------------------------------------------------
    async def run_one(
        self, frozen: Plan, frozen_stage: PlanStage, profile: str, repeat: int
    ) -> RunResult:
        from director_tui.engine.run import run_job

        # A bench measures models, not a human: a profile's `[review] human` would hold a
        # passing node for an accept that no one gives, so the run would never end.
        config = self.configs[profile]
        config = config.model_copy(
            update={"review": config.review.model_copy(update={"human": "off"})}
        )
        max_attempts = self.max_attempts or config.limits.max_attempts
        branch = bench_branch(self.bench_id, profile, repeat)
        root = run_root(self.store, self.bench_id, profile, repeat)
        result = RunResult(
            profile=profile,
            repeat=repeat,
            branch=branch,
            store_root=str(root),
            n_nodes=len(frozen.nodes),
            acceptance_total=len(frozen.nodes),
        )
        progress = ProgressRelay(self.bus, self.bench_id, profile, repeat, len(frozen.nodes))
        progress.emit("start", f"run {repeat}/{self.repeat} on {branch}")
        run_store = Store(self.repo, root=root)
        started = time.monotonic()
        try:
            missing = missing_binaries(config)
            if missing:
                raise UsageError("; ".join(missing))
            git.create_branch(self.repo, branch, str(self.meta["frozen_head"]))
            run_store.ensure()
            job_id = run_job_id(self.bench_id, profile, repeat)
            run_store.write_model(
                run_store.plan, frozen.model_copy(update={"job_id": job_id, "job_branch": branch})
            )
            run_store.write_model(
                run_store.plan_stage,
                frozen_stage.model_copy(
                    update={"job_id": job_id, "job_branch": branch, "stage": Stage.approved}
                ),
            )
            ctx = EngineContext.open(run_store, config)
            ctx.bus.subscribe(progress)
            outcome = await run_job(ctx, parallel=self.parallel, max_attempts=max_attempts)
            result.wall_secs = time.monotonic() - started
            result.outcome = outcome.outcome
            result.done = len(outcome.done)
            result.executor_pct = outcome.executor_tier_pct
            result.escalated = len(outcome.escalated)
            result.review_pct = round(100.0 * outcome.stage_two_trigger_rate, 2)
            result.integration = outcome.integration
            result.integration_ok = outcome.integration_ok
            result.acceptance_passed = await _acceptance(run_store, frozen, config)
        except Exception as exc:  # one profile failing must not sink the others
            result.wall_secs = time.monotonic() - started
            result.outcome = "error"
            result.error = (
                str(exc) if isinstance(exc, DirectorError) else f"{type(exc).__name__}: {exc}"
            )[:500]
        finally:
            ledger = read_jsonl(run_store.costs)
            result.run_cost = round(math.fsum(float(r.get("cost_usd") or 0) for r in ledger), 9)
            result.tokens_by_role = tokens_by_role(ledger, max_attempts)
            if git.branch_exists(self.repo, branch):
                result.hash_mismatches = _hash_mismatches(self.repo, branch, self.frozen_hashes)
                result.hashes_ok = not result.hash_mismatches
            self._keep_metrics(run_store, result)
            with contextlib.suppress(Exception):
                _tidy_up(
                    self.repo, run_store, frozen, branch, run_job_id(self.bench_id, profile, repeat)
                )
        if result.error is None:
            progress.emit(
                "done",
                f"{result.outcome}: {result.done}/{result.n_nodes} done, acceptance "
                f"{result.acceptance_passed}/{result.acceptance_total}, "
                f"${result.run_cost:.4f}, {result.wall_secs:.1f}s",
            )
        else:
            progress.emit("error", result.error)
        return result

    def _keep_metrics(self, run_store: Store, result: RunResult) -> None:
        """Append this run's metrics records, tagged, to the profile's stream."""
        stream = self.folder / f"{result.profile}.metrics.jsonl"
        tag = {"bench_id": self.bench_id, "profile": result.profile, "repeat": result.repeat}
        for record in read_jsonl(run_store.metrics):
            append_jsonl(stream, {**record, **tag}, durable=False)
        append_jsonl(stream, {"kind": "bench_run", **tag, **result.as_dict()})


def _tidy_up(repo: Path, run_store: Store, plan: Plan, fork: str, job_id: str) -> None:
    """Drop what a finished run no longer needs: its job worktree (the work is committed
    on the bench branch) and the node branches already merged into it. Worktrees and
    branches of nodes that did not merge are kept, as after any run."""
    git.remove_worktree(repo, jobs.job_worktree(run_store))
    if not git.branch_exists(repo, fork):
        return
    for node in plan.nodes:
        branch = jobs.node_branch(job_id, node.id)
        if not git.branch_exists(repo, branch):
            continue
        merged = git.git(["merge-base", "--is-ancestor", branch, fork], repo, check=False)
        if merged.returncode == 0 and not jobs.node_worktree(run_store, node.id).exists():
            git.delete_branch(repo, branch)


def _hash_mismatches(repo: Path, branch: str, frozen: dict[str, str]) -> list[str]:
    import hashlib

    problems = []
    for path, expected in sorted(frozen.items()):
        data = git.file_at(repo, branch, path)
        if data is None:
            problems.append(f"{path} is missing on {branch}")
        elif hashlib.sha256(data).hexdigest() != expected:
            problems.append(f"{path} differs on {branch}")
    return problems


async def _acceptance(run_store: Store, plan: Plan, config: Config) -> int:
    """How many nodes' frozen tests pass on the run's final job branch."""
    worktree = jobs.job_worktree(run_store)
    if not worktree.is_dir():
        return 0
    # Leftovers of the integration gate (caches, a half-done merge) must not decide it.
    await asyncio.to_thread(git.reset_clean, worktree)
    passed = 0
    for node in plan.nodes:
        outcome = await run_command(
            node.test_cmd, worktree, timeout=config.limits.gate_timeout_secs
        )
        passed += outcome.ok
    return passed


@dataclass(frozen=True)
class _Setup:
    """A bench's checked input: the profiles, their configs, and the user's checkout."""

    names: list[str]
    plan_profile: str
    configs: dict[str, Config]
    plan_config: Config
    user_branch: str
    user_head: str


def _check_input(
    store: Store,
    task: str,
    profiles: Sequence[str],
    plan_profile: str | None,
    repeat: int,
    parallel: int | None,
    max_attempts: int | None,
) -> _Setup:
    """Refuse bad input before anything is written (``UsageError``)."""
    from director_tui.engine.plan import check_checkout
    from director_tui.engine.run import check_run_flags

    if not task:
        raise UsageError("the task is empty", hint='director bench "<task>" --profiles a,b')
    if repeat < 1:
        raise UsageError("--repeat must be at least 1")
    check_run_flags(parallel, max_attempts)
    names = check_profile_names(profiles)
    plan_profile = (plan_profile or "").strip() or (BASELINE if BASELINE in names else names[0])
    check_profile_names([plan_profile])
    configs = {name: load_profile(store.repo, name) for name in names}
    plan_config = configs.get(plan_profile) or load_profile(store.repo, plan_profile)
    missing = missing_binaries(plan_config)
    if missing:
        raise UsageError(
            f"the plan profile {plan_profile!r} needs an agent CLI that is missing: "
            + "; ".join(missing)
        )
    user_branch, user_head = check_checkout(store.repo)
    return _Setup(names, plan_profile, configs, plan_config, user_branch, user_head)


def _first_meta(bench: _Bench, setup: _Setup, started: float) -> dict[str, Any]:
    """The summary's facts before anything ran (``status: running``)."""
    return {
        "bench_id": bench.bench_id,
        "task": bench.task,
        "plan_profile": bench.plan_profile,
        "plan_cost": 0.0,
        "job_id": "",
        "status": "running",
        "profiles": bench.profiles,
        "repeat": bench.repeat,
        "parallel": bench.parallel,
        "max_attempts": bench.max_attempts,
        "tiers": {name: setup.configs[name].tier_map() for name in setup.names},
        "scripted": {
            name: "scripted" in setup.configs[name].providers_used() for name in setup.names
        },
        "user_branch": setup.user_branch,
        "user_head": setup.user_head,
        "started_at": started,
        "finished_at": None,
        "wall_secs": 0.0,
    }


async def _plan_and_run_all(bench: _Bench) -> None:
    """Plan once, then every profile × repeat. A planning failure is recorded as the
    summary's ``error`` and raised (a ``BenchError`` when it is an expected one)."""
    try:
        frozen, frozen_stage = await bench.plan()
    except Exception as exc:
        bench.meta["error"] = f"planning failed: {exc}"
        if not isinstance(exc, DirectorError):
            raise
        raise BenchError(
            f"planning failed, so nothing was benchmarked: {exc.message}",
            hint=exc.hint or f"see {plan_root(bench.store, bench.bench_id)}",
        ) from exc
    for k in range(1, bench.repeat + 1):
        # Round-robin over the profiles, so a drift over time (a warming cache, a busier
        # machine) spreads over all of them instead of favouring one.
        for name in bench.profiles:
            bench.runs.append(await bench.run_one(frozen, frozen_stage, name, k))
            bench.write_summary()


def _finish(bench: _Bench, setup: _Setup, started: float) -> BenchSummary:
    """The final summary, the published streams, the history line, the last event."""
    store = bench.store
    bench.meta["finished_at"] = time.time()
    bench.meta["wall_secs"] = round(time.time() - started, 3)
    bench.meta["user_checkout_untouched"] = (
        git.current_branch(store.repo) == setup.user_branch
        and git.rev(store.repo) == setup.user_head
    )
    summary = bench.write_summary()
    publish_streams(store, bench.bench_id, bench.profiles)
    append_jsonl(history_path(store), history_entry(summary))
    bench.bus.emit(
        BenchProgress(
            bench_id=bench.bench_id,
            profile="",
            repeat=0,
            phase="finished",
            message=f"{summary.status}: {bench.folder / 'summary.json'}",
        )
    )
    return summary


async def _check_models(repo: Path, setup: _Setup) -> str:
    """Every profile's models asked of its agent CLI before anything is planned or run
    (``UsageError`` naming the profile, tier, roles and fix): a missing one would
    otherwise fail its runs after the planning was paid for. Returns the line saying
    that passes kept from an earlier command answered, if they did."""
    from director_tui.engine.agents import PLAN_ROLES, run_roles
    from director_tui.engine.agents.model_check import require_profile_models

    wanted: dict[str, tuple[Config, tuple[str, ...]]] = {
        setup.plan_profile: (setup.plan_config, PLAN_ROLES)
    }
    for name in setup.names:
        config = setup.configs[name]
        roles = run_roles(config)
        if name == setup.plan_profile:
            roles = tuple(dict.fromkeys((*PLAN_ROLES, *roles)))
        wanted[name] = (config, roles)
    return await require_profile_models(wanted, repo)


async def run_bench(
    store: Store,
    task: str,
    profiles: Sequence[str],
    *,
    plan_profile: str | None = None,
    repeat: int = 1,
    parallel: int | None = None,
    max_attempts: int | None = None,
    on_event: ProgressSink | None = None,
) -> BenchSummary:
    """Plan once, run every profile ``repeat`` times, write and return the summary.

    Raises ``UsageError`` (nothing written) for bad input: no or unknown profiles, a bad
    profile file, a dirty or detached checkout, a missing agent CLI for planning, a
    profile's model its agent CLI does not have;
    ``BenchError`` when planning fails (the summary then says ``failed``);
    ``LockHeldError`` when another bench is running in this repository."""
    task = task.strip()
    setup = _check_input(store, task, profiles, plan_profile, repeat, parallel, max_attempts)
    models_note = await _check_models(store.repo, setup)
    lock_store = Store(store.repo, root=store.bench / ".lock")
    with lock_store.run_lock("bench"):
        bench_id = new_bench_id()
        bus = EventBus(events_path(store))
        if on_event is not None:
            bus.subscribe(on_event)
        if models_note:
            bus.emit(
                BenchProgress(
                    bench_id=bench_id, profile="", repeat=0, phase="plan", message=models_note
                )
            )
        bench = _Bench(
            store=store,
            bench_id=bench_id,
            task=task,
            profiles=setup.names,
            configs=setup.configs,
            plan_profile=setup.plan_profile,
            plan_config=setup.plan_config,
            repeat=repeat,
            parallel=parallel,
            max_attempts=max_attempts,
            bus=bus,
        )
        started = time.time()
        bench.meta = _first_meta(bench, setup, started)
        bench.write_summary()
        status = "interrupted"  # unless planning fails or every run is made
        try:
            await _plan_and_run_all(bench)
            status = "finished"
        except Exception:
            if "error" in bench.meta:
                status = "failed"
            raise
        finally:
            bench.meta["status"] = status
            summary = _finish(bench, setup, started)
        return summary


def run_bench_blocking(
    store: Store, task: str, profiles: Sequence[str], **kwargs: Any
) -> BenchSummary:
    """``run_bench`` in a fresh event loop: for a thread worker or a plain script."""
    return asyncio.run(run_bench(store, task, profiles, **kwargs))
