"""The plan's DAG as a coloured, scrollable graph (layout computed by ``dag_layout``).

Keyboard: the arrows move the focus along edges (left/right) and within a layer (up/down);
``n`` shows only the focused node's neighbourhood (its ancestors and descendants), which
keeps a 60-node plan readable; enter asks the screen to open the node.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import ScrollableContainer
from textual.geometry import Region
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from director_tui.engine.models import Plan
from director_tui.tui.board import GLYPHS, STATUS_WORDS
from director_tui.tui.dag_layout import DagLayout, layout, neighbourhood

# Colours name Textual theme variables' plain equivalents so NO_COLOR strips them cleanly.
STATE_STYLE = {
    "pending": "",
    "running": "bold yellow",
    "gating": "yellow",
    "reviewing": "cyan",
    "merging": "cyan",
    "awaiting_review": "bold magenta",
    "done": "green",
    "failed": "bold red",
    "blocked": "magenta",
    "skipped": "dim",
    "cancelled": "dim",
}
DIFFICULTY_STYLE = {"easy": "green", "medium": "yellow", "hard": "red"}
EDGE_STYLE = "dim"
CRITICAL_STYLE = "bold"  # with the heavy box borders the layout draws on the path


class DagView(Widget, can_focus=True):
    """Layers left to right; state colours when a run exists, difficulty colours before."""

    DEFAULT_CSS = """
    DagView { height: 1fr; }
    DagView > #dag-scroll { height: 1fr; overflow: auto auto; }
    DagView #dag-canvas { width: auto; height: auto; }
    DagView > #dag-legend { height: 1; color: $text-muted; }
    """
    BINDINGS = [
        Binding("up", "step('up')", "Up", show=False),
        Binding("down", "step('down')", "Down", show=False),
        Binding("left", "step('left')", "Parent", show=False),
        Binding("right", "step('right')", "Child", show=False),
        Binding(
            "n",
            "neighbourhood",
            "Neighbourhood",
            show=False,  # the legend says it while the graph has the focus
            tooltip="Only the focused node's ancestors and descendants, or all again",
        ),
        Binding("enter", "choose", "Open", show=False),
    ]

    class Selected(Message):
        """The focus moved to ``node_id`` in the graph."""

        def __init__(self, node_id: str) -> None:
            super().__init__()
            self.node_id = node_id

    class Chosen(Message):
        """Enter on ``node_id``."""

        def __init__(self, node_id: str) -> None:
            super().__init__()
            self.node_id = node_id

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.graph = Static("", id="dag-canvas", expand=False, shrink=False)
        self.legend = Static("", id="dag-legend")
        self.plan: Plan | None = None
        self.states: dict[str, str] = {}
        self.selected: str | None = None
        self.invalid: set[str] = set()
        self.focus_on: str | None = None  # the neighbourhood shown, or None for all
        self._layout = DagLayout()

    def compose(self) -> ComposeResult:
        scroll = ScrollableContainer(self.graph, id="dag-scroll")
        scroll.can_focus = False  # the graph itself takes the keys
        yield scroll
        yield self.legend

    @property
    def drawing(self) -> DagLayout:
        return self._layout

    def show(
        self,
        plan: Plan | None,
        *,
        states: dict[str, str] | None = None,
        selected: str | None = None,
        invalid: set[str] | None = None,
    ) -> None:
        self.plan = plan
        self.states = states or {}
        self.selected = selected
        self.invalid = invalid or set()
        if plan is None or self.focus_on not in plan.ids:
            self.focus_on = None
        self.relayout()
        self.scroll_to_selected()

    def relayout(self) -> None:
        plan = self.plan
        if plan is None or not plan.nodes:
            self._layout = DagLayout()
        else:
            only = neighbourhood(plan, self.focus_on) if self.focus_on else None
            self._layout = layout(plan, only=only)
        self.repaint()

    def set_states(self, states: dict[str, str]) -> None:
        """New node states (a run moved on): recolour, same drawing."""
        if states != self.states:
            self.states = dict(states)
            self.repaint()

    def select(self, node_id: str | None) -> None:
        if node_id == self.selected:
            return
        self.selected = node_id
        if self.focus_on and node_id and node_id not in self._layout.boxes:
            self.focus_on = node_id  # picked elsewhere (the table): its neighbourhood now
            self.relayout()
        else:
            self.repaint()
        self.scroll_to_selected()

    def repaint(self) -> None:
        self.graph.update(self.render_graph())
        self.legend.update(self.render_legend())

    # -- drawing ----------------------------------------------------------------------
    def render_graph(self) -> Text:
        lay = self._layout
        if self.plan is None or not lay.boxes:
            return Text("no plan yet", style="dim")
        glyphs = {nid: self._glyph(nid) for nid in lay.boxes}
        critical = {c for edge in lay.critical_edges for c in lay.routes[edge]}
        owner: dict[tuple[int, int], str] = {
            (x, y): b.node_id
            for b in lay.boxes.values()
            for x in range(b.x, b.right + 1)
            for y in range(b.y, b.y + 3)
        }
        labels = lay.label_cells()
        node_style = {nid: self._style(nid) for nid in lay.boxes}
        text = Text(no_wrap=True, overflow="ignore", end="")
        for y, row in enumerate(lay.grid(glyphs)):
            run, run_style = "", ""
            for x, ch in enumerate(row):
                node = owner.get((x, y))
                if node is not None:
                    style = node_style[node]
                    if node == self.selected and (x, y) in labels:
                        style = f"{style} reverse".strip()
                elif ch == " ":
                    style = ""
                else:
                    style = CRITICAL_STYLE if (x, y) in critical else EDGE_STYLE
                if style != run_style and run:
                    text.append(run, style=run_style)
                    run = ""
                run, run_style = run + ch, style
            text.append(run.rstrip() if not run_style else run, style=run_style)
            text.append("\n")
        return text

    def render_legend(self, focused: bool | None = None) -> Text:
        """What the marks mean; the keys while the graph has the focus (``focused`` says so
        when the focus is on its way in or out)."""
        lay = self._layout
        legend = Text(no_wrap=True, overflow="ellipsis")
        if not lay.boxes:
            return legend
        if self.focus_on and self.plan is not None:
            legend.append(
                f"neighbourhood of {self.focus_on}: {len(lay.boxes)} of "
                f"{len(self.plan.nodes)} nodes (n: all)  ",
                style="bold",
            )
        elif self.has_focus if focused is None else focused:
            legend.append("←→ along edges ↑↓ in a layer n neighbourhood  ", style="italic")
        if lay.critical:
            legend.append("┏━┓ critical path ", style=CRITICAL_STYLE)
            legend.append(" → ".join(lay.critical) + "  ")
        if not self.states:
            for name, style in DIFFICULTY_STYLE.items():
                legend.append(f"● {name} ", style=style)
        order = list(GLYPHS)
        shown = sorted(
            set(self.states.values()),
            key=lambda s: (s not in order, order.index(s) if s in order else 0, s),
        )
        for status in shown:
            word = STATUS_WORDS.get(status, status)
            legend.append(f"{GLYPHS.get(status, '●')} {word} ", style=STATE_STYLE.get(status, ""))
        return legend

    def on_focus(self) -> None:
        if self.selected not in self._layout.boxes:
            self.action_step("down")  # something to move from
        self.legend.update(self.render_legend(focused=True))

    def on_blur(self) -> None:
        self.legend.update(self.render_legend(focused=False))

    def _glyph(self, node_id: str) -> str:
        if node_id in self.invalid:
            return "!"
        status = self.states.get(node_id)
        return GLYPHS.get(status, "●") if status else "●"

    def _style(self, node_id: str) -> str:
        if node_id in self.invalid:
            return "bold red"
        if node_id in self.states:
            return STATE_STYLE.get(self.states[node_id], "")
        assert self.plan is not None
        difficulty = next((n.estimated_difficulty for n in self.plan.nodes if n.id == node_id), "")
        return DIFFICULTY_STYLE.get(difficulty, "")

    def scroll_to_selected(self) -> None:
        if not self.selected:
            return
        box = self._layout.box_of(self.selected)
        if box is not None:
            scroll = self.query_one("#dag-scroll", ScrollableContainer)
            region = Region(box.x, box.y, box.width, 3)
            scroll.scroll_to_region(region, animate=False, spacing=None)

    # -- keys -------------------------------------------------------------------------
    def action_step(self, direction: str) -> None:
        current = self.selected if self.selected in self._layout.boxes else None
        if current is None:
            target = next(iter(self._layout.boxes), None)
        else:
            target = self._layout.step(current, direction)
        if target is not None:
            self.select(target)
            self.post_message(self.Selected(target))

    def action_neighbourhood(self) -> None:
        """Only the focused node's ancestors and descendants, or everything again."""
        if self.plan is None:
            return
        if self.focus_on is None and self.selected in self.plan.ids:
            self.focus_on = self.selected
        else:
            self.focus_on = None
        self.relayout()
        self.scroll_to_selected()

    def action_choose(self) -> None:
        if self.selected is not None:
            self.post_message(self.Chosen(self.selected))
