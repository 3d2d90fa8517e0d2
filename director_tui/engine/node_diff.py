"""A node's latest attempt as a diff a person reviews: files, hunks, lines (typed).

The CLI (``director review``) prints it and the app's diff review screen draws it; both
read the same :class:`NodeDiff`. Which attempt is "latest" follows the node's state:

* held for the human (``awaiting_review``): the commit its gate judged (what would merge);
* merged: its merge commit against the job branch before it;
* running (its worktree holds the attempt in progress): the worktree as it is now;
* otherwise: the node branch's attempt commit (a failed attempt is committed too, by its
  gate) against the base it was cut from.

:func:`tests_diff` is Gate 2's read-only view: a node's frozen tests as added files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from director_tui.engine import git, jobs
from director_tui.engine.models import NodeState, NodeStatus, Plan, RunState
from director_tui.engine.store import Store

MAX_LINES = 20_000  # a diff longer than this is cut (the file list says so)
LineKind = Literal["context", "add", "delete"]
FileStatus = Literal["added", "modified", "deleted", "renamed", "copied", "mode"]


class DiffLine(BaseModel):
    kind: LineKind
    text: str
    old_line: int | None = None
    new_line: int | None = None

    @property
    def line(self) -> int | None:
        """The line a comment on it names: the new file's, or the old one's for a deletion."""
        return self.new_line if self.new_line is not None else self.old_line


class DiffHunk(BaseModel):
    header: str  # "@@ -1,3 +1,4 @@ def mul"
    old_start: int
    new_start: int
    lines: list[DiffLine] = Field(default_factory=list)

    @property
    def new_span(self) -> tuple[int, int]:
        """First and last line of the new file the hunk covers (a comment on the hunk)."""
        numbers = [ln.new_line for ln in self.lines if ln.new_line is not None]
        if not numbers:
            return self.new_start, self.new_start
        return min(numbers), max(numbers)


class FileDiff(BaseModel):
    path: str
    old_path: str | None = None
    status: FileStatus = "modified"
    binary: bool = False
    hunks: list[DiffHunk] = Field(default_factory=list)

    @property
    def added(self) -> int:
        return sum(1 for h in self.hunks for ln in h.lines if ln.kind == "add")

    @property
    def deleted(self) -> int:
        return sum(1 for h in self.hunks for ln in h.lines if ln.kind == "delete")

    @property
    def title(self) -> str:
        moved = f"{self.old_path} → " if self.old_path and self.old_path != self.path else ""
        return f"{moved}{self.path}"


class NodeDiff(BaseModel):
    node_id: str
    source: str  # what is shown: "held for your review", "attempt 2", …
    base: str = ""
    target: str = ""
    files: list[FileDiff] = Field(default_factory=list)
    truncated: bool = False
    note: str = ""  # why there is nothing to show, when there is not

    @property
    def empty(self) -> bool:
        return not self.files


def node_diff(store: Store, plan: Plan, state: RunState | None, node_id: str) -> NodeDiff:
    """The node's latest attempt against its base (see the module docstring)."""
    st = state.nodes.get(node_id) if state is not None else None
    if st is None:
        return NodeDiff(node_id=node_id, source="", note="the node has not run yet")
    picked = _pick(store, plan, st, node_id)
    if picked is None:
        return NodeDiff(
            node_id=node_id, source="", note=f"no attempt of node {node_id} to show yet"
        )
    source, base, target, cwd = picked
    return _diff(store.repo if cwd is None else cwd, node_id, source, base, target, [])


def tests_diff(store: Store, plan: Plan, node_id: str) -> NodeDiff:
    """The node's frozen tests on the job branch, as added files (Gate 2: read-only)."""
    node = plan.node(node_id)
    if not node.tests:
        return NodeDiff(node_id=node_id, source="frozen tests", note="the node has no tests")
    empty = git.out(["hash-object", "-t", "tree", "/dev/null"], store.repo)
    branch = plan.job_branch or jobs.job_branch(plan.job_id)
    return _diff(store.repo, node_id, "frozen tests", empty, branch, node.tests)


