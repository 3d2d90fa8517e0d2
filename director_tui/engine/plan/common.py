"""What every planning stage uses: the agent call that must answer, notices, artifacts' text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from director_tui.engine.agents.base import ExitReason
from director_tui.engine.context import EngineContext
from director_tui.engine.errors import DirectorError, UsageError
from director_tui.engine.events import Notice
from director_tui.engine.store import atomic_write_text

FATAL_EXITS = frozenset({ExitReason.binary_missing, ExitReason.cancelled})


class AgentFailedError(DirectorError):
    """An agent call of the pipeline failed; the stage is kept so it can be retried."""


def notice(
    ctx: EngineContext,
    message: str,
    level: Literal["info", "warning", "error"] = "info",
    node_id: str | None = None,
) -> None:
    ctx.bus.emit(Notice(level=level, message=message, node_id=node_id))


async def ask(
    ctx: EngineContext,
    role: str,
    prompt: str,
    cwd: Path,
    *,
    node_id: str | None = None,
    attempt: int = 0,
) -> str:
    result, _ = await ctx.call_agent(role, prompt, cwd, node_id=node_id, attempt=attempt)
    if not result.ok:
        raise AgentFailedError(
            f"the {role} agent failed ({result.exit_reason.value}): "
            f"{result.message or 'no message'}",
            hint="fix the cause, then `director plan --continue` retries this step",
        )
    if not result.text.strip():
        raise AgentFailedError(
            f"the {role} agent finished without an answer",
            hint="`director plan --continue` retries this step",
        )
    return result.text


def read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


# How a human gets back their edited spec or plan after the critic revised it.
RESTORE_HINT = "restore it with u in the app, or `director plan --restore-edit`"


def restore_kept_edit(
    current: Path,
    kept: Path,
    *,
    edited_since: Callable[[], bool],
    replaced_by: str,
    kept_when: str,
) -> None:
    """Put the human's kept version of a spec or plan back over ``current``; refused when
    none is kept, or when ``current`` has edits of theirs made since it was replaced."""
    what = current.stem
    text = read_text(kept)
    if not text.strip():
        raise UsageError(
            f"there is no edited {what} to restore: .director/{kept.name} is missing or empty",
            hint=f"a copy is kept only when {kept_when}",
        )
    if edited_since() and read_text(current) != text:
        raise UsageError(
            f".director/{current.name} has edits of yours made after {replaced_by}; "
            "restoring would lose them",
            hint=f"copy .director/{kept.name} over {current.name} yourself if that is what you want",
        )
    atomic_write_text(current, text)
