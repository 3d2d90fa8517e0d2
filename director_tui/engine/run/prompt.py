"""The executor's message for one attempt, and whether it watched its tests fail."""

from __future__ import annotations

from pathlib import Path

from director_tui.engine.agents.base import ToolCall
from director_tui.engine.guidance import guidance_prompt
from director_tui.engine.models import Node, WatchItFail

FILE_CHARS = 40_000  # per allowlisted/test file shown to the executor
EDIT_TOOLS = frozenset({"write", "edit", "multiedit", "patch", "apply_patch", "str_replace"})


def watch_it_fail(tool_calls: list[ToolCall], node: Node) -> WatchItFail:
    """Did the executor run the node's tests before its first edit?"""
    if not tool_calls:
        return "unknown"
    markers = [node.test_cmd.strip(), *node.tests, *(Path(t).name for t in node.tests)]
    markers = [m for m in markers if m]
    for call in tool_calls:
        name = call.tool.lower()
        if name in EDIT_TOOLS:
            return "not_observed"
        if name == "bash":
            command = str(call.input.get("command", ""))
            if any(m in command for m in markers):
                return "observed"
    return "not_observed"


def _read_for_prompt(path: Path) -> str:
    if not path.is_file():
        return "(does not exist yet — create it)"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(cannot read: {exc.strerror})"
    if len(text) > FILE_CHARS:
        return text[:FILE_CHARS] + f"\n[… cut at {FILE_CHARS} characters]"
    return text


def executor_prompt(node: Node, worktree: Path, *, feedback: str, attempt: int) -> str:
    """The executor's message for one attempt (its role prompt is its system prompt)."""
    parts = [
        f"# Node `{node.id}`: {node.title}".rstrip(": "),
        "",
        "## Spec",
        node.spec or "(no spec text: follow the tests)",
        "",
        "## Files you may change (allowlist)",
        "Change only these; anything else rejects your work.",
    ]
    for rel in node.files:
        if rel.endswith("/"):
            parts.append(f"### {rel} (folder: new files under it are allowed)")
            continue
        parts += [f"### {rel}", "```", _read_for_prompt(worktree / rel), "```"]
    parts += [
        "",
        "## Tests (frozen: never edit them)",
        f"Test command: `{node.test_cmd}`",
    ]
    for rel in node.tests:
        parts += [f"### {rel}", "```", _read_for_prompt(worktree / rel), "```"]
    if node.red_output.strip():
        parts += [
            "",
            "## How the tests fail right now",
            "```",
            node.red_output.strip()[-8000:],
            "```",
        ]
    guidance = guidance_prompt(worktree, [*node.files, *node.tests])
    if guidance:
        parts += ["", guidance]
    if feedback.strip():
        parts += [
            "",
            # After a retry the budget starts over (attempt 1): the rejected one was earlier.
            f"## Why attempt {attempt - 1} was rejected"
            if attempt > 1
            else "## Why the previous attempt was rejected",
            "Start again from a clean tree; do not repeat the mistake.",
            "```",
            feedback.strip()[-8000:],
            "```",
        ]
    parts += [
        "",
        f"Run `{node.test_cmd}` first and watch it fail, then implement, then run it again "
        "until it passes.",
    ]
    return "\n".join(parts)


def node_watch_it_fail(
    attempts: list[WatchItFail],
) -> WatchItFail:
    """The node's summary of its attempts: observed when any attempt watched its tests
    fail (a later attempt that knows they fail need not run them first again)."""
    if "observed" in attempts:
        return "observed"
    return "not_observed" if "not_observed" in attempts else "unknown"
