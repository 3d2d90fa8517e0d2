"""The run board: a row per node updated in place, a header, a live pane, control keys."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Header, Log, Static

from director_tui.engine.errors import DirectorError
from director_tui.engine.land import WorkWhere, where_the_work_is
from director_tui.engine.models import RunState
from director_tui.tui.board import COLUMNS, NodeRow
from director_tui.tui.board_columns import column_widths
from director_tui.tui.screens.base import DirectorScreen
from director_tui.tui.widgets.dag_view import STATE_STYLE, DagView
from director_tui.tui.widgets.fitting_footer import FittingFooter

# The live pane keeps this many lines at most, so memory stays flat on long runs.
LOG_LINES = 5_000
PANE_DEBOUNCE = 0.1
# The header keeps room for the run's end line below its counts, so the board does not
# move down when the run ends.
LINE_MIN_HEIGHT = {"#run-header": 2}


class RunBoardScreen(DirectorScreen):
    SUB_TITLE = "Run board"
    CSS_PATH = "../run_board.tcss"
    BINDINGS = [
        Binding("r", "control('retry')", "Retry", id="run.retry", tooltip="Retry the node"),
        Binding("e", "control('escalate')", "Escalate", id="run.escalate", tooltip="Escalate now"),
        Binding("s", "control('skip')", "Skip", id="run.skip", tooltip="Skip (dependents blocked)"),
        # One key, two entries: the footer shows the one that applies and the command
        # palette finds each by its own name ("resume" found nothing when both were "Pause").
        Binding("p", "pause", "Pause", id="run.pause", tooltip="Pause scheduling"),
        Binding("p", "resume", "Resume", id="run.resume", tooltip="Resume scheduling"),
        Binding("c", "control('cancel')", "Cancel", id="run.cancel", tooltip="Cancel the node"),
        Binding(
            "enter",
            "details",
            "Details",
            id="run.details",
            tooltip="Every attempt with its transcript, gate, diff, review",
        ),
        # Out of the footer at 80 columns (the header names it while a node waits for you).
        Binding(
            "d",
            "diff",
            "Diff",
            id="run.diff",
            show=False,
            tooltip="Review the node's diff: comment, retry, reject, accept",
        ),
        Binding("g", "start_run", "Start", id="run.start", tooltip="Start or resume the run"),
        # Out of the footer (the palette and the key still work): at 80 columns the keys
        # that act on nodes, land and ^q quit come first.
        Binding(
            "f",
            "follow",
            "Follow",
            id="run.follow",
            show=False,
            tooltip="Follow the live pane's end",
        ),
        Binding(
            "l", "land", "Land", id="run.land", tooltip="Merge the finished job into your branch"
        ),
        Binding(
            "v",
            "toggle_graph",
            "Graph",
            id="run.graph",
            show=False,  # the footer is full at 80 columns; the pane title says it
            tooltip="The plan as a graph in the nodes' state colours (v again: the table)",
        ),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.shadow: dict[str, tuple[str, ...]] = {}
        self.widths: tuple[int, ...] = ()  # the columns' widths as the table has them
        self.selected: str | None = None
        self.pane_node: str | None = None
        self.pane_seen = 0
        self.columns_ready = False  # the flush timer may tick before on_mount ran
        self.lines_shown: dict[str, str] = {}
        self.pane_timer: Timer | None = None
        self.unseen = 0  # lines that arrived while the pane was not following
        self.work_for: tuple[str, WorkWhere | None] | None = None
        self.paused_shown = False

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(id="run-header", classes="status-line")
        with Vertical():
            yield DataTable(id="board", cursor_type="row", zebra_stripes=False)
            yield DagView(id="board-graph")
            yield Static(id="pane-title", classes="panel-title")
            yield Log(id="live", max_lines=LOG_LINES, auto_scroll=True)
        yield FittingFooter()

    def on_mount(self) -> None:
        self.columns_ready = True
        self.refresh_from_board()
        self.ready = True
        # the first paint had no layout yet: size the columns to the table as laid out
        self.call_after_refresh(self.refit_columns)

    def on_resize(self, event: events.Resize) -> None:
        super().on_resize(event)
        self.lines_shown.clear()  # the status lines may wrap differently now
        self.call_after_refresh(self.refit_columns)

    def refit_columns(self) -> None:
        if self.is_mounted and self.columns_ready:
            self.refresh_from_board(clock_only=True)

    def reload(self) -> None:
        self.work_for = None  # after a land: ask git again
        self.refresh_from_board()

    def work_where(self, outcome: str) -> WorkWhere | None:
        """Where the ended run's work is: read once per outcome, not at every tick."""
        if self.work_for is None or self.work_for[0] != outcome:
            self.work_for = (outcome, where_the_work_is(self.director.bridge.store))
        return self.work_for[1]

    def board_replaced(self) -> None:
        """A new board (a new job's events): every row is drawn again from it."""
        if not self.columns_ready:
            return
        table = self.query_one("#board", DataTable)
        for node_id in list(self.shadow):
            table.remove_row(node_id)
        self.shadow.clear()
        self.pane_node = None
        self.selected = None
        if self.has_class("graph"):  # the new job's plan
            plan = self.director.guard("Cannot read plan.json", self.director.bridge.plan)
            self.query_one("#board-graph", DagView).show(plan, states=self.graph_states())

    # -- painting -----------------------------------------------------------------------
    def refresh_clock(self) -> None:
        self.refresh_from_board(clock_only=True)

    def refresh_from_board(self, *, clock_only: bool = False) -> None:
        if not self.columns_ready:
            return
        board = self.director.board
        now = self.director.clock()
        table = self.query_one("#board", DataTable)
        fresh: dict[str, tuple[str, ...]] = {}
        for node_id, row in board.rows.items():
            ticking = row.started_at is not None and row.finished_at is None
            if not row.changed and not ticking and node_id in self.shadow:
                continue  # nothing new and no clock running: skip the formatting too
            if clock_only and not ticking and node_id in self.shadow:
                continue
            fresh[node_id] = row.cells(now)
            row.changed = False
        for gone in [k for k in self.shadow if k not in board.rows]:
            table.remove_row(gone)
            del self.shadow[gone]
        every = {**self.shadow, **fresh}
        widths = column_widths(board.rows, every.values(), self._table_width(table))
        if widths != self.widths:
            self._rebuild_table(table, widths, every)
        else:
            self._update_rows(table, fresh)
        if self.selected is None and board.rows:
            self.selected = next(iter(board.rows))
        if self.paused_shown != board.paused:
            self.paused_shown = board.paused
            self.refresh_bindings()  # the footer swaps Pause and Resume
        self.update_header(now)
        self.update_pane()
        if self.has_class("graph") and not clock_only:
            self.query_one("#board-graph", DagView).set_states(self.graph_states())

    def graph_states(self) -> dict[str, str]:
        return {nid: row.status for nid, row in self.director.board.rows.items()}

    def _table_width(self, table: DataTable[object]) -> int:
        """The cells the board's columns may fill: the table's, once it is laid out."""
        region = table.scrollable_content_region
        return region.width if region.width > 0 else self.app.size.width

    def _rebuild_table(
        self, table: DataTable[object], widths: tuple[int, ...], cells: dict[str, tuple[str, ...]]
    ) -> None:
        """Columns at their new widths, every row added again (rare: a new widest cell, a
        resize), the cursor kept on its node."""
        selected = self.selected
        table.clear(columns=True)
        for name, width in zip(COLUMNS, widths, strict=True):
            table.add_column(name, width=width, key=name)
        self.widths = widths
        self.shadow.clear()
        rows = self.director.board.rows
        for node_id, row_cells in cells.items():
            table.add_row(Text(node_id), *self._styled(rows[node_id], row_cells), key=node_id)
            self.shadow[node_id] = row_cells
        if selected in self.shadow:
            table.move_cursor(row=table.get_row_index(selected), animate=False)

    def _update_rows(self, table: DataTable[object], fresh: dict[str, tuple[str, ...]]) -> None:
        rows = self.director.board.rows
        for node_id, cells in fresh.items():
            old = self.shadow.get(node_id)
            if old is None:
                table.add_row(Text(node_id), *self._styled(rows[node_id], cells), key=node_id)
            elif old != cells:
                styled = self._styled(rows[node_id], cells)
                for index, (before, after) in enumerate(zip(old, cells, strict=True)):
                    if before != after:
                        table.update_cell(node_id, COLUMNS[index + 1], styled[index])
            self.shadow[node_id] = cells

    def _styled(self, row: NodeRow, cells: tuple[str, ...]) -> list[Text]:
        style = STATE_STYLE.get(row.status, "")
        return [Text(cells[0], style=style), *(Text(c) for c in cells[1:])]

    def update_header(self, now: float) -> None:
        board = self.director.board
        text = Text(board.header(now))
        if board.scripted:
            text.append("  scripted agents", style="bold magenta")
        if self.director.engine_busy:
            text.append(f"  engine: {self.director.engine_busy}", style="yellow")
        elif self.director.bridge.running_elsewhere():
            text.append("  attached to a headless run", style="cyan")
        if board.counts().get("awaiting_review"):
            text.append("  d: review its diff (accept, reject, comment)", style="bold magenta")
        pending = len(self.director.pending_controls)
        if pending:
            text.append(f"  {pending} request(s) waiting for the engine", style="yellow")
        if board.outcome and not self.director.engine_busy:
            work = self.work_where(board.outcome)
            if work is not None:
                text.append("\n" + work.line(), style="green")
                if work.state == "finished":
                    text.append(" Press l to land it.", style="bold green")
        if not board.rows:
            text = Text("No run yet: approve a plan at Gate 2, then press g to start.")
        self._set_line("#run-header", text)

    def _set_line(self, selector: str, text: Text | str) -> None:
        """Repaint a status line only when it changed, and without a relayout (a relayout
        repaints the whole screen, table included, several times a second) unless the
        text now wraps onto more or fewer lines: at 80 columns the header's counts fill
        the first line, and the end line ("… Press l to land it.") must still show."""
        plain = text.plain if isinstance(text, Text) else text
        if self.lines_shown.get(selector) == plain:
            return
        self.lines_shown[selector] = plain
        widget = self.query_one(selector, Static)
        width = widget.content_region.width or self.app.size.width
        rich_text = text if isinstance(text, Text) else Text(text)
        wrapped = len(rich_text.wrap(self.app.console, max(1, width)))
        height = max(LINE_MIN_HEIGHT.get(selector, 1), wrapped)
        if widget.styles.height is not None and widget.styles.height.value == height:
            widget.update(text, layout=False)
            return
        widget.styles.height = height
        widget.update(text)

    def update_pane(self) -> None:
        """Stream the selected node's lines; only the new ones are written each tick."""
        log = self.query_one("#live", Log)
        row = self.director.board.rows.get(self.selected or "")
        if row is None:
            return
        if self.pane_node != row.node_id:
            self.pane_node = row.node_id
            self.unseen = 0
            log.clear()
            log.write_lines(list(row.lines))
            row.new_lines = 0
        elif row.new_lines:
            fresh = list(row.lines)[-min(row.new_lines, len(row.lines)) :]
            log.write_lines(fresh)
            if not log.auto_scroll:
                self.unseen += len(fresh)
            row.new_lines = 0
        if log.auto_scroll:
            self.unseen = 0
        follow = "following" if log.auto_scroll else f"paused, {self.unseen} new (f to follow)"
        view = "v: table" if self.has_class("graph") else "v: graph"
        self._set_line("#pane-title", f"Live: {row.node_id} — {follow} · {view}")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.selected = str(event.row_key.value)
            # Refill the pane once the cursor rests (~0.1 s): moving through rows stays
            # instant and the bigger pane repaint happens once, not per row passed.
            if self.pane_timer is not None:
                self.pane_timer.stop()
            self.pane_timer = self.set_timer(PANE_DEBOUNCE, self.update_pane)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """enter on the table (which owns the key while focused) opens the details."""
        if event.row_key.value is not None:
            self.selected = str(event.row_key.value)
            self.action_details()

    def on_dag_view_selected(self, event: DagView.Selected) -> None:
        self.selected = event.node_id
        if self.pane_timer is not None:
            self.pane_timer.stop()
        self.pane_timer = self.set_timer(PANE_DEBOUNCE, self.update_pane)

    def on_dag_view_chosen(self, event: DagView.Chosen) -> None:
        self.selected = event.node_id
        self.action_details()

    # -- actions ------------------------------------------------------------------------
    def action_toggle_graph(self) -> None:
        """The table or the plan's graph, coloured by the nodes' states (same selection)."""
        graph = self.query_one("#board-graph", DagView)
        table = self.query_one("#board", DataTable)
        if self.has_class("graph"):
            self.remove_class("graph")
            if self.selected is not None and self.selected in table.rows:
                table.move_cursor(row=table.get_row_index(self.selected))
            table.focus()
        else:
            plan = self.director.guard("Cannot read plan.json", self.director.bridge.plan)
            if plan is None:
                self.notify("No plan to draw yet.", severity="warning")
                return
            self.add_class("graph")
            graph.show(plan, states=self.graph_states(), selected=self.selected)
            graph.focus()
        self.lines_shown.pop("#pane-title", None)
        self.update_pane()

    def action_follow(self) -> None:
        log = self.query_one("#live", Log)
        log.auto_scroll = not log.auto_scroll
        if log.auto_scroll:
            log.scroll_end(animate=False)
        self.update_pane()

    def action_control(self, action: str) -> None:
        node_id = self.selected
        if node_id is None:
            self.notify("No node selected.", severity="warning")
            return
        self.send_control(action, node_id)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("pause", "resume"):
            return self.director.board.paused == (action == "resume")
        return True

    def action_pause(self) -> None:
        self.send_control("pause")

    def action_resume(self) -> None:
        self.send_control("resume")

    def action_start_run(self) -> None:
        self.start_run()

    def action_diff(self) -> None:
        if self.selected is None:
            self.notify("No node selected.", severity="warning")
            return
        from director_tui.tui.screens.diff_review import DiffReviewScreen

        self.app.push_screen(DiffReviewScreen(self.selected))

    def action_details(self) -> None:
        if self.selected is None:
            return
        from director_tui.tui.screens.node_detail import NodeDetailScreen

        state = None
        try:
            state = self.director.bridge.store.read_model(
                self.director.bridge.store.state, RunState
            )
        except DirectorError:
            pass
        row = self.director.board.rows.get(self.selected)
        self.app.push_screen(
            NodeDetailScreen(self.selected, row, state.nodes.get(self.selected) if state else None)
        )
