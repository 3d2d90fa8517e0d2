"""Edge routing for ``dag_layout``: the channel between two layers, one vertical track per
source.

An edge leaves its source's port, runs right to the source's track, along the track to its
target's row, then right into the target (an arrow head there, or on through a dummy).
Edges that share a track share their source; edges that meet on a row share their target.
Two rules keep unrelated edges from ever running on top of each other:

1. sources on one track have rows that do not overlap (interval colouring), and
2. where a source and a target sit on the same row, the source's track is left of every
   other track feeding that target (else the target's line would run back over the
   source's line). When these demands form a cycle, the target moves down a row.

So a cell two unrelated edges share is a plain crossing (``┼``), never a shared run.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

UP, DOWN, LEFT, RIGHT = 1, 2, 4, 8
Cell = tuple[int, int]
MAX_SHIFTS = 200  # moves of a target per channel before its layer goes below the other


@dataclass
class Routing:
    layer_x: list[int] = field(default_factory=list)  # each layer's left column
    width: int = 0
    height: int = 0
    edges: dict[Cell, int] = field(default_factory=dict)  # cell → direction mask
    arrows: dict[Cell, str] = field(default_factory=dict)  # arrow head → its target
    # each plan edge's cells, from the one right of its source's port to its arrow head
    routes: dict[tuple[str, str], list[Cell]] = field(default_factory=dict)


def route_channels(
    items: list[list[str]],
    links: list[tuple[str, str]],
    widths: list[int],
    tops: dict[str, int],
    box_height: int,
    is_dummy: Callable[[str], bool],
) -> Routing:
    """Place every layer left to right (``tops`` may move down) and route the edges."""

    def port(key: str) -> int:
        return tops[key] + (0 if is_dummy(key) else 1)

    def height(key: str) -> int:
        return 1 if is_dummy(key) else box_height

    out = Routing(layer_x=[0] * len(items))
    layer_x = out.layer_x
    # the channel's cells for each link, left to right, and the dummies' own cells
    link_cells: dict[tuple[str, str], list[Cell]] = {}
    through: dict[str, list[Cell]] = {}
    for li, layer in enumerate(items):
        x = layer_x[li]
        for key in layer:
            if is_dummy(key):
                through[key] = [(x + i, port(key)) for i in range(widths[li])]
        if li == len(items) - 1:
            break
        here = set(layer)
        gap = [(s, t) for s, t in links if s in here]
        _untangle(items[li + 1], gap, port, tops, height, is_dummy)
        tracks = _tracks(gap, port)
        c0 = x + widths[li]
        c1 = c0 + (max(tracks.values()) + 1 if tracks else 0) + 2
        for s, t in gap:
            if s in tracks:
                xt = c0 + 1 + tracks[s]
                corners = [(c0, port(s)), (xt, port(s)), (xt, port(t)), (c1, port(t))]
            else:
                corners = [(c0, port(s)), (c1, port(t))]
            link_cells[(s, t)] = _cells(corners)
        layer_x[li + 1] = c1 + 1
    out.width = layer_x[-1] + widths[-1]
    out.height = max((tops[k] + height(k) for layer in items for k in layer), default=0)
    _draw(out, links, link_cells, through, is_dummy)
    return out


def _untangle(
    targets: list[str],
    gap: list[tuple[str, str]],
    port: Callable[[str], int],
    tops: dict[str, int],
    height: Callable[[str], int],
    is_dummy: Callable[[str], bool],
) -> None:
    """Move targets down until rule 2's demands have no cycle."""
    for _attempt in range(MAX_SHIFTS):
        stuck = _cycle_row(gap, port)
        if stuck is None:
            return
        index = next(i for i, t in enumerate(targets) if port(t) == stuck)
        _push_down(targets, index, 1, tops, height, is_dummy)
    # Still tangled: the whole target layer goes below the sources (no shared rows left).
    below = max(port(s) for s, _ in gap) + 1 - tops[targets[0]]
    _push_down(targets, 0, max(0, below), tops, height, is_dummy)


def _push_down(
    layer: list[str],
    index: int,
    by: int,
    tops: dict[str, int],
    height: Callable[[str], int],
    is_dummy: Callable[[str], bool],
) -> None:
    """Move ``layer[index]`` down ``by`` rows, and the ones below it as far as needed."""
    tops[layer[index]] += by
    for above, key in zip(layer[index:], layer[index + 1 :], strict=False):
        gap = 1 if is_dummy(key) or is_dummy(above) else 0
        tops[key] = max(tops[key], tops[above] + height(above) + gap)


def _needs_track(source: str, gap: list[tuple[str, str]], port: Callable[[str], int]) -> bool:
    return any(port(t) != port(source) for s, t in gap if s == source)


