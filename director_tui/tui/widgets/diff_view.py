"""A node's diff, one file at a time: syntax-highlighted lines with both line numbers, a
cursor line to comment on, and the human's comments shown under the lines they name.

The widget only draws and keeps its place (file, cursor row); the screen binds the keys
and stores the comments. It takes no focus, so the screen's keys (j/k, n/p) reach it.
It draws with Textual's line API: only the rows on screen are rendered, so moving the
cursor through a file of thousands of lines repaints a screenful, not the file.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.syntax import Syntax
from rich.text import Text
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from director_tui.engine.node_diff import DiffHunk, DiffLine, FileDiff, NodeDiff
from director_tui.engine.review_comments import ReviewComment
from director_tui.engine.visible import visible

LINE_BACKGROUND = {"add": "on #12351f", "delete": "on #3d1518", "context": ""}
MARK = {"add": "+", "delete": "-", "context": " "}
THEME = "monokai"
CURSOR_STYLE = "bold on #3b4a6b"
# Past this many lines a hunk is drawn without syntax colours: highlighting costs ~0.3 ms
# a line on a loaded machine (5 000 lines took 1.8 s), and it runs on the UI thread.
HIGHLIGHT_MAX_LINES = 1_500


@dataclass(frozen=True)
class Row:
    """One drawable row of a file: a hunk's header (``line`` None) or one of its lines."""

    hunk: int
    line: DiffLine | None = None
    position: int = -1  # the line's index in its hunk


@dataclass(frozen=True)
class Target:
    """Where a comment goes: a line (``end_line`` None) or a hunk's span of lines."""

    path: str
    line: int | None
    end_line: int | None = None

    @property
    def where(self) -> str:
        if self.line is None:
            return self.path
        span = f"-{self.end_line}" if self.end_line not in (None, self.line) else ""
        return f"{self.path}:{self.line}{span}"


def file_rows(file: FileDiff) -> list[Row]:
    rows: list[Row] = []
    for index, hunk in enumerate(file.hunks):
        rows.append(Row(index))
        rows += [Row(index, line, position) for position, line in enumerate(hunk.lines)]
    return rows


def highlighted(file: FileDiff, theme: str = THEME) -> dict[int, list[Text]]:
    """Each hunk's lines highlighted as the file's language (guessed from its name)."""
    out: dict[int, list[Text]] = {}
    for index, hunk in enumerate(file.hunks):
        if len(hunk.lines) > HIGHLIGHT_MAX_LINES:
            out[index] = [Text(visible(line.text)) for line in hunk.lines]
            continue
        code = "\n".join(visible(line.text) for line in hunk.lines)
        lexer = Syntax.guess_lexer(file.path, code)
        syntax = Syntax(code, lexer, theme=theme, background_color="default")
        lines = syntax.highlight(code).split("\n", allow_blank=True)
        out[index] = [
            lines[i] if i < len(lines) else Text(visible(ln.text))
            for i, ln in enumerate(hunk.lines)
        ]
    return out


