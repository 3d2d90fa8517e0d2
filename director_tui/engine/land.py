"""Getting the result out: ``land`` merges a finished job branch into the user's branch,
``clean`` removes director's branches whose work is merged.

``land`` never risks the user's work. It refuses (``UsageError``, nothing touched) when
the job is not finished, the checkout is not on a branch, has uncommitted changes or an
operation under way. It builds the result — the job branch itself when the user's branch
can fast-forward to it, else a merge commit (or with ``squash`` one commit) on top of the
user's HEAD, made as the user (their git identity; director's only when they have none,
said in ``LandResult.note``) — in a temporary worktree, runs the repository's ``[gates]``
there (in the OS sandbox, like every gate: they run the agents' code, which must not get
the user's home or checkout at the last step when every earlier run of it was sandboxed),
and only then moves the user's branch with ``git merge --ff-only`` to that commit: the same
fast-forward a user would run, which git refuses rather than overwrite a file. A conflict
or a failed gate refuses with exit 1 and the user's branch as it was.

``clean`` deletes a branch under ``refs/heads/director/`` only when its tip is already in
a branch that stays: a node's branch in its job branch or in one of the user's branches,
a job or bench branch in one of the user's branches. Director's worktrees go first, by the
same rule and only with nothing uncommitted in them. A branch checked out in a worktree
that stays, or with commits found nowhere else, is kept and said so.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from director_tui.engine import gates, git, worktree_moves
from director_tui.engine.context import EngineContext
from director_tui.engine.errors import DirectorError, UsageError
from director_tui.engine.models import NodeStatus, PlanStage, RunState
from director_tui.engine.store import Store

LAND_WORKTREE = "_land"
DIRECTOR_PREFIX = "director/"


class LandFailed(DirectorError):
    """The result did not merge cleanly or failed the gates: the user's branch is as it
    was (exit 1, like any failed work)."""

    exit_code = 1


@dataclass
class LandResult:
    branch: str  # the user's branch that moved
    job_branch: str
    how: Literal["fast-forward", "merge commit", "squash commit", "already landed"]
    commit: str
    gates: str  # what the gates said on the result
    note: str = ""  # e.g. that the commit could not carry the user's identity


# Said when the user has no git identity: the commit on their branch is director's then.
NO_IDENTITY_NOTE = (
    "your git config has no user.name/user.email, so the {how} on {branch} was made as "
    "director <director@localhost>; set them (`git config --global user.name 'Your Name'`, "
    "`git config --global user.email you@example.com`) and `git commit --amend --reset-author` "
    "if you want it to be yours"
)


def user_identity(repo: Path) -> dict[str, str]:
    """The user's identity for a commit land makes on their own branch, as git itself would
    take it: GIT_AUTHOR_*/GIT_COMMITTER_* from the environment, else user.name/user.email
    of the repository's config. Empty when they have none (director's identity then)."""

    def config(key: str) -> str:
        return git.git(["config", "--get", key], repo, check=False).stdout.strip()

    name, email = config("user.name"), config("user.email")
    identity: dict[str, str] = {}
    for role in ("AUTHOR", "COMMITTER"):
        role_name = os.environ.get(f"GIT_{role}_NAME") or name
        role_email = os.environ.get(f"GIT_{role}_EMAIL") or email
        if not role_name or not role_email:
            return {}
        identity[f"GIT_{role}_NAME"] = role_name
        identity[f"GIT_{role}_EMAIL"] = role_email
    return identity


def unfinished_reason(stage: PlanStage | None, state: RunState | None) -> str:
    """Why the current job has nothing to land yet ("" when it is finished)."""
    if stage is None:
        return 'there is no job (start one with `director plan "<task>"`)'
    if state is None or state.job_id != stage.job_id:
        return f"job {stage.job_id} has not run yet (`director run`)"
    if state.finished_at is None:
        return f"job {stage.job_id}'s run has not ended (`director run` resumes it)"
    not_done = sorted(nid for nid, st in state.nodes.items() if st.status != NodeStatus.done)
    if not_done:
        return f"job {stage.job_id} has nodes that did not merge: {', '.join(not_done)}"
    if state.integration not in ("passed", "skipped"):
        return f"job {stage.job_id}'s integration gate did not pass"
    return ""


def _check_checkout(repo: Path) -> str:
    """The user's branch, when it can take the job; ``UsageError`` with the fix else."""
    branch = git.current_branch(repo)
    if branch is None:
        raise UsageError(
            "your checkout is on a detached HEAD: there is no branch to land on",
            hint="check out the branch to land on (`git switch <branch>`), then land again",
        )
    if branch.startswith(DIRECTOR_PREFIX):
        raise UsageError(
            f"your checkout is on director's own branch {branch}",
            hint="check out your branch (`git switch <branch>`), then land again",
        )
    underway = git.operation_in_progress(repo)
    if underway:
        what, finish = underway
        raise UsageError(f"{what} is under way in your checkout", hint=f"finish it: {finish}")
    dirty = git.dirty_files(repo)
    if dirty:
        shown = ", ".join(dirty[:5]) + (", …" if len(dirty) > 5 else "")
        raise UsageError(
            f"your checkout has uncommitted changes ({shown}); landing would mix them in",
            hint="commit or stash them (`git stash`), then `director land` again",
        )
    return branch


