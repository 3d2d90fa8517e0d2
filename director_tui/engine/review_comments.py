"""The human's comments on a node's diff, and how they reach the next attempt.

A comment sits on a file and a line (or a hunk: a range of lines) of the node's latest
attempt, or on the node as a whole. They are kept in ``.director/reviews/<node>.json``
(one file per node, written atomically) so the app and ``director review --comment``
can collect them across restarts; a ``retry`` or ``reject`` of the node takes them
(``take``): ``budget.decide`` turns them into the feedback of the node's next executor
attempt, where the prompt shows each with its file and line. Once taken they are gone:
a comment is read by one attempt, not by every attempt after it.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from director_tui.engine.errors import UsageError
from director_tui.engine.models import Plan, now
from director_tui.engine.store import Store, atomic_write_json


class ReviewComment(BaseModel):
    """One comment: ``path`` and ``line`` (a line of the new file; ``end_line`` when it
    spans a hunk) or neither for the node as a whole."""

    text: str
    path: str = ""
    line: int | None = None
    end_line: int | None = None
    at: float = Field(default_factory=now)

    @property
    def where(self) -> str:
        """``calc/mul.py:12`` or ``calc/mul.py:10-14``, or "" for the whole node."""
        if not self.path:
            return ""
        if self.line is None:
            return self.path
        if self.end_line is not None and self.end_line != self.line:
            return f"{self.path}:{self.line}-{self.end_line}"
        return f"{self.path}:{self.line}"

    def describe(self) -> str:
        return f"{self.where}: {self.text}" if self.where else self.text


class NodeComments(BaseModel):
    node_id: str
    comments: list[ReviewComment] = Field(default_factory=list)


def comments_path(store: Store, node_id: str) -> Path:
    if not _NODE_ID.match(node_id):
        raise UsageError(f"{node_id!r} is not a node id")
    return store.root / "reviews" / f"{node_id}.json"


def check_node(store: Store, node_id: str) -> None:
    """Refuse comments on a node the plan does not have (nothing would ever send them)."""
    plan = store.read_model(store.plan, Plan)
    ids = plan.ids if plan is not None else []
    if node_id not in ids:
        raise UsageError(
            f"no node {node_id!r} in the plan" + (f" ({', '.join(ids)})" if ids else "")
        )


_NODE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def load(store: Store, node_id: str) -> list[ReviewComment]:
    """The node's comments not yet sent to an attempt (none when the file is unreadable)."""
    path = comments_path(store, node_id)
    try:
        return NodeComments.model_validate_json(path.read_bytes()).comments
    except (OSError, ValidationError):
        return []


def save(store: Store, node_id: str, comments: list[ReviewComment]) -> None:
    if not comments:
        clear(store, node_id)
        return
    path = comments_path(store, node_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, NodeComments(node_id=node_id, comments=comments).model_dump())


def add(store: Store, node_id: str, comment: ReviewComment) -> list[ReviewComment]:
    comments = [*load(store, node_id), comment]
    save(store, node_id, comments)
    return comments


def clear(store: Store, node_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        comments_path(store, node_id).unlink()


# "path:line: text", "path:10-14: text", "path: text" — a path has no spaces before the
# first colon and a dot or slash in it, so "note: text" stays a comment on the node.
_WHERE = re.compile(
    r"^(?P<path>[^\s:]*[./][^\s:]*)(?::(?P<line>\d+)(?:-(?P<end>\d+))?)?:\s+(?P<text>.+)$", re.S
)


COMMENT_FORMS = "'path:line: text', 'path:10-14: text', 'path: text' or plain text"


def parse(spec: str) -> ReviewComment:
    """A comment as a user types it on the command line: ``calc/mul.py:12: use *``,
    ``calc/mul.py:10-14: …``, ``calc/mul.py: …`` or plain text for the whole node.
    An empty one, line 0 or a hunk that ends before it starts is a :class:`UsageError`."""
    spec = spec.strip()
    if not spec:
        raise UsageError("an empty comment: say what to change", hint=COMMENT_FORMS)
    match = _WHERE.match(spec)
    if match is None:
        return ReviewComment(text=spec)
    line = int(match["line"]) if match["line"] else None
    end = int(match["end"]) if match["end"] else None
    if line == 0 or (end is not None and line is not None and end < line):
        # Sent as is, the next attempt would be pointed at a line that is not there.
        raise UsageError(
            f"the comment {spec!r} names no line: lines count from 1, a hunk from its "
            "first line to its last",
            hint=COMMENT_FORMS,
        )
    return ReviewComment(text=match["text"].strip(), path=match["path"], line=line, end_line=end)


def as_feedback(comments: list[ReviewComment], earlier: str = "") -> str:
    """The comments as the next attempt's feedback (``executor_prompt`` shows it), with
    the reason the attempt before failed, when there was one."""
    lines = [
        "The human reviewed your previous attempt's diff and left these comments "
        "(file:line: comment). Address every one:"
    ]
    lines += [f"- {c.describe()}" for c in comments]
    if earlier.strip():
        lines += ["", "Before that review, the attempt had been rejected for:", earlier.strip()]
    return "\n".join(lines)
