"""A node of the sample job held for human review, with a real attempt commit: for the
diff review's snapshots, screenshots and pilots (``write_sample(…, "run")`` first)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from director_tui.engine import git, jobs
from director_tui.engine.events import NodeAwaitingReview, NodeStateChanged
from director_tui.engine.models import NodeStatus, Plan, RunState
from director_tui.engine.review_comments import ReviewComment, save
from director_tui.engine.store import Store, append_jsonl, read_jsonl
from tests.support.sample_job import FIXED_NOW

HELD_NODE = "format"
# The held attempt: a new module and a line of the README (two files: n / p).
HELD_FILES = {
    "todo/format.py": '''"""How a todo item reads on the terminal."""

from todo.model import Item

DONE, OPEN = "[x]", "[ ]"


def format_item(item: Item) -> str:
    """One line per item: its box, then its text."""
    box = DONE if item.done else OPEN
    return f"{box} {item.text}"


def format_all(items: list[Item]) -> str:
    return "\\n".join(format_item(item) for item in items)
''',
    "README.md": "# todo\n\nA small todo list: `todo add`, `todo done`, `todo list`.\n",
}
HELD_COMMENTS = [
    ReviewComment(text="strip the text: '  a ' prints with spaces", path="todo/format.py", line=11)
]


def hold_for_review(
    store: Store, node_id: str = HELD_NODE, comments: list[ReviewComment] | None = None
) -> str:
    """Commit ``HELD_FILES`` on the node's branch (on the job branch's head), and record
    the node as waiting for the human; returns the held commit."""
    plan = store.read_model(store.plan, Plan)
    state = store.read_model(store.state, RunState)
    assert plan is not None and state is not None
    base = git.rev(store.repo, plan.job_branch)
    branch = jobs.node_branch(plan.job_id, node_id)
    with tempfile.TemporaryDirectory() as tmp:
        worktree = Path(tmp) / "attempt"
        git.add_worktree(store.repo, worktree, branch, base)
        for rel, text in HELD_FILES.items():
            (worktree / rel).parent.mkdir(parents=True, exist_ok=True)
            (worktree / rel).write_text(text)
        commit = git.commit_all(worktree, f"director: node {node_id}")
        git.remove_worktree(store.repo, worktree)
    st = state.nodes[node_id]
    st.status = NodeStatus.awaiting_review
    st.attempts, st.finished_at, st.last_error = 1, None, ""
    st.held_commit, st.base_commit, st.branch = commit, base, branch
    st.changed_files = sorted(HELD_FILES)
    store.write_model(store.state, state)
    seq = len(read_jsonl(store.events))
    for offset, event in enumerate(
        [
            NodeStateChanged(
                node_id=node_id,
                status="awaiting_review",
                attempt=1,
                max_attempts=2,
                tier="scripted/cheap",
                message="waiting for you ([review] human = always)",
                ts=FIXED_NOW - 20,
            ),
            NodeAwaitingReview(node_id=node_id, commit=commit, reason="always", ts=FIXED_NOW - 20),
        ],
        start=1,
    ):
        event.seq = seq + offset
        append_jsonl(store.events, event.model_dump(mode="json"))
    save(store, node_id, HELD_COMMENTS if comments is None else comments)
    return commit
