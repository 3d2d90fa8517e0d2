"""``director review <node>``: a node's diff as text — coloured on a terminal, plain
when piped (rich decides), with the new file's line numbers a comment names."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from director_tui.engine.node_diff import DiffLine, FileDiff, NodeDiff
from director_tui.engine.review_comments import ReviewComment
from director_tui.views.console import shown, table_console

LINE_STYLE = {"add": "green", "delete": "red", "context": ""}
MARK = {"add": "+", "delete": "-", "context": " "}


def print_diff(
    diff: NodeDiff,
    comments: list[ReviewComment],
    *,
    status: str,
    console: Console | None = None,
) -> None:
    console = console or table_console()
    head = Text(f"node {diff.node_id}", style="bold")
    head.append(f"  {status}", style="yellow" if status == "awaiting_review" else "")
    if diff.source:
        head.append(f"  · {diff.source}")
    if diff.base and diff.target:
        head.append(f"  · {diff.base[:10]}..{diff.target[:10]}", style="dim")
    console.print(head)
    if diff.empty:
        console.print(diff.note or "nothing to show")
    for file in diff.files:
        _print_file(console, file)
    if diff.truncated:
        console.print("[diff cut: too long to print whole]", style="yellow", markup=False)
    if comments:
        console.print(
            Text(f"\nyour comments ({len(comments)}), sent with the next retry or reject:")
        )
        for comment in comments:
            console.print(Text(f"  {shown(comment.describe())}"))


def _print_file(console: Console, file: FileDiff) -> None:
    title = Text(f"\n{shown(file.title)}", style="bold")
    title.append(f"  {file.status}  +{file.added} -{file.deleted}", style="dim")
    console.print(title)
    if file.binary:
        console.print("  (binary file)")
    for hunk in file.hunks:
        console.print(Text(shown(hunk.header), style="cyan"))
        for line in hunk.lines:
            console.print(_line(line), soft_wrap=True)


def _line(line: DiffLine) -> Text:
    number = "" if line.new_line is None else str(line.new_line)
    text = Text(f"{number:>5} ", style="dim")
    text.append(MARK[line.kind] + shown(line.text), style=LINE_STYLE[line.kind])
    return text
