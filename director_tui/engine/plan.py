"""The plan pipeline: recon → spec → Gate 1 → decompose → tests red + hashed → Gate 2.

Public API (used by ``director plan``, ``director auto`` and the TUI; keep it stable)::

    stage = await start_plan(ctx, task, auto=False, critique=True)   # new job
    stage = await continue_plan(ctx, approver="human")                # resume / approve
    stage = await reject_spec(ctx, "comments")   # at Gate 1: brainstorm rewrites spec.md
    stage = await critique(ctx)                  # at a gate: the critic revises it once
    new_stage = approve_gate(stage, "human")     # pure: record an approval, advance
    text = next_step(stage)                      # what the user does next, in words
    stage = load_stage(store)                    # plan_stage.json, or None

Each returns the :class:`PlanStage` where the pipeline stopped: ``gate1``/``gate2``
(waiting for an approver — the CLI exits 3), or ``approved``. Expected failures raise
:class:`DirectorError` subclasses (``PlanInvalidError`` exit 2 for a plan that stays
invalid, ``UsageError`` for a dirty checkout, ``LockHeldError`` when another director
process works on the repo); the stage is left where it was, so ``continue_plan`` retries.

Every state change is written to ``.director/plan_stage.json`` and emitted on
``ctx.bus`` as ``PlanStageChanged`` (plus ``Notice`` for retries and warnings,
``GateResult``/``TestOutput`` for red checks). Every agent call goes through
``ctx.call_agent``, which records its cost and streams its activity.

Safety: the user's checkout is never touched. Planning refuses a dirty tree (ignoring
``.director/``) or a detached HEAD, creates ``director/job-<id>`` from the current commit
without checking it out, and does all job-branch work in ``jobs.ensure_job_worktree``.
Only test files are ever committed to the job branch. An earlier job is archived under
``.director/jobs/<id>/`` before a new one starts, never wiped.

Files: ``task.md``, ``recon.md``, ``spec.generated.md`` (as the agent wrote it) beside
``spec.md`` (what the human approves, possibly edited; ``spec.edited.md`` keeps the human's
version when a critic or a rewrite replaced an edited spec), ``plan.json`` (the DAG with
``test_hashes`` and ``red_output``), ``plan.generated.json`` (the plan as director last
produced it at Gate 2, to see human edits), ``plan_stage.json`` (the bookmark, with every
approval: human, critic or auto).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from director_tui.engine import dag, git, jobs
from director_tui.engine.agents import PLAN_ROLES, require_binaries
from director_tui.engine.agents.base import ExitReason
from director_tui.engine.context import EngineContext
from director_tui.engine.errors import DirectorError, PlanInvalidError, UsageError
from director_tui.engine.events import GateResult, Notice, PlanStageChanged, TestOutput
from director_tui.engine.guidance import guidance_prompt
from director_tui.engine.jsonextract import JsonExtractError, extract_json_object, strip_outer_fence
from director_tui.engine.models import Approval, Node, Plan, PlanStage, Stage, now
from director_tui.engine.plan_prompts import (
    critic_plan_prompt,
    critic_spec_prompt,
    decompose_prompt,
    recon_prompt,
    red_feedback,
    spec_prompt,
    spec_revision_prompt,
    test_author_prompt,
)
from director_tui.engine.proc import run_command
from director_tui.engine.redcheck import RedVerdict, classify_red
from director_tui.engine.store import RUNTIME_IGNORES, Store, atomic_write_text

Approver = Literal["human", "critic", "auto"]
LOCK_PURPOSE = "plan"
PLAN_GENERATED = "plan.generated.json"
# Agent failures that another try cannot fix: stop at once instead of burning retries.
_FATAL_EXITS = frozenset({ExitReason.binary_missing, ExitReason.cancelled})


class AgentFailedError(DirectorError):
    """An agent call of the pipeline failed; the stage is kept so it can be retried."""


# -- the bookmark ------------------------------------------------------------------------
def load_stage(store: Store) -> PlanStage | None:
    return store.read_model(store.plan_stage, PlanStage)


def _require_stage(store: Store) -> PlanStage:
    stage = load_stage(store)
    if stage is None:
        raise UsageError(
            "there is no plan in progress in this repository",
            hint='start one with `director plan "<task>"`',
        )
    return stage


def _save(ctx: EngineContext, stage: PlanStage, message: str = "") -> None:
    stage.updated_at = now()
    ctx.store.write_model(ctx.store.plan_stage, stage)
    ctx.bus.emit(PlanStageChanged(job_id=stage.job_id, stage=stage.stage.value, message=message))


def _notice(
    ctx: EngineContext,
    message: str,
    level: Literal["info", "warning", "error"] = "info",
    node_id: str | None = None,
) -> None:
    ctx.bus.emit(Notice(level=level, message=message, node_id=node_id))


_NEXT_AFTER_GATE = {Stage.gate1: Stage.decompose, Stage.gate2: Stage.approved}


def approve_gate(stage: PlanStage, approver: Approver, note: str = "") -> PlanStage:
    """The stage after ``approver`` approved the gate it waits at (a new object)."""
    if stage.stage not in _NEXT_AFTER_GATE:
        raise UsageError(
            f"the plan is at stage {stage.stage.value!r}, not waiting at a gate",
            hint="`director status` shows where it is",
        )
    gate: Literal["gate1", "gate2"] = "gate1" if stage.stage == Stage.gate1 else "gate2"
    approval = Approval(gate=gate, approver=approver, note=note)
    return stage.model_copy(
        update={
            "stage": _NEXT_AFTER_GATE[stage.stage],
            "approvals": [*stage.approvals, approval],
            "updated_at": now(),
        }
    )


def next_step(stage: PlanStage) -> str:
    """What the user does next, in one or two lines."""
    if stage.stage == Stage.gate1:
        return (
            "Gate 1: review (and edit if you like) .director/spec.md, then run "
            "`director plan --continue` to approve it and decompose."
        )
    if stage.stage == Stage.gate2:
        return (
            "Gate 2: review .director/plan.json and the red tests on branch "
            f"{stage.job_branch} (checked out at .director/worktrees/_job), then run "
            "`director plan --continue` to approve."
        )
    if stage.stage == Stage.approved:
        return "The plan is approved: run `director run` to implement it."
    return f"Planning stopped at stage {stage.stage.value!r}: run `director plan --continue` to resume."


# -- the user's checkout ------------------------------------------------------------------
def check_checkout(repo: Path) -> tuple[str, str]:
    """The checked-out branch and commit; refuses what planning must not build on."""
    if not git.has_commits(repo):
        raise UsageError(f"{repo} has no commits yet", hint="make a first commit, then plan again")
    in_progress = git.operation_in_progress(repo)
    if in_progress is not None:
        what, finish = in_progress
        raise UsageError(
            f"{what} is in progress in {repo}: director plans from a settled branch",
            hint=f"finish it first ({finish}), then plan again",
        )
    if git.branch_exists(repo, "director"):
        # git cannot hold refs/heads/director and refs/heads/director/job-… at once
        raise UsageError(
            "a branch named 'director' exists: director's job branches are director/job-<id>, "
            "and git cannot have both",
            hint="rename it (git branch -m director <new-name>), then plan again",
        )
    tracked = _tracked_runtime_files(repo)
    if tracked:
        # director rewrites these: in the user's checkout that would be editing their files
        raise UsageError(
            "director's runtime files are committed in this repository ("
            + ", ".join(tracked[:5])
            + (", …" if len(tracked) > 5 else "")
            + "): director rewrites them, which would change your tracked files",
            hint="untrack them (git rm -r --cached <those files>, commit; only "
            ".director/config.toml and .director/profiles/ belong in git), then plan again",
        )
    branch = git.current_branch(repo)
    if branch is None:
        raise UsageError(
            "HEAD is detached: director plans from a branch",
            hint="check out a branch (`git switch -c <name>`) and plan again",
        )
    dirty = [f for f in git.dirty_files(repo) if not (f == ".gitignore" and _only_ours(repo))]
    if dirty:
        shown = "\n".join(f"  {git.shown(p)}" for p in dirty[:20])
        more = f"\n  … and {len(dirty) - 20} more" if len(dirty) > 20 else ""
        raise UsageError(
            f"the working tree has uncommitted changes:\n{shown}{more}",
            hint="commit or stash them first (an untracked file you keep out of git: add it "
            "to .gitignore); director never touches your uncommitted work",
        )
    return branch, git.rev(repo)


def _tracked_runtime_files(repo: Path) -> list[str]:
    """Files under .director/ that git tracks, except the config and profiles (which are
    the user's to commit): a director-cli user may have committed plan.json or spec.md."""
    listed = git.git(["ls-files", "-z", "--", ".director"], repo, check=False).stdout
    return [
        git.shown(raw)
        for raw in listed.split("\0")
        if raw and raw != ".director/config.toml" and not raw.startswith(".director/profiles/")
    ]


def _only_ours(repo: Path) -> bool:
    """True when the uncommitted change to .gitignore is only the lines `director init`
    adds: planning need not wait for that commit (.director/ is kept out of git through
    .git/info/exclude as well), and nothing the user wrote is left behind."""
    ours = {"# director runtime state", *RUNTIME_IGNORES}
    if git.git(["cat-file", "-e", "HEAD:.gitignore"], repo, check=False).returncode != 0:
        # A new, untracked .gitignore: all of it must be ours.
        lines = (repo / ".gitignore").read_text(encoding="utf-8", errors="replace").splitlines()
        return all(line.strip() in ours | {""} for line in lines)
    diff = git.git(["diff", "HEAD", "--no-color", "-U0", "--", ".gitignore"], repo, check=False)
    if diff.returncode != 0:
        return False
    changed = [
        line
        for line in diff.stdout.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    return bool(changed) and all(
        line.startswith("+") and line[1:].strip() in ours | {""} for line in changed
    )


# -- agent calls ---------------------------------------------------------------------------
async def _ask(
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


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


# -- starting, continuing, gates -------------------------------------------------------------
async def start_plan(
    ctx: EngineContext, task: str, *, auto: bool = False, critique: bool = True
) -> PlanStage:
    """Start a new job for ``task`` and run until the first gate that waits for a human
    (or, with ``auto``, to the approved plan)."""
    task = task.strip()
    if not task:
        raise UsageError("the task is empty", hint='director plan "<what you want done>"')
    store = ctx.store
    # Read-only, before the lock: a refused checkout leaves no .director/ behind.
    base_branch, base_commit = check_checkout(ctx.repo)
    require_binaries(ctx.config, PLAN_ROLES, "planning")
    with store.run_lock(LOCK_PURPOSE) as took_over:
        if took_over:
            _notice(ctx, took_over, "warning")
        archived = jobs.archive_current(store)
        if archived:
            _notice(ctx, f"the previous job was archived under .director/jobs/{archived}/")
        # run_lock → store.ensure() already keeps .director/ out of git status through
        # .git/info/exclude, so the user's .gitignore is never edited.
        job_id = jobs.new_job_id()
        branch = jobs.job_branch(job_id)
        git.create_branch(ctx.repo, branch, base_commit)
        atomic_write_text(store.task, task + "\n")
        stage = PlanStage(
            job_id=job_id,
            task=task,
            stage=Stage.recon,
            job_branch=branch,
            base_commit=base_commit,
            base_branch=base_branch,
            auto=auto,
            critique=critique,
        )
        _save(ctx, stage, f"job {job_id} on branch {branch} from {base_branch}@{base_commit[:10]}")
        submodules = git.submodule_paths(ctx.repo, base_commit)
        if submodules:
            # `git worktree add` leaves submodules empty, and filling them per node means
            # a clone each: say it once, before a gate fails on a missing file.
            _notice(
                ctx,
                f"this repository has git submodules ({', '.join(submodules[:5])}"
                f"{', …' if len(submodules) > 5 else ''}): director's worktrees do not check "
                "them out, so the agents, the tests and the gate commands see them as empty "
                "folders",
                "warning",
            )
        return await _drive(ctx, stage)


async def continue_plan(ctx: EngineContext, *, approver: Approver = "human") -> PlanStage:
    """Resume where the pipeline stopped. At a gate this approves the (possibly edited)
    artifact as ``approver``; after a failure it retries the failed step."""
    store = ctx.store
    with store.run_lock(LOCK_PURPOSE) as took_over:
        if took_over:
            _notice(ctx, took_over, "warning")
        stage = _require_stage(store)
        if stage.stage == Stage.approved:
            _notice(ctx, "the plan is already approved")
            return stage
        require_binaries(ctx.config, PLAN_ROLES, "planning")
        worktree = _job_worktree(ctx, stage)
        if stage.stage == Stage.gate1:
            stage = _approve_spec(ctx, stage, approver)
        elif stage.stage == Stage.gate2:
            needs_tests, retested = await _reconcile_plan_edits(ctx, stage, worktree)
            if needs_tests:
                stage.stage = Stage.tests
                _save(ctx, stage, "plan.json names tests that are not written yet")
            else:
                stage = approve_gate(stage, approver, _edit_note(store, retested))
                _save(ctx, stage, f"Gate 2 approved by {approver}")
        return await _drive(ctx, stage)


async def reject_spec(ctx: EngineContext, comment: str) -> PlanStage:
    """At Gate 1: send ``comment`` to the brainstorm agent and rewrite spec.md."""
    if not comment.strip():
        raise UsageError("a rejection needs a comment saying what to change")
    store = ctx.store
    with store.run_lock(LOCK_PURPOSE):
        stage = _require_stage(store)
        if stage.stage != Stage.gate1:
            raise UsageError(
                f"the spec can only be rejected at Gate 1 (the plan is at {stage.stage.value!r})"
            )
        worktree = _job_worktree(ctx, stage)
        prompt = spec_revision_prompt(stage.task, _read(store.recon), _read(store.spec), comment)
        text = await _ask(ctx, "brainstorm", prompt, worktree)
        kept = _replace_spec(ctx, strip_outer_fence(text))
        stage.rejection = comment.strip()
        _save(ctx, stage, "spec rewritten after the reviewer's comments" + kept)
        return stage


async def critique(ctx: EngineContext) -> PlanStage:
    """At a gate: the critic re-reads the artifact against the task and revises it once.
    The gate still waits for an approver afterwards."""
    store = ctx.store
    with store.run_lock(LOCK_PURPOSE):
        stage = _require_stage(store)
        worktree = _job_worktree(ctx, stage)
        if stage.stage == Stage.gate1:
            await _critique_spec(ctx, stage, worktree)
        elif stage.stage == Stage.gate2:
            await _critique_plan(ctx, stage, worktree)
        else:
            raise UsageError(
                f"nothing to critique: the plan is at {stage.stage.value!r}, not at a gate"
            )
        _save(ctx, stage, "the critic revised the gate artifact")
        return stage


def _job_worktree(ctx: EngineContext, stage: PlanStage) -> Path:
    if not git.branch_exists(ctx.repo, stage.job_branch):
        raise UsageError(
            f"the job branch {stage.job_branch} no longer exists",
            hint='start again with `director plan "<task>"`',
        )
    return jobs.ensure_job_worktree(ctx.store, stage.job_branch)


def _edit_note(store: Store, retested: list[str]) -> str:
    notes = []
    generated = store.root / PLAN_GENERATED
    if generated.exists() and _plan_fingerprint(store.plan) != _plan_fingerprint(generated):
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


def _approve_spec(ctx: EngineContext, stage: PlanStage, approver: Approver) -> PlanStage:
    spec = _read(ctx.store.spec)
    if not spec.strip():
        raise UsageError(
            ".director/spec.md is missing or empty",
            hint="write the spec there (or restore .director/spec.generated.md), then continue",
        )
    edited = spec != _read(ctx.store.spec_generated)
    stage = approve_gate(stage, approver, "spec.md edited at the gate" if edited else "")
    _save(ctx, stage, f"Gate 1 approved by {approver}" + (" (edited spec)" if edited else ""))
    return stage


async def _pass_gate_automatically(
    ctx: EngineContext, stage: PlanStage, worktree: Path
) -> PlanStage:
    approver: Approver = "auto"
    if stage.critique:
        if stage.stage == Stage.gate1:
            await _critique_spec(ctx, stage, worktree)
        else:
            await _critique_plan(ctx, stage, worktree)
        approver = "critic"
    gate_name = "Gate 1" if stage.stage == Stage.gate1 else "Gate 2"
    stage = approve_gate(stage, approver)
    _save(ctx, stage, f"{gate_name} approved by {approver}")
    return stage


async def _drive(ctx: EngineContext, stage: PlanStage) -> PlanStage:
    """Run stages until a gate waits for a human or the plan is approved."""
    worktree = _job_worktree(ctx, stage)
    while True:
        if stage.stage == Stage.recon:
            await _recon(ctx, stage, worktree)
            stage.stage = Stage.spec
            _save(ctx, stage, "recon written to .director/recon.md")
        elif stage.stage == Stage.spec:
            await _write_spec(ctx, stage, worktree)
            stage.stage = Stage.gate1
            _save(ctx, stage, "spec written to .director/spec.md")
        elif stage.stage == Stage.decompose:
            await _decompose(ctx, stage, worktree)
            stage.stage = Stage.tests
            _save(ctx, stage, "plan.json written and validated")
        elif stage.stage == Stage.tests:
            await _author_all_tests(ctx, stage, worktree)
            _snapshot_plan(ctx.store)
            stage.stage = Stage.gate2
            _save(ctx, stage, "tests written, red for the right reason, hashed and committed")
        elif stage.stage in (Stage.gate1, Stage.gate2):
            if not stage.auto:
                return stage
            stage = await _pass_gate_automatically(ctx, stage, worktree)
        else:
            return stage


# -- stages ----------------------------------------------------------------------------------
async def _recon(ctx: EngineContext, stage: PlanStage, worktree: Path) -> None:
    text = await _ask(ctx, "explorer", recon_prompt(stage.task), worktree)
    atomic_write_text(ctx.store.recon, text.strip() + "\n")


async def _write_spec(ctx: EngineContext, stage: PlanStage, worktree: Path) -> None:
    text = await _ask(ctx, "brainstorm", spec_prompt(stage.task, _read(ctx.store.recon)), worktree)
    spec = strip_outer_fence(text)
    atomic_write_text(ctx.store.spec_generated, spec)
    atomic_write_text(ctx.store.spec, spec)


def parse_plan(text: str) -> tuple[Plan | None, list[str]]:
    """A plan from a planner's answer and every reason it cannot run (empty when valid)."""
    try:
        data = extract_json_object(text, ("nodes",))
    except JsonExtractError as exc:
        return None, [str(exc)]
    try:
        plan = Plan.model_validate({"nodes": data.get("nodes")})
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            errors.append(f"{loc}: {err['msg']}")
        return None, errors
    for node in plan.nodes:
        # Hashes and red output are facts director establishes, never a model's claims.
        node.test_hashes = {}
        node.red_output = ""
    return plan, dag.validate(plan)


async def _decompose(ctx: EngineContext, stage: PlanStage, worktree: Path) -> None:
    store = ctx.store
    spec = _read(store.spec)
    recon = _read(store.recon)
    attempts = 1 + ctx.config.limits.plan_retries
    answer = ""
    errors: list[str] = []
    for attempt in range(1, attempts + 1):
        prompt = decompose_prompt(stage.task, spec, recon, previous_answer=answer, errors=errors)
        answer = await _ask(ctx, "planner", prompt, worktree, attempt=attempt)
        plan, errors = parse_plan(answer)
        if plan is not None and not errors:
            plan.job_id = stage.job_id
            plan.job_branch = stage.job_branch
            plan.base_commit = stage.base_commit
            plan.task = stage.task
            store.write_model(store.plan, plan)
            return
        left = attempts - attempt
        _notice(
            ctx,
            f"planner answer {attempt} rejected ({len(errors)} problem(s)); "
            + (
                f"asking again ({left} tr{'y' if left == 1 else 'ies'} left)"
                if left
                else "giving up"
            ),
            "warning",
        )
    rejected = store.logs / f"plan-rejected-{stage.job_id}.txt"
    atomic_write_text(rejected, answer)
    raise PlanInvalidError(
        errors,
        hint=(
            f"the planner's last answer is in {rejected.relative_to(store.repo)}; nothing was "
            "committed. `director plan --continue` asks the planner again; you may edit "
            ".director/spec.md first"
        ),
    )


def _read_plan(store: Store) -> Plan:
    plan = store.read_model(store.plan, Plan)
    if plan is None:
        raise UsageError(
            ".director/plan.json is missing", hint="`director plan --continue` re-plans"
        )
    return plan


def _snapshot_plan(store: Store) -> None:
    atomic_write_text(store.root / PLAN_GENERATED, _read(store.plan))


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tests_frozen(worktree: Path, node: Node) -> bool:
    """The node's tests are committed, unchanged since, and their hashes recorded."""
    if not node.tests or set(node.test_hashes) != set(node.tests):
        return False
    for path in node.tests:
        committed = git.file_at(worktree, "HEAD", path)
        target = worktree / path
        if committed is None or not target.is_file():
            return False
        recorded = node.test_hashes[path]
        if _sha256_bytes(committed) != recorded or git.sha256_file(target) != recorded:
            return False
    return True


def _is_junk(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, pattern) for pattern in patterns) or "/__pycache__/" in (
        "/" + path
    )


def _revert_outside(worktree: Path, keep: set[str]) -> list[str]:
    """Undo every change in the job worktree to a path not in ``keep``; returns them
    (as shown to people: see :func:`git.shown`)."""
    reverted: list[str] = []
    done: set[str] = set()
    for change in git.changes(worktree, "HEAD"):
        for path in change.raw_paths:
            norm = dag.normalise_path(path)
            if norm in keep or path in done:
                continue
            done.add(path)
            if git.file_at(worktree, "HEAD", path) is not None:
                git.git(["checkout", "-q", "HEAD", "--", path], worktree)
            else:
                target = worktree / path
                if target.is_symlink() or target.is_file():
                    target.unlink()
            reverted.append(git.shown(path))
    return reverted


def _commit_tests(worktree: Path, paths: list[str], message: str) -> None:
    git.git(["add", "-A", "--", *paths], worktree)
    if git.git(["diff", "--cached", "--quiet"], worktree, check=False).returncode != 0:
        git.git(["commit", "-q", "--no-verify", "-m", message], worktree)


async def _red_check(
    ctx: EngineContext, node: Node, worktree: Path, attempt: int
) -> tuple[RedVerdict, str]:
    def on_line(line: str) -> None:
        ctx.bus.emit(TestOutput(node_id=node.id, line=line))

    result = await run_command(
        node.test_cmd,
        worktree,
        timeout=ctx.config.limits.gate_timeout_secs,
        on_line=on_line,
    )
    verdict = classify_red(node.test_cmd, result)
    ctx.bus.emit(
        GateResult(
            node_id=node.id,
            attempt=attempt,
            passed=verdict.ok,
            check="red",
            message=verdict.reason,
            output_tail=result.tail(30),
        )
    )
    return verdict, result.output


def _freeze(worktree: Path, node: Node, output: str, message: str) -> None:
    _commit_tests(worktree, node.tests, message)
    node.test_hashes = {path: git.sha256_file(worktree / path) for path in node.tests}
    node.red_output = "\n".join(output.strip().splitlines()[-60:])


async def _author_all_tests(ctx: EngineContext, stage: PlanStage, worktree: Path) -> None:
    store = ctx.store
    plan = _read_plan(store)
    errors = dag.validate(plan)
    if errors:
        raise PlanInvalidError(errors)
    for node in plan.nodes:
        if _tests_frozen(worktree, node):
            continue
        unfrozen = {
            dag.normalise_path(t)
            for other in plan.nodes
            if other.id == node.id or not _tests_frozen(worktree, other)
            for t in other.tests
        }
        await _author_node_tests(ctx, stage, plan, node, worktree, unfrozen)
        store.write_model(store.plan, plan)  # progress survives an interruption
        _revert_outside(worktree, unfrozen - set(map(dag.normalise_path, node.tests)))


async def _author_node_tests(
    ctx: EngineContext,
    stage: PlanStage,
    plan: Plan,
    node: Node,
    worktree: Path,
    keep: set[str],
) -> None:
    """Ask the test author until the node's tests are red for the right reason."""
    feedback = ""
    last_reason = ""
    # Test files left from an interrupted run (or fixed by hand) are checked before any
    # agent is asked: if they are already red for the right reason they are kept.
    leftovers = all((worktree / t).is_file() for t in node.tests) and any(
        git.file_at(worktree, "HEAD", t) != (worktree / t).read_bytes() for t in node.tests
    )
    if leftovers:
        _revert_outside(worktree, keep)
        verdict, output = await _red_check(ctx, node, worktree, 0)
        if verdict.ok:
            _freeze(worktree, node, output, f"director: tests for {node.id}")
            _notice(ctx, f"kept the existing red tests of node {node.id}", node_id=node.id)
            return
        feedback = red_feedback(verdict.reason, node.test_cmd, output, reverted=[])
    recon = _read(ctx.store.recon)
    guidance = guidance_prompt(worktree, [*node.files, *node.tests])
    attempts = 1 + ctx.config.limits.plan_retries
    for attempt in range(1, attempts + 1):
        prompt = test_author_prompt(
            stage.task, plan, node, recon=recon, guidance=guidance, feedback=feedback
        )
        result, _ = await ctx.call_agent(
            "test_author", prompt, worktree, node_id=node.id, attempt=attempt
        )
        if result.exit_reason in _FATAL_EXITS:
            raise AgentFailedError(
                f"the test_author agent failed ({result.exit_reason.value}): {result.message}",
                hint="fix the cause, then `director plan --continue` resumes the tests stage",
            )
        if not git.worktree_intact(ctx.store.repo, worktree):
            # Without its .git link, git in the job worktree reaches the user's checkout.
            raise AgentFailedError(
                f"the test_author agent of node {node.id} deleted or replaced the .git link "
                f"of {worktree}; nothing was committed",
                hint="`director plan --continue` moves the folder aside and resumes the "
                "tests stage on a fresh job worktree",
            )
        reverted = [
            p
            for p in _revert_outside(worktree, keep)
            if not _is_junk(p, ctx.config.repository.ignore)
        ]
        if reverted:
            _notice(
                ctx,
                f"the test author of node {node.id} changed files that are not its tests; "
                f"undone: {', '.join(reverted)}",
                "warning",
                node.id,
            )
        missing = [t for t in node.tests if not (worktree / t).is_file()]
        red_checked = False
        if not result.ok:
            last_reason = f"the agent failed ({result.exit_reason.value}: {result.message})"
            feedback = (
                f"Your previous attempt ended early ({result.exit_reason.value}): "
                f"{result.message}. Write the test files listed below."
            )
        elif missing:
            last_reason = f"test file(s) not written: {', '.join(missing)}"
            feedback = (
                "You did not create these test files: "
                + ", ".join(f"`{m}`" for m in missing)
                + ". Create exactly the files listed below."
            )
        else:
            verdict, output = await _red_check(ctx, node, worktree, attempt)
            if verdict.ok:
                _freeze(worktree, node, output, f"director: tests for {node.id}")
                _notice(ctx, f"tests of node {node.id} committed and hashed", node_id=node.id)
                return
            last_reason = verdict.reason
            red_checked = True  # the GateResult event already showed why
            feedback = red_feedback(verdict.reason, node.test_cmd, output, reverted=reverted)
        left = attempts - attempt
        _notice(
            ctx,
            f"tests of node {node.id} sent back to the test author"
            + ("" if red_checked else f": {last_reason}")
            + (f" ({left} tr{'y' if left == 1 else 'ies'} left)" if left else " (no tries left)"),
            "warning",
            node.id,
        )
    raise DirectorError(
        f"the tests of node {node.id} are still not red for the right reason after "
        f"{attempts} attempt(s): {last_reason}",
        hint=(
            "the last attempt is left uncommitted in .director/worktrees/_job; fix it there "
            "or let the agent retry with `director plan --continue`"
        ),
    )


# -- human and critic edits at Gate 2 ----------------------------------------------------------
async def _reconcile_plan_edits(
    ctx: EngineContext, stage: PlanStage, worktree: Path
) -> tuple[bool, list[str]]:
    """Pick up plan.json and test files edited at Gate 2: re-validate, drop tests of removed
    nodes, re-check red and re-hash changed tests. Returns whether some node has no tests
    yet, and the nodes whose tests were re-checked."""
    store = ctx.store
    plan = _read_plan(store)
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
        and not _is_junk(p, ctx.config.repository.ignore)
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
            hint="only test files may be edited at Gate 2; undo the rest in .director/worktrees/_job",
        )
    removed = [t for t in dropped if git.file_at(worktree, "HEAD", t) is not None]
    if removed:
        git.git(["rm", "-q", "-f", "--", *removed], worktree)
        git.git(
            ["commit", "-q", "--no-verify", "-m", "director: drop tests of removed nodes"], worktree
        )
        _notice(ctx, f"removed the tests of nodes no longer in the plan: {', '.join(removed)}")
    _revert_outside(worktree, current_tests)
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
            or not _tests_frozen(worktree, node)
        )
        if not changed:
            continue
        verdict, output = await _red_check(ctx, node, worktree, 0)
        if not verdict.ok:
            store.write_model(store.plan, plan)
            raise UsageError(
                f"the edited tests of node {node.id} are not red for the right reason: "
                f"{verdict.reason}\n" + "\n".join(output.strip().splitlines()[-15:]),
                hint="fix them in .director/worktrees/_job (or plan.json's test_cmd), then continue",
            )
        _freeze(worktree, node, output, f"director: tests of {node.id} edited at Gate 2")
        retested.append(node.id)
        _notice(ctx, f"edited tests of node {node.id} are red and re-hashed", node_id=node.id)
    store.write_model(store.plan, plan)
    return needs_tests, retested


