"""The merge queue: nodes that passed their gates merge into the job branch one at a
time; a conflict with work merged meanwhile rebases the node (to be re-gated) or, when
the rebase conflicts too, sends it back to re-execute on the new head.

What merges is the commit the node's gate judged, never whatever its branch points to by
then: a commit put on the branch after the gate (another agent's ``git update-ref``) is
put back and never merged; a rebase after a conflict rebases the judged commit too. A node whose worktree another agent wrote into during its
attempt (``sibling_watch``) is not merged and runs again, uncharged. An attempt that
changed nothing is done with "nothing to merge", never shown as merged work."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from director_tui.engine import git, jobs, sibling_watch
from director_tui.engine.budget import uncount_attempt
from director_tui.engine.events import NodeMerged
from director_tui.engine.models import Node, NodeState, NodeStatus
from director_tui.engine.run.core import RunCore
from director_tui.engine.run.windows import WatchedWindows

MAX_CONFLICT_RETRIES = 3


@dataclass(frozen=True)
class MergeResult:
    merged: bool
    # Set when the node was rebased onto this head and must pass its gates again there.
    regate_onto: str | None = None


class MergeQueue:
    def __init__(self, core: RunCore, windows: WatchedWindows) -> None:
        self.core = core
        self.windows = windows

    async def merge(
        self, node: Node, st: NodeState, worktree: Path, base: str, *, rebased: bool, commit: str
    ) -> MergeResult:
        core, nid = self.core, node.id
        core.set_status(nid, NodeStatus.merging, "waiting for the merge queue")
        core.merge_queue.add(nid)
        core.slot_freed.set()
        try:
            return await self._merge_in_queue(
                node, st, worktree, base, rebased=rebased, commit=commit
            )
        finally:
            # Back in a slot when it has to re-gate or re-run; gone when merged.
            core.merge_queue.discard(nid)

    async def _merge_in_queue(
        self, node: Node, st: NodeState, worktree: Path, base: str, *, rebased: bool, commit: str
    ) -> MergeResult:
        core, nid = self.core, node.id
        repo, job_branch = core.store.repo, core.plan.job_branch
        async with core.merge_lock:
            node_branch = jobs.node_branch(core.plan.job_id, nid)
            writers = core.siblings.writers_into(nid)
            if writers:
                return self._reject_written_into(nid, st, writers)
            if not st.changed_files:
                return self._done_without_change(nid, st, worktree)
            message = f"director: merge node {nid} — {node.title}".strip(" —")
            # What merges is the judged commit, by its id: the node branch is put right
            # beside the merge (a git process less in a row), both ended before anything
            # goes on — a rebase after a conflict swaps the branch from the judged commit.
            put_back, first = await asyncio.gather(
                core.io(self._branch_at_judged_commit, nid, node_branch, commit),
                core.io(
                    git.merge_into_branch,
                    repo,
                    job_branch,
                    commit,
                    message,
                    expected_head=core.job_head,
                ),
                return_exceptions=True,
            )
            if isinstance(put_back, BaseException):
                raise put_back
            try:
                if isinstance(first, BaseException):
                    raise first
                merge_commit = first
            except git.BranchMovedError:
                # Not by a merge of ours (before the merge, or in the window between its
                # read and its swap): attribute it — put back when an executor did it —
                # before merging, never build on it unseen.
                await self.windows.checkpoint()
                try:
                    merge_commit = await core.io(
                        git.merge_into_branch,
                        repo,
                        job_branch,
                        commit,
                        message,
                        expected_head=core.job_head,
                    )
                except git.BranchMovedError as exc:
                    return self._branch_keeps_moving(nid, st, exc)
            if merge_commit is not None:
                core.job_head = merge_commit
                st.merge_commit = merge_commit
                st.last_error = ""
                st.feedback = ""
                unreviewed = (
                    " without a review verdict (the reviewer failed; a reviewer error does "
                    "not block)"
                    if st.stage_two and st.review is None and st.review_error
                    else ""
                )
                core.set_status(nid, NodeStatus.done, f"merged as {merge_commit[:10]}{unreviewed}")
                core.ctx.bus.emit(NodeMerged(node_id=nid, commit=merge_commit, rebased=rebased))
                # Off the node's critical path: dependents may start while git tidies up.
                # (Its own worktree only: a slot's belongs to the run.)
                own = jobs.node_worktree(core.store, nid)
                core.cleanups.append(
                    asyncio.create_task(core.io(jobs.remove_node_worktree, core.store, own))
                )
                return MergeResult(merged=True)
            # The change conflicts with work merged meanwhile: rebase and re-gate. Onto
            # the head the merge was tried on, never the branch read again: whatever
            # moved it since is for a checkpoint to attribute first.
            head = core.job_head
            worktree = await core.io(self._own_worktree, nid, st, worktree, node_branch)
            rebased_ok = head != base and await core.io(
                rebase_judged, worktree, node_branch, commit, head
            )
        st.conflicts += 1
        if rebased_ok:
            core.notice(
                f"node {nid}: merge conflict; rebased onto {head[:10]}, re-gating", "info", nid
            )
            st.base_commit = head
            core.merge_queue.discard(nid)  # the re-gate runs tests: it takes a slot again
            return MergeResult(merged=False, regate_onto=head)
        if st.conflicts > MAX_CONFLICT_RETRIES:
            st.last_error = "its change keeps conflicting with work merged meanwhile"
            st.feedback = st.last_error
            return MergeResult(merged=False)
        # Re-execute on the new head; a conflict is not the executor's fault.
        uncount_attempt(st)
        st.last_error = "merge conflict with work merged meanwhile; re-running on the new head"
        st.feedback = (
            "Your previous change conflicted with work merged into the job branch meanwhile. "
            "The files now contain that work: build on it."
        )
        core.notice(f"node {nid}: {st.last_error}", "info", nid)
        return MergeResult(merged=False)

    def _branch_keeps_moving(
        self, nid: str, st: NodeState, exc: git.BranchMovedError
    ) -> MergeResult:
        """The job branch moved under the merge again after a checkpoint: not merged (the
        gate's verdict stands on a base that is gone), run again on the head director
        knows, uncharged; bounded like conflicts."""
        st.conflicts += 1
        st.last_error = f"not merged: {exc} (again after a check)"
        if st.conflicts > MAX_CONFLICT_RETRIES:
            st.feedback = st.last_error
            return MergeResult(merged=False)
        uncount_attempt(st)
        st.feedback = (
            "Your previous change passed its gates but could not be merged: the job branch "
            "moved while director merged it. Do the work again on the files as they are now."
        )
        self.core.notice(f"node {nid}: {st.last_error}; re-running", "warning", nid)
        return MergeResult(merged=False)

    def _own_worktree(self, nid: str, st: NodeState, worktree: Path, branch: str) -> Path:
        """Where the node rebases and re-gates: its own worktree. An attempt that ran in a
        slot left it for the next node; its branch (the judged commit) is checked out
        anew in ``<worktrees>/<node>``."""
        own = jobs.node_worktree(self.core.store, nid)
        if worktree.resolve() == own.resolve():
            return worktree
        if own.exists():
            git.remove_worktree(self.core.store.repo, own)
        git.add_worktree(self.core.store.repo, own, branch)
        st.worktree = str(own)
        return own

    def _reject_written_into(self, nid: str, st: NodeState, writers: list[str]) -> MergeResult:
        """Another agent wrote into this node's worktree while its attempt ran: not merged,
        not charged, run again from a clean worktree (see sibling_watch)."""
        message = sibling_watch.victim_message(writers)
        self.windows.fail_outside(nid, st, message, sibling_watch.VICTIM_FEEDBACK, charged=False)
        self.core.notice(f"node {nid}: {message}", "warning", nid)
        return MergeResult(merged=False)

    def _branch_at_judged_commit(self, nid: str, node_branch: str, judged: str) -> None:
        """Put the node's branch back on the commit its gate judged when something moved
        it since (compare-and-swap; the commit it was moved to is named)."""
        repo = self.core.store.repo
        ref = f"refs/heads/{node_branch}"
        if git.loose_ref(repo, ref) == judged:
            return  # where the gate left it (read from the ref's file: a git process less)
        now = git.git(["rev-parse", "-q", "--verify", ref], repo, check=False).stdout.strip()
        if now == judged:
            return
        git.git(["update-ref", ref, judged, *([now] if now else [])], repo, check=False)
        self.core.notice(
            f"node {nid}: its branch had been moved after its gate (to {now or 'nothing'}); "
            f"put back on the judged commit {judged[:10]}, which is what merges",
            "warning",
            nid,
        )

    def _done_without_change(self, nid: str, st: NodeState, worktree: Path) -> MergeResult:
        """The attempt changed no file and the node's tests passed on a clean checkout of
        its base: the work is on the job branch already (a dependency did it). The node is
        done, and says so; no empty merge commit is made to look like its work."""
        core = self.core
        st.last_error = ""
        st.feedback = ""
        message = (
            "nothing to merge: the attempt changed no file, and the node's tests pass on "
            "the job branch as it is"
        )
        core.set_status(nid, NodeStatus.done, message)
        core.notice(f"node {nid}: {message}", "warning", nid)
        own = jobs.node_worktree(core.store, nid)
        core.cleanups.append(
            asyncio.create_task(core.io(jobs.remove_node_worktree, core.store, own))
        )
        return MergeResult(merged=True)


def rebase_judged(worktree: Path, branch: str, judged: str, onto: str) -> bool:
    """Rebase the commit the gate judged onto ``onto`` — on a detached HEAD, so not
    whatever the branch points to by now — then move the branch to the result by
    compare-and-swap from the judged commit. False on a conflict, or (failing closed)
    when the branch moved meanwhile: the node re-runs on the new head either way."""
    ref = f"refs/heads/{branch}"
    # Nothing of the user's rebase config applies: no autostash, no other branch moved.
    rebase = ["rebase", "-q", "--no-autostash", "--no-update-refs", onto, judged]
    rebased = git.git(rebase, worktree, check=False).returncode == 0
    if not rebased:
        git.git(["rebase", "--abort"], worktree, check=False)
    else:
        new = git.rev(worktree)
        rebased = git.git(["update-ref", ref, new, judged], worktree, check=False).returncode == 0
    git.git(["symbolic-ref", "HEAD", ref], worktree)  # back on the node branch
    return rebased
