"""The bench chart: cost against quality, drawn with characters.

Quality (%) up, cost per run right — on a log scale when the profiles' costs are an order
of magnitude apart, which they usually are. Each profile has a letter: a lower-case one for
every run, the capital at the mean of its runs, whiskers over the runs' min–max of both
measures; the baseline's capital is drawn reversed and its quality bar is a dotted row. The
frontier — the profiles no other one beats on both cost and quality — is a dashed staircase:
for each cost, the best quality to be had for it. Letters, line shapes and the legend carry
the meaning without colour (NO_COLOR) and it all fits a panel at 80×24.

Drawn by our own code rather than a plotting widget: textual-plotext (1.0.1, pinned to
plotext < 6) was deterministic in snapshots, but at 80×24 its legend sat on the points,
its error bars overwrote the markers and its ticks fell on 16.7 / 33.3.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

from rich.console import RenderableType
from rich.text import Text
from textual.widget import Widget

from director_tui.engine.bench.points import BenchPlane, ProfilePoints

MARKERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
PALETTE = ("cyan", "magenta", "yellow", "green", "blue", "red")
FRONTIER_STYLE = "green"
LABEL_WIDTH = 4  # "100%"
MIN_PLOT_ROWS = 3

# What is drawn over what: a mean over a run over a whisker over the frontier over the bar.
BAR, FRONTIER, WHISKER, RUN, MEAN = range(1, 6)


@dataclass(frozen=True)
class Scale:
    """Values between ``lo`` and ``hi`` onto ``cells`` cells (0 = ``lo``)."""

    lo: float
    hi: float
    cells: int
    log: bool = False

    def cell(self, value: float) -> int:
        if self.log:
            value = max(value, self.lo)
            frac = math.log10(value / self.lo) / math.log10(self.hi / self.lo)
        else:
            frac = (value - self.lo) / (self.hi - self.lo) if self.hi > self.lo else 0.0
        return round(min(1.0, max(0.0, frac)) * (self.cells - 1))


def nice_step(span: float, most: int) -> float:
    """The smallest 1-2-5 step that cuts ``span`` into at most ``most`` pieces."""
    if span <= 0:
        return 1.0
    raw = span / max(1, most)
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw - 1e-12)


def one_two_five(lo: float, hi: float) -> list[float]:
    """1, 2 and 5 times the powers of ten from ``lo`` to ``hi``."""
    values = []
    for power in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            value = m * 10.0**power
            if lo * (1 - 1e-9) <= value <= hi * (1 + 1e-9):
                values.append(float(f"{value:.12g}"))
    return values


def cost_scale(values: Iterable[float], cells: int) -> tuple[Scale, list[float]]:
    """Log when the costs are ≥ 8× apart (and none is 0), a little wider than the costs,
    ticked at the 1-2-5 values inside; else linear from 0. With its ticks."""
    lo, hi = min(values), max(values)
    if lo > 0 and hi / lo >= 8:
        margin = (hi / lo) ** 0.04  # a little room at both ends, the ticks where they fall
        below, above = lo / margin, hi * margin
        return Scale(below, above, cells, log=True), one_two_five(below, above)
    step = nice_step(hi or 1.0, 4)
    top = math.ceil((hi or 1.0) / step - 1e-9) * step
    ticks = [round(i * step, 12) for i in range(round(top / step) + 1)]
    return Scale(0.0, top, cells), ticks


def quality_scale(values: Iterable[float], rows: int) -> tuple[Scale, list[float]]:
    """From a round number below the worst quality up to 100 %, with ticks."""
    worst = min(max(0.0, v) for v in values)
    rough = max(0.0, math.floor((worst - 1) / 10) * 10) if worst < 100 else 90.0
    step = nice_step(100 - rough, max(1, rows // 2))
    count = math.ceil((100 - rough) / step - 1e-9)
    lo = max(0.0, 100 - step * count)  # a tick at 100 % and one at the bottom
    ticks = [round(100 - i * step, 9) for i in range(count, -1, -1)]
    return Scale(lo, 100.0, rows), [t for t in ticks if t >= lo]


def money(value: float) -> str:
    return f"${value:.12g}"


def tokens(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.3g}M"
    if value >= 1_000:
        return f"{value / 1_000:.3g}k"
    return f"{value:.0f}"


class Canvas:
    """A grid of cells, each written only by a layer at least as high as its last."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.cells: list[list[tuple[str, str, int]]] = [
            [(" ", "", 0)] * width for _ in range(height)
        ]

    def put(self, row: int, col: int, char: str, style: str, layer: int) -> None:
        if 0 <= row < self.height and 0 <= col < self.width and layer >= self.cells[row][col][2]:
            self.cells[row][col] = (char, style, layer)

    def hline(self, row: int, first: int, last: int, char: str, style: str, layer: int) -> None:
        for col in range(first, last + 1):
            self.put(row, col, char, style, layer)

    def vline(self, col: int, top: int, bottom: int, char: str, style: str, layer: int) -> None:
        for row in range(top, bottom + 1):
            self.put(row, col, char, style, layer)

    def row_text(self, row: int) -> Text:
        text = Text()
        for char, style, _layer in self.cells[row]:
            text.append(char, style=style)
        return text


