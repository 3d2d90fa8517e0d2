"""Lay a plan's DAG out on a character grid: layers left to right, boxed nodes, routed edges.

Pure Python (no Textual): the widget only colours what this computes, and tests check the
grid itself. The steps are the usual layered ("Sugiyama") drawing:

1. layers by longest path from the sources (a node sits one layer after its deepest
   dependency), with a placeholder ("dummy") in every layer a long edge crosses so no edge
   runs through a node;
2. order within each layer by barycentre sweeps, keeping the order with fewest crossings;
3. rows: each node is a 3-row box, each dummy a 1-row line, pulled level with its
   neighbours so chains draw straight;
4. edges routed in the channel between two layers (``dag_routing``), with box-drawing
   characters and an arrow head only where an edge enters a node.

The critical path (the heaviest chain, ``dag.critical_path``) is kept so the widget can
mark its nodes and edges.
"""

from __future__ import annotations

import graphlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import median_low

from director_tui.engine import dag
from director_tui.engine.models import Plan
from director_tui.tui.dag_routing import DOWN, LEFT, RIGHT, UP, route_channels

LIGHT = {
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
ARROW = "▶"
# Box borders: rounded for a node, heavy for a node on the critical path. The right border's
# middle cell is the out port when edges leave the node (heavy vertical, light right).
ROUND = ("╭", "╮", "╰", "╯", "─", "│", "├")
HEAVY = ("┏", "┓", "┗", "┛", "━", "┃", "┠")
MAX_LABEL = 20  # a label's widest: glyph, space and the id (longer ids end in "…")
BOX_HEIGHT = 3
DUMMY_PREFIX = "\x00"  # dummy keys start with a character no node id can hold


@dataclass(frozen=True)
class NodeBox:
    node_id: str
    layer: int
    x: int
    y: int
    width: int  # borders included

    @property
    def port_y(self) -> int:
        return self.y + 1

    @property
    def right(self) -> int:
        return self.x + self.width - 1


@dataclass
class DagLayout:
    width: int = 0
    height: int = 0
    boxes: dict[str, NodeBox] = field(default_factory=dict)
    layers: list[list[str]] = field(default_factory=list)  # real nodes, top to bottom
    edges: dict[tuple[int, int], int] = field(default_factory=dict)  # cell → direction mask
    arrows: dict[tuple[int, int], str] = field(default_factory=dict)  # cell → target node
    routes: dict[tuple[str, str], list[tuple[int, int]]] = field(default_factory=dict)
    parents: dict[str, list[str]] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)
    critical: list[str] = field(default_factory=list)  # the heaviest chain, first to last

    @property
    def critical_edges(self) -> set[tuple[str, str]]:
        pairs = zip(self.critical, self.critical[1:], strict=False)
        return {pair for pair in pairs if pair in self.routes}  # a cut path skips nodes

    def box_of(self, node_id: str) -> NodeBox | None:
        return self.boxes.get(node_id)

    def label(self, node_id: str, glyph: str = "●") -> str:
        """The box's inside: the glyph, a space and the id, cut with "…" to fit."""
        inner = self.boxes[node_id].width - 2
        text = f"{glyph} {node_id}"
        return (text if len(text) <= inner else text[: inner - 1] + "…").ljust(inner)

    def grid(self, glyphs: Mapping[str, str] | None = None) -> list[list[str]]:
        """Every cell's character; ``glyphs`` per node (default "●")."""
        rows = [[" "] * self.width for _ in range(self.height)]
        for (x, y), mask in self.edges.items():
            rows[y][x] = LIGHT[mask]
        for x, y in self.arrows:
            rows[y][x] = ARROW
        critical = set(self.critical)
        for box in self.boxes.values():
            tl, tr, bl, br, h, v, port = HEAVY if box.node_id in critical else ROUND
            inner = box.width - 2
            rows[box.y][box.x : box.right + 1] = [tl, *h * inner, tr]
            label = self.label(box.node_id, (glyphs or {}).get(box.node_id, "●"))
            out = port if self.children.get(box.node_id) else v
            rows[box.port_y][box.x : box.right + 1] = [v, *label, out]
            rows[box.y + 2][box.x : box.right + 1] = [bl, *h * inner, br]
        return rows

    def text_lines(self, glyphs: Mapping[str, str] | None = None) -> list[str]:
        """Plain rendering (for tests, and to read a drawing in a terminal)."""
        return ["".join(row).rstrip() for row in self.grid(glyphs)]

    def label_cells(self) -> set[tuple[int, int]]:
        """Cells holding label text (anything may be written there)."""
        return {(x, box.port_y) for box in self.boxes.values() for x in range(box.x + 1, box.right)}

    def step(self, node_id: str, direction: str) -> str | None:
        """The node keyboard focus moves to from ``node_id``: along an edge for left/right
        (the neighbour nearest in height), within the layer for up/down."""
        box = self.boxes.get(node_id)
        if box is None:
            return None
        if direction in ("up", "down"):
            layer = self.layers[box.layer]
            index = layer.index(node_id) + (1 if direction == "down" else -1)
            return layer[index] if 0 <= index < len(layer) else None
        linked = self.parents if direction == "left" else self.children
        candidates = linked.get(node_id) or []
        if not candidates:  # no edge that way: the nearest node of the next layer
            index = box.layer + (1 if direction == "right" else -1)
            candidates = self.layers[index] if 0 <= index < len(self.layers) else []
        return min(
            candidates,
            key=lambda n: (abs(self.boxes[n].port_y - box.port_y), self.boxes[n].port_y),
            default=None,
        )


