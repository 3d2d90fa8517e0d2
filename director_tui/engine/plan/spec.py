"""The spec stage: reconnaissance, the spec, and replacing it (a rejection's rewrite or the
critic's revision) without losing a human's edits: the critic revises the human's version,
which is kept in ``spec.edited.md`` and can be put back (``restore_edited_spec``)."""

from __future__ import annotations

from pathlib import Path

from director_tui.engine.context import EngineContext
from director_tui.engine.jsonextract import strip_outer_fence
from director_tui.engine.models import PlanStage
from director_tui.engine.plan.common import (
    RESTORE_HINT,
    ask,
    notice,
    read_text,
    restore_kept_edit,
)
from director_tui.engine.plan.prompts import (
    critic_spec_prompt,
    recon_prompt,
    spec_prompt,
    spec_revision_prompt,
)
from director_tui.engine.store import Store, atomic_write_text


async def write_recon(ctx: EngineContext, stage: PlanStage, worktree: Path) -> None:
    text = await ask(ctx, "explorer", recon_prompt(stage.task), worktree)
    atomic_write_text(ctx.store.recon, text.strip() + "\n")


async def write_spec(ctx: EngineContext, stage: PlanStage, worktree: Path) -> None:
    text = await ask(
        ctx, "brainstorm", spec_prompt(stage.task, read_text(ctx.store.recon)), worktree
    )
    spec = strip_outer_fence(text)
    atomic_write_text(ctx.store.spec_generated, spec)
    atomic_write_text(ctx.store.spec, spec)
    stage.spec_by = "brainstorm"


def spec_is_edited(store: Store) -> bool:
    """Whether spec.md carries a human's saved edits (it differs from the agent's last)."""
    current = read_text(store.spec)
    return bool(current.strip()) and current != read_text(store.spec_generated)


async def critique_spec(ctx: EngineContext, stage: PlanStage, worktree: Path) -> None:
    """The critic revises spec.md as it is now — the human's version when they edited it."""
    store = ctx.store
    edited = spec_is_edited(store)
    prompt = critic_spec_prompt(
        stage.task, read_text(store.spec), read_text(store.recon), edited_by_user=edited
    )
    revised = strip_outer_fence(await ask(ctx, "critic", prompt, worktree))
    if len(revised.strip()) < 20:
        notice(ctx, "the critic's spec was too short to be a spec; kept the current one", "warning")
        return
    kept = replace_spec(ctx, revised)
    stage.spec_by = "critic"
    what = "your edited .director/spec.md" if edited else ".director/spec.md"
    notice(ctx, f"the critic revised {what}" + kept)


def replace_spec(ctx: EngineContext, spec: str) -> str:
    """Write an agent's new spec. A spec the human edited is never lost to it: their
    version is kept beside it first. Returns the note that says so ('' when unedited)."""
    store = ctx.store
    current = read_text(store.spec)
    kept = ""
    if current.strip() and current != read_text(store.spec_generated):
        atomic_write_text(store.spec_edited, current)
        kept = (
            f"; your version is kept in {store.spec_edited.relative_to(store.repo)} "
            f"({RESTORE_HINT})"
        )
    atomic_write_text(store.spec_generated, spec)
    atomic_write_text(store.spec, spec)
    return kept


async def rewrite_spec(ctx: EngineContext, stage: PlanStage, worktree: Path, comment: str) -> str:
    """A reviewer's rejection at Gate 1: the brainstorm agent rewrites the whole spec.
    Returns the note about a kept human edit ('' when there was none)."""
    store = ctx.store
    prompt = spec_revision_prompt(
        stage.task, read_text(store.recon), read_text(store.spec), comment
    )
    text = await ask(ctx, "brainstorm", prompt, worktree)
    kept = replace_spec(ctx, strip_outer_fence(text))
    stage.spec_by = "brainstorm"
    return kept


def restore_edited_spec(store: Store) -> None:
    """Put the human's kept version back as spec.md. The agent's spec stays in
    spec.generated.md, so the human's changes show against it."""
    restore_kept_edit(
        store.spec,
        store.spec_edited,
        edited_since=lambda: spec_is_edited(store),
        replaced_by="the agent replaced it",
        kept_when="the critic or a rewrite replaced a spec you edited",
    )
