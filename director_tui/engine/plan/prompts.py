"""The task-specific messages of the planning roles.

The role's standing instructions live in ``engine/prompts/<role>.md`` (the agent's system
prompt); these functions build the user message of one call: the task, the repository
notes, the artifact to work on and, on a retry, exactly what was wrong last time. Each
message is self-contained, because every call starts a fresh agent session.
"""

from __future__ import annotations

import json

from director_tui.engine.models import Node, Plan

# Keep repeated context bounded: a prompt that grows with every retry costs every retry.
MAX_RECON_CHARS = 16_000
MAX_OUTPUT_CHARS = 6_000


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "\n[... cut]"


def _tail(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else "[... earlier output cut]\n" + text[-limit:]


def _section(title: str, body: str) -> str:
    return f"## {title}\n\n{body.strip()}\n"


def recon_prompt(task: str) -> str:
    return "\n".join(
        [
            "Survey this repository for the task below and write the reconnaissance report "
            "your instructions describe. Read only; change nothing.",
            "",
            _section("Task", task),
        ]
    )


def spec_prompt(task: str, recon: str) -> str:
    return "\n".join(
        [
            "Write the design spec for the task below, following your instructions. "
            "Answer with the spec in Markdown only.",
            "",
            _section("Task", task),
            _section("Repository notes (from reconnaissance)", _clip(recon, MAX_RECON_CHARS)),
        ]
    )


def spec_revision_prompt(task: str, recon: str, spec: str, comment: str) -> str:
    return "\n".join(
        [
            "A human reviewer rejected the spec below with the comments that follow. "
            "Rewrite the whole spec so that it addresses every comment. Answer with the "
            "complete revised spec in Markdown only.",
            "",
            _section("Reviewer comments", comment),
            _section("Task", task),
            _section("Current spec", spec),
            _section("Repository notes (from reconnaissance)", _clip(recon, MAX_RECON_CHARS)),
        ]
    )


def decompose_prompt(
    task: str,
    spec: str,
    recon: str,
    *,
    previous_answer: str = "",
    errors: list[str] | None = None,
) -> str:
    parts = [
        "Decompose the approved spec below into a plan: one JSON object with a `nodes` "
        "list, following your instructions. Answer with the JSON object only.",
        "",
    ]
    if errors:
        parts += [
            _section(
                "Your previous answer was rejected",
                "Fix every one of these problems and answer with the complete corrected "
                "JSON object:\n" + "\n".join(f"- {e}" for e in errors),
            ),
            _section("Your previous answer", "```\n" + _tail(previous_answer) + "\n```"),
        ]
    parts += [
        _section("Task", task),
        _section("Approved spec", spec),
        _section("Repository notes (from reconnaissance)", _clip(recon, MAX_RECON_CHARS)),
    ]
    return "\n".join(parts)


# Said to the critic when the artifact carries the user's saved edits: it is their version
# now, so the critic revises on top of it instead of undoing it.
USER_EDIT_NOTE = (
    "The user edited this {what} at the gate: it is their version now. Revise it on top "
    "of their edits; keep every change they made unless it contradicts the task."
)


def critic_spec_prompt(task: str, spec: str, recon: str, *, edited_by_user: bool = False) -> str:
    return "\n".join(
        [
            "Review this design spec against the task, as your instructions describe, and "
            "answer with the complete revised spec in Markdown only (or the same spec, "
            "unchanged, if it is already right).",
            *([USER_EDIT_NOTE.format(what="spec")] if edited_by_user else []),
            "",
            _section("Task", task),
            _section(
                "Spec to review (edited by the user)" if edited_by_user else "Spec to review", spec
            ),
            _section("Repository notes (from reconnaissance)", _clip(recon, MAX_RECON_CHARS)),
        ]
    )


def plan_for_prompt(plan: Plan) -> str:
    """The plan as a model should see it: no job bookkeeping, no hashes, no test output."""
    nodes = [
        node.model_dump(exclude={"test_hashes", "red_output"}, mode="json") for node in plan.nodes
    ]
    return json.dumps({"nodes": nodes}, indent=2)


def critic_plan_prompt(task: str, spec: str, plan: Plan, *, edited_by_user: bool = False) -> str:
    return "\n".join(
        [
            "Review this plan against the task and the approved spec, as your instructions "
            "describe, and answer with the complete revised plan as one JSON object only "
            "(or the same plan, unchanged, if it is already right). The tests of existing "
            "nodes are already written and frozen: keep each existing node's `tests` and "
            "`test_cmd` as they are.",
            *([USER_EDIT_NOTE.format(what="plan")] if edited_by_user else []),
            "",
            _section("Task", task),
            _section("Approved spec", spec),
            _section(
                "Plan to review (edited by the user)" if edited_by_user else "Plan to review",
                "```json\n" + plan_for_prompt(plan) + "\n```",
            ),
        ]
    )


def test_author_prompt(
    task: str,
    plan: Plan,
    node: Node,
    *,
    recon: str = "",
    guidance: str = "",
    feedback: str = "",
) -> str:
    others = [
        f"- `{n.id}`: {n.title or '(untitled)'} — files: {', '.join(n.files) or '-'}"
        for n in plan.nodes
        if n.id != node.id
    ]
    parts = [
        f"Write the failing tests for node `{node.id}`, following your instructions.",
        "",
    ]
    if feedback:
        parts.append(_section("What was wrong with your previous attempt", feedback))
    parts += [
        _section(
            "Your files",
            "Create or edit only these test files:\n"
            + "\n".join(f"- `{t}`" for t in node.tests)
            + f"\n\nThey are run with:\n\n```\n{node.test_cmd}\n```\n\n"
            "This command must exit non-zero because tests fail on assertions or missing "
            "behaviour — not because a test file cannot be collected or imported.",
        ),
        _section(
            f"Node `{node.id}`: {node.title}",
            node.spec
            + "\n\nThe implementation will go in: "
            + ", ".join(f"`{f}`" for f in node.files)
            + " (do not create or edit these).",
        ),
        _section("The whole task", task),
    ]
    if others:
        parts.append(_section("Other nodes of the plan (context only)", "\n".join(others)))
    if recon.strip():
        parts.append(_section("Repository notes (from reconnaissance)", _clip(recon, 8_000)))
    if guidance.strip():
        parts.append(guidance)
    return "\n".join(parts)


def red_feedback(reason: str, command: str, output: str, *, reverted: list[str]) -> str:
    """What the test author is told when its tests were not red for the right reason."""
    lines = [
        f"Your tests were run with `{command}` before any implementation exists. "
        f"They are not acceptable yet: {reason}.",
        "",
        "Output of that run:",
        "```",
        _tail(output),
        "```",
    ]
    if reverted:
        lines += [
            "",
            "You also changed files that are not yours; those changes were undone: "
            + ", ".join(f"`{p}`" for p in reverted),
        ]
    return "\n".join(lines)
