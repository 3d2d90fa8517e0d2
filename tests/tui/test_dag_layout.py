"""The DAG drawing's layout and character grid, checked cell by cell on random DAGs.

``grid_problems`` walks the drawn characters: every line character must connect to a
neighbour that connects back, every arrow head must touch a node's box, every piece of
line must run from a node's port to an arrow. ``route_problems`` checks the edges' routes:
each plan edge is drawn from its source's port to an arrow at its target, and two edges
that share neither end never run along the same cells (they may only cross).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from director_tui.engine.models import Node, Plan
from director_tui.tui.dag_layout import DagLayout, crossings, layout, layout_graph, neighbourhood
from director_tui.tui.dag_routing import DOWN, LEFT, RIGHT, UP
from tests.support.sample_job import big_plan, sample_plan

Cell = tuple[int, int]
STEP = {UP: (0, -1), DOWN: (0, 1), LEFT: (-1, 0), RIGHT: (1, 0)}
OPPOSITE = {UP: DOWN, DOWN: UP, LEFT: RIGHT, RIGHT: LEFT}
# What each character connects to, read off the characters themselves.
CONNECTS = {
    "─": LEFT | RIGHT,
    "━": LEFT | RIGHT,
    "│": UP | DOWN,
    "┃": UP | DOWN,
    "┌": DOWN | RIGHT,
    "╭": DOWN | RIGHT,
    "┏": DOWN | RIGHT,
    "┐": DOWN | LEFT,
    "╮": DOWN | LEFT,
    "┓": DOWN | LEFT,
    "└": UP | RIGHT,
    "╰": UP | RIGHT,
    "┗": UP | RIGHT,
    "┘": UP | LEFT,
    "╯": UP | LEFT,
    "┛": UP | LEFT,
    "├": UP | DOWN | RIGHT,
    "┠": UP | DOWN | RIGHT,
    "┤": UP | DOWN | LEFT,
    "┬": LEFT | RIGHT | DOWN,
    "┴": LEFT | RIGHT | UP,
    "┼": UP | DOWN | LEFT | RIGHT,
    "▶": LEFT,
}


def grid_problems(lay: DagLayout) -> list[str]:
    grid = lay.grid()
    labels = lay.label_cells()
    in_box = {
        (x, y)
        for b in lay.boxes.values()
        for x in range(b.x, b.right + 1)
        for y in range(b.y, b.y + 3)
    }
    problems: list[str] = []

    def char(cell: Cell) -> str:
        x, y = cell
        inside = 0 <= y < len(grid) and 0 <= x < len(grid[y])
        return grid[y][x] if inside and cell not in labels else " "

    def is_box_left_border(cell: Cell) -> bool:
        x, y = cell
        return char(cell) in "│┃" and char((x, y - 1)) in "╭┏" and char((x, y + 1)) in "╰┗"

    line_cells: list[Cell] = []
    for y, row in enumerate(grid):
        for x, ch in enumerate(row):
            cell = (x, y)
            if cell in labels or ch == " ":
                continue
            mask = CONNECTS.get(ch)
            if mask is None:
                problems.append(f"unexpected {ch!r} at {cell}")
                continue
            if cell not in in_box:
                line_cells.append(cell)
            for bit, (dx, dy) in STEP.items():
                if mask & bit:
                    other = (x + dx, y + dy)
                    if not CONNECTS.get(char(other), 0) & OPPOSITE[bit]:
                        problems.append(f"{ch!r} at {cell} dangles toward {other}")
            if ch == "▶" and not is_box_left_border((x + 1, y)):
                problems.append(f"arrow at {cell} points at {char((x + 1, y))!r}, not a box")
    # every connected piece of line runs from a port (├ on a box) to an arrow head
    seen: set[Cell] = set()
    for start in line_cells:
        if start in seen:
            continue
        piece, stack, ports = [start], [start], 0
        seen.add(start)
        while stack:
            x, y = stack.pop()
            for bit, (dx, dy) in STEP.items():
                if not CONNECTS[char((x, y))] & bit:
                    continue
                other = (x + dx, y + dy)
                if other in in_box:
                    ports += char(other) in "├┠"
                elif other not in seen and char(other) != " ":
                    seen.add(other)
                    piece.append(other)
                    stack.append(other)
        if not ports or not any(char(c) == "▶" for c in piece):
            problems.append(f"a line at {start} does not run from a port to an arrow")
    return problems


def _moves(route: list[Cell], index: int) -> tuple[Cell, Cell]:
    x, y = route[index]
    before = route[index - 1] if index else (x - 1, y)  # the port is left of the first cell
    after = route[index + 1] if index + 1 < len(route) else (x + 1, y)  # the box, right
    return before, after


def route_problems(lay: DagLayout, edges: set[tuple[str, str]]) -> list[str]:
    problems: list[str] = []
    if set(lay.routes) != edges:
        problems.append(f"routes {sorted(lay.routes)} != edges {sorted(edges)}")
    straight: dict[Cell, list[tuple[str, str, str]]] = {}  # cell → (source, target, h|v|turn)
    for (s, t), route in lay.routes.items():
        src, dst = lay.boxes[s], lay.boxes[t]
        if route[0] != (src.right + 1, src.port_y) or route[-1] != (dst.x - 1, dst.port_y):
            problems.append(f"{s}→{t} does not run from {s}'s port to {t}'s arrow")
        if lay.arrows.get(route[-1]) != t:
            problems.append(f"{s}→{t} ends without an arrow into {t}")
        for i, cell in enumerate(route):
            (bx, by), (ax, ay) = _moves(route, i)
            if abs(bx - cell[0]) + abs(by - cell[1]) != 1:
                problems.append(f"{s}→{t} jumps at {cell}")
            shape = "h" if by == ay == cell[1] else "v" if bx == ax == cell[0] else "turn"
            straight.setdefault(cell, []).append((s, t, shape))
    for cell, passing in straight.items():
        for i, (s1, t1, k1) in enumerate(passing):
            for s2, t2, k2 in passing[i + 1 :]:
                if s1 == s2 or t1 == t2:
                    continue  # edges of one source, or into one target, share their lines
                if {k1, k2} != {"h", "v"}:
                    problems.append(f"{s1}→{t1} and {s2}→{t2} run together at {cell}")
    return problems


def plan_of(edges: dict[str, list[str]]) -> Plan:
    return Plan(nodes=[Node(id=n, depends_on=d) for n, d in edges.items()])


@st.composite
def random_dags(draw: st.DrawFn) -> dict[str, list[str]]:
    count = draw(st.integers(1, 24))
    names = [
        f"{draw(st.sampled_from(['n', 'node-', 'a-very-long-node-name-']))}{i}"
        for i in range(count)
    ]
    deps: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        earlier = names[:i]
        picks = draw(st.lists(st.sampled_from(earlier), max_size=4, unique=True)) if earlier else []
        deps[name] = picks
    return deps


@settings(max_examples=150, deadline=None)
@given(random_dags())
def test_random_dags_draw_clean_lines_and_every_edge(deps: dict[str, list[str]]) -> None:
    lay = layout_graph(list(deps), deps)
    assert grid_problems(lay) == []
    assert route_problems(lay, {(d, n) for n, ds in deps.items() for d in ds}) == []
    for node, ds in deps.items():
        for d in ds:
            assert lay.boxes[d].layer < lay.boxes[node].layer
    cells = [
        (x, y)
        for b in lay.boxes.values()
        for x in range(b.x, b.right + 1)
        for y in range(b.y, b.y + 3)
    ]
    assert len(cells) == len(set(cells)), "two boxes overlap"
    assert not set(lay.edges) & set(cells), "a line runs through a box"


def test_the_sample_plan_reads_left_to_right_with_straight_chains() -> None:
    lay = layout(sample_plan())
    assert lay.text_lines() == [
        "┏━━━━━━━┓    ┏━━━━━━━━┓    ┏━━━━━┓   ┏━━━━━━━┓",
        "┃● model┠─┬─▶┃● store ┠─┬─▶┃● cli┠──▶┃● entry┃",
        "┗━━━━━━━┛ │  ┗━━━━━━━━┛ │  ┗━━━━━┛   ┗━━━━━━━┛",
        "          │  ╭────────╮ │",
        "          ├─▶│● format├─┘",
        "          │  ╰────────╯",
        "          │  ╭────────╮",
        "          └─▶│● docs  │",
        "             ╰────────╯",
    ]
    assert lay.critical == ["model", "store", "cli", "entry"]


def test_sixty_nodes_draw_clean_and_the_sweeps_remove_crossings() -> None:
    plan = big_plan(60)
    lay = layout(plan)
    assert grid_problems(lay) == []
    edges = {(d, n.id) for n in plan.nodes for d in n.depends_on}
    assert route_problems(lay, edges) == []
    layers = [list(layer) for layer in lay.layers]
    assert crossings(layers, sorted(edges)) <= crossings(
        [sorted(layer) for layer in layers], sorted(edges)
    )


def test_a_long_id_is_cut_with_an_ellipsis_and_a_cycle_is_drawn_flat() -> None:
    lay = layout(
        plan_of(
            {"a-node-with-a-very-long-identifier": [], "b": ["a-node-with-a-very-long-identifier"]}
        )
    )
    assert "● a-node-with-a-ver…┠" in lay.text_lines()[1]
    flat = layout(plan_of({"a": ["b"], "b": ["a", "ghost"]}))
    assert [b.layer for b in flat.boxes.values()] == [0, 0] and not flat.routes
    assert grid_problems(flat) == []


def test_focus_moves_along_edges_and_within_layers() -> None:
    lay = layout(sample_plan())
    assert lay.step("model", "right") == "store"  # level with it
    assert lay.step("store", "down") == "format"
    assert lay.step("format", "right") == "cli"
    assert lay.step("cli", "left") == "store"
    assert lay.step("docs", "right") == "cli"  # no edge that way: the next layer's nearest
    assert lay.step("model", "left") is None
    assert lay.step("docs", "down") is None


def test_a_neighbourhood_is_the_node_its_ancestors_and_its_descendants() -> None:
    plan = sample_plan()
    assert neighbourhood(plan, "format") == {"model", "format", "cli", "entry"}
    lay = layout(plan, only=neighbourhood(plan, "format"))
    assert set(lay.boxes) == {"model", "format", "cli", "entry"}
    assert lay.critical == ["model", "cli", "entry"]  # the whole plan's path, cut
    assert grid_problems(lay) == []


def test_the_checkers_catch_a_dangling_line_a_lost_arrow_and_a_shared_run() -> None:
    """The checkers above are not vacuous: each defect they exist for is reported."""
    lay = layout(sample_plan())
    stray = layout(sample_plan())
    stray.edges[(stray.width - 1, stray.height - 1)] = LEFT | RIGHT  # a "─" into nothing
    assert any("dangles" in p for p in grid_problems(stray))
    lost = layout(sample_plan())
    arrow = next(c for c, t in lost.arrows.items() if t == "cli")
    del lost.arrows[arrow]  # the old drawing's "├─▶" into nothing, the other way round
    assert grid_problems(lost)
    pointless = layout(sample_plan())
    pointless.arrows[(0, pointless.height - 1)] = "docs"
    assert any("not a box" in p for p in grid_problems(pointless))
    edges = {(d, n.id) for n in sample_plan().nodes for d in n.depends_on}
    assert route_problems(lay, edges) == []
    lay.routes[("format", "cli")] = lay.routes[("store", "cli")]  # drawn over store's line
    assert route_problems(lay, edges)
    lay.routes[("store", "cli")] = lay.routes[("model", "docs")]
    assert any("run together" in p for p in route_problems(lay, edges))