def _demands(gap: list[tuple[str, str]], port: Callable[[str], int]) -> dict[str, set[str]]:
    """Rule 2: source → the sources whose tracks must lie right of its track."""
    tracked = {s for s, _ in gap if _needs_track(s, gap, port)}
    feeders: dict[int, set[str]] = {}  # a target's row → the tracked sources feeding it
    for s, t in gap:
        if s in tracked:
            feeders.setdefault(port(t), set()).add(s)
    return {s: feeders.get(port(s), set()) - {s} for s in tracked}


def _cycle_row(gap: list[tuple[str, str]], port: Callable[[str], int]) -> int | None:
    """A row where rule 2's demands go round in a circle, or None."""
    right_of = _demands(gap, port)
    state: dict[str, int] = {}  # 1 visiting, 2 done
    for start in right_of:
        if state.get(start):
            continue
        stack = [(start, iter(sorted(right_of[start])))]
        state[start] = 1
        while stack:
            node, todo = stack[-1]
            nxt = next(todo, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return port(nxt)  # nxt's row has a target fed from further right
            elif not state.get(nxt):
                state[nxt] = 1
                stack.append((nxt, iter(sorted(right_of[nxt]))))
    return None


def _tracks(gap: list[tuple[str, str]], port: Callable[[str], int]) -> dict[str, int]:
    """Each source's track (0 = leftmost): rule 2's order first, then fewest crossings
    (a source whose edges go down takes a track left of the sources above it, one whose
    edges go up left of those below), then the leftmost track its rows are free on."""
    right_of = _demands(gap, port)
    span: dict[str, tuple[int, int]] = {}
    for s in right_of:
        rows = [port(s), *(port(t) for x, t in gap if x == s)]
        span[s] = (min(rows), max(rows))

    def key(s: str) -> tuple[int, int, str]:
        downward = sum(port(t) for x, t in gap if x == s) >= port(s) * sum(
            1 for x, _ in gap if x == s
        )
        return (0, -port(s), s) if downward else (1, port(s), s)

    waiting = {s: 0 for s in right_of}
    for later in right_of.values():
        for other in later:
            waiting[other] += 1
    ready = [key(s) for s, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    taken: list[list[tuple[int, int]]] = []
    track: dict[str, int] = {}
    floor: dict[str, int] = dict.fromkeys(right_of, 0)
    while ready:
        s = heapq.heappop(ready)[2]
        lo, hi = span[s]
        t = floor[s]
        while t < len(taken) and any(not (hi < a or b < lo) for a, b in taken[t]):
            t += 1
        if t == len(taken):
            taken.append([])
        taken[t].append((lo, hi))
        track[s] = t
        for other in right_of[s]:
            floor[other] = max(floor[other], t + 1)
            waiting[other] -= 1
            if waiting[other] == 0:
                heapq.heappush(ready, key(other))
    return track


def _cells(corners: list[Cell]) -> list[Cell]:
    """The cells of a path through ``corners`` (each step horizontal or vertical)."""
    cells = [corners[0]]
    for (x1, y1), (x2, y2) in itertools.pairwise(corners):
        dx = (x2 > x1) - (x2 < x1)
        dy = (y2 > y1) - (y2 < y1)
        x, y = x1, y1
        while (x, y) != (x2, y2):
            x, y = (x + dx, y) if x != x2 else (x, y + dy)
            cells.append((x, y))
    return cells


def _draw(
    out: Routing,
    links: list[tuple[str, str]],
    link_cells: Mapping[tuple[str, str], list[Cell]],
    through: Mapping[str, list[Cell]],
    is_dummy: Callable[[str], bool],
) -> None:
    """Each plan edge's whole route (channels and dummies), then its cells' directions."""
    next_of = {s: t for s, t in links if is_dummy(s) or is_dummy(t)}
    for s, t in links:
        if is_dummy(s):
            continue  # drawn from the edge's real source
        cells = list(link_cells[(s, t)])
        key = t
        while is_dummy(key):
            cells += through[key]
            nxt = next_of[key]
            cells += link_cells[(key, nxt)]
            key = nxt
        out.routes[(s, key)] = cells
    for (_, target), cells in out.routes.items():
        _mark(out, cells[0], LEFT)  # from the source's port
        for a, b in itertools.pairwise(cells):
            _join(out, a, b)
        out.arrows[cells[-1]] = target
    for cell in out.arrows:
        out.edges.pop(cell, None)


def _mark(out: Routing, cell: Cell, bit: int) -> None:
    out.edges[cell] = out.edges.get(cell, 0) | bit


def _join(out: Routing, a: Cell, b: Cell) -> None:
    """Connect two neighbouring cells: each gets the bit pointing at the other."""
    (x1, y1), (x2, y2) = a, b
    toward_b = (RIGHT if x2 > x1 else LEFT) if x1 != x2 else DOWN if y2 > y1 else UP
    _mark(out, a, toward_b)
    _mark(out, b, {RIGHT: LEFT, LEFT: RIGHT, DOWN: UP, UP: DOWN}[toward_b])
