"""Jobs: the current one in ``.director/`` and earlier ones archived under ``jobs/<id>/``."""

from __future__ import annotations

import shlex
import shutil
import time
import uuid
from pathlib import Path

from pydantic import BaseModel

from director_tui.engine import worktree_moves
from director_tui.engine.errors import GitError, UsageError
from director_tui.engine.models import PlanStage, RunState, Stage
from director_tui.engine.store import Store

# What belongs to one job (everything else in .director/ is shared: config, profiles, bench).
JOB_FILES = (
    "task.md",
    "recon.md",
    "spec.md",
    "spec.generated.md",
    "spec.edited.md",
    "plan_stage.json",
    "plan.json",
    "plan.generated.json",
    "plan.edited.json",
    "state.json",
    "costs.jsonl",
    "metrics.jsonl",
    "events.jsonl",
)


def new_job_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]


class JobSummary(BaseModel):
    job_id: str
    task: str = ""
    stage: str = ""
    run: str = ""
    archived: bool = False
    path: str = ""


def archive_current(store: Store) -> str | None:
    """Move the current job's files to ``jobs/<id>/``; returns the id, or None if none."""
    stage = store.read_model(store.plan_stage, PlanStage)
    if stage is None and not store.plan.exists():
        return None
    job_id = stage.job_id if stage else f"unnamed-{new_job_id()}"
    target = store.jobs / job_id
    if target.exists():
        target = store.jobs / f"{job_id}-{uuid.uuid4().hex[:4]}"
    target.mkdir(parents=True)
    for name in JOB_FILES:
        src = store.root / name
        if src.exists():
            shutil.move(str(src), str(target / name))
    return target.name


def _summary(root: Path, store: Store, archived: bool) -> JobSummary | None:
    stage = store.read_model(root / "plan_stage.json", PlanStage)
    if stage is None:
        return None
    state = store.read_model(root / "state.json", RunState)
    run = ""
    if state is not None:
        counts = state.counts()
        done = counts.get("done", 0)
        run = f"{done}/{len(state.nodes)} done"
        if state.finished_at:
            run += f", integration {state.integration}"
    return JobSummary(
        job_id=stage.job_id,
        task=stage.task.splitlines()[0][:80] if stage.task else "",
        stage=stage.stage.value,
        run=run,
        archived=archived,
        path=str(root),
    )


def list_jobs(store: Store) -> list[JobSummary]:
    jobs: list[JobSummary] = []
    current = _summary(store.root, store, archived=False)
    if current:
        jobs.append(current)
    if store.jobs.is_dir():
        for folder in sorted(store.jobs.iterdir(), reverse=True):
            summary = _summary(folder, store, archived=True)
            if summary:
                jobs.append(summary)
    return jobs


# -- names and places every stage agrees on ---------------------------------------------
def job_branch(job_id: str) -> str:
    return f"director/job-{job_id}"


def node_branch(job_id: str, node_id: str) -> str:
    # Not "director/job-<id>/<node>": git cannot hold a branch and a folder of the same name.
    return f"director/job-{job_id}--{node_id}"


def job_worktree(store: Store) -> Path:
    """Where the job branch is checked out, so the user's own checkout never is."""
    return store.worktrees / "_job"


def node_worktree(store: Store, node_id: str) -> Path:
    return store.worktrees / node_id


def ensure_job_worktree(store: Store, branch: str) -> Path:
    """The job worktree on ``branch``, created or re-pointed as needed."""
    from director_tui.engine import git

    store.ensure()
    path = job_worktree(store)
    holders = git.worktrees_on(store.repo, branch)
    elsewhere = [p for p in holders if p.resolve() != path.resolve()]
    if elsewhere:
        raise _checked_out_elsewhere(store, branch, elsewhere[0])
    registered = bool(holders)
    intact = path.exists() and git.worktree_intact(store.repo, path)
    if registered and intact:
        return path
    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    if path.exists() and not intact:
        # An agent deleted or replaced its .git link: git run in the folder would reach
        # the user's checkout. Move it aside (files kept, never deleted) and add again.
        path.rename(path.with_name(f"{path.name}.broken-{stamp}"))
    elif path.exists() and not registered and worktree_moves.has_local_changes(path):
        # An earlier job's, with edits of the user's (its tests at Gate 2, say): kept
        # beside, a worktree still (`director clean` names it), never removed.
        aside = path.with_name(f"{path.name}.unsaved-{stamp}")
        git.git(["worktree", "move", str(path), str(aside)], store.repo)
    # Registered but gone (someone deleted the folder): prune the stale entry, add again.
    if path.exists():
        git.remove_worktree(store.repo, path)
    git.git(["worktree", "prune"], store.repo, check=False)
    git.add_worktree(store.repo, path, branch)
    return path


