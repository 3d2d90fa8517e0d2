"""Making the state of an interrupted or earlier run safe to continue from: orphans
killed, a half-done merge aborted, nodes caught mid-flight reset (or kept as merged)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from director_tui.engine import git, jobs
from director_tui.engine.budget import fresh_attempts, uncount_attempt
from director_tui.engine.models import ACTIVE, NodeState, NodeStatus
from director_tui.engine.proc import kill_orphans
from director_tui.engine.run.core import RunCore
from director_tui.engine.store import Store


def recover(core: RunCore) -> list[str]:
    """Make the state of an interrupted or earlier run safe to continue from."""
    notes: list[str] = []
    store, plan, state = core.store, core.plan, core.state
    st_map = state.nodes
    _follow_moved_worktrees(store, st_map.values())
    active = [nid for nid, st in st_map.items() if st.status in ACTIVE]
    if active or state.owner_pid:
        started_after = state.owner_create_time or state.started_at
        roots = [
            Path(st_map[nid].worktree) if st_map[nid].worktree else jobs.node_worktree(store, nid)
            for nid in active
        ]
        # A slot's worktree (and what its dead server's tools left in it).
        roots += sorted(store.worktrees.glob(f"{jobs.SLOT_PREFIX}*"))
        killed = kill_orphans(roots, started_after=started_after - 1.0)
        if killed:
            notes.append("killed processes the interrupted run left behind: " + ", ".join(killed))
    # A merge interrupted half-way leaves MERGE_HEAD in the job worktree.
    if core.job_worktree.exists():
        merging = git.git(
            ["rev-parse", "-q", "--verify", "MERGE_HEAD"], core.job_worktree, check=False
        )
        if merging.returncode == 0:
            git.git(["merge", "--abort"], core.job_worktree, check=False)
            notes.append("aborted a merge the interrupted run left half-done")
    behind = jobs.sync_job_worktree(store)
    if behind:
        notes.append(behind)
    job_head = git.rev(store.repo, plan.job_branch)
    if core.fresh_state:
        # Which node branches exist, from one git process (a plan of hundreds of nodes
        # asked one each, in series, before the run could start).
        branches = _branches(store.repo)
        for nid, st in st_map.items():
            branch = jobs.node_branch(plan.job_id, nid)
            if (
                st.status == NodeStatus.pending
                and branch in branches
                and merged_already(store.repo, nid, branch, job_head)
            ):
                st.status, st.branch, st.finished_at = NodeStatus.done, branch, time.time()
                notes.append(
                    f"node {nid} is merged on the job branch already (no state.json "
                    "said so): kept as done"
                )
    for nid in active:
        st = st_map[nid]
        branch = st.branch or jobs.node_branch(plan.job_id, nid)
        # state.json may lag a transition behind: any node caught mid-flight whose
        # commit is already in the job branch was merged.
        if merged_already(store.repo, nid, branch, job_head):
            st.status = NodeStatus.done
            st.finished_at = time.time()
            notes.append(f"node {nid} had been merged when the run stopped: kept as done")
            continue
        was = st.status.value
        st.status = NodeStatus.pending
        uncount_attempt(st)  # the interrupted attempt did not finish
        notes.append(f"node {nid} was {was} when the run stopped: reset, it will run again")
    for st in st_map.values():
        if st.status in (NodeStatus.failed, NodeStatus.blocked, NodeStatus.cancelled):
            st.status = NodeStatus.pending
            fresh_attempts(st)
    state.cancelled = False
    state.stopped_reason = ""
    state.finished_at = None
    state.integration = "pending"
    state.integration_report = ""
    state.recovered = notes
    return notes


def _follow_moved_worktrees(store: Store, states: Iterable[NodeState]) -> None:
    """A node's recorded worktree in ``.director/worktrees/`` (an older version's place)
    now lives where ``worktree_moves.relocate`` moved it, before recovery ran."""
    legacy = store.legacy_worktrees
    for st in states:
        if st.worktree and Path(st.worktree).is_relative_to(legacy):
            st.worktree = str(store.worktrees / Path(st.worktree).relative_to(legacy))


def _branches(repo: Path) -> set[str]:
    """Every branch of ``repo`` (a ref git cannot read is left out, as ``branch_exists``
    says no to it)."""
    listing = git.out(["for-each-ref", "--format=%(refname:strip=2)", "refs/heads/"], repo)
    return set(listing.splitlines())


def merged_already(repo: Path, nid: str, branch: str, job_head: str) -> bool:
    """Is the node's own attempt commit (not a base its branch was reset to) already
    part of the job branch?"""
    if not git.branch_exists(repo, branch):
        return False
    head = git.rev(repo, branch)
    subject = git.out(["log", "-1", "--format=%s", head], repo)
    mine = f"director: node {nid}"
    if subject != mine and not subject.startswith(mine + " "):
        return False  # the branch sits at a base commit: no attempt was committed
    return (
        git.git(["merge-base", "--is-ancestor", head, job_head], repo, check=False).returncode == 0
    )