class DiffView(ScrollView, can_focus=False):
    """The current file of a :class:`NodeDiff`, its cursor row and its comments."""

    DEFAULT_CSS = """
    DiffView { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.diff: NodeDiff | None = None
        self.comments: list[ReviewComment] = []
        self.file_index = 0
        self.cursor = 0
        self.rows: list[Row] = []
        self._lines: dict[int, list[Text]] = {}
        self._row_y: list[int] = []
        # Each file's highlighted hunks, computed once (n/p back to a file costs nothing),
        # and the current file's rows drawn without the cursor (a move re-joins them).
        self._highlights: dict[int, dict[int, list[Text]]] = {}
        self._drawn: list[Text] = []
        self._comment_rows: list[list[Text]] = []
        # What the line API draws: every line of the view, and each one's strip.
        self._view: list[Text] = [Text("computing the diff…", style="dim")]
        self._strips: dict[int, Strip] = {}

    # -- what is shown --------------------------------------------------------------------
    @property
    def file(self) -> FileDiff | None:
        if self.diff is None or not self.diff.files:
            return None
        return self.diff.files[self.file_index]

    def show(
        self,
        diff: NodeDiff,
        comments: list[ReviewComment],
        highlights: dict[int, dict[int, list[Text]]] | None = None,
    ) -> None:
        """``highlights``: each file's :func:`highlighted` hunks, when the caller made them
        off the UI thread (else each file is highlighted here when first shown)."""
        keep = self.diff is not None and self.diff.target == diff.target
        self.diff, self.comments = diff, comments
        if not keep:
            self._highlights = {}
        self._highlights.update(highlights or {})
        if not keep or self.file_index >= len(diff.files):
            self.file_index, self.cursor = 0, 0
        self._load_file()

    def set_comments(self, comments: list[ReviewComment]) -> None:
        self.comments = comments
        self._render_rows()
        self._draw()

    def _load_file(self) -> None:
        file = self.file
        self.rows = file_rows(file) if file is not None else []
        if file is not None and self.file_index not in self._highlights:
            self._highlights[self.file_index] = highlighted(file)
        self._lines = self._highlights.get(self.file_index, {})
        self.cursor = min(self.cursor, max(0, len(self.rows) - 1))
        if self.rows and self.rows[self.cursor].line is None and len(self.rows) > 1:
            self.cursor += 1  # start on the first line, not on the hunk header
        self._render_rows()
        self._draw()

    # -- moving -----------------------------------------------------------------------------
    def step_file(self, delta: int) -> bool:
        if self.diff is None or len(self.diff.files) < 2:
            return False
        self.file_index = (self.file_index + delta) % len(self.diff.files)
        self.cursor = 0
        self._load_file()
        self.scroll_home(animate=False)
        return True

    def move(self, delta: int) -> None:
        if not self.rows:
            return
        self.cursor = max(0, min(len(self.rows) - 1, self.cursor + delta))
        self._keep_cursor_visible()
        self.refresh()

    def _keep_cursor_visible(self) -> None:
        if not self._row_y:
            return
        y = self._row_y[self.cursor]
        height = max(1, self.scrollable_content_region.height)
        if y < self.scroll_y + 1:
            self.scroll_to(y=max(0, y - 2), animate=False, immediate=True)
        elif y >= self.scroll_y + height - 1:
            self.scroll_to(y=y - height + 3, animate=False, immediate=True)

    # -- where a comment goes ---------------------------------------------------------------
    def line_target(self) -> Target | None:
        """The cursor's line (a hunk header: the hunk)."""
        file = self.file
        if file is None or not self.rows:
            return None
        row = self.rows[self.cursor]
        if row.line is None:
            return self.hunk_target()
        return Target(file.path, row.line.line)

    def hunk_target(self) -> Target | None:
        file = self.file
        if file is None or not self.rows:
            return None
        first, last = file.hunks[self.rows[self.cursor].hunk].new_span
        if first < 1:  # a hunk that only deletes (a deleted file: "+0,0"): the file
            return Target(file.path, None)
        return Target(file.path, first, last)

    # -- drawing ------------------------------------------------------------------------------
    def _render_rows(self) -> None:
        """The current file's rows and the comments under them, without the cursor."""
        file = self.file
        self._drawn, self._comment_rows = [], []
        if file is None:
            return
        drawn: set[int] = set()  # each comment once, under the first row it names
        for row in self.rows:
            hunk = file.hunks[row.hunk]
            self._drawn.append(self._render_row(file, hunk, row))
            under = []
            for comment in self._comments_at(file, hunk, row):
                if id(comment) in drawn:
                    continue
                drawn.add(id(comment))
                under.append(Text(f"          ▸ you: {visible(comment.text)}", style="bold yellow"))
            self._comment_rows.append(under)

    def _draw(self) -> None:
        """Lay the current file out as the view's lines (the cursor is drawn per line)."""
        file = self.file
        if self.diff is None:
            return
        view: list[Text] = []
        self._row_y = []
        if file is None:
            view.append(Text(self.diff.note or "Nothing to show.", style="dim"))
        elif file.binary:
            view.append(Text("(binary file: no lines to show)", style="dim"))
        for index, line in enumerate(self._drawn):
            self._row_y.append(len(view))
            view.append(line)
            view += self._comment_rows[index]
        self._view = view
        self._strips = {}
        width = max((line.cell_len for line in view), default=0) + 1
        self.virtual_size = Size(width, len(view))
        self.refresh()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        if index >= len(self._view):
            return Strip.blank(width, self.rich_style)
        strip = self._strips.get(index)
        on_cursor = bool(self._row_y) and index == self._row_y[self.cursor]
        if strip is None or on_cursor:
            line = self._view[index]
            if on_cursor:
                line = line.copy()
                line.stylize(CURSOR_STYLE)
            console = self.app.console
            segments = line.render(console)
            if line.style:  # Text.render leaves a span-less line's own style out
                segments = Segment.apply_style(segments, console.get_style(line.style))
            # Under every segment, the widget's own colours (a segment with no background
            # would show the terminal's instead).
            strip = Strip(list(Segment.apply_style(segments, self.rich_style)))
            if not on_cursor:
                self._strips[index] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)

    def _render_row(self, file: FileDiff, hunk: DiffHunk, row: Row) -> Text:
        if row.line is None:
            return Text(visible(hunk.header), style="bold cyan")
        line = row.line
        old = "" if line.old_line is None else str(line.old_line)
        new = "" if line.new_line is None else str(line.new_line)
        out = Text(f"{old:>4} {new:>4} ", style="dim")
        code = self._code(row)
        body = Text(MARK[line.kind] + " ", style="bold")
        body.append_text(code)
        if LINE_BACKGROUND[line.kind]:
            body.stylize(LINE_BACKGROUND[line.kind])
        out.append_text(body)
        return out

    def _code(self, row: Row) -> Text:
        assert row.line is not None
        hunk_lines = self._lines.get(row.hunk, [])
        if 0 <= row.position < len(hunk_lines):
            return hunk_lines[row.position].copy()
        return Text(visible(row.line.text))

    def _comments_at(self, file: FileDiff, hunk: DiffHunk, row: Row) -> list[ReviewComment]:
        """The comments drawn under this row: a hunk's under its header, a line's under
        the line it names."""
        mine = [c for c in self.comments if c.path == file.path]
        if row.line is None:
            first, last = hunk.new_span
            return [c for c in mine if c.end_line is not None and first <= (c.line or 0) <= last]
        return [c for c in mine if c.end_line is None and c.line == row.line.line]
