"""The bench's statistics and its table: pure functions, no git, no subprocess."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from director_tui.engine.bench import (
    BenchSummary,
    RunResult,
    build_summary,
    compare_to_baseline,
    cost_cut_pct,
    profile_row,
    quality_held,
    spread,
    tokens_by_role,
)
from director_tui.views.bench_view import bench_table, history_table, report


def run(profile: str, repeat: int, cost: float, passed: int = 2, **kw: object) -> RunResult:
    values: dict[str, object] = {
        "n_nodes": 2,
        "done": 2,
        "executor_pct": 100.0,
        "integration_ok": True,
        "acceptance_passed": passed,
        "acceptance_total": 2,
        "run_cost": cost,
        "wall_secs": 10.0 * repeat,
        "hashes_ok": True,
        **kw,
    }
    return RunResult(profile=profile, repeat=repeat, **values)  # type: ignore[arg-type]


def render(renderable: object, width: int = 160) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


# -- spread ------------------------------------------------------------------------------------
def test_spread_of_nothing_one_and_many() -> None:
    assert spread([]).as_dict() == {"mean": 0, "std": 0, "min": 0, "max": 0, "n": 0}
    assert spread([0.3]).as_dict() == {"mean": 0.3, "std": 0, "min": 0.3, "max": 0.3, "n": 1}
    s = spread([0.1, 0.2, 0.6])
    assert s.mean == pytest.approx(0.3)
    assert s.std == pytest.approx(math.sqrt(((0.2) ** 2 + 0.1**2 + 0.3**2) / 2))
    assert (s.min, s.max, s.n) == (0.1, 0.6, 3)
    assert spread([0.1, 0.2]).as_dict()["mean"] == 0.15  # float noise rounded away


@given(st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), min_size=2, max_size=20))
def test_spread_matches_the_statistics_module(values: list[float]) -> None:
    s = spread(values)
    assert s.mean == pytest.approx(statistics.fmean(values), abs=1e-9)
    assert s.std == pytest.approx(statistics.stdev(values), abs=1e-6)
    assert s.min <= s.mean + 1e-9 and s.mean <= s.max + 1e-9


# -- rows, cuts, quality -----------------------------------------------------------------------
def test_profile_row_means_over_measured_runs_and_keeps_errors_apart() -> None:
    runs = [
        run("cheap", 1, 0.038, executor_pct=50.0, escalated=1, review_pct=50.0),
        run("cheap", 2, 0.008),
        RunResult(profile="cheap", repeat=3, error="crashed", n_nodes=2, acceptance_total=2),
    ]
    row = profile_row("cheap", runs)
    assert row["repeats"] == 3 and row["runs_ok"] == 2
    assert row["error"] is None and row["errors"] == ["run 3: crashed"]
    assert row["run_cost"] == pytest.approx(0.023)
    assert row["run_cost_std"] == pytest.approx(0.0212132, rel=1e-5)
    assert (row["run_cost_min"], row["run_cost_max"]) == (0.008, 0.038)
    assert (row["executor_pct"], row["escalated"], row["review_pct"]) == (75, 0.5, 25)
    assert row["stats"]["wall_secs"] == pytest.approx(
        {"mean": 15, "std": math.sqrt(50), "min": 10, "max": 20, "n": 2}
    )
    assert row["integration_ok"] is True and row["acceptance_pct"] == 100


def test_profile_row_of_only_failed_runs_is_an_error_row() -> None:
    row = profile_row("broken", [RunResult(profile="broken", repeat=1, error="no opencode")])
    assert row["error"] == "no opencode" and row["runs_ok"] == 0
    assert row["integration_ok"] is False and row["run_cost"] == 0


def test_cut_and_quality_against_the_baseline() -> None:
    assert cost_cut_pct(0.01, 0.05) == pytest.approx(80.0)
    assert cost_cut_pct(0.06, 0.05) == pytest.approx(-20.0)
    assert cost_cut_pct(0.01, 0.0) is None
    rows = [
        profile_row(
            "all-frontier", [run("all-frontier", 1, 0.05, 2), run("all-frontier", 2, 0.05, 1)]
        ),
        profile_row("cheap", [run("cheap", 1, 0.009, 2), run("cheap", 2, 0.009, 1)]),
        profile_row("exact-80", [run("exact-80", 1, 0.01, 2)]),
        profile_row("worse", [run("worse", 1, 0.001, 0)]),
        profile_row("broken", [RunResult(profile="broken", repeat=1, error="x")]),
    ]
    compare_to_baseline(rows)
    base, cheap, exact, worse, broken = rows
    assert base["cost_cut_pct"] is None and base["quality_held"] is None
    assert cheap["cost_cut_pct"] == pytest.approx(82.0) and cheap["cut_target_met"] is True
    # 75% against a baseline of 75% ± 35.4: held
    assert cheap["quality_held"] is True
    # exactly 80% is not "more than 80%"
    assert exact["cost_cut_pct"] == pytest.approx(80.0) and exact["cut_target_met"] is False
    # 0% of the acceptance tests is below the baseline's spread
    assert worse["quality_held"] is False and worse["cut_target_met"] is True
    assert broken["cost_cut_pct"] is None and broken["quality_held"] is None


def test_a_profile_that_merged_nothing_never_meets_the_cut() -> None:
    # It spent nothing because it did nothing: a 100% cut must not count as met (issue 17)
    frontier = [run("all-frontier", 1, 0.05)]
    idle = [run("idle", 1, 0.0, passed=0, done=0)]
    summary = build_summary({"task": "t"}, ["all-frontier", "idle"], [*frontier, *idle], {})
    row = summary.to_json()["rows"][1]
    assert row["cost_cut_pct"] == pytest.approx(100.0) and row["cut_target_met"] is False
    assert summary.rows[1].cut_met(80.0) is False  # what the TUI's bench screen shows
    line = next(x for x in render(bench_table(summary)).splitlines() if x.startswith("idle"))
    assert "100% ✘" in line and "✔" not in line


def test_quality_held_uses_the_baseline_spread() -> None:
    base = {"runs_ok": 3, "acceptance_pct": 90.0, "acceptance_pct_std": 10.0}
    assert quality_held({"runs_ok": 1, "acceptance_pct": 80.0}, base) is True
    assert quality_held({"runs_ok": 1, "acceptance_pct": 79.9}, base) is False
    assert quality_held({"runs_ok": 0, "acceptance_pct": 100.0}, base) is None


def test_no_baseline_no_cut() -> None:
    summary = build_summary(
        {"task": "t"}, ["a", "b"], [run("a", 1, 0.1), run("b", 1, 0.2)], {}
    ).to_json()
    assert summary["baseline"] is None
    assert [r["cost_cut_pct"] for r in summary["rows"]] == [None, None]


def test_tokens_by_role_tells_escalation_from_executor_by_attempt() -> None:
    ledger = [
        {"role": "executor", "attempt": 1, "input_tokens": 100, "output_tokens": 10, "cost_usd": 0.1},
        {"role": "executor", "attempt": 2, "input_tokens": 100, "output_tokens": 10, "cost_usd": 0.1},
        {"role": "executor", "attempt": 3, "input_tokens": 500, "output_tokens": 50,
         "reasoning_tokens": 5, "cost_usd": 0.2},
        {"role": "reviewer", "attempt": 3, "input_tokens": 40, "output_tokens": 4, "cost_usd": 0.05},
    ]  # fmt: skip
    roles = tokens_by_role(ledger, max_attempts=2)
    assert roles["executor"] == {
        "input": 200,
        "output": 20,
        "tokens": 220,
        "cost_usd": 0.2,
        "calls": 2,
    }
    assert roles["escalation"]["tokens"] == 555 and roles["escalation"]["calls"] == 1
    assert roles["reviewer"]["tokens"] == 44


def test_summary_keeps_director_cli_fields() -> None:
    meta = {"task": "t", "plan_profile": "all-frontier", "plan_cost": 0.1, "job_id": "j"}
    summary = build_summary(
        meta, ["all-frontier"], [run("all-frontier", 1, 0.05)], {"a": "h"}
    ).to_json()
    for key in ("task", "plan_profile", "plan_cost", "job_id", "rows"):
        assert key in summary
    for key in (
        "profile",
        "n_nodes",
        "done",
        "executor_pct",
        "escalated",
        "review_pct",
        "integration_ok",
        "run_cost",
        "wall_secs",
        "error",
    ):
        assert key in summary["rows"][0]
    assert summary["hash_check"] == {
        "ok": True,
        "files": {"a": "h"},
        "branches_checked": 1,
        "mismatches": [],
    }


def test_hash_mismatch_is_reported() -> None:
    bad = run("x", 1, 0.1, hashes_ok=False, hash_mismatches=["tests/t.py differs on b"])
    summary = build_summary({}, ["x"], [bad], {"tests/t.py": "h"})
    assert summary.to_json()["hash_check"]["ok"] is False
    assert summary.to_json()["hash_check"]["mismatches"] == ["x-1: tests/t.py differs on b"]
    assert "hash check ✘" in render(report(summary))


# -- the table -----------------------------------------------------------------------------------
def sample_summary() -> BenchSummary:
    runs = [
        run("all-frontier", 1, 0.04),
        run("all-frontier", 2, 0.04),
        run("cheap-cloud", 1, 0.038, executor_pct=50.0, escalated=1, review_pct=50.0),
        run("cheap-cloud", 2, 0.008),
        RunResult(profile="broken", repeat=1, error="opencode: `opencode` not found"),
    ]
    meta = {
        "bench_id": "20260101-000000-abcd",
        "task": "add add and mul",
        "plan_profile": "all-frontier",
        "plan_cost": 0.07,
        "job_id": "job-1",
        "repeat": 2,
        "status": "finished",
    }
    return build_summary(meta, ["all-frontier", "cheap-cloud", "broken"], runs, {"t": "h"})


def test_table_shows_means_spread_cut_quality_and_errors() -> None:
    text = render(bench_table(sample_summary(), 160))  # as wide as the console it prints on
    lines = text.splitlines()
    cheap = next(i for i, line in enumerate(lines) if line.startswith("cheap-cloud"))
    assert "2/2" in lines[cheap] and "75%" in lines[cheap] and "$0.0230" in lines[cheap]
    assert "42% ✘" in lines[cheap] and "meets bar ✔" in lines[cheap]
    assert "±0.0212" in lines[cheap + 1]  # the spread under the mean
    assert "$0.0080" in lines[cheap] and "$0.0380" in lines[cheap + 1]  # min–max
    frontier = next(line for line in lines if line.startswith("all-frontier"))
    assert "baseline" in frontier and "$0.0400" in frontier
    broken = next(line for line in lines if line.startswith("broken"))
    assert "ERROR" in broken and "not found" in broken


def test_report_fits_80_columns_and_says_what_it_measures() -> None:
    text = render(report(sample_summary(), 80), width=80)
    assert all(len(line) <= 80 for line in text.splitlines())
    assert "shared plan cost $0.0700" in text and "target >80%" in text
    assert "hash check ✔ 1 test file(s) identical" in text
    assert "saving >80%" in text and "…" not in text  # nothing truncated: columns dropped instead
    wide = render(report(sample_summary(), 160))
    assert "min–max" in wide and "tokens" in wide


def test_history_table_lists_benches() -> None:
    entries = [
        {
            "bench_id": "b2",
            "status": "finished",
            "plan_cost": 0.07,
            "task": "x",
            "profiles": [
                {"profile": "a", "run_cost": 0.04, "error": None},
                {"profile": "b", "run_cost": None, "error": "boom"},
            ],
        }
    ]
    text = render(history_table(entries))
    assert "b2" in text and "a $0.0400" in text and "b ERROR" in text


def test_a_profile_the_bench_has_not_reached_reads_not_run() -> None:
    """A running (or interrupted) bench lists profiles with no run yet: "not run", never an
    ERROR."""
    runs = [run("all-frontier", 1, 0.04), run("cheap-cloud", 1, 0.01)]
    meta = {"bench_id": "b", "task": "t", "status": "running"}
    summary = build_summary(meta, ["all-frontier", "cheap-cloud", "local-first"], runs, {})
    local = next(
        line for line in render(bench_table(summary)).splitlines() if "local-first" in line
    )
    assert "not run" in local and "ERROR" not in local


# -- the cost/quality plane and its frontier ---------------------------------------------------
def test_pareto_front_keeps_only_profiles_nothing_beats() -> None:
    from director_tui.engine.bench.points import pareto_front

    points = [("dear", 2.0, 100.0), ("cheap", 0.3, 100.0), ("cheapest", 0.05, 80.0)]
    points += [("worse", 0.5, 70.0), ("tie-dearer", 0.3, 90.0)]
    assert pareto_front(points) == ("cheapest", "cheap")
    assert pareto_front([]) == ()
    assert pareto_front([("only", 1.0, 0.0)]) == ("only",)


def test_bench_plane_has_every_measured_run_the_spread_and_the_bar() -> None:
    from director_tui.engine.bench.points import bench_plane

    runs = [
        run("all-frontier", 1, 0.04),
        run("all-frontier", 2, 0.06, passed=1),
        run("cheap-cloud", 1, 0.01),
        run("cheap-cloud", 2, 0.02),
        RunResult(profile="cheap-cloud", repeat=3, error="crashed"),
        RunResult(profile="broken", repeat=1, error="not found"),
    ]
    meta = {"bench_id": "b", "task": "t"}
    profiles = ["all-frontier", "cheap-cloud", "broken"]
    plane = bench_plane(build_summary(meta, profiles, runs, {}))
    assert [p.profile for p in plane.profiles] == ["all-frontier", "cheap-cloud"]  # no broken
    frontier = plane.profile("all-frontier")
    cheap = plane.profile("cheap-cloud")
    assert frontier is not None and cheap is not None
    assert frontier.baseline and not cheap.baseline
    assert frontier.runs == ((0.04, 100.0), (0.06, 50.0))
    assert frontier.cost == pytest.approx(0.05) and frontier.quality == pytest.approx(75.0)
    assert frontier.cost_range == (0.04, 0.06) and frontier.quality_range == (50.0, 100.0)
    assert len(cheap.runs) == 2  # the crashed run is no point
    assert not plane.in_tokens and plane.quality_measure == "acceptance tests passed"
    # the bar: all-frontier's mean (75) less the standard deviation of its runs (35.36)
    assert plane.quality_bar == pytest.approx(75.0 - 35.36, abs=0.01)
    assert plane.frontier == ("cheap-cloud",)  # cheaper and better than all-frontier


def test_bench_plane_counts_tokens_when_no_run_was_priced() -> None:
    from director_tui.engine.bench.points import bench_plane

    usage = {"executor": {"tokens": 1200.0}}
    runs = [run("local", 1, 0.0, tokens_by_role=usage), run("big", 1, 0.0)]
    plane = bench_plane(build_summary({"task": "t"}, ["local", "big"], runs, {}))
    assert plane.in_tokens
    local = plane.profile("local")
    assert local is not None and local.runs == ((1200.0, 100.0),)
    priced = bench_plane(build_summary({"task": "t"}, ["a"], [run("a", 1, 0.5)], {}))
    assert not priced.in_tokens and priced.quality_bar is None  # no all-frontier: no bar
