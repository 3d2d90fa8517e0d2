"""A cost-against-quality scatter drawn with characters (works at 80×24 and in NO_COLOR)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text

MARKERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
PALETTE = ("cyan", "magenta", "yellow", "green", "blue", "red")


@dataclass
class Point:
    label: str
    cost: float
    quality: float  # 0..100
    spread: float = 0.0  # ± on cost, drawn as a bar


def scatter(points: list[Point], width: int = 48, height: int = 10) -> Text:
    """Quality (%) up, run cost ($) right; each profile a letter, with a legend."""
    if not points:
        return Text("no bench results to chart", style="dim")
    max_cost = max(p.cost + p.spread for p in points) or 1.0
    grid: list[list[tuple[str, str]]] = [[(" ", "")] * width for _ in range(height)]
    for i, point in enumerate(points):
        style = PALETTE[i % len(PALETTE)]
        y = height - 1 - round(max(0.0, min(100.0, point.quality)) / 100 * (height - 1))
        x = round(point.cost / max_cost * (width - 1))
        if point.spread:
            lo = round(max(0.0, point.cost - point.spread) / max_cost * (width - 1))
            hi = round(min(max_cost, point.cost + point.spread) / max_cost * (width - 1))
            for bx in range(lo, hi + 1):
                if grid[y][bx][0] == " ":
                    grid[y][bx] = ("─", style)
        grid[y][x] = (MARKERS[i % len(MARKERS)], f"bold {style}")
    text = Text()
    for row_index, row in enumerate(grid):
        label = "100%" if row_index == 0 else ("  0%" if row_index == height - 1 else "    ")
        text.append(f"{label} │", style="dim")
        for char, style in row:
            text.append(char, style=style)
        text.append("\n")
    text.append("     └" + "─" * width + "\n", style="dim")
    text.append(f"      $0{' ' * (width - 12)}${max_cost:.2f}\n", style="dim")
    text.append("      run cost → · quality ↑ (nodes done %)\n", style="dim")
    for i, point in enumerate(points):
        text.append(f"  {MARKERS[i % len(MARKERS)]}", style=f"bold {PALETTE[i % len(PALETTE)]}")
        text.append(f" {point.label}  ${point.cost:.3f}  {point.quality:.0f}%\n")
    return text
