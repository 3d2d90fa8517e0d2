"""The merge queue: nodes that passed their gates merge into the job branch one at a
time; a conflict with work merged meanwhile rebases the node (to be re-gated) or, when
the rebase conflicts too, sends it back to re-execute on the new head."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from director_tui.engine import git, jobs
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
        self, node: Node, st: NodeState, worktree: Path, base: str, *, rebased: bool
    ) -> MergeResult:
        core, nid = self.core, node.id
        core.set_status(nid, NodeStatus.merging, "waiting for the merge queue")
        core.merge_queue.add(nid)
        core.slot_freed.set()
        try:
            return await self._merge_in_queue(node, st, worktree, base, rebased=rebased)
        finally:
            # Back in a slot when it has to re-gate or re-run; gone when merged.
            core.merge_queue.discard(nid)

    async def _merge_in_queue(
        self, node: Node, st: NodeState, worktree: Path, base: str, *, rebased: bool
    ) -> MergeResult:
        core, nid = self.core, node.id
        repo, job_branch = core.store.repo, core.plan.job_branch
        async with core.merge_lock:
            node_branch = jobs.node_branch(core.plan.job_id, nid)
            message = f"director: merge node {nid} — {node.title}".strip(" —")
            try:
                merge_commit = await core.io(
                    git.merge_into_branch,
                    repo,
                    job_branch,
                    node_branch,
                    message,
                    expected_head=core.job_head,
                )
            except git.BranchMovedError:
                # Not by a merge of ours: attribute it (and put it back) before merging.
                await self.windows.checkpoint()
                merge_commit = await core.io(
                    git.merge_into_branch, repo, job_branch, node_branch, message
                )
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
                core.cleanups.append(
                    asyncio.create_task(core.io(jobs.remove_node_worktree, core.store, worktree))
                )
                return MergeResult(merged=True)
            # The job branch moved under us and the change conflicts: rebase and re-gate.
            head = await core.io(git.rev, repo, job_branch)
            core.job_head = head
            rebased_ok = head != base and await core.io(git.rebase, worktree, head)
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
