"""The plan's DAG as a coloured, scrollable graph (layout computed by ``dag_layout``)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import ScrollableContainer
from textual.geometry import Region
from textual.widgets import Static

from director_tui.engine.models import Plan
from director_tui.tui.board import GLYPHS
from director_tui.tui.dag_layout import DagLayout, layout

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


class DagView(ScrollableContainer, can_focus=False):
    """Layers left to right; state colours when a run exists, difficulty colours before."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.graph = Static("", id="dag-canvas", expand=False, shrink=False)
        self.plan: Plan | None = None
        self.states: dict[str, str] = {}
        self.selected: str | None = None
        self.invalid: set[str] = set()
        self._layout = DagLayout()

    def compose(self) -> ComposeResult:
        yield self.graph

    def show(
        self,
        plan: Plan | None,
        *,
        states: dict[str, str] | None = None,
        selected: str | None = None,
        invalid: set[str] | None = None,
    ) -> None:
        if plan is not self.plan or plan is None:
            self.plan = plan
            self._layout = layout(plan) if plan and plan.nodes else DagLayout()
        elif plan is not None:
            self._layout = layout(plan)
        self.states = states or {}
        self.selected = selected
        self.invalid = invalid or set()
        self.graph.update(self.render_graph())
        self.scroll_to_selected()

    def relayout(self) -> None:
        if self.plan is not None:
            self._layout = layout(self.plan) if self.plan.nodes else DagLayout()
        self.graph.update(self.render_graph())

    def render_graph(self) -> Text:
        lay = self._layout
        if self.plan is None or not lay.boxes:
            return Text("no plan yet", style="dim")
        difficulty: dict[str, str] = {n.id: n.estimated_difficulty for n in self.plan.nodes}
        text = Text(no_wrap=True, overflow="ignore")
        by_row: dict[int, list[tuple[int, str, int]]] = {}
        for box in lay.boxes:
            by_row.setdefault(box.y, []).append((box.x, box.node_id, box.width))
        for y in range(lay.height):
            boxes = sorted(by_row.get(y, []))
            x = 0
            for bx, node_id, width in boxes:
                if bx > x:
                    text.append("".join(lay.edge_char(c, y) for c in range(x, bx)), style="dim")
                if node_id:
                    text.append(self._label(node_id, width), style=self._style(node_id, difficulty))
                else:
                    text.append("─" * width, style="dim")
                x = bx + width
            if x < lay.width:
                tail = "".join(lay.edge_char(c, y) for c in range(x, lay.width)).rstrip()
                text.append(tail, style="dim")
            text.append("\n")
        return text

    def _label(self, node_id: str, width: int) -> str:
        status = self.states.get(node_id)
        glyph = GLYPHS.get(status, "●") if status else "●"
        if node_id in self.invalid:
            glyph = "!"
        label = f"{glyph} {node_id}"
        if len(label) > width - 1:
            label = label[: width - 2] + "…"
        return label.ljust(width)

    def _style(self, node_id: str, difficulty: dict[str, str]) -> str:
        if node_id in self.invalid:
            style = "bold red"
        elif node_id in self.states:
            style = STATE_STYLE.get(self.states[node_id], "")
        else:
            style = DIFFICULTY_STYLE.get(difficulty.get(node_id, ""), "")
        if node_id == self.selected:
            style = f"{style} reverse".strip()
        return style

    def scroll_to_selected(self) -> None:
        if not self.selected:
            return
        box = self._layout.box_of(self.selected)
        if box is not None:
            self.scroll_to_region(Region(box.x, box.y, box.width, 1), animate=False)