@dataclass(frozen=True)
class Plot:
    canvas: Canvas
    x: Scale
    y: Scale

    def at(self, cost: float, quality: float) -> tuple[int, int]:
        """(row, col) of a point; row 0 is the top (100 %)."""
        return self.y.cells - 1 - self.y.cell(quality), self.x.cell(cost)


def draw_profile(plot: Plot, points: ProfilePoints, marker: str, style: str) -> None:
    canvas = plot.canvas
    row, col = plot.at(points.cost, points.quality)
    first, last = (plot.x.cell(v) for v in points.cost_range)
    if last > first:
        canvas.hline(row, first, last, "─", style, WHISKER)
        canvas.put(row, first, "├", style, WHISKER)
        canvas.put(row, last, "┤", style, WHISKER)
    top, bottom = (plot.at(points.cost, q)[0] for q in reversed(points.quality_range))
    if bottom > top:
        canvas.vline(col, top, bottom, "│", style, WHISKER)
        canvas.put(top, col, "┬", style, WHISKER)
        canvas.put(bottom, col, "┴", style, WHISKER)
    for cost, quality in points.runs:
        canvas.put(*plot.at(cost, quality), marker.lower(), style, RUN)
    mean_style = f"bold {style}" + (" reverse" if points.baseline else "")
    canvas.put(row, col, marker, mean_style, MEAN)


def draw_frontier(plot: Plot, front: list[ProfilePoints]) -> None:
    """A staircase through the frontier, cheapest first: along at one profile's quality to
    the next one's cost, then up to its quality."""
    for here, there in itertools.pairwise(front):
        row0, col0 = plot.at(here.cost, here.quality)
        row1, col1 = plot.at(there.cost, there.quality)
        plot.canvas.hline(row0, col0 + 1, col1 - 1, "┈", FRONTIER_STYLE, FRONTIER)
        if row1 < row0 and col1 > col0:
            plot.canvas.put(row0, col1, "┘", FRONTIER_STYLE, FRONTIER)
        plot.canvas.vline(col1, row1 + 1, row0 - (col1 > col0), "┊", FRONTIER_STYLE, FRONTIER)


