"""Gate 2 edits: plan.json and test files a human (or the critic) changed at the gate are
re-validated, re-checked red and re-hashed; the critic's plan keeps existing nodes' frozen facts.
The critic revises the human's edited plan, which is kept in ``plan.edited.json`` and can be
put back (``restore_edited_plan``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import ValidationError

from director_tui.engine import dag, git
from director_tui.engine.context import EngineContext
from director_tui.engine.errors import PlanInvalidError, UsageError
from director_tui.engine.models import Plan, PlanStage
from director_tui.engine.plan.common import (
    RESTORE_HINT,
    ask,
    notice,
    read_text,
    restore_kept_edit,
)
from director_tui.engine.plan.plan_file import PLAN_EDITED, PLAN_GENERATED, parse_plan, read_plan
from director_tui.engine.plan.prompts import (
    critic_plan_prompt,
)
from director_tui.engine.plan.red_tests import (
    freeze,
    is_junk,
    red_check,
    revert_outside,
    tests_frozen,
)
from director_tui.engine.store import Store, atomic_write_text


async def reconcile_plan_edits(
    ctx: EngineContext, stage: PlanStage, worktree: Path
) -> tuple[bool, list[str]]:
    """Pick up plan.json and test files edited at Gate 2: re-validate, drop tests of removed
    nodes, re-check red and re-hash changed tests. Returns whether some node has no tests
    yet, and the nodes whose tests were re-checked."""
    store = ctx.store
    plan = read_plan(store)
    errors = dag.validate(plan)
    if errors:
        raise PlanInvalidError(
            errors, hint="fix .director/plan.json, then `director plan --continue`"
        )
    generated_path = store.root / PLAN_GENERATED
    generated = store.read_model(generated_path, Plan) if generated_path.exists() else None
    before = {n.id: n for n in (generated.nodes if generated else [])}
    current_tests = {dag.normalise_path(t) for n in plan.nodes for t in n.tests}
    stray = [
        p
        for p in git.dirty_files(worktree)
        if dag.normalise_path(p) not in current_tests
        and not is_junk(p, ctx.config.repository.ignore)
    ]
    dropped = [
        t
        for n in before.values()
        for t in n.tests
        if dag.normalise_path(t) not in current_tests and t not in stray
    ]
    stray = [p for p in stray if p not in dropped]
    if stray:
        raise UsageError(
            "the job worktree has changes outside the plan's test files:\n"
            + "\n".join(f"  {git.shown(p)}" for p in stray),
            hint=f"only test files may be edited at Gate 2; undo the rest in {worktree}",
        )
    removed = [t for t in dropped if git.file_at(worktree, "HEAD", t) is not None]
    if removed:
        git.git(["rm", "-q", "-f", "--", *removed], worktree)
        git.git(
            ["commit", "-q", "--no-verify", "-m", "director: drop tests of removed nodes"], worktree
        )
        notice(ctx, f"removed the tests of nodes no longer in the plan: {', '.join(removed)}")
    revert_outside(worktree, current_tests)
    needs_tests = False
    retested: list[str] = []
    for node in plan.nodes:
        previous = before.get(node.id)
        if not all((worktree / t).is_file() for t in node.tests) or (
            previous is None and not node.test_hashes
        ):
            node.test_hashes = {}
            needs_tests = True
            continue
        changed = (
            previous is None
            or previous.test_cmd != node.test_cmd
            or set(previous.tests) != set(node.tests)
            or not tests_frozen(worktree, node)
        )
        if not changed:
            continue
        verdict, output = await red_check(ctx, node, worktree, 0)
        if not verdict.ok:
            store.write_model(store.plan, plan)
            raise UsageError(
                f"the edited tests of node {node.id} are not red for the right reason: "
                f"{verdict.reason}\n" + "\n".join(output.strip().splitlines()[-15:]),
                hint=f"fix them in {worktree} (or plan.json's test_cmd), then continue",
            )
        freeze(worktree, node, output, f"director: tests of {node.id} edited at Gate 2")
        retested.append(node.id)
        notice(ctx, f"edited tests of node {node.id} are red and re-hashed", node_id=node.id)
    store.write_model(store.plan, plan)
    return needs_tests, retested


def plan_is_edited(store: Store) -> bool:
    """Whether plan.json carries a human's edits (it differs from director's last plan)."""
    generated = store.root / PLAN_GENERATED
    return generated.exists() and _plan_fingerprint(store.plan) != _plan_fingerprint(generated)


def restore_edited_plan(store: Store) -> None:
    """Put the human's kept plan back as plan.json. The critic's stays in
    plan.generated.json, so going on from Gate 2 treats the human's plan as an edit: it is
    re-validated and the tests it names are written, re-checked and re-hashed as needed."""
    restore_kept_edit(
        store.plan,
        store.root / PLAN_EDITED,
        edited_since=lambda: plan_is_edited(store),
        replaced_by="the critic revised it",
        kept_when="the critic revised a plan you edited",
    )


def edit_note(store: Store, retested: list[str]) -> str:
    notes = []
    if plan_is_edited(store):
        notes.append("plan.json edited at the gate")
    if retested:
        notes.append("tests edited at the gate: " + ", ".join(retested))
    return "; ".join(notes)


def _plan_fingerprint(path: Path) -> str:
    """The plan's content without the facts director records (hashes, red output)."""
    try:
        plan = Plan.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return ""
    nodes = [n.model_dump(exclude={"test_hashes", "red_output"}) for n in plan.nodes]
    return hashlib.sha256(json.dumps(nodes, sort_keys=True).encode()).hexdigest()


