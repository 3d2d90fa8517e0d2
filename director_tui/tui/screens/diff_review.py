"""Diff review of one node: its latest attempt file by file, comments on a line or a
hunk, and the answer — retry with the comments, reject, or accept a node waiting for you.

From the run board (``d``). From Gate 2 the same view shows a node's frozen tests,
read-only (``tests=True``): nothing to comment there, the tests are the plan's.
The comments are kept in ``.director/reviews/<node>.json`` as they are written (a restart
keeps them); a retry or reject sends them to the next attempt (``budget.decide``).
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Header, Static

from director_tui.engine.errors import DirectorError
from director_tui.engine.node_diff import NodeDiff
from director_tui.engine.review_comments import ReviewComment
from director_tui.engine.visible import visible
from director_tui.tui.board import STATUS_WORDS
from director_tui.tui.screens.base import DirectorScreen
from director_tui.tui.widgets.diff_view import DiffView, Target, highlighted
from director_tui.tui.widgets.fitting_footer import FittingFooter
from director_tui.tui.widgets.modals import TextPromptModal

# What only a node's attempt has (never its frozen tests at Gate 2).
REVIEW_ACTIONS = frozenset({"comment", "comment_hunk", "retry", "reject", "accept"})


class DiffReviewScreen(DirectorScreen):
    SUB_TITLE = "Diff review"
    DEFAULT_CSS = """
    DiffReviewScreen #review-status { height: auto; padding: 0 1; }
    DiffReviewScreen #review-file { height: 1; padding: 0 1; background: $boost; }
    """
    BINDINGS = [
        Binding("n", "step_file(1)", "Next", id="diff.next", tooltip="The next file"),
        Binding("p", "step_file(-1)", "Prev file", id="diff.prev", show=False),
        Binding("j,down", "move(1)", "Down", id="diff.down", show=False),
        Binding("k,up", "move(-1)", "Up", id="diff.up", show=False),
        Binding("pagedown", "move(20)", "Page down", id="diff.page_down", show=False),
        Binding("pageup", "move(-20)", "Page up", id="diff.page_up", show=False),
        Binding("c", "comment", "Comment", id="diff.comment", tooltip="Comment on this line"),
        Binding("h", "comment_hunk", "Hunk", id="diff.hunk", tooltip="Comment on this hunk"),
        Binding("r", "retry", "Retry", id="diff.retry", tooltip="Fresh attempts, with comments"),
        Binding("x", "reject", "Reject", id="diff.reject", tooltip="Next attempt, with comments"),
        Binding("a", "accept", "Accept", id="diff.accept", tooltip="Merge the held attempt"),
        Binding("escape,q", "app.pop_screen", "Back", id="diff.back", tooltip="Back"),
    ]

    def __init__(self, node_id: str, *, tests: bool = False) -> None:
        super().__init__()
        self.node_id = node_id
        self.tests = tests
        self.status = ""
        self.diff: NodeDiff | None = None
        self.comments: list[ReviewComment] = []

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(self._status_text(), id="review-status")
        yield Static("", id="review-file")
        yield DiffView(id="diff-view")
        yield FittingFooter()

    def on_mount(self) -> None:
        self.load()
        self.ready = True

    def reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="diff-review", exit_on_error=False)
    def load(self) -> None:
        """git runs off the UI thread; the result comes back with call_from_thread."""
        bridge = self.director.bridge
        try:
            if self.tests:
                diff, comments, status = bridge.tests_diff(self.node_id), [], ""
            else:
                diff = bridge.node_diff(self.node_id)
                comments = bridge.review_comments(self.node_id)
                state = bridge.run_state()
                st = state.nodes.get(self.node_id) if state is not None else None
                status = st.status.value if st is not None else "pending"
        except DirectorError as exc:
            diff = NodeDiff(node_id=self.node_id, source="", note=f"no diff: {exc}")
            comments, status = [], ""
        # Syntax colours take ~0.3 ms a line: made here, not on the UI thread.
        highlights = {index: highlighted(file) for index, file in enumerate(diff.files)}
        self.app.call_from_thread(self.show, diff, comments, status, highlights)

    def show(
        self,
        diff: NodeDiff,
        comments: list[ReviewComment],
        status: str,
        highlights: dict[int, dict[int, list[Text]]] | None = None,
    ) -> None:
        self.diff, self.comments, self.status = diff, comments, status
        self.query_one(DiffView).show(diff, comments, highlights)
        self._paint()
        self.refresh_bindings()

    # -- painting -------------------------------------------------------------------------
    def _status_text(self) -> Text:
        text = Text(f"{self.node_id}", style="bold")
        if self.status:
            words = STATUS_WORDS.get(self.status, self.status)
            text.append(f" · {words}", style="bold magenta" if self.status in STATUS_WORDS else "")
        if self.diff is not None and self.diff.source:
            text.append(f" · {self.diff.source}")
        if self.tests:
            text.append(" · read-only: the plan's tests", style="dim")
        elif self.comments:
            count = len(self.comments)
            text.append(f" · {count} comment{'s' * (count != 1)} (r or x sends)", style="yellow")
        return text

    def _paint(self) -> None:
        self.query_one("#review-status", Static).update(self._status_text())
        view = self.query_one(DiffView)
        file = view.file
        line = Text()
        if file is not None and self.diff is not None:
            line.append(f"file {view.file_index + 1}/{len(self.diff.files)}  ", style="dim")
            line.append(visible(file.title), style="bold")
            line.append(f"  {file.status}  ", style="dim")
            line.append(f"+{file.added}", style="green")
            line.append(f" -{file.deleted}", style="red")
            if self.diff.truncated:
                line.append("  (diff cut: too long)", style="yellow")
        self.query_one("#review-file", Static).update(line)

    # -- keys -----------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in REVIEW_ACTIONS and self.tests:
            return False
        if action == "accept":
            return self.status == "awaiting_review"
        return True

    def action_step_file(self, delta: int) -> None:
        if self.query_one(DiffView).step_file(delta):
            self._paint()

    def action_move(self, delta: int) -> None:
        self.query_one(DiffView).move(delta)

    def action_comment(self) -> None:
        self._ask_comment(self.query_one(DiffView).line_target())

    def action_comment_hunk(self) -> None:
        self._ask_comment(self.query_one(DiffView).hunk_target())

    def _ask_comment(self, target: Target | None) -> None:
        if target is None:
            self.notify("No line to comment on: the diff is empty.", severity="warning")
            return

        def keep(text: str | None) -> None:
            if not text:
                return
            comment = ReviewComment(
                text=text, path=target.path, line=target.line, end_line=target.end_line
            )
            added = self.director.guard(
                "Cannot keep the comment",
                lambda: self.director.bridge.add_review_comment(self.node_id, comment),
            )
            if added is None:
                return
            self.comments = added
            self.query_one(DiffView).set_comments(added)
            self._paint()

        self.app.push_screen(
            TextPromptModal(f"Comment on {target.where}", "what the next attempt should change"),
            keep,
        )

    def action_retry(self) -> None:
        self._answer("retry")

    def action_reject(self) -> None:
        self._answer("reject")

    def action_accept(self) -> None:
        self._answer("accept")

    def _answer(self, action: str) -> None:
        """The request goes to the app (live run, or state.json and a run started); the
        board shows its answer."""
        self.send_control(action, self.node_id)
        self.app.pop_screen()