def _is_ancestor(repo: Path, older: str, newer: str) -> bool:
    return git.git(["merge-base", "--is-ancestor", older, newer], repo, check=False).returncode == 0


def _conflicted(worktree: Path) -> list[str]:
    text = git.git(["diff", "--name-only", "--diff-filter=U"], worktree, check=False).stdout
    return text.split()


async def land(
    ctx: EngineContext,
    *,
    squash: bool = False,
    on_line: Callable[[str], None] | None = None,
) -> LandResult:
    store = ctx.store
    repo = store.repo
    stage = store.read_model(store.plan_stage, PlanStage)
    state = store.read_model(store.state, RunState)
    reason = unfinished_reason(stage, state)
    if reason:
        raise UsageError(f"nothing to land: {reason}")
    assert stage is not None
    job_branch = stage.job_branch
    if not git.branch_exists(repo, job_branch):
        raise UsageError(f"the job branch {job_branch} is gone", hint="nothing to land")
    branch = _check_checkout(repo)
    ctx.require_sandbox()
    with store.run_lock("land"):
        head = git.rev(repo)
        job_tip = git.rev(repo, job_branch)
        if _is_ancestor(repo, job_tip, head):
            return LandResult(branch, job_branch, "already landed", head, "not run")
        identity = user_identity(repo)
        result, how, report = await _build_and_gate(
            ctx, head, job_branch, job_tip, stage, squash, on_line, identity
        )
        # Compare-and-swap on the user's checkout: still this branch, this HEAD, clean.
        if git.current_branch(repo) != branch or git.rev(repo) != head or git.dirty_files(repo):
            raise LandFailed(
                f"your checkout changed while the gates ran; {branch} was not touched",
                hint="`director land` again",
            )
        moved = git.git(["merge", "-q", "--ff-only", result], repo, check=False)
        if moved.returncode != 0:
            raise LandFailed(
                f"git refused to fast-forward {branch}: {moved.stderr.strip()}",
                hint=f"nothing was changed; the result is commit {result[:12]}",
            )
        note = ""
        if how != "fast-forward" and not identity:
            note = NO_IDENTITY_NOTE.format(how=how, branch=branch)
        return LandResult(branch, job_branch, how, result, report, note)


async def _build_and_gate(
    ctx: EngineContext,
    head: str,
    job_branch: str,
    job_tip: str,
    stage: PlanStage,
    squash: bool,
    on_line: Callable[[str], None] | None,
    identity: dict[str, str],
) -> tuple[str, Literal["fast-forward", "merge commit", "squash commit"], str]:
    """The commit the user's branch will move to, gated, built in a throw-away worktree.
    A merge or squash commit carries ``identity`` (the user's; director's when empty)."""
    store, config = ctx.store, ctx.config
    repo = store.repo
    where = store.worktrees / LAND_WORKTREE
    if where.exists():
        git.remove_worktree(repo, where)
    where.parent.mkdir(parents=True, exist_ok=True)
    git.git(["worktree", "add", "-q", "--detach", str(where), head], repo)
    try:
        how: Literal["fast-forward", "merge commit", "squash commit"]
        title = stage.task.strip().splitlines()[0][:72] if stage.task.strip() else "director job"
        if squash:
            how = "squash commit"
            merged = git.git(["merge", "-q", "--squash", job_branch], where, check=False)
            if merged.returncode == 0:
                git.git(
                    ["commit", "-q", "--allow-empty", "-m", f"{title}\n\n(director job "
                     f"{stage.job_id}, squashed from {job_branch})"],
                    where,
                    env=identity,
                )  # fmt: skip
        elif _is_ancestor(repo, head, job_tip):
            how = "fast-forward"
            merged = git.git(["checkout", "-q", "--detach", job_tip], where, check=False)
        else:
            how = "merge commit"
            merged = git.git(
                ["merge", "-q", "--no-ff", "-m", f"Merge {job_branch}: {title}", job_branch],
                where,
                check=False,
                env=identity,
            )
        if merged.returncode != 0:
            files = _conflicted(where)
            raise LandFailed(
                f"{job_branch} does not merge cleanly into your branch"
                + (f" (conflicts in {', '.join(files[:8])})" if files else "")
                + "; your branch was not touched",
                hint=f"merge it yourself (`git merge {job_branch}`) and resolve the conflicts",
            )
        commands = config.gate_commands()
        if not commands:
            report = "no [gates] configured: nothing re-run"
        else:
            outcome = await gates.integration_gate(
                commands,
                where,
                [],
                timeout=config.limits.gate_timeout_secs,
                on_line=on_line,
                sandbox=ctx.sandbox_spec(where),
            )
            report = outcome.report()
            if not outcome.passed:
                raise LandFailed(
                    f"the result fails your gates, so it was not landed: {report}",
                    hint=f"fix it on {job_branch} (or in your branch) and land again",
                )
        return git.rev(where), how, report
    finally:
        git.remove_worktree(repo, where)