def node_layers(plan: Plan) -> list[list[str]]:
    """Layers by depth; unknown deps are ignored and a cyclic plan falls back to one layer."""
    return _layers(plan.ids, _known_deps(plan))


def layout(plan: Plan, *, only: set[str] | None = None) -> DagLayout:
    """The plan's drawing; ``only`` keeps those nodes (a neighbourhood) and the edges among
    them. The critical path is the whole plan's, cut to what is shown."""
    deps = _known_deps(plan)
    critical = _critical_path(plan, deps)
    ids = plan.ids
    if only is not None:
        ids = [i for i in ids if i in only]
        deps = {i: [d for d in deps[i] if d in only] for i in ids}
        critical = [c for c in critical if c in only]
    return layout_graph(ids, deps, critical=critical)


def neighbourhood(plan: Plan, node_id: str) -> set[str]:
    """The node, everything it depends on and everything that depends on it."""
    deps = _known_deps(plan)
    up: set[str] = set()
    down: set[str] = set()
    children: dict[str, list[str]] = {i: [] for i in deps}
    for nid, ds in deps.items():
        for d in ds:
            children[d].append(nid)
    for seen, links in ((up, deps), (down, children)):
        stack = [node_id]
        while stack:
            for nxt in links.get(stack.pop(), []):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
    return up | down | {node_id}


def layout_graph(
    ids: Sequence[str], deps: Mapping[str, Sequence[str]], *, critical: Sequence[str] = ()
) -> DagLayout:
    """Lay out nodes ``ids`` where ``deps[n]`` are the nodes ``n`` depends on (known ids only)."""
    ids = list(dict.fromkeys(ids))
    if not ids:
        return DagLayout()
    layers = _layers(ids, deps)
    layer_of = {nid: i for i, layer in enumerate(layers) for nid in layer}
    # edges inside one layer (a cyclic plan drawn flat) are left out
    parents = {
        n: [
            d for d in dict.fromkeys(deps.get(n, [])) if d in layer_of and layer_of[d] < layer_of[n]
        ]
        for n in ids
    }
    children: dict[str, list[str]] = {n: [] for n in ids}
    for n in ids:
        for d in parents[n]:
            children[d].append(n)
    items, links = _with_dummies(layers, parents, layer_of)
    _order(items, links)
    widths = [_layer_width(layer) for layer in items]
    tops = _rows(items, links)
    out = DagLayout(
        layers=[[k for k in layer if not _is_dummy(k)] for layer in items],
        parents=parents,
        children=children,
        critical=[c for c in critical if c in layer_of],
    )
    routing = route_channels(items, links, widths, tops, BOX_HEIGHT, _is_dummy)
    for li, layer in enumerate(out.layers):
        for key in layer:
            out.boxes[key] = NodeBox(key, li, routing.layer_x[li], tops[key], widths[li])
    out.width, out.height = routing.width, routing.height
    out.edges, out.arrows, out.routes = routing.edges, routing.arrows, routing.routes
    return out


# -- layering --------------------------------------------------------------------------


def _known_deps(plan: Plan) -> dict[str, list[str]]:
    ids = set(plan.ids)
    return {n.id: [d for d in n.depends_on if d in ids and d != n.id] for n in plan.nodes}


def _critical_path(plan: Plan, deps: dict[str, list[str]]) -> list[str]:
    """The heaviest chain, or none when the plan has a cycle (validation says so)."""
    clean = plan.model_copy(
        update={"nodes": [n.model_copy(update={"depends_on": deps[n.id]}) for n in plan.nodes]}
    )
    if not clean.nodes or dag.find_cycle(clean):
        return []
    return dag.critical_path(clean)[1]


def _layers(ids: Sequence[str], deps: Mapping[str, Sequence[str]]) -> list[list[str]]:
    known = set(ids)
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for nid in ids:
        sorter.add(nid, *[d for d in deps.get(nid, []) if d in known and d != nid])
    try:
        sorter.prepare()
    except graphlib.CycleError:
        return [list(dict.fromkeys(ids))]
    order = {nid: i for i, nid in enumerate(ids)}
    result: list[list[str]] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=lambda n: order.get(n, 0))
        result.append(ready)
        sorter.done(*ready)
    return result


def _is_dummy(key: str) -> bool:
    return key.startswith(DUMMY_PREFIX)