async def _critique_spec(ctx: EngineContext, stage: PlanStage, worktree: Path) -> None:
    store = ctx.store
    prompt = critic_spec_prompt(stage.task, _read(store.spec), _read(store.recon))
    revised = strip_outer_fence(await _ask(ctx, "critic", prompt, worktree))
    if len(revised.strip()) < 20:
        _notice(
            ctx, "the critic's spec was too short to be a spec; kept the current one", "warning"
        )
        return
    _notice(ctx, "the critic revised .director/spec.md" + _replace_spec(ctx, revised))


def _replace_spec(ctx: EngineContext, spec: str) -> str:
    """Write an agent's new spec. A spec the human edited is never lost to it: their
    version is kept beside it first. Returns the note that says so ('' when unedited)."""
    store = ctx.store
    current = _read(store.spec)
    kept = ""
    if current.strip() and current != _read(store.spec_generated):
        atomic_write_text(store.spec_edited, current)
        kept = f"; your edited version is kept in {store.spec_edited.relative_to(store.repo)}"
    atomic_write_text(store.spec_generated, spec)
    atomic_write_text(store.spec, spec)
    return kept


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


async def _critique_plan(ctx: EngineContext, stage: PlanStage, worktree: Path) -> None:
    store = ctx.store
    current = _read_plan(store)
    prompt = critic_plan_prompt(stage.task, _read(store.spec), current)
    answer = await _ask(ctx, "critic", prompt, worktree)
    revised, errors = parse_plan(answer)
    if revised is None or errors:
        _notice(
            ctx,
            "the critic's plan was not valid; kept the current plan: " + "; ".join(errors[:3]),
            "warning",
        )
        return
    merged = _merge_critic_plan(current, revised)
    errors = dag.validate(merged)
    if errors:
        _notice(
            ctx,
            "the critic's plan was not valid; kept the current plan: " + "; ".join(errors[:3]),
            "warning",
        )
        return
    if json.dumps(merged.model_dump(mode="json"), sort_keys=True) == json.dumps(
        current.model_dump(mode="json"), sort_keys=True
    ):
        _notice(ctx, "the critic left the plan unchanged")
        return
    store.write_model(store.plan, merged)
    needs_tests, _ = await _reconcile_plan_edits(ctx, stage, worktree)
    if needs_tests:
        await _author_all_tests(ctx, stage, worktree)
    _snapshot_plan(store)
    _notice(ctx, "the critic revised .director/plan.json")
