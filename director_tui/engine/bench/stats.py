"""The bench's statistics, pure functions over :class:`RunResult` records: the spread of
every measure over the repeats, one row per profile, the cost cut and quality against the
baseline, the hash check, and the summary built from them."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from director_tui.engine.bench.model import BenchSummary

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


@dataclass(frozen=True)
class Spread:
    mean: float
    std: float  # the sample standard deviation (n - 1); 0 for fewer than two values
    min: float
    max: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {
            "mean": tidy(self.mean),
            "std": tidy(self.std),
            "min": tidy(self.min),
            "max": tidy(self.max),
            "n": self.n,
        }


def tidy(value: float) -> float:
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
        role: tidy(
            spread([r.tokens_by_role.get(role, {}).get("tokens", 0.0) for r in measured]).mean
        )
        for role in roles
    }
    n_nodes = max((r.n_nodes for r in runs), default=0)
    return {
        # director-cli's fields
        "profile": profile,
        "n_nodes": n_nodes,
        "done": tidy(stats["done"].mean),
        "executor_pct": tidy(round(stats["executor_pct"].mean, 2)),
        "escalated": tidy(stats["escalated"].mean),
        "review_pct": tidy(round(stats["review_pct"].mean, 2)),
        "integration_ok": bool(measured) and all(r.integration_ok for r in measured),
        "run_cost": tidy(stats["run_cost"].mean),
        "wall_secs": tidy(round(stats["wall_secs"].mean, 2)),
        "error": errors[0].split(": ", 1)[1] if runs and not measured else None,
        # ours
        "repeats": len(runs),
        "runs_ok": len(measured),
        "errors": errors,
        "integration_pass_pct": tidy(
            round(100.0 * sum(r.integration_ok for r in measured) / len(measured), 2)
            if measured
            else 0.0
        ),
        "acceptance_pct": tidy(round(stats["acceptance_pct"].mean, 2)),
        "acceptance_pct_std": tidy(round(stats["acceptance_pct"].std, 2)),
        "acceptance_total": max((r.acceptance_total for r in runs), default=0),
        "run_cost_std": tidy(stats["run_cost"].std),
        "run_cost_min": tidy(stats["run_cost"].min),
        "run_cost_max": tidy(stats["run_cost"].max),
        "wall_secs_std": tidy(round(stats["wall_secs"].std, 2)),
        "tokens": tidy(stats["tokens"].mean),
        "tokens_std": tidy(round(stats["tokens"].std, 2)),
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
            row["cost_cut_pct"] = tidy(round(cut, 4))
            # Cheap because it did nothing is no saving: a profile that merged no node
            # never meets the cut, however little it spent.
            row["cut_target_met"] = cut > CUT_TARGET_PCT and float(row["done"]) > 0
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
) -> BenchSummary:
    """summary.json from the bench's facts (``meta``) and its runs."""
    rows = [profile_row(p, [r for r in runs if r.profile == p]) for p in profiles]
    compare_to_baseline(rows)
    return BenchSummary.model_validate(
        {
            **meta,
            "baseline": BASELINE if any(r["profile"] == BASELINE for r in rows) else None,
            "cut_target_pct": CUT_TARGET_PCT,
            "rows": rows,
            "runs": [r.as_dict() for r in runs],
            "hash_check": hash_check(runs, frozen_hashes),
        }
    )
