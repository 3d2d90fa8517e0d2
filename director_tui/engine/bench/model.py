"""The typed bench summary: what ``summary.json`` holds, read back by the CLI report, the
TUI's bench screen and ``director bench --report``.

Backwards compatible: a summary written by director-cli or an earlier director (fewer
keys, no spread, no verdicts) reads into the same models, every field having the default
a reader assumes for a missing key; keys this version does not know are kept. Written
back with :meth:`BenchSummary.to_json`, a summary has exactly the keys it was made from,
numbers that were whole stay whole (``2``, not ``2.0``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

# A JSON number as written: whole numbers stay ints (the stats round float noise away).
Number = int | float


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")

    def to_json(self) -> dict[str, Any]:
        """The JSON object to write: the keys it was made from, nothing added."""
        return self.model_dump(mode="json", exclude_unset=True)


class BenchRow(_Lenient):
    """One profile: director-cli's fields (means over the repeats), then ours."""

    profile: str = "?"
    n_nodes: int = 0
    done: Number = 0
    executor_pct: Number = 0
    escalated: Number = 0
    review_pct: Number = 0
    integration_ok: bool = False
    run_cost: Number = 0
    wall_secs: Number = 0
    error: str | None = None
    # ours; None where a director-cli row has no such key
    repeats: int = 1
    runs_ok: int | None = None
    errors: list[str] = []
    integration_pass_pct: Number | None = None
    acceptance_pct: Number | None = None
    acceptance_pct_std: Number = 0
    acceptance_total: int = 0
    run_cost_std: Number = 0
    run_cost_min: Number | None = None
    run_cost_max: Number | None = None
    wall_secs_std: Number = 0
    tokens: Number | None = None
    tokens_std: Number = 0
    tokens_by_role: dict[str, Number] = {}
    hashes_ok: bool = True
    stats: dict[str, dict[str, Number]] = {}
    cost_cut_pct: Number | None = None
    cut_target_met: bool | None = None
    quality_held: bool | None = None

    @property
    def failed(self) -> bool:
        """No run of this profile could be measured."""
        return bool(self.error) or self.runs_ok == 0

    def quality(self) -> float:
        """Acceptance tests passing (%), or nodes done (%) for summaries that lack it."""
        if self.acceptance_pct is not None:
            return float(self.acceptance_pct)
        return 100.0 * self.done / self.n_nodes if self.n_nodes else 0.0

    def cost_cut(self, baseline: BenchRow | None) -> float | None:
        """The cut against the baseline in percent: the bench's own verdict when the row
        has one (None: no runs to compare yet), else computed (a director-cli row)."""
        if "cost_cut_pct" in self.model_fields_set:
            return None if self.cost_cut_pct is None else float(self.cost_cut_pct)
        if baseline is None or baseline is self or not baseline.run_cost:
            return None
        return 100.0 * (1 - self.run_cost / baseline.run_cost)

    def cut_met(self, target: float, baseline: BenchRow | None = None) -> bool | None:
        """Whether the cut counts as met: the bench's verdict when the row has one (a
        profile that merged nothing has no met cut however cheap it was), else the cut
        above the target."""
        if "cut_target_met" in self.model_fields_set:
            return self.cut_target_met
        cut = self.cost_cut(baseline)
        return None if cut is None else cut > target


class HashCheck(_Lenient):
    """Whether the frozen test files are byte-identical on every profile's branch."""

    ok: bool = True
    files: dict[str, str] = {}
    branches_checked: int = 0
    mismatches: list[str] = []


class BenchSummary(_Lenient):
    """``summary.json``: the bench's facts, one row per profile, every run, the hash check."""

    bench_id: str | None = None
    task: str = ""
    plan_profile: str | None = None
    plan_cost: Number = 0
    job_id: str | None = None
    status: str | None = None
    profiles: list[str] = []
    repeat: int = 1
    parallel: int | None = None
    max_attempts: int | None = None
    tiers: dict[str, dict[str, str]] = {}
    scripted: dict[str, bool] = {}
    user_branch: str | None = None
    user_head: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    wall_secs: Number = 0
    job_branch: str | None = None
    base_commit: str | None = None
    n_nodes: int | None = None
    frozen_head: str | None = None
    error: str | None = None
    user_checkout_untouched: bool | None = None
    baseline: str | None = None
    cut_target_pct: Number | None = None
    rows: list[BenchRow] = []
    runs: list[dict[str, Any]] = []
    hash_check: HashCheck | None = None

    def row(self, profile: str) -> BenchRow | None:
        return next((r for r in self.rows if r.profile == profile), None)

    def target(self, default: float) -> float:
        return float(self.cut_target_pct or default)

    @property
    def all_runs_failed(self) -> bool:
        """Runs were made and none of them could be measured: nothing was compared."""
        return bool(self.runs) and all(run.get("error") for run in self.runs)
