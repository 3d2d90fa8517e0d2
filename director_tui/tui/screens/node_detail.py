"""One node in depth: every attempt with its transcripts, gate output, diff, review."""

from __future__ import annotations

from pathlib import Path

from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Header, Static, TabbedContent, TabPane

from director_tui.engine import git
from director_tui.engine.errors import DirectorError
from director_tui.engine.jobs import node_worktree
from director_tui.engine.models import NodeState, NodeStatus
from director_tui.tui.board import NodeRow
from director_tui.tui.screens.base import DirectorScreen
from director_tui.tui.widgets.attempts_view import AttemptsView
from director_tui.tui.widgets.fitting_footer import FittingFooter


class NodeDetailScreen(DirectorScreen):
    SUB_TITLE = "Node details"
    BINDINGS = [
        Binding(
            "escape,q", "app.pop_screen", "Back", id="detail.back", tooltip="Back to the board"
        ),
    ]

    def __init__(self, node_id: str, row: NodeRow | None, state: NodeState | None) -> None:
        super().__init__()
        self.node_id = node_id
        self.row = row
        self.state = state
        self.board_mark: tuple[object, ...] = ()

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(self.summary(), classes="status-line")
        with TabbedContent(id="detail-tabs"):
            with TabPane("Attempts", id="tab-attempts"):
                yield AttemptsView(self.director.bridge.store, self.node_id)
            with TabPane("Gate output", id="tab-gate"), VerticalScroll():
                yield Static(self.gate_text(), markup=False)
            with TabPane("Diff", id="tab-diff"), VerticalScroll():
                yield Static("computing the diff…", id="diff")
            with TabPane("Review", id="tab-review"), VerticalScroll():
                yield Static(self.review_text(), markup=False)
        yield FittingFooter()

    def on_mount(self) -> None:
        self.load_diff()
        self.board_mark = self.node_mark()  # the attempts view reads them on its mount
        self.ready = True

    def refresh_from_board(self) -> None:
        """The node moved on while its details are open: its attempts read again."""
        mark = self.node_mark()
        if mark != self.board_mark:
            self.board_mark = mark
            self.query_one(AttemptsView).refresh_attempts()

    def node_mark(self) -> tuple[object, ...]:
        """What changes on the board when the node's attempts do (a call, its tools, a
        gate, a review)."""
        row = self.director.board.rows.get(self.node_id)
        if row is None:
            return ()
        calls = tuple(row.calls)
        return (row.status, row.attempt, calls, row.last_event, row.tokens, row.review)

    def summary(self) -> Text:
        row, st = self.row, self.state
        text = Text(f"{self.node_id}", style="bold")
        if row is not None:
            text.append(f" · {row.status} · attempt {row.attempt}")
            text.append(f" · {row.tier or '-'} · ${row.cost_usd:.3f}")
        if st is not None and st.last_error:
            text.append(f" · {st.last_error}", style="red")
        return text

    def gate_text(self) -> str:
        parts = []
        if self.row is not None and self.row.gate_output:
            parts.append(self.row.gate_output.rstrip())
            if self.row.gate_previous:
                parts.append("the attempt before:\n" + self.row.gate_previous.rstrip())
        if self.state is not None:
            if self.state.last_error:
                parts.append(f"last error: {self.state.last_error}")
            if self.state.feedback:
                parts.append(f"feedback for the next attempt:\n{self.state.feedback}")
        return "\n\n".join(parts) or "No gate output yet."

    def review_text(self) -> str:
        st = self.state
        if st is not None and st.review is not None:
            lines = [f"{st.review.verdict}: {st.review.summary}"]
            lines += [f"- [{f.severity}] {f.file} {f.summary}" for f in st.review.findings]
            return "\n".join(lines)
        if self.row is not None and self.row.review:
            return self.row.review
        if st is not None and st.review_error:
            merged = " — merged without a review verdict" if st.status == NodeStatus.done else ""
            return f"review error (not blocking){merged}: {st.review_error}"
        return "No review yet."

    @work(thread=True, exclusive=True, group="diff", exit_on_error=False)
    def load_diff(self) -> None:
        """git runs off the UI thread; the result is handed back with call_from_thread."""
        store = self.director.bridge.store
        worktree = Path(self.state.worktree) if self.state and self.state.worktree else None
        worktree = worktree or node_worktree(store, self.node_id)
        base = self.state.base_commit if self.state else ""
        text = ""
        try:
            if self.state and self.state.merge_commit:
                # merged with --no-ff: the node's change is the merge against its first parent
                merge = self.state.merge_commit
                text = git.out(["diff", f"{merge}^1", merge], store.repo)
            elif worktree.is_dir() and base:
                text = git.diff_text(worktree, base)
        except DirectorError as exc:
            text = f"(no diff: {exc})"
        self.app.call_from_thread(self.show_diff, text)

    def show_diff(self, text: str) -> None:
        widget = self.query_one("#diff", Static)
        if not text.strip():
            widget.update("No changes recorded for this node yet.")
        else:
            widget.update(Syntax(text, "diff", word_wrap=True))