def x_labels(scale: Scale, ticks: list[float], fmt: str) -> list[tuple[int, str]]:
    """The ticks that get a label, none overlapping: round values first (1 × 10ⁿ on a log
    scale, then 5s, then 2s), then left to right."""

    def rank(value: float) -> int:
        if not scale.log:
            return 0
        lead = round(value / 10 ** math.floor(math.log10(value) + 1e-9))
        return {1: 0, 5: 1}.get(lead, 2)

    taken = [False] * (scale.cells + LABEL_WIDTH + 8)
    placed: list[tuple[int, str]] = []
    for value in sorted(ticks, key=lambda v: (rank(v), v)):
        label = tokens(value) if fmt == "tokens" else money(value)
        col = scale.cell(value)
        start = max(0, min(col - len(label) // 2, scale.cells - len(label)))
        span = range(max(0, start - 1), min(len(taken), start + len(label) + 1))
        if any(taken[i] for i in span):
            continue
        for i in range(start, start + len(label)):
            taken[i] = True
        placed.append((col, label))
    return sorted(placed)


def legend(plane: BenchPlane, width: int) -> list[Text]:
    """Each profile's letter and name, then what the shapes mean; wrapped to ``width``."""
    chunks: list[Text] = []
    for i, points in enumerate(plane.profiles):
        style = PALETTE[i % len(PALETTE)]
        chunk = Text()
        mark = MARKERS[i % len(MARKERS)]
        chunk.append(mark, style=f"bold {style}" + (" reverse" if points.baseline else ""))
        chunk.append(f" {points.profile}" + (" (baseline)" if points.baseline else ""))
        chunks.append(chunk)
    key = [Text("a b c one run each", style="dim"), Text("├─┤ min–max", style="dim")]
    if len(plane.frontier) > 1:
        key.append(Text.assemble(("┈┘", FRONTIER_STYLE), (" frontier", "dim")))
    if plane.quality_bar is not None:
        key.append(Text("··· quality bar", style="dim"))
    lines: list[Text] = []
    for group in (chunks, key):
        line = Text()
        for chunk in group:
            if line.cell_len and line.cell_len + 2 + chunk.cell_len > width:
                lines.append(line)
                line = Text()
            if line.cell_len:
                line.append("  ")
            line.append_text(chunk)
        lines.append(line)
    return lines


def cost_quality_chart(plane: BenchPlane, width: int, height: int) -> Text:
    """The whole chart in ``width`` × ``height`` cells: y title, plot, x axis, legend."""
    if not plane.profiles:
        return Text("no measured run to chart yet", style="dim")
    keys = legend(plane, width)
    plot_width = max(8, width - LABEL_WIDTH - 1)
    rows = max(MIN_PLOT_ROWS, height - 4 - len(keys))
    costs = [v for p in plane.profiles for v in (*p.cost_range, *(c for c, _ in p.runs))]
    qualities = [v for p in plane.profiles for v in (*p.quality_range, *(q for _, q in p.runs))]
    if plane.quality_bar is not None:
        qualities.append(plane.quality_bar)
    x, x_ticks = cost_scale(costs, plot_width)
    y, y_ticks = quality_scale(qualities, rows)
    plot = Plot(Canvas(plot_width, rows), x, y)
    if plane.quality_bar is not None:
        bar_row = plot.at(x.lo, plane.quality_bar)[0]
        for col in range(0, plot_width, 2):
            plot.canvas.put(bar_row, col, "·", "dim", BAR)
    by_name = {p.profile: p for p in plane.profiles}
    draw_frontier(plot, [by_name[name] for name in plane.frontier])
    for i, points in enumerate(plane.profiles):
        draw_profile(plot, points, MARKERS[i % len(MARKERS)], PALETTE[i % len(PALETTE)])
    text = Text(f"{'':>{LABEL_WIDTH}} quality ↑ {plane.quality_measure} (%)\n", style="dim")
    tick_rows = {plot.at(x.lo, v)[0]: v for v in y_ticks}
    for row in range(rows):
        value = tick_rows.get(row)
        label = f"{value:.0f}%" if value is not None else ""
        text.append(f"{label:>{LABEL_WIDTH}}{'┤' if value is not None else '│'}", style="dim")
        text.append_text(plot.canvas.row_text(row))
        text.append("\n")
    fmt = "tokens" if plane.in_tokens else "money"
    labels = x_labels(x, x_ticks, fmt)
    axis = ["─"] * plot_width
    under = [" "] * (plot_width + LABEL_WIDTH + 2)
    for col, label in labels:
        axis[col] = "┬"
        start = max(0, min(col - len(label) // 2, plot_width - len(label)))
        under[LABEL_WIDTH + 1 + start : LABEL_WIDTH + 1 + start + len(label)] = label
    text.append(f"{'':>{LABEL_WIDTH}}└{''.join(axis)}\n", style="dim")
    text.append("".join(under).rstrip() + "\n", style="dim")
    what = "tokens per run (unpriced)" if plane.in_tokens else "cost per run ($)"
    scale = ", log scale" if x.log else ""
    title = f"{what}{scale} →"
    text.append(f"{title:>{LABEL_WIDTH + 1 + plot_width}}\n", style="dim")
    for line in keys:
        text.append_text(line)
        text.append("\n")
    text.rstrip()
    lines = text.split("\n")
    for line in lines:  # a very narrow panel crops the titles rather than wrapping them
        line.truncate(width, overflow="crop")
    return Text("\n").join(lines)


class BenchChart(Widget):
    """The chart, drawn to the size the layout gives it (every resize redraws it)."""

    DEFAULT_CSS = "BenchChart { height: 1fr; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.plane: BenchPlane | None = None

    def show(self, plane: BenchPlane | None) -> None:
        self.plane = plane
        self.refresh()

    def render(self) -> RenderableType:
        if self.plane is None:
            return Text("no bench results to chart", style="dim")
        size = self.content_size
        return cost_quality_chart(self.plane, max(20, size.width), max(8, size.height))
