"""``director bench``: one frozen plan, run under several model profiles, repeated.

The control that makes the comparison fair is *plan once, run many*: the task is planned
a single time (under the plan profile, critiqued gates, no pauses), so every profile faces
the same DAG and byte-for-byte the same acceptance tests; only the models differ. Agent
token use varies several-fold between identical runs, so each profile runs ``repeat``
times and the report shows mean, standard deviation and min/max, not one lucky number.

Entry point (the CLI and the TUI call this)::

    summary = await run_bench(store, task, ["all-frontier", "cheap-cloud"],
                              plan_profile=None, repeat=2, parallel=None)
    summary = run_bench_blocking(store, task, profiles, ...)   # asyncio.run() around it
    summary = load_summary(store, bench_id=None)               # the latest, or one by id
    entries = list_benches(store)                              # history, newest first

Isolation — the user's job in ``.director/`` and their checkout are never touched:

- Planning uses its own store, ``.director/bench/<id>/plan/`` (``Store(repo, root=...)``),
  and makes the frozen job branch ``director/job-<job id>`` without a checkout.
- Run *k* of profile *p* forks ``director/bench-<id>-<p>-<k>`` off the frozen branch
  (``git branch``, never a checkout) and gets its own store,
  ``.director/bench/<id>/runs/<p>-<k>/``, holding a copy of the frozen ``plan.json``
  (job id and branch rewritten to the fork) and an approved ``plan_stage.json``; it runs
  with that profile's ``Config`` from ``.director/profiles/<p>.toml`` alone (the user's
  ``config.toml`` is never read for it, nor written). Its ``state.json``,
  ``costs.jsonl``, ``metrics.jsonl`` and ``events.jsonl`` stay in that folder.
- One run failing (a missing agent binary, a crash) is recorded in its row; the others
  go on. Runs go one after another so their wall times compare; ``parallel`` is the
  nodes at once inside each run.

Files (``.director/bench/``):

- ``<id>/summary.json`` — director-cli's fields (``task``, ``plan_profile``,
  ``plan_cost``, ``job_id``, ``rows[{profile, n_nodes, done, executor_pct, escalated,
  review_pct, integration_ok, run_cost, wall_secs, error}]``, the numeric ones being
  means over the repeats) plus ours: per row ``stats`` (mean/std/min/max/n of every
  measure), ``run_cost_std``/``_min``/``_max``, ``acceptance_pct``, ``tokens_by_role``,
  ``cost_cut_pct``/``cut_target_met``/``quality_held`` against ``all-frontier``; the
  ``runs`` list (one record per profile × repeat); ``hash_check``; ``status``
  (``running`` while it runs, rewritten after every run, then ``finished``/``failed``/
  ``interrupted``).
- ``summary.json`` — a copy of the latest bench's summary (what director-cli wrote).
- ``<id>/<profile>.metrics.jsonl`` — every run's ``metrics.jsonl`` records tagged with
  ``bench_id``/``profile``/``repeat``, then one ``kind: "bench_run"`` record per run;
  ``<profile>.metrics.jsonl`` beside ``summary.json`` is the latest bench's copy.
- ``history.jsonl`` — one line per finished bench (id, task, status, profiles, the
  headline numbers), what ``director bench --list`` prints.
- ``events.jsonl`` — **the one place to watch for live progress**: ``BenchProgress``
  events of every bench (each carries its ``bench_id``). The full event stream of one
  run (nodes, agents, gates) is that run's own ``runs/<p>-<k>/events.jsonl``.

Statistics (:func:`spread`, :func:`profile_row`, :func:`compare_to_baseline`,
:func:`build_summary`) are pure functions over :class:`RunResult` records.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import statistics
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from director_tui.engine import cost, git, jobs
from director_tui.engine.agents import missing_binaries
from director_tui.engine.config import Config, load_profile
from director_tui.engine.context import EngineContext
from director_tui.engine.errors import DirectorError, UsageError
from director_tui.engine.events import (
    BenchProgress,
    CostUpdate,
    EventBase,
    EventBus,
    NodeStateChanged,
    PlanStageChanged,
)
from director_tui.engine.models import Plan, PlanStage, Stage
from director_tui.engine.proc import run_command
from director_tui.engine.store import (
    Store,
    append_jsonl,
    atomic_write_json,
    read_jsonl,
)

BASELINE = "all-frontier"
CUT_TARGET_PCT = 80.0
# Measures summarised across repeats (mean, std, min, max) for every profile.
MEASURES = (
    "done",
    "executor_pct",
    "escalated",
    "review_pct",
    "acceptance_pct",
    "run_cost",
    "wall_secs",
    "tokens",
)
# A profile name becomes part of a git branch name and a folder name.
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FINISHED_NODE = frozenset({"done", "failed", "blocked", "skipped", "cancelled"})

ProgressSink = Callable[[EventBase], None]


class BenchError(DirectorError):
    """The bench could not produce a frozen plan; nothing was run."""


# -- names and places ------------------------------------------------------------------------
def new_bench_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]


def bench_branch(bench_id: str, profile: str, repeat: int) -> str:
    return f"director/bench-{bench_id}-{profile}-{repeat}"


def run_job_id(bench_id: str, profile: str, repeat: int) -> str:
    """The job id of one run: it names the run's node branches."""
    return f"bench-{bench_id}-{profile}-{repeat}"


