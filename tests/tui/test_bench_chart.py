"""The bench chart drawn as characters: scales and ticks, every run, spread, baseline,
frontier and legend; the shapes carry the meaning without colour."""

from __future__ import annotations

import pytest

from director_tui.engine.bench.points import BenchPlane, ProfilePoints
from director_tui.tui.widgets.chart import cost_quality_chart, cost_scale, quality_scale


def profile(name: str, runs: list[tuple[float, float]], baseline: bool = False) -> ProfilePoints:
    costs, qualities = [c for c, _ in runs], [q for _, q in runs]
    return ProfilePoints(
        profile=name,
        runs=tuple(runs),
        cost=sum(costs) / len(costs),
        quality=sum(qualities) / len(qualities),
        cost_range=(min(costs), max(costs)),
        quality_range=(min(qualities), max(qualities)),
        baseline=baseline,
    )


PLANE = BenchPlane(
    profiles=(
        profile("all-frontier", [(1.6, 100.0), (2.0, 100.0)], baseline=True),
        profile("cheap-cloud", [(0.2, 100.0), (0.3, 90.0)]),
        profile("local-first", [(0.04, 80.0), (0.06, 60.0)]),
    ),
    in_tokens=False,
    quality_measure="acceptance tests passed",
    quality_bar=100.0,
    frontier=("local-first", "cheap-cloud"),
)


def test_cost_scale_is_log_when_costs_are_an_order_apart_else_linear_from_zero() -> None:
    log, ticks = cost_scale([0.04, 2.0], 40)
    assert log.log and ticks == [0.05, 0.1, 0.2, 0.5, 1.0, 2.0]
    assert log.cell(log.lo) == 0 and log.cell(log.hi) == 39
    assert log.cell(0.04) < log.cell(0.2) < log.cell(1.0) < log.cell(2.0)
    linear, ticks = cost_scale([0.5, 1.8], 40)
    assert not linear.log and linear.lo == 0 and ticks == [0.0, 0.5, 1.0, 1.5, 2.0]
    zero, _ = cost_scale([0.0, 3.0], 40)  # a free (scripted) profile: no log of 0
    assert not zero.log


def test_quality_scale_starts_at_a_round_number_below_the_worst() -> None:
    scale, ticks = quality_scale([67.0, 100.0], 9)
    assert (scale.lo, scale.hi) == (60.0, 100.0) and ticks == [60.0, 70.0, 80.0, 90.0, 100.0]
    perfect, ticks = quality_scale([100.0], 4)
    assert perfect.lo == 90.0 and ticks[-1] == 100.0
    assert quality_scale([0.0, 50.0], 6)[0].lo == 0.0


@pytest.mark.parametrize(("width", "height"), [(46, 14), (84, 30)])
def test_chart_has_axes_ticks_every_run_spread_baseline_frontier_and_legend(
    width: int, height: int
) -> None:
    text = cost_quality_chart(PLANE, width, height)
    lines = text.plain.splitlines()
    assert len(lines) <= height and all(len(line) <= width for line in lines)
    assert "quality ↑ acceptance tests passed (%)" in lines[0]
    assert any(line.startswith("100%┤") for line in lines)
    assert any(line.lstrip().startswith("60%┤") for line in lines)
    axis = next(line for line in lines if "└" in line)
    assert axis.count("┬") >= 3
    labels = lines[lines.index(axis) + 1]
    assert "$0.1" in labels and "$1" in labels
    assert "cost per run ($), log scale →" in text.plain
    plot = "\n".join(lines[1 : lines.index(axis)])
    # one lower-case letter per run (a run under its profile's mean is covered by it)
    assert plot.count("c") == 2 and plot.count("b") >= 1 and plot.count("a") >= 1
    assert all(mark in plot for mark in "ABC")
    assert "├" in plot and "┤" in plot  # cost spread
    assert "┬" in plot and "┴" in plot  # quality spread
    assert "┈" in plot and "┘" in plot  # the frontier's staircase
    assert "A all-frontier (baseline)" in text.plain
    assert "┈┘ frontier" in text.plain and "··· quality bar" in text.plain
    baseline_styles = [str(span.style) for span in text.spans if "reverse" in str(span.style)]
    assert baseline_styles  # the baseline's capital is drawn reversed


def test_unpriced_bench_is_drawn_in_tokens_and_says_so() -> None:
    plane = BenchPlane(
        profiles=(profile("local", [(1200.0, 100.0)]), profile("big", [(48_000.0, 100.0)])),
        in_tokens=True,
        quality_measure="acceptance tests passed",
        quality_bar=None,
        frontier=("local",),
    )
    text = cost_quality_chart(plane, 60, 16).plain
    assert "tokens per run (unpriced), log scale →" in text
    assert "$" not in text and "10k" in text
    assert "quality bar" not in text and "frontier" not in text  # none to draw


def test_an_empty_plane_says_so() -> None:
    empty = BenchPlane((), False, "nodes done", None, ())
    assert "no measured run" in cost_quality_chart(empty, 40, 10).plain


@pytest.mark.parametrize(("width", "height"), [(20, 8), (30, 10)])
def test_a_narrow_panel_crops_the_chart_never_wraps_it(width: int, height: int) -> None:
    lines = cost_quality_chart(PLANE, width, height).plain.splitlines()
    assert all(len(line) <= width for line in lines)
    assert any("└" in line for line in lines)  # the axis is still one line
