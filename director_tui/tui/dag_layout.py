"""Lay a plan's DAG out on a character grid: layers left to right, edges between them.

Pure Python (no Textual): the widget only colours what this computes. Long edges get a
placeholder in every layer they cross (the usual layered-drawing trick) so no edge runs
through a node; a few barycentre sweeps keep crossings down; every source in a gap gets
its own vertical track (up to a cap) so edges stay tellable apart.
"""

from __future__ import annotations

import graphlib
from dataclasses import dataclass, field

from director_tui.engine.models import Plan

UP, DOWN, LEFT, RIGHT = 1, 2, 4, 8
BOX = {
    LEFT | RIGHT: "─",
    LEFT: "─",
    RIGHT: "─",
    UP | DOWN: "│",
    UP: "│",
    DOWN: "│",
    DOWN | RIGHT: "┌",
    DOWN | LEFT: "┐",
    UP | RIGHT: "└",
    UP | LEFT: "┘",
    UP | DOWN | RIGHT: "├",
    UP | DOWN | LEFT: "┤",
    LEFT | RIGHT | DOWN: "┬",
    LEFT | RIGHT | UP: "┴",
    UP | DOWN | LEFT | RIGHT: "┼",
}
MAX_LABEL = 22
MAX_TRACKS = 10


@dataclass
class Box:
    node_id: str  # "" for a placeholder carrying a long edge through a layer
    x: int
    y: int
    width: int


@dataclass
class DagLayout:
    width: int = 0
    height: int = 0
    boxes: list[Box] = field(default_factory=list)
    edges: dict[tuple[int, int], int] = field(default_factory=dict)  # cell → direction mask
    arrows: set[tuple[int, int]] = field(default_factory=set)
    layers: int = 0

    def box_of(self, node_id: str) -> Box | None:
        return next((b for b in self.boxes if b.node_id == node_id), None)

    def edge_char(self, x: int, y: int) -> str:
        if (x, y) in self.arrows:
            return "▶"
        mask = self.edges.get((x, y))
        return BOX.get(mask, " ") if mask else " "

    def text_lines(self, labels: dict[str, str] | None = None) -> list[str]:
        """Plain rendering (for tests and NO_COLOR captures)."""
        grid = [[self.edge_char(x, y) for x in range(self.width)] for y in range(self.height)]
        for box in self.boxes:
            label = (labels or {}).get(box.node_id, box.node_id) if box.node_id else ""
            text = label[: box.width].ljust(box.width) if box.node_id else "─" * box.width
            for i, ch in enumerate(text):
                grid[box.y][box.x + i] = ch
        return ["".join(row).rstrip() for row in grid]


def node_layers(plan: Plan) -> list[list[str]]:
    """Layers by depth; unknown deps are ignored and a cyclic plan falls back to one layer."""
    ids = set(plan.ids)
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for node in plan.nodes:
        sorter.add(node.id, *[d for d in node.depends_on if d in ids and d != node.id])
    try:
        sorter.prepare()
    except graphlib.CycleError:
        return [list(dict.fromkeys(plan.ids))]
    order = {nid: i for i, nid in enumerate(plan.ids)}
    result: list[list[str]] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=lambda n: order.get(n, 0))
        result.append(ready)
        sorter.done(*ready)
    return result


def layout(plan: Plan, label_width: int | None = None) -> DagLayout:
    layers = node_layers(plan)
    if not layers:
        return DagLayout()
    layer_of = {nid: i for i, layer in enumerate(layers) for nid in layer}
    ids = set(layer_of)
    # items: node ids, or placeholder keys "~<src>><dst>#<layer>" for long edges
    items: list[list[str]] = [list(layer) for layer in layers]
    links: list[tuple[str, str]] = []  # consecutive-layer links between items
    for node in plan.nodes:
        for dep in dict.fromkeys(node.depends_on):
            if dep not in ids or dep == node.id or node.id not in layer_of:
                continue
            a, b = layer_of[dep], layer_of[node.id]
            if b <= a:
                continue
            prev = dep
            for mid in range(a + 1, b):
                key = f"~{dep}>{node.id}#{mid}"
                items[mid].append(key)
                links.append((prev, key))
                prev = key
            links.append((prev, node.id))
    _order_by_barycentre(items, links)
    width = label_width or min(MAX_LABEL, max(len(n) for n in plan.ids) + 4)
    pos: dict[str, tuple[int, int]] = {}
    out = DagLayout(layers=len(items))
    x = 0
    gap_starts: list[int] = []
    sources_per_gap: list[list[str]] = []
    for li, layer in enumerate(items):
        for y, key in enumerate(layer):
            pos[key] = (x, y * 2)
            out.boxes.append(Box("" if key.startswith("~") else key, x, y * 2, width))
        x += width
        if li < len(items) - 1:
            sources = list(dict.fromkeys(s for s, t in links if s in layer))
            tracks = max(1, min(MAX_TRACKS, len(sources)))
            gap_starts.append(x)
            sources_per_gap.append(sources)
            x += tracks + 3
    out.width = x
    out.height = max((len(layer) for layer in items), default=0) * 2
    for gi, sources in enumerate(sources_per_gap):
        gap = gap_starts[gi]
        for ti, source in enumerate(sources):
            track = gap + 1 + (ti % MAX_TRACKS)
            sy = pos[source][1]
            targets = [t for s, t in links if s == source]
            _hline(out, sy, gap, track)
            for target in targets:
                tx, ty = pos[target]
                _vline(out, track, sy, ty)
                _hline(out, ty, track, tx - 1)
                if not target.startswith("~"):
                    out.arrows.add((tx - 1, ty))
    return out


def _order_by_barycentre(items: list[list[str]], links: list[tuple[str, str]]) -> None:
    parents: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {}
    for s, t in links:
        parents.setdefault(t, []).append(s)
        children.setdefault(s, []).append(t)
    for _sweep in range(3):
        for li in range(1, len(items)):
            _sort_layer(items, li, li - 1, parents)
        for li in range(len(items) - 2, -1, -1):
            _sort_layer(items, li, li + 1, children)


def _sort_layer(
    items: list[list[str]], layer: int, ref: int, neighbours: dict[str, list[str]]
) -> None:
    index = {key: i for i, key in enumerate(items[ref])}
    current = {key: i for i, key in enumerate(items[layer])}

    def weight(key: str) -> float:
        near = [index[n] for n in neighbours.get(key, []) if n in index]
        return sum(near) / len(near) if near else float(current[key])

    items[layer].sort(key=lambda k: (weight(k), current[k]))


def _mark(out: DagLayout, x: int, y: int, mask: int) -> None:
    out.edges[(x, y)] = out.edges.get((x, y), 0) | mask


def _hline(out: DagLayout, y: int, x1: int, x2: int) -> None:
    if x1 == x2:
        return
    lo, hi = min(x1, x2), max(x1, x2)
    for x in range(lo, hi + 1):
        mask = (LEFT if x > lo else 0) | (RIGHT if x < hi else 0)
        _mark(out, x, y, mask)


def _vline(out: DagLayout, x: int, y1: int, y2: int) -> None:
    if y1 == y2:
        return
    lo, hi = min(y1, y2), max(y1, y2)
    for y in range(lo, hi + 1):
        mask = (UP if y > lo else 0) | (DOWN if y < hi else 0)
        _mark(out, x, y, mask)