def bench_dir(store: Store, bench_id: str) -> Path:
    return store.bench / bench_id


def plan_root(store: Store, bench_id: str) -> Path:
    return bench_dir(store, bench_id) / "plan"


def run_root(store: Store, bench_id: str, profile: str, repeat: int) -> Path:
    return bench_dir(store, bench_id) / "runs" / f"{profile}-{repeat}"


def events_path(store: Store) -> Path:
    """Where every bench's ``BenchProgress`` events go: the file a live view watches."""
    return store.bench / "events.jsonl"


def history_path(store: Store) -> Path:
    return store.bench / "history.jsonl"


# -- one run's measurements ------------------------------------------------------------------
@dataclass
class RunResult:
    """What one profile × repeat produced. ``error`` set means the run could not be
    measured (it never ran, or crashed); such runs are left out of the statistics."""

    profile: str
    repeat: int
    branch: str = ""
    store_root: str = ""
    outcome: str = ""
    n_nodes: int = 0
    done: int = 0
    executor_pct: float = 0.0
    escalated: int = 0
    review_pct: float = 0.0
    integration: str = ""
    integration_ok: bool = False
    acceptance_passed: int = 0
    acceptance_total: int = 0
    run_cost: float = 0.0
    wall_secs: float = 0.0
    tokens_by_role: dict[str, dict[str, float]] = field(default_factory=dict)
    hashes_ok: bool | None = None
    hash_mismatches: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def acceptance_pct(self) -> float:
        if not self.acceptance_total:
            return 0.0
        return 100.0 * self.acceptance_passed / self.acceptance_total

    @property
    def tokens(self) -> float:
        return sum(usage.get("tokens", 0.0) for usage in self.tokens_by_role.values())

    def measure(self, name: str) -> float:
        return float(getattr(self, name))

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["acceptance_pct"] = round(self.acceptance_pct, 2)
        data["tokens"] = self.tokens
        data["run_cost"] = round(self.run_cost, 9)
        data["wall_secs"] = round(self.wall_secs, 3)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def tokens_by_role(
    ledger: Iterable[dict[str, Any]], max_attempts: int
) -> dict[str, dict[str, float]]:
    """Tokens, cost and calls per role from a run's ``costs.jsonl``.

    The ledger books an escalated attempt under the ``executor`` role (it is the same
    prompt on the escalation tier); its attempt number is past ``max_attempts``, which is
    how it is told apart and reported as ``escalation``."""
    roles: dict[str, dict[str, float]] = {}
    for record in ledger:
        role = str(record.get("role") or "?")
        if role == "executor" and int(record.get("attempt") or 0) > max_attempts:
            role = "escalation"
        usage = roles.setdefault(
            role, {"input": 0, "output": 0, "tokens": 0, "cost_usd": 0.0, "calls": 0}
        )
        inp = int(record.get("input_tokens") or 0)
        out = int(record.get("output_tokens") or 0)
        other = sum(
            int(record.get(k) or 0)
            for k in ("reasoning_tokens", "cache_read_tokens", "cache_write_tokens")
        )
        usage["input"] += inp
        usage["output"] += out
        usage["tokens"] += inp + out + other
        usage["cost_usd"] = round(usage["cost_usd"] + float(record.get("cost_usd") or 0), 9)
        usage["calls"] += 1
    return roles