def _checked_out_elsewhere(store: Store, branch: str, where: Path) -> UsageError:
    """The job branch is checked out in the user's checkout or a worktree of theirs.

    Director merges into the job branch in its own worktree; git refuses a second
    checkout of a branch, and with ``--ignore-other-worktrees`` every merge would move
    the branch under the user's files (their checkout would look full of reverted
    changes). The user's checkout is theirs: say where, and what to do."""
    if where.resolve() == store.repo.resolve():
        fix = (
            "switch your checkout to another branch (for instance `git switch -`), then "
            f"run the command again; the job's work stays readable: `git log {branch}`"
        )
    else:
        fix = (
            f"switch that worktree to another branch (`git -C {shlex.quote(str(where))} "
            f"switch --detach`) or remove it (`git worktree remove {shlex.quote(str(where))}`), "
            "then run the command again"
        )
    return UsageError(
        f"the job branch {branch} is checked out at {where}; director works on it only in "
        f"its own worktree ({job_worktree(store)}) and leaves yours alone",
        hint=fix,
    )


def unfinished_job(store: Store) -> PlanStage | None:
    """The current job when planning or its run has not finished: what a new task would
    archive (it can be resumed, not re-planned for free)."""
    stage = store.read_model(store.plan_stage, PlanStage)
    if stage is None:
        return None
    if stage.stage != Stage.approved:
        return stage
    state = store.read_model(store.state, RunState)
    return stage if state is None or state.finished_at is None else None


def prepare_node_worktree(store: Store, worktree: Path, branch: str, base: str) -> None:
    """The node worktree on ``branch`` at ``base``, clean (created or reset)."""
    from director_tui.engine import git

    repo = store.repo
    if worktree.exists() and not git.worktree_intact(repo, worktree):
        # A previous attempt broke the git link (rm .git, a .git of its own): git run
        # in the folder would reach the user's checkout. Throw the folder away.
        shutil.rmtree(worktree, ignore_errors=True)
        git.git(["worktree", "remove", "--force", str(worktree)], repo, check=False)
    if not worktree.exists():
        try:  # the common case, in one git call
            git.add_worktree(repo, worktree, branch, start=base)
            return
        except GitError:
            pass  # the branch is checked out somewhere else: sort it out below
    where = git.worktree_branches(repo).get(branch)
    if where is not None and not where.resolve().is_relative_to(store.worktrees.resolve()):
        # The user's checkout or a worktree of their own: never reset or remove it.
        raise GitError(
            f"the node's branch {branch} is checked out at {where}; director leaves that "
            f"checkout alone — switch it to another branch, then `director retry {worktree.name}`"
        )
    if where is not None and where.resolve() == worktree.resolve() and worktree.exists():
        git.git(["rebase", "--abort"], worktree, check=False)
        git.reset_clean(worktree, base)
        return
    if worktree.exists() or where is not None:
        git.remove_worktree(repo, where or worktree)
        if worktree.exists():
            git.remove_worktree(repo, worktree)
    git.add_worktree(repo, worktree, branch, start=base)


SLOT_PREFIX = "_slot-"


def slot_worktree(store: Store, index: int) -> Path:
    """One of a run's fixed slot worktrees: each parallel slot's attempts run there, one
    node after another, so the slot's agent server keeps working in a directory it knows."""
    return store.worktrees / f"{SLOT_PREFIX}{index}"