def _pick(
    store: Store, plan: Plan, st: NodeState, node_id: str
) -> tuple[str, str, str, Path | None] | None:
    """(what, base, target, where to run git) of the attempt to show, or None."""
    repo = store.repo
    if st.held_commit:
        return "held for your review", st.base_commit or f"{st.held_commit}^", st.held_commit, None
    if st.status == NodeStatus.done and st.merge_commit:
        return "merged", f"{st.merge_commit}^1", st.merge_commit, None
    worktree = Path(st.worktree) if st.worktree else None
    if (
        st.status.active
        and worktree is not None
        and worktree.is_dir()
        and git.worktree_intact(repo, worktree)
        and st.base_commit
    ):
        tree = git.snapshot_tree(worktree)
        return f"attempt {st.attempts} (in progress)", st.base_commit, tree, worktree
    branch = st.branch or jobs.node_branch(plan.job_id, node_id)
    if not git.branch_exists(repo, branch):
        return None
    tip = git.rev(repo, branch)
    subject = git.out(["log", "-1", "--format=%s", tip], repo)
    if not subject.startswith(f"director: node {node_id}"):
        return None  # the branch sits on a base: no attempt was committed
    return f"attempt {st.attempts}", st.base_commit or f"{tip}^", tip, None


def _diff(
    cwd: Path, node_id: str, source: str, base: str, target: str, paths: list[str]
) -> NodeDiff:
    # "<merge>^1" and "<held>^" name the base by an expression: shown cut to ten
    # characters it read as the target itself ("0b9b9f8627..0b9b9f8627"). Its object id.
    resolved = git.git(["rev-parse", "--verify", "-q", base], cwd, check=False).stdout.strip()
    base = resolved or base
    args = ["-c", "core.quotepath=false", "diff", "--no-color", "--no-ext-diff", "-M", "-U3"]
    proc = git.git([*args, base, target, "--", *paths], cwd, check=False)
    if proc.returncode != 0:
        return NodeDiff(
            node_id=node_id, source=source, base=base, target=target, note=proc.stderr.strip()
        )
    files, truncated = parse_unified(git.shown(proc.stdout))
    note = "" if files else "the attempt changed no file"
    return NodeDiff(
        node_id=node_id,
        source=source,
        base=base,
        target=target,
        files=files,
        truncated=truncated,
        note=note,
    )


_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


def parse_unified(text: str, max_lines: int = MAX_LINES) -> tuple[list[FileDiff], bool]:
    """``git diff`` output as files of hunks of numbered lines; True when cut."""
    files: list[FileDiff] = []
    hunk: DiffHunk | None = None
    old_no = new_no = 0
    count = 0
    for raw in text.split("\n"):
        if raw.startswith("diff --git "):
            files.append(FileDiff(path=_git_header_path(raw)))
            hunk = None
            continue
        if not files:
            continue
        current = files[-1]
        match = _HUNK.match(raw)
        if match is None and hunk is None:
            _file_header(current, raw)
            continue
        if match is not None:
            old_no, new_no = int(match[1]), int(match[2])
            hunk = DiffHunk(header=raw, old_start=old_no, new_start=new_no)
            current.hunks.append(hunk)
            continue
        if hunk is None:
            continue
        if count >= max_lines:
            return files, True
        kind = {"+": "add", "-": "delete", " ": "context"}.get(raw[:1])
        if kind == "add":
            hunk.lines.append(DiffLine(kind="add", text=raw[1:], new_line=new_no))
            new_no += 1
        elif kind == "delete":
            hunk.lines.append(DiffLine(kind="delete", text=raw[1:], old_line=old_no))
            old_no += 1
        elif kind == "context":
            hunk.lines.append(
                DiffLine(kind="context", text=raw[1:], old_line=old_no, new_line=new_no)
            )
            old_no += 1
            new_no += 1
        else:
            continue  # "\ No newline at end of file", the blank line at the end
        count += 1
    return files, False


def _git_header_path(line: str) -> str:
    """The new path of ``diff --git a/x b/x`` (the ``+++``/rename lines refine it)."""
    rest = line[len("diff --git ") :]
    half = rest.rfind(" b/")
    return rest[half + 3 :] if half >= 0 else rest


def _file_header(current: FileDiff, raw: str) -> None:
    """Apply one extended-header line of ``git diff`` to the file it describes."""
    if raw.startswith("new file mode"):
        current.status = "added"
    elif raw.startswith("deleted file mode"):
        current.status = "deleted"
    elif raw.startswith("rename from "):
        current.status, current.old_path = "renamed", raw[len("rename from ") :]
    elif raw.startswith("rename to "):
        current.path = raw[len("rename to ") :]
    elif raw.startswith("copy from "):
        current.status, current.old_path = "copied", raw[len("copy from ") :]
    elif raw.startswith("old mode") and current.status == "modified":
        current.status = "mode"
    elif raw.startswith("Binary files"):
        current.binary = True
    elif raw.startswith("+++ ") and raw[4:] != "/dev/null":
        current.path = raw[6:] if raw.startswith("+++ b/") else raw[4:]
    elif raw.startswith("--- ") and current.status == "deleted" and raw[4:] != "/dev/null":
        current.path = raw[6:] if raw.startswith("--- a/") else raw[4:]