# -- statistics (pure) -----------------------------------------------------------------------
@dataclass(frozen=True)
class Spread:
    mean: float
    std: float  # the sample standard deviation (n - 1); 0 for fewer than two values
    min: float
    max: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {
            "mean": _tidy(self.mean),
            "std": _tidy(self.std),
            "min": _tidy(self.min),
            "max": _tidy(self.max),
            "n": self.n,
        }


def _tidy(value: float) -> float:
    """Round away float noise (0.30000000000000004) and keep whole numbers whole."""
    value = round(value, 9)
    return int(value) if value == int(value) and abs(value) < 2**53 else value


def spread(values: Sequence[float]) -> Spread:
    if not values:
        return Spread(0.0, 0.0, 0.0, 0.0, 0)
    mean = math.fsum(values) / len(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return Spread(mean, std, min(values), max(values), len(values))


def profile_row(profile: str, runs: Sequence[RunResult]) -> dict[str, Any]:
    """One table row: director-cli's fields as means over the measured runs, plus the
    spread of every measure."""
    measured = [r for r in runs if r.error is None]
    stats = {name: spread([r.measure(name) for r in measured]) for name in MEASURES}
    errors = [f"run {r.repeat}: {r.error}" for r in runs if r.error is not None]
    roles = sorted({role for r in measured for role in r.tokens_by_role})
    tokens_by_role = {
        role: _tidy(
            spread([r.tokens_by_role.get(role, {}).get("tokens", 0.0) for r in measured]).mean
        )
        for role in roles
    }
    n_nodes = max((r.n_nodes for r in runs), default=0)
    return {
        # director-cli's fields
        "profile": profile,
        "n_nodes": n_nodes,
        "done": _tidy(stats["done"].mean),
        "executor_pct": _tidy(round(stats["executor_pct"].mean, 2)),
        "escalated": _tidy(stats["escalated"].mean),
        "review_pct": _tidy(round(stats["review_pct"].mean, 2)),
        "integration_ok": bool(measured) and all(r.integration_ok for r in measured),
        "run_cost": _tidy(stats["run_cost"].mean),
        "wall_secs": _tidy(round(stats["wall_secs"].mean, 2)),
        "error": errors[0].split(": ", 1)[1] if runs and not measured else None,
        # ours
        "repeats": len(runs),
        "runs_ok": len(measured),
        "errors": errors,
        "integration_pass_pct": _tidy(
            round(100.0 * sum(r.integration_ok for r in measured) / len(measured), 2)
            if measured
            else 0.0
        ),
        "acceptance_pct": _tidy(round(stats["acceptance_pct"].mean, 2)),
        "acceptance_pct_std": _tidy(round(stats["acceptance_pct"].std, 2)),
        "acceptance_total": max((r.acceptance_total for r in runs), default=0),
        "run_cost_std": _tidy(stats["run_cost"].std),
        "run_cost_min": _tidy(stats["run_cost"].min),
        "run_cost_max": _tidy(stats["run_cost"].max),
        "wall_secs_std": _tidy(round(stats["wall_secs"].std, 2)),
        "tokens": _tidy(stats["tokens"].mean),
        "tokens_std": _tidy(round(stats["tokens"].std, 2)),
        "tokens_by_role": tokens_by_role,
        "hashes_ok": all(r.hashes_ok is not False for r in runs),
        "stats": {name: s.as_dict() for name, s in stats.items()},
    }


def cost_cut_pct(run_cost: float, baseline_cost: float) -> float | None:
    """How much cheaper than the baseline, in percent (negative: dearer)."""
    if baseline_cost <= 0:
        return None
    return 100.0 * (1.0 - run_cost / baseline_cost)


def quality_held(row: dict[str, Any], baseline: dict[str, Any]) -> bool | None:
    """Did the profile pass as many acceptance tests as the baseline, allowing for the
    baseline's own spread? Held when its mean pass rate is not below the baseline's mean
    minus one standard deviation of the baseline's repeats."""
    if not row.get("runs_ok") or not baseline.get("runs_ok"):
        return None
    floor = float(baseline["acceptance_pct"]) - float(baseline.get("acceptance_pct_std") or 0.0)
    return float(row["acceptance_pct"]) >= floor - 1e-9


def compare_to_baseline(rows: list[dict[str, Any]], baseline: str = BASELINE) -> None:
    """Add ``cost_cut_pct``, ``cut_target_met`` and ``quality_held`` to every row
    (None when there is no usable baseline, and for the baseline itself)."""
    base = next((r for r in rows if r["profile"] == baseline and r.get("runs_ok")), None)
    for row in rows:
        row["cost_cut_pct"] = None
        row["cut_target_met"] = None
        row["quality_held"] = None
        if base is None or row is base or not row.get("runs_ok"):
            continue
        cut = cost_cut_pct(float(row["run_cost"]), float(base["run_cost"]))
        if cut is not None:
            row["cost_cut_pct"] = _tidy(round(cut, 4))
            row["cut_target_met"] = cut > CUT_TARGET_PCT
        row["quality_held"] = quality_held(row, base)


def hash_check(runs: Sequence[RunResult], frozen: dict[str, str]) -> dict[str, Any]:
    mismatches = [f"{r.profile}-{r.repeat}: {m}" for r in runs for m in r.hash_mismatches]
    checked = [r for r in runs if r.hashes_ok is not None]
    return {
        "ok": not mismatches,
        "files": dict(sorted(frozen.items())),
        "branches_checked": len(checked),
        "mismatches": mismatches,
    }


def build_summary(
    meta: dict[str, Any],
    profiles: Sequence[str],
    runs: Sequence[RunResult],
    frozen_hashes: dict[str, str],
) -> dict[str, Any]:
    """summary.json from the bench's facts (``meta``) and its runs."""
    rows = [profile_row(p, [r for r in runs if r.profile == p]) for p in profiles]
    compare_to_baseline(rows)
    return {
        **meta,
        "baseline": BASELINE if any(r["profile"] == BASELINE for r in rows) else None,
        "cut_target_pct": CUT_TARGET_PCT,
        "rows": rows,
        "runs": [r.as_dict() for r in runs],
        "hash_check": hash_check(runs, frozen_hashes),
    }


# -- reading results -------------------------------------------------------------------------
def load_summary(store: Store, bench_id: str | None = None) -> dict[str, Any]:
    """The latest bench's summary, or the one of ``bench_id`` (a unique prefix will do)."""
    import json

    if bench_id is None:
        path = store.bench / "summary.json"
        if not path.is_file():
            raise UsageError(
                "no bench has run in this repository yet",
                hint='director bench "<task>" --profiles all-frontier,cheap-cloud',
            )
    else:
        matches = [
            d for d in _bench_dirs(store) if d.name == bench_id or d.name.startswith(bench_id)
        ]
        exact = [d for d in matches if d.name == bench_id]
        if exact:
            matches = exact
        if len(matches) != 1:
            known = ", ".join(d.name for d in _bench_dirs(store)[:10]) or "none"
            raise UsageError(
                f"no bench {bench_id!r}" if not matches else f"{bench_id!r} is ambiguous",
                hint=f"known benches (newest first): {known}",
            )
        path = matches[0] / "summary.json"
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read the bench summary: {exc}") from exc
    if not isinstance(value, dict):
        raise UsageError(f"{path}: not a bench summary")
    return value


def _bench_dirs(store: Store) -> list[Path]:
    if not store.bench.is_dir():
        return []
    return sorted(
        (d for d in store.bench.iterdir() if d.is_dir() and (d / "summary.json").is_file()),
        key=lambda d: d.name,
        reverse=True,
    )


def list_benches(store: Store) -> list[dict[str, Any]]:
    """Every bench with a summary folder, newest first: id, task, status, profiles,
    repeat and the headline numbers (from ``history.jsonl`` when it has the bench,
    else from the folder's summary, e.g. a bench still running or killed)."""
    import json

    indexed = {str(r.get("bench_id")): r for r in read_jsonl(history_path(store))}
    entries = []
    for folder in _bench_dirs(store):
        entry = indexed.get(folder.name)
        if entry is None:
            try:
                entry = history_entry(json.loads((folder / "summary.json").read_text()))
            except (OSError, ValueError):
                continue
        entries.append(entry)
    return entries


def history_entry(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "bench_id": summary.get("bench_id"),
        "task": str(summary.get("task", "")).splitlines()[0][:100] if summary.get("task") else "",
        "status": summary.get("status"),
        "started_at": summary.get("started_at"),
        "finished_at": summary.get("finished_at"),
        "plan_profile": summary.get("plan_profile"),
        "plan_cost": summary.get("plan_cost"),
        "repeat": summary.get("repeat"),
        "profiles": [
            {
                "profile": row.get("profile"),
                "run_cost": row.get("run_cost"),
                "acceptance_pct": row.get("acceptance_pct"),
                "cost_cut_pct": row.get("cost_cut_pct"),
                "error": row.get("error"),
            }
            for row in summary.get("rows", [])
            if isinstance(row, dict)
        ],
        "hash_ok": (summary.get("hash_check") or {}).get("ok"),
    }


# -- preparing ---------------------------------------------------------------------------------
def check_profile_names(profiles: Sequence[str]) -> list[str]:
    names = [p.strip() for p in profiles if p.strip()]
    if not names:
        raise UsageError("name at least one profile", hint="--profiles all-frontier,cheap-cloud")
    for name in names:
        # git refuses "..", a trailing "." and ".lock" in a ref name
        if not _PROFILE_NAME.match(name) or ".." in name or name.endswith((".", ".lock")):
            raise UsageError(
                f"{name!r} is not a usable profile name",
                hint="letters, digits, '.', '_' and '-' (it becomes part of a branch name)",
            )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(f"profile named twice: {', '.join(duplicates)}", hint="use --repeat N")
    return names


# -- the bench ---------------------------------------------------------------------------------
class _Progress:
    """Turns one run's engine events into ``BenchProgress`` on the bench's bus."""

    def __init__(self, bus: EventBus, bench_id: str, profile: str, repeat: int, total: int) -> None:
        self.bus, self.bench_id, self.profile, self.repeat = bus, bench_id, profile, repeat
        self.total = total
        self.finished: dict[str, str] = {}
        self.cost = 0.0

    def emit(self, phase: Any, message: str = "") -> None:
        self.bus.emit(
            BenchProgress(
                bench_id=self.bench_id,
                profile=self.profile,
                repeat=self.repeat,
                phase=phase,
                message=message,
                done=sum(1 for s in self.finished.values() if s == "done"),
                total=self.total,
                cost_usd=round(self.cost, 6),
            )
        )

    def __call__(self, event: EventBase) -> None:
        if isinstance(event, CostUpdate):
            self.cost = event.total_usd
        elif isinstance(event, NodeStateChanged):
            if event.status in _FINISHED_NODE:
                self.finished[event.node_id] = event.status
                self.emit("node", f"{event.node_id} {event.status}")
            else:
                self.finished.pop(event.node_id, None)
        elif isinstance(event, PlanStageChanged):
            self.emit("plan", f"{event.stage}: {event.message}".strip(": "))


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

    def summary(self) -> dict[str, Any]:
        return build_summary(self.meta, self.profiles, self.runs, self.frozen_hashes)

    def write_summary(self) -> dict[str, Any]:
        summary = self.summary()
        atomic_write_json(self.folder / "summary.json", summary)
        atomic_write_json(self.store.bench / "summary.json", summary)
        return summary

    # -- planning -------------------------------------------------------------------------
    async def plan(self) -> tuple[Plan, PlanStage]:
        from director_tui.engine.plan import start_plan

        plan_store = Store(self.repo, root=plan_root(self.store, self.bench_id))
        ctx = EngineContext.open(plan_store, self.plan_config)
        progress = _Progress(self.bus, self.bench_id, self.plan_profile, 0, 0)
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

        config = self.configs[profile]
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
        progress = _Progress(self.bus, self.bench_id, profile, repeat, len(frozen.nodes))
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
) -> dict[str, Any]:
    """Plan once, run every profile ``repeat`` times, write and return the summary.

    Raises ``UsageError`` (nothing written) for bad input: no or unknown profiles, a bad
    profile file, a dirty or detached checkout, a missing agent CLI for planning;
    ``BenchError`` when planning fails (the summary then says ``failed``);
    ``LockHeldError`` when another bench is running in this repository."""
    from director_tui.engine.plan import check_checkout
    from director_tui.engine.run import check_run_flags

    task = task.strip()
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

    lock_store = Store(store.repo, root=store.bench / ".lock")
    with lock_store.run_lock("bench"):
        bench_id = new_bench_id()
        bus = EventBus(events_path(store))
        if on_event is not None:
            bus.subscribe(on_event)
        bench = _Bench(
            store=store,
            bench_id=bench_id,
            task=task,
            profiles=names,
            configs=configs,
            plan_profile=plan_profile,
            plan_config=plan_config,
            repeat=repeat,
            parallel=parallel,
            max_attempts=max_attempts,
            bus=bus,
        )
        started = time.time()
        bench.meta = {
            "bench_id": bench_id,
            "task": task,
            "plan_profile": plan_profile,
            "plan_cost": 0.0,
            "job_id": "",
            "status": "running",
            "profiles": names,
            "repeat": repeat,
            "parallel": parallel,
            "max_attempts": max_attempts,
            "tiers": {name: configs[name].tier_map() for name in names},
            "scripted": {name: "scripted" in configs[name].providers_used() for name in names},
            "user_branch": user_branch,
            "user_head": user_head,
            "started_at": started,
            "finished_at": None,
            "wall_secs": 0.0,
        }
        bench.write_summary()
        status = "interrupted"
        try:
            try:
                frozen, frozen_stage = await bench.plan()
            except Exception as exc:
                status = "failed"
                bench.meta["error"] = f"planning failed: {exc}"
                if not isinstance(exc, DirectorError):
                    raise
                raise BenchError(
                    f"planning failed, so nothing was benchmarked: {exc.message}",
                    hint=exc.hint or f"see {plan_root(store, bench_id)}",
                ) from exc
            for k in range(1, repeat + 1):
                # Round-robin over the profiles, so a drift over time (a warming cache, a
                # busier machine) spreads over all of them instead of favouring one.
                for name in names:
                    bench.runs.append(await bench.run_one(frozen, frozen_stage, name, k))
                    bench.write_summary()
            status = "finished"
        finally:
            bench.meta["status"] = status
            bench.meta["finished_at"] = time.time()
            bench.meta["wall_secs"] = round(time.time() - started, 3)
            bench.meta["user_checkout_untouched"] = (
                git.current_branch(store.repo) == user_branch and git.rev(store.repo) == user_head
            )
            summary = bench.write_summary()
            _publish_streams(store, bench_id, names)
            append_jsonl(history_path(store), history_entry(summary))
            bus.emit(
                BenchProgress(
                    bench_id=bench_id,
                    profile="",
                    repeat=0,
                    phase="finished",
                    message=f"{status}: {bench_dir(store, bench_id) / 'summary.json'}",
                )
            )
        return summary


def _publish_streams(store: Store, bench_id: str, profiles: Sequence[str]) -> None:
    """The latest bench's metrics streams beside summary.json, where director-cli had them."""
    import shutil

    for name in profiles:
        source = bench_dir(store, bench_id) / f"{name}.metrics.jsonl"
        target = store.bench / f"{name}.metrics.jsonl"
        if source.is_file():
            shutil.copyfile(source, target)
        else:
            target.unlink(missing_ok=True)


def run_bench_blocking(
    store: Store, task: str, profiles: Sequence[str], **kwargs: Any
) -> dict[str, Any]:
    """``run_bench`` in a fresh event loop: for a thread worker or a plain script."""
    return asyncio.run(run_bench(store, task, profiles, **kwargs))


__all__ = [
    "BASELINE",
    "CUT_TARGET_PCT",
    "BenchError",
    "RunResult",
    "Spread",
    "bench_branch",
    "build_summary",
    "compare_to_baseline",
    "cost_cut_pct",
    "events_path",
    "list_benches",
    "load_summary",
    "profile_row",
    "quality_held",
    "run_bench",
    "run_bench_blocking",
    "spread",
    "tokens_by_role",
]
