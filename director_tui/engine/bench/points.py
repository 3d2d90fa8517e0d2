"""A bench as points on a cost/quality plane: one point per measured run, each profile's
mean and spread, the baseline's quality bar and the frontier — what the bench chart draws
and the report names. Pure functions over a :class:`BenchSummary`.

Cost is the run's USD cost. A bench where no run was priced (every cost 0: local or
scripted models, no ``[pricing]``) is measured in tokens instead, and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from director_tui.engine.bench.model import BenchRow, BenchSummary
from director_tui.engine.bench.stats import BASELINE


@dataclass(frozen=True)
class ProfilePoints:
    """One profile on the plane: its runs, their mean, the spread of both measures."""

    profile: str
    runs: tuple[tuple[float, float], ...]  # (cost, quality %) per measured run
    cost: float  # the mean, as the table shows it
    quality: float
    cost_range: tuple[float, float]  # min, max over the runs (or mean ± std)
    quality_range: tuple[float, float]
    baseline: bool = False


@dataclass(frozen=True)
class BenchPlane:
    profiles: tuple[ProfilePoints, ...]
    in_tokens: bool  # no run was priced: cost is tokens per run
    quality_measure: str  # what quality counts
    quality_bar: float | None  # the baseline's mean less its spread: "meets the bar" above
    frontier: tuple[str, ...]  # the profiles no other beats on both cost and quality

    def profile(self, name: str) -> ProfilePoints | None:
        return next((p for p in self.profiles if p.profile == name), None)


def measured(row: BenchRow) -> bool:
    """A row with at least one measured run (a director-cli row without ``runs_ok``
    counts when it has no error)."""
    return not row.failed and (row.runs_ok is None or row.runs_ok > 0)


def _run_quality(run: dict[str, Any]) -> float:
    if run.get("acceptance_pct") is not None:
        return float(run["acceptance_pct"])
    n_nodes = float(run.get("n_nodes") or 0)
    return 100.0 * float(run.get("done") or 0) / n_nodes if n_nodes else 0.0


def _span(values: Sequence[float], mean: float, std: float) -> tuple[float, float]:
    if values:
        return min(values), max(values)
    return mean - std, mean + std


def _profile_points(
    row: BenchRow, runs: Sequence[dict[str, Any]], in_tokens: bool, baseline: str | None
) -> ProfilePoints:
    key = "tokens" if in_tokens else "run_cost"
    points = tuple(
        (float(run.get(key) or 0.0), _run_quality(run))
        for run in runs
        if run.get("profile") == row.profile and not run.get("error")
    )
    cost = float((row.tokens or 0.0) if in_tokens else row.run_cost)
    cost_std = float(row.tokens_std if in_tokens else row.run_cost_std)
    quality = row.quality()
    return ProfilePoints(
        profile=row.profile,
        runs=points or ((cost, quality),),
        cost=cost,
        quality=quality,
        cost_range=_span([c for c, _ in points], cost, cost_std),
        quality_range=_span([q for _, q in points], quality, float(row.acceptance_pct_std)),
        baseline=row.profile == baseline,
    )


def pareto_front(points: Sequence[tuple[str, float, float]]) -> tuple[str, ...]:
    """The names of the (name, cost, quality) points no other point beats: none is as
    cheap and at least as good with one of the two strictly better. Cheapest first."""
    front: list[str] = []
    best = -1.0
    for name, _cost, quality in sorted(points, key=lambda p: (p[1], -p[2])):
        if quality > best:
            front.append(name)
            best = quality
    return tuple(front)


def bench_plane(summary: BenchSummary) -> BenchPlane:
    rows = [r for r in summary.rows if measured(r)]
    priced = any(float(r.run_cost) > 0 for r in rows)
    in_tokens = bool(rows) and not priced and any((r.tokens or 0) > 0 for r in rows)
    # director-cli's summaries name no baseline: all-frontier was it
    baseline = summary.baseline or (BASELINE if summary.row(BASELINE) else None)
    profiles = tuple(_profile_points(r, summary.runs, in_tokens, baseline) for r in rows)
    base_row = summary.row(baseline) if baseline else None
    bar = None
    if base_row is not None and measured(base_row):
        bar = base_row.quality() - float(base_row.acceptance_pct_std)
    any_acceptance = any(r.acceptance_pct is not None for r in rows)
    return BenchPlane(
        profiles=profiles,
        in_tokens=in_tokens,
        quality_measure="acceptance tests passed" if any_acceptance else "nodes done",
        quality_bar=bar,
        frontier=pareto_front([(p.profile, p.cost, p.quality) for p in profiles]),
    )
