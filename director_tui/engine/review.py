"""Two-stage review of a node that passed its deterministic gate.

* Stage one is the gate itself (``engine/gates.py``), plus — only when
  ``[review] stage_one_llm`` is on — an advisory explorer-tier read of the diff that is
  recorded and never blocks.
* Stage two (the ``reviewer`` role) is cost-gated: it runs only when the node escalated or
  its change touched more than ``[review] stage_two_file_threshold`` files, and only when
  ``[review] stage_two`` is on. The answer must be one JSON object (see
  :func:`parse_verdict`); a ``critical`` finding blocks the merge and re-opens the node.
  An unparseable answer is asked for once more; a second bad answer is recorded as a
  non-blocking review error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from director_tui.engine import git, jsonextract
from director_tui.engine.agents.base import AgentResult
from director_tui.engine.config import Config
from director_tui.engine.models import Node, Verdict

VERDICT_SHAPE = (
    '{"verdict": "pass" | "block", "summary": "...", '
    '"findings": [{"severity": "critical" | "major" | "minor", "file": "...", "summary": "..."}]}'
)


# How review calls an agent: (role, prompt, cwd) → result. The run engine passes one that
# books the call's tokens and cost on the node.
AgentCaller = Callable[[str, str, Path], Awaitable[AgentResult]]


@dataclass(frozen=True)
class ReviewSubject:
    """What both review stages read: the node, its attempt's worktree, the base its diff
    is taken against, and how to call the agent."""

    node: Node
    worktree: Path
    base: str
    call: AgentCaller

    async def diff(self) -> str:
        return await asyncio.to_thread(git.diff_text, self.worktree, self.base)


class VerdictError(ValueError):
    """The reviewer's answer is not a verdict."""


def extract_json_object(text: str) -> dict[str, Any]:
    """The verdict object in ``text`` (bare, fenced, wrapped in prose, lightly broken)."""
    try:
        return jsonextract.extract_json_object(text, expect_keys=("verdict",))
    except jsonextract.JsonExtractError as exc:
        raise VerdictError(str(exc)) from exc


def parse_verdict(text: str) -> Verdict:
    """A :class:`Verdict` from the reviewer's answer, or :class:`VerdictError`."""
    if not text.strip():
        raise VerdictError("the reviewer gave no answer")
    data = extract_json_object(text)
    try:
        return Verdict.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise VerdictError(f"not a verdict: {loc}: {first['msg']}") from exc


def needs_stage_two(config: Config, *, escalated: bool, files_touched: int) -> bool:
    review = config.review
    return review.stage_two and (escalated or files_touched > review.stage_two_file_threshold)


def review_prompt(node: Node, diff: str, *, retry_note: str = "") -> str:
    parts = [
        f"Review the change made for node `{node.id}` — {node.title}.",
        "",
        "## Node spec",
        node.spec or "(no spec text)",
        "",
        "## Allowlist",
        "\n".join(f"- {f}" for f in node.files),
        "",
        "## Tests (already passing, frozen)",
        "\n".join(f"- {t}" for t in node.tests) + f"\nCommand: `{node.test_cmd}`",
        "",
        "## Diff",
        "```diff",
        diff,
        "```",
        "",
        f"Answer with exactly one JSON object of this shape and nothing else: {VERDICT_SHAPE}",
    ]
    if retry_note:
        parts += ["", retry_note]
    return "\n".join(parts)


@dataclass
class ReviewOutcome:
    verdict: Verdict | None = None
    error: str = ""
    calls: int = 0

    @property
    def blocking(self) -> bool:
        return self.verdict is not None and self.verdict.blocking

    def feedback(self) -> str:
        if self.verdict is None:
            return ""
        lines = [f"The reviewer blocked the previous attempt: {self.verdict.summary}"]
        for f in self.verdict.findings:
            where = f" ({f.file})" if f.file else ""
            lines.append(f"- [{f.severity}]{where} {f.summary}")
        return "\n".join(lines)


async def stage_two(subject: ReviewSubject) -> ReviewOutcome:
    """Ask the reviewer; one more try when the answer is not a verdict."""
    node, diff = subject.node, await subject.diff()
    outcome = ReviewOutcome()
    note = ""
    for _ in range(2):
        prompt = review_prompt(node, diff, retry_note=note)
        result = await subject.call("reviewer", prompt, subject.worktree)
        outcome.calls += 1
        if not result.ok:
            outcome.error = f"reviewer call failed ({result.exit_reason.value}): {result.message}"
            note = ""
            continue
        try:
            outcome.verdict = parse_verdict(result.text)
            outcome.error = ""
            return outcome
        except VerdictError as exc:
            outcome.error = f"unparseable review verdict: {exc}"
            note = (
                "Your previous answer could not be parsed as a verdict "
                f"({exc}). Reply with the JSON object only."
            )
    return outcome


async def stage_one_advisory(subject: ReviewSubject) -> str:
    """An explorer-tier read of the diff against the spec; advisory only, never blocks."""
    node, diff = subject.node, await subject.diff()
    prompt = (
        f"Advisory spec-compliance check for node `{node.id}`. Read the spec and the diff "
        "and say in a few sentences whether the change does what the spec asks. "
        "You cannot block anything; be brief.\n\n## Spec\n"
        f"{node.spec}\n\n## Diff\n```diff\n{diff}\n```"
    )
    result = await subject.call("explorer", prompt, subject.worktree)
    return result.text.strip() if result.ok else f"(advisory check failed: {result.message})"
