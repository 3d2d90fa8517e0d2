"""Watched windows: an executor call and its gate tests, during which a change in the
user's checkout or the job worktree is pinned on the executors running then (the policy
and the fingerprints are ``sandbox_watch``'s; this is their bookkeeping in a run)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from director_tui.engine import sandbox_watch, sibling_watch
from director_tui.engine.budget import uncount_attempt
from director_tui.engine.events import GateResult
from director_tui.engine.models import NodeState
from director_tui.engine.run.core import RunCore


@dataclass
class _WindowOp:
    """A watched window opening (``begin``) or closing, applied after a checkpoint."""

    nid: str
    begin: bool
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    applied: bool = False
    abandoned: bool = False
    incidents: list[sandbox_watch.Incident] = field(default_factory=list)


class WatchedWindows:
    """The open windows of one run and the checkpoints between them."""

    def __init__(self, core: RunCore) -> None:
        self.core = core
        self.fingerprinter = sandbox_watch.Fingerprinter(
            core.store.repo, core.job_worktree, core.plan.job_branch, core.store.root
        )
        self.ledger = sandbox_watch.Ledger()
        self.gate = sandbox_watch.WindowGate()
        self._fingerprint: sandbox_watch.Fingerprint | None = None
        # Open watched windows as the node tasks see them: node id → run alone.
        self._open: dict[str, bool] = {}
        self._ops: list[_WindowOp] = []
        self._checkpointer: asyncio.Task[None] | None = None
        self._run_alone: set[str] = set()  # nodes whose last incident was ambiguous

    def is_open(self, nid: str) -> bool:
        return nid in self._open

    async def open(self, nid: str) -> None:
        exclusive = nid in self._run_alone
        await self.gate.acquire(exclusive)
        op = _WindowOp(nid, begin=True)
        try:
            await self._apply(op)
        except BaseException:
            if op.applied:
                self._queue(_WindowOp(nid, begin=False))  # undo, result unused
            op.abandoned = True
            self.gate.release(exclusive)
            raise
        self._open[nid] = exclusive

    async def close(self, nid: str) -> list[sandbox_watch.Incident]:
        """Close the node's window: what changed outside while it was open, if anything."""
        if nid not in self._open:
            return []
        exclusive = self._open.pop(nid)
        op = _WindowOp(nid, begin=False)
        try:
            await self._apply(op)
        finally:
            self.gate.release(exclusive)
            if exclusive:
                self._run_alone.discard(nid)
        return op.incidents

    async def _apply(self, op: _WindowOp) -> None:
        """Apply a window's opening or closing after a fresh checkpoint. Requests that
        arrive together share one: the open set changes only after that fingerprint,
        so attribution stays exact while parallel nodes stop queueing one fingerprint
        each behind the merge lock."""
        self._queue(op)
        await asyncio.shield(op.done)

    def _queue(self, op: _WindowOp) -> None:
        self._ops.append(op)
        if self._checkpointer is None or self._checkpointer.done():
            self._checkpointer = asyncio.create_task(self._run_ops())

    async def _run_ops(self) -> None:
        while self._ops:
            batch, self._ops = self._ops, []
            try:
                async with self.core.merge_lock:
                    await self.checkpoint()
            except Exception as exc:  # never leave a window half-open over a git hiccup
                self.core.notice(f"outside-the-worktree check failed: {exc}", "warning")
            for op in batch:
                if op.begin and not op.abandoned:
                    self.ledger.begin(op.nid)
                elif not op.begin:
                    op.incidents = self.ledger.end(op.nid)
                op.applied = True
                if not op.done.done():
                    op.done.set_result(None)

    async def checkpoint(self) -> None:
        """Fingerprint the user's checkout and the job worktree, attribute a change to the
        open windows, and put the job worktree back when it changed. The caller holds the
        merge lock, so no merge of ours moves the job branch meanwhile."""
        core = self.core
        if not core.store.plan.exists():
            return  # .director/ was deleted: the loop stops the run; re-create nothing in it
        now = await core.io(self.fingerprinter.take, core.job_head)
        before, self._fingerprint = self._fingerprint, now
        if before is None:
            return
        changes = sandbox_watch.compare(before, now)
        if not changes:
            return
        incident = self.ledger.record(changes)
        if incident is not None and before.touches_guarded(now, changes):
            undone = await core.io(self.fingerprinter.restore_guarded, before, now)
            core.notice(
                f"director's contract or git's own files changed while "
                f"{', '.join(incident.suspects)} ran; put back: " + "; ".join(undone),
                "warning",
            )
            now = await core.io(self.fingerprinter.take, core.job_head)
            self._fingerprint = now
        if not changes.job:
            return  # the user's checkout is never touched; with no window open, theirs
        moved_to = now.job_branch_oid
        if incident is None and moved_to is not None and moved_to != core.job_head:
            core.notice(
                f"the job branch {core.plan.job_branch} was moved outside director (to "
                f"{moved_to[:10]}) while no executor was running; director builds on it",
                "warning",
            )
            core.job_head = moved_to
            if changes.job == [sandbox_watch.JOB_BRANCH_KEY]:
                self._fingerprint = await core.io(self.fingerprinter.take, core.job_head)
                return
        done = await core.io(
            sandbox_watch.restore_job_worktree,
            core.store,
            core.plan.job_branch,
            core.job_head,
            put_branch_back=incident is not None,
        )
        who = (
            f"while {', '.join(incident.suspects)} ran"
            if incident is not None
            else "while no executor was running"
        )
        core.notice(
            f"the job worktree changed {who} ({', '.join(changes.job[:12])}); it is "
            "director's own and must stay clean: " + "; ".join(done),
            "warning",
        )
        self._fingerprint = await core.io(self.fingerprinter.take, core.job_head)

    def reject(self, nid: str, st: NodeState, incidents: list[sandbox_watch.Incident]) -> bool:
        """Fail the attempt for changes outside its worktree (policy: sandbox_watch)."""
        core = self.core
        message = sandbox_watch.describe(nid, incidents, core.store.repo, core.job_worktree)
        # When it may not have been this node, it is not charged and runs alone next.
        ambiguous = all(incident.ambiguous for incident in incidents)
        if ambiguous:
            self._run_alone.add(nid)
        feedback = sandbox_watch.agent_feedback(incidents)
        return self.fail_outside(nid, st, message, feedback, charged=not ambiguous)

    def reject_sibling_writes(self, nid: str, st: NodeState, offences: list[str]) -> bool:
        """Fail the attempt whose agent wrote into other nodes' worktrees (its own tool
        calls say so: charged; see sibling_watch)."""
        message = sibling_watch.offence_message(nid, offences, self.core.store.worktrees)
        return self.fail_outside(nid, st, message, sibling_watch.OFFENCE_FEEDBACK, charged=True)

    def fail_outside(
        self, nid: str, st: NodeState, message: str, feedback: str, *, charged: bool
    ) -> bool:
        """Record an ``outside_worktree`` rejection of the node's attempt (an uncharged
        one is given back); False, for the caller to return."""
        core = self.core
        core.ctx.bus.emit(
            GateResult(
                node_id=nid,
                attempt=st.attempts,
                passed=False,
                check=sandbox_watch.CHECK,
                message=message,
            )
        )
        st.last_error = f"gate ({sandbox_watch.CHECK}): {message}"
        st.feedback = feedback
        if not charged:
            uncount_attempt(st)
        core.save(node_id=nid)
        return False

    def close_all(self) -> None:
        self.fingerprinter.close()