# -- clean --------------------------------------------------------------------------------
_NODE_BRANCH = re.compile(r"^(director/job-[^/]+?)--.+$")


@dataclass
class CleanResult:
    removed: list[str] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)  # (branch or worktree, why)
    notes: list[str] = field(default_factory=list)  # worktrees moved out of the checkout


def _local_branches(repo: Path) -> list[str]:
    text = git.git(["for-each-ref", "--format=%(refname:short)", "refs/heads/"], repo).stdout
    return [line for line in text.splitlines() if line]


def _merged_home(repo: Path, branches: list[str], branch: str) -> str | None:
    """The branch that stays and holds every commit of ``branch``: one of the user's, or
    for a node's branch its job branch; None when there is none."""
    users = [b for b in branches if not b.startswith(DIRECTOR_PREFIX)]
    node = _NODE_BRANCH.match(branch)
    homes = users + ([node.group(1)] if node and node.group(1) in branches else [])
    return next((h for h in homes if _is_ancestor(repo, branch, h)), None)


def clean_branches(store: Store) -> CleanResult:
    """Delete director's worktrees, then branches, whose every commit is already in a
    branch that stays; worktrees with uncommitted changes are kept (worktree_moves)."""
    repo = store.repo
    result = CleanResult()
    with store.run_lock("clean"):
        result.notes = worktree_moves.relocate(store)
        branches = _local_branches(repo)
        trees = worktree_moves.clean_worktrees(
            store, lambda branch: _merged_home(repo, branches, branch)
        )
        result.removed += trees.removed
        result.kept += trees.kept
        checked_out = git.worktree_branches(repo)
        for branch in (b for b in branches if b.startswith(DIRECTOR_PREFIX)):
            into = _merged_home(repo, branches, branch)
            if into is None:
                result.kept.append((branch, "has work not merged anywhere else"))
            elif branch in checked_out:
                result.kept.append((branch, f"checked out at {checked_out[branch]}"))
            else:
                git.git(["branch", "-D", branch], repo)
                result.removed.append(f"{branch} (merged into {into})")
    return result


# -- where the work is --------------------------------------------------------------------
@dataclass(frozen=True)
class WorkWhere:
    """The current job's result as a user needs it after a run."""

    job_id: str
    job_branch: str
    state: Literal["finished", "landed", "partial"]
    user_branch: str | None

    def line(self) -> str:
        onto = self.user_branch or "your branch"
        if self.state == "landed":
            return f"Job {self.job_id} is landed: {self.job_branch} is merged into {onto}."
        if self.state == "finished":
            return (
                f"Job {self.job_id} is finished: the work is on branch {self.job_branch}. "
                f"`director land` merges it into {onto} (your gates run on it first)."
            )
        return (
            f"Job {self.job_id}: what merged so far is on branch {self.job_branch}; "
            "`director run` resumes the rest."
        )


def where_the_work_is(store: Store) -> WorkWhere | None:
    """None before the current job has run; else where its work is and what comes next."""
    try:
        stage = store.read_model(store.plan_stage, PlanStage)
        state = store.read_model(store.state, RunState)
    except DirectorError:
        return None
    if stage is None or state is None or state.job_id != stage.job_id:
        return None
    repo = store.repo
    user_branch = git.current_branch(repo)
    if unfinished_reason(stage, state):
        return WorkWhere(stage.job_id, stage.job_branch, "partial", user_branch)
    landed = git.branch_exists(repo, stage.job_branch) and _is_ancestor(
        repo, stage.job_branch, "HEAD"
    )
    return WorkWhere(
        stage.job_id, stage.job_branch, "landed" if landed else "finished", user_branch
    )