def _merge_critic_plan(current: Plan, revised: Plan) -> Plan:
    """The critic's plan, with the frozen facts of existing nodes (tests, test command,
    hashes, red output) kept from the current plan."""
    existing = {n.id: n for n in current.nodes}
    nodes = []
    for node in revised.nodes:
        old = existing.get(node.id)
        if old is not None:
            node = node.model_copy(
                update={
                    "tests": old.tests,
                    "test_cmd": old.test_cmd,
                    "test_hashes": old.test_hashes,
                    "red_output": old.red_output,
                }
            )
        nodes.append(node)
    return current.model_copy(update={"nodes": nodes})


async def critique_plan(ctx: EngineContext, stage: PlanStage, worktree: Path) -> bool | None:
    """The critic revises plan.json once. Returns None when the plan was kept, else whether
    some node of the revised plan still needs its tests written (the pipeline then runs
    the tests stage before the plan is snapshotted)."""
    store = ctx.store
    current = read_plan(store)
    edited = plan_is_edited(store)
    prompt = critic_plan_prompt(stage.task, read_text(store.spec), current, edited_by_user=edited)
    answer = await ask(ctx, "critic", prompt, worktree)
    revised, errors = parse_plan(answer)
    if revised is not None and not errors:
        merged = _merge_critic_plan(current, revised)
        errors = dag.validate(merged)
    if revised is None or errors:
        notice(
            ctx,
            "the critic's plan was not valid; kept the current plan: " + "; ".join(errors[:3]),
            "warning",
        )
        return None
    if json.dumps(merged.model_dump(mode="json"), sort_keys=True) == json.dumps(
        current.model_dump(mode="json"), sort_keys=True
    ):
        notice(ctx, "the critic left the plan unchanged")
        return None
    if edited:  # the human's plan is never lost to the critic's
        kept = store.root / PLAN_EDITED
        atomic_write_text(kept, read_text(store.plan))
        notice(
            ctx,
            f"the critic revised your edited plan; your version is kept in "
            f"{kept.relative_to(store.repo)} ({RESTORE_HINT})",
        )
    stage.plan_by = "critic"
    store.write_model(store.plan, merged)
    needs_tests, _ = await reconcile_plan_edits(ctx, stage, worktree)
    return needs_tests
