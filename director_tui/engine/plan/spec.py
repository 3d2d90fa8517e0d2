"""The spec stage: reconnaissance, the spec, and replacing it (a rejection's rewrite or the
critic's revision) without losing a human's edits."""

from __future__ import annotations

from pathlib import Path

from director_tui.engine.context import EngineContext
from director_tui.engine.jsonextract import strip_outer_fence
from director_tui.engine.models import PlanStage
from director_tui.engine.plan.common import ask, notice, read_text
from director_tui.engine.plan.prompts import (
    critic_spec_prompt,
    recon_prompt,
    spec_prompt,
    spec_revision_prompt,
)
from director_tui.engine.store import atomic_write_text


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


async def critique_spec(ctx: EngineContext, stage: PlanStage, worktree: Path) -> None:
    store = ctx.store
    prompt = critic_spec_prompt(stage.task, read_text(store.spec), read_text(store.recon))
    revised = strip_outer_fence(await ask(ctx, "critic", prompt, worktree))
    if len(revised.strip()) < 20:
        notice(ctx, "the critic's spec was too short to be a spec; kept the current one", "warning")
        return
    notice(ctx, "the critic revised .director/spec.md" + replace_spec(ctx, revised))


def replace_spec(ctx: EngineContext, spec: str) -> str:
    """Write an agent's new spec. A spec the human edited is never lost to it: their
    version is kept beside it first. Returns the note that says so ('' when unedited)."""
    store = ctx.store
    current = read_text(store.spec)
    kept = ""
    if current.strip() and current != read_text(store.spec_generated):
        atomic_write_text(store.spec_edited, current)
        kept = f"; your edited version is kept in {store.spec_edited.relative_to(store.repo)}"
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
    return replace_spec(ctx, strip_outer_fence(text))