def point_slot_worktree(store: Store, worktree: Path, branch: str, base: str) -> bool:
    """The slot worktree re-pointed to ``branch`` at ``base`` and clean: nothing a previous
    attempt (of this node or another) left in it survives — tracked changes, untracked
    and ignored files, nested repositories. The folder itself stays (its agent server
    keeps its instance for it); one whose git link an agent broke is made anew. True when
    the folder was made (anew)."""
    from director_tui.engine import git

    repo = store.repo
    existed = worktree.exists()
    _drop_broken_slot(store, worktree)
    where = git.worktree_branches(repo).get(branch)
    if where is not None and where.resolve() != worktree.resolve():
        if not where.resolve().is_relative_to(store.worktrees.resolve()):
            raise GitError(
                f"the node's branch {branch} is checked out at {where}; director leaves that "
                "checkout alone — switch it to another branch, then retry the node"
            )
        git.remove_worktree(repo, where)  # the node's own worktree of an earlier rebase
    if not worktree.exists():
        git.add_worktree(repo, worktree, branch, start=base)
        return existed
    _scrub_slot(worktree, ["-B", branch, base], base)
    return False


def park_slot_worktree(store: Store, worktree: Path, base: str) -> bool:
    """The slot worktree detached at ``base`` and clean, on no branch: a place for its
    agent server to start in before any node holds it (the run's first slots, warmed
    while the run gets ready). Scrubbed like ``point_slot_worktree``: what a previous
    run's agents left there (an ``opencode.json`` among it) is not what the server
    starts on. True when the folder was made (anew)."""
    from director_tui.engine import git

    existed = worktree.exists()
    _drop_broken_slot(store, worktree)
    if not worktree.exists():
        worktree.parent.mkdir(parents=True, exist_ok=True)
        git.git(
            ["worktree", "add", "-q", "--no-checkout", "--detach", str(worktree), base], store.repo
        )
        git.full_checkout(worktree)
        git.git(["reset", "-q", "--hard"], worktree)
        return existed
    _scrub_slot(worktree, ["--detach", base], base)
    return False


def _drop_broken_slot(store: Store, worktree: Path) -> None:
    """A slot folder whose git link an agent broke goes (git run there would reach
    another repository)."""
    from director_tui.engine import git

    if worktree.exists() and not git.worktree_intact(store.repo, worktree):
        shutil.rmtree(worktree, ignore_errors=True)
        git.git(["worktree", "remove", "--force", str(worktree)], store.repo, check=False)
        git.git(["worktree", "prune"], store.repo, check=False)


def _scrub_slot(worktree: Path, checkout: list[str], base: str) -> None:
    from director_tui.engine import git

    git.git(["rebase", "--abort"], worktree, check=False)
    git.git(["merge", "--abort"], worktree, check=False)
    # -f: local changes and untracked files in the way are thrown away.
    git.git(["checkout", "-q", "-f", *checkout], worktree)
    git.reset_clean(worktree, base)
    # -ff: a nested repository an agent made (`git init sub`) goes too.
    git.git(["clean", "-q", "-ffdx", "-e", ".director"], worktree)


def release_slot_worktree(store: Store, worktree: Path) -> None:
    """The slot no longer holds its node's branch (detached where it is, files kept):
    the branch is free for a rebase in the node's own worktree while the slot serves
    the next node."""
    from director_tui.engine import git

    if worktree.exists() and git.worktree_intact(store.repo, worktree):
        git.git(["checkout", "-q", "--detach"], worktree, check=False)


def remove_node_worktree(store: Store, worktree: Path) -> None:
    """A merged node's worktree is no longer needed (its work is merged). No ``git
    worktree prune`` here: it could race a worktree another node is adding."""
    from director_tui.engine import git

    git.git(["worktree", "remove", "--force", str(worktree)], store.repo, check=False)


def sync_job_worktree(store: Store) -> str | None:
    """Bring the job worktree's files up to the job branch (merges move only the
    branch). A two-tree ``read-tree -m -u`` keeps anything else in it; a warning
    comes back when it cannot."""
    from director_tui.engine import git

    wt = job_worktree(store)
    if not wt.exists():
        return None
    index_tree = git.out(["write-tree"], wt)
    head_tree = git.out(["rev-parse", "HEAD^{tree}"], wt)
    if index_tree == head_tree:
        return None
    proc = git.git(["read-tree", "-m", "-u", index_tree, "HEAD"], wt, check=False)
    if proc.returncode == 0:
        return None
    return (
        f"the job worktree {wt} has changes of its own and was not updated to the job "
        f"branch: {proc.stderr.strip()[:200]}"
    )