def _with_dummies(
    layers: list[list[str]], parents: Mapping[str, list[str]], layer_of: Mapping[str, int]
) -> tuple[list[list[str]], list[tuple[str, str]]]:
    """Items per layer (nodes and dummies) and the links between consecutive layers. A
    dummy's key names its edge and layer: "\\0<dep>\\0<node>\\0<layer>"."""
    items = [list(layer) for layer in layers]
    links: list[tuple[str, str]] = []
    for layer in layers:
        for node in layer:
            for dep in parents[node]:
                prev = dep
                for mid in range(layer_of[dep] + 1, layer_of[node]):
                    key = f"{DUMMY_PREFIX}{dep}{DUMMY_PREFIX}{node}{DUMMY_PREFIX}{mid}"
                    items[mid].append(key)
                    links.append((prev, key))
                    prev = key
                links.append((prev, node))
    return items, links


def _layer_width(layer: list[str]) -> int:
    real = [len(k) + 2 for k in layer if not _is_dummy(k)]
    return min(MAX_LABEL, max(real, default=1)) + 2


# -- ordering ----------------------------------------------------------------------------


def _order(items: list[list[str]], links: list[tuple[str, str]], sweeps: int = 6) -> None:
    """Barycentre sweeps down and up; the best order seen (fewest crossings) is kept."""
    up: dict[str, list[str]] = {}
    down: dict[str, list[str]] = {}
    for s, t in links:
        up.setdefault(t, []).append(s)
        down.setdefault(s, []).append(t)
    best = [list(layer) for layer in items]
    best_crossings = crossings(items, links)
    for _sweep in range(sweeps):
        for li in range(1, len(items)):
            _sort_layer(items, li, li - 1, up)
        for li in range(len(items) - 2, -1, -1):
            _sort_layer(items, li, li + 1, down)
        count = crossings(items, links)
        if count < best_crossings:
            best, best_crossings = [list(layer) for layer in items], count
        if count == 0:
            break
    # nodes with no edge at all go last in their layer, out of the connected ones' way
    linked = set(up) | set(down)
    items[:] = [
        [k for k in layer if k in linked] + [k for k in layer if k not in linked] for layer in best
    ]


def _sort_layer(
    items: list[list[str]], layer: int, ref: int, neighbours: Mapping[str, list[str]]
) -> None:
    index = {key: i for i, key in enumerate(items[ref])}
    current = {key: i for i, key in enumerate(items[layer])}
    scale = len(items[ref]) / max(1, len(items[layer]))

    def weight(key: str) -> float:
        near = [index[n] for n in neighbours.get(key, []) if n in index]
        return sum(near) / len(near) if near else current[key] * scale

    items[layer].sort(key=lambda k: (weight(k), current[k]))


def crossings(items: list[list[str]], links: list[tuple[str, str]]) -> int:
    """Pairs of links between the same two layers that cross (by position in the layers)."""
    pos = {key: i for layer in items for i, key in enumerate(layer)}
    layer_of = {key: li for li, layer in enumerate(items) for key in layer}
    by_gap: dict[int, list[tuple[int, int]]] = {}
    for s, t in links:
        by_gap.setdefault(layer_of[s], []).append((pos[s], pos[t]))
    total = 0
    for pairs in by_gap.values():
        for i, (a1, b1) in enumerate(pairs):
            for a2, b2 in pairs[i + 1 :]:
                if (a1 - a2) * (b1 - b2) < 0:
                    total += 1
    return total


# -- rows ----------------------------------------------------------------------------------


def _height(key: str) -> int:
    return 1 if _is_dummy(key) else BOX_HEIGHT


def _port(key: str) -> int:
    """The port row's offset from the item's top."""
    return 0 if _is_dummy(key) else 1


def _rows(items: list[list[str]], links: list[tuple[str, str]]) -> dict[str, int]:
    """Each item's top row: stacked in order, each pulled level with its neighbours (parents
    on the last pass, so chains run straight left to right)."""
    up: dict[str, list[str]] = {}
    down: dict[str, list[str]] = {}
    for s, t in links:
        up.setdefault(t, []).append(s)
        down.setdefault(s, []).append(t)
    tops: dict[str, int] = {}
    for layer in items:
        _place(layer, tops, {})
    order = list(range(len(items)))
    for layer_indices, links_of in ((order[::-1], down), (order, up)):
        for li in layer_indices:
            wanted = {
                key: median_low(sorted(tops[n] + _port(n) for n in links_of[key]))
                for key in items[li]
                if links_of.get(key)
            }
            _place(items[li], tops, wanted)
    return tops


def _place(layer: list[str], tops: dict[str, int], wanted_port: Mapping[str, float]) -> None:
    """Top to bottom in order: each item as high as its wanted row allows without
    overlapping the one above (a line keeps one free row from its neighbours)."""
    bottom = -1  # the last used row
    previous: str | None = None
    for key in layer:
        gap = 1 if previous is not None and (_is_dummy(key) or _is_dummy(previous)) else 0
        lowest = bottom + 1 + gap
        want = wanted_port.get(key)
        top = lowest if want is None else max(lowest, round(want) - _port(key))
        tops[key] = top
        bottom = top + _height(key) - 1
        previous = key
