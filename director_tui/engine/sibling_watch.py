"""Writes by one node's agent into another node's worktree: attributed, and never merged.

Node worktrees sit side by side in ``<worktrees>/`` (a run with OpenCode servers
uses slot worktrees there instead, ``_slot-<k>``: each counts as the worktree of the node
whose attempt holds it, ``SiblingWatch.place``). An agent that writes into a
sibling's folder (``../mul/calc/mul.py``, or its absolute path) changes what that node's
gate commits: its write would merge under the other node's name. The fingerprints of
``sandbox_watch`` cannot tell it apart from the sibling's own work while both agents run,
so the evidence here is the agents' own tool calls, exact about who did it:

* every write-capable tool call (write/edit/patch tools, shell commands) an executor
  reports — live, from its activity events, and once more from the whole call's tool
  list when it ends — is checked for a path that resolves into another node's worktree;
* the **writer**'s attempt fails (``outside_worktree``) and is charged: its own tool call
  did it;
* the **sibling**'s attempt in progress is rejected at the merge queue, never merged, and
  not charged (its worktree holds work that may not be its own): it runs again from a
  clean worktree. A write while the sibling was idle is wiped by that clean start anyway.

What the merge queue merges is the commit the sibling's gate judged, not whatever its
branch points to later (``run/merge_queue``): a commit put on another node's branch
after its gate never merges.

Not seen here: a shell command that reaches a sibling without naming it (a script that
``cd``s there). An OS sandbox that makes other worktrees read-only for agents prevents
it; without one, this is detection by evidence.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from director_tui.engine.agents.base import ToolCall
from director_tui.engine.agents.collect import tool_summary
from director_tui.engine.events import AgentActivity, EventBase

# Tools that can write (read-only ones — read, glob, grep — never count).
WRITE_TOOLS = frozenset(
    {
        "write",
        "edit",
        "multiedit",
        "patch",
        "apply_patch",
        "str_replace",
        "notebookedit",
        "bash",
        "shell",
        "exec_command",
        "local_shell",
    }
)
# Where a path can start inside a shell command: after a space, a quote, a redirection,
# an `=` (--out=../x) or a separator.
_TOKEN_SPLIT = re.compile(r"[\s'\"`=;|&<>()]+")


def sibling_targets(
    text: str, cwd: Path, worktrees: Path, siblings: Iterable[str]
) -> dict[str, str]:
    """The sibling worktrees (by node id) that a path in ``text`` leads into, each with
    the path as written; relative paths taken from ``cwd``. Resolved lexically (no
    symlinks followed): a path is what the agent typed."""
    roots = {str(worktrees), os.path.realpath(worktrees)}
    names = set(siblings)
    hits: dict[str, str] = {}
    for token in _TOKEN_SPLIT.split(text):
        if "/" not in token:
            continue
        path = os.path.normpath(token if os.path.isabs(token) else os.path.join(cwd, token))
        for root in roots:
            rel = os.path.relpath(path, root) if path.startswith(root + os.sep) else ""
            first = rel.split(os.sep, 1)[0]
            if first in names:
                hits.setdefault(first, token)
    return hits


class SiblingWatch:
    """Collects the evidence for one run (an event-bus sink; thread-safe)."""

    def __init__(self, worktrees: Path, node_ids: Sequence[str]) -> None:
        self.worktrees = worktrees
        self.node_ids = tuple(node_ids)
        self._lock = threading.Lock()
        self._offences: dict[str, list[str]] = {}  # writer → what it did
        self._writers: dict[str, set[str]] = {}  # sibling → who wrote into it
        # Folders under ``worktrees`` that are not named after a node: a run's slot
        # worktrees (``_slot-<k>``), each the worktree of the node whose attempt holds it.
        self._slots: dict[str, str | None] = {}  # slot folder → node holding it

    def place(self, nid: str, folder: str | None) -> None:
        """``nid``'s attempt works in ``worktrees/<folder>`` (a slot) from now on; None: the
        slot it held is free again."""
        with self._lock:
            for name, holder in self._slots.items():
                if holder == nid:
                    self._slots[name] = None
            if folder is not None:
                self._slots[folder] = nid

    def _folder_of(self, nid: str) -> str:
        for name, holder in self._slots.items():
            if holder == nid:
                return name
        return nid

    def __call__(self, event: EventBase) -> None:
        if (
            isinstance(event, AgentActivity)
            and event.kind == "tool"
            and event.node_id
            and event.role in ("executor", "escalation")
        ):
            self.note(event.node_id, event.tool, event.summary)

    def note_calls(self, nid: str, tool_calls: Iterable[ToolCall]) -> None:
        """The whole call's tool list, once it ended (live summaries are cut short)."""
        for call in tool_calls:
            self.note(nid, call.tool, tool_summary(call.input))

    def note(self, nid: str, tool: str, text: str) -> None:
        if tool.lower() not in WRITE_TOOLS or nid not in self.node_ids or not text:
            return
        with self._lock:
            own = self._folder_of(nid)
            others = [n for n in (*self.node_ids, *self._slots) if n not in (nid, own)]
            targets = sibling_targets(text, self.worktrees / own, self.worktrees, others)
            if not targets:
                return
            offences = self._offences.setdefault(nid, [])
            for folder, path in sorted(targets.items()):
                # A slot's folder is the worktree of the node holding it (none: a free one).
                target = self._slots.get(folder) or folder
                self._writers.setdefault(target, set()).add(nid)
                line = f"node {target}'s {path} ({tool})"
                if line not in offences:
                    offences.append(line)

    def begin_attempt(self, nid: str) -> None:
        """The node's worktree was just made clean: earlier writes into it are gone."""
        with self._lock:
            self._writers.pop(nid, None)

    def take_offences(self, nid: str) -> list[str]:
        """What ``nid``'s agent wrote into other nodes' worktrees since last asked."""
        with self._lock:
            return self._offences.pop(nid, [])

    def writers_into(self, nid: str) -> list[str]:
        """The nodes whose agents wrote into ``nid``'s worktree during its attempt."""
        with self._lock:
            return sorted(self._writers.get(nid, set()))


def offence_message(nid: str, offences: list[str], worktrees: Path) -> str:
    return (
        f"the agent wrote into other nodes' worktrees ({worktrees}/<node>): "
        + "; ".join(offences[:6])
        + (f" (+{len(offences) - 6} more)" if len(offences) > 6 else "")
        + f". If the blame is wrong, press r / run `director retry {nid}` if the node ends failed"
    )


OFFENCE_FEEDBACK = (
    "You wrote into another node's working directory (a sibling folder of yours). Work "
    "only inside your current directory: never cd out of it, never write to absolute "
    "paths or parent folders."
)


def victim_message(writers: list[str]) -> str:
    return (
        f"the agent of node(s) {', '.join(writers)} wrote into this node's worktree while "
        "its attempt ran: what it would merge cannot be told apart from their writes, so it "
        "is not merged and runs again from a clean worktree (not charged)"
    )


VICTIM_FEEDBACK = (
    "Another agent wrote into your working directory while you worked, so your attempt "
    "was discarded through no fault of yours. Start again from a clean tree."
)
