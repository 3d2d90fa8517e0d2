"""One node's lifecycle: attempts until it merges or runs out of budget. An attempt is
the executor call, the deterministic gate, review and the merge queue."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from director_tui.engine import dag, git, jobs, review
from director_tui.engine.agents.base import MAX_HARNESS_CRASHES, AgentResult, ExitReason
from director_tui.engine.budget import (
    begin_attempt,
    next_tier,
    out_of_attempts,
    uncount_attempt,
)
from director_tui.engine.cost import CostRecord
from director_tui.engine.events import GateResult, NodeAwaitingReview, ReviewResult, TestOutput
from director_tui.engine.models import Node, NodeState, NodeStatus, RoleUsage
from director_tui.engine.run.core import RunCore
from director_tui.engine.run.executor import (
    WORKTREE_CHECK,
    AttemptExecutor,
    AttemptLimits,
    AttemptReport,
    AttemptSpec,
    GateVerdict,
)
from director_tui.engine.run.merge_queue import MergeQueue
from director_tui.engine.run.prompt import node_watch_it_fail
from director_tui.engine.run.slots import Slot
from director_tui.engine.run.windows import WatchedWindows


class NodeInterrupted(Exception):
    """Raised inside a node task when scheduling stopped before its next attempt."""


def add_usage(st: NodeState, role: str, entry: CostRecord) -> None:
    usage = st.usage.setdefault(role, RoleUsage())
    usage.add(entry)
    usage.cost_usd += entry.cost_usd
    usage.calls += 1
    if not entry.priced:
        usage.unpriced_calls += 1


class NodeLifecycle:
    def __init__(
        self,
        core: RunCore,
        windows: WatchedWindows,
        merges: MergeQueue,
        executor: AttemptExecutor,
    ) -> None:
        self.core = core
        self.windows = windows
        self.merges = merges
        self.executor = executor
        # Attempts given back per node because the agent CLI's own machinery crashed; a
        # CLI that always crashes so must still run out of attempts.
        self.harness_crashes: dict[str, int] = {}

    async def task(self, nid: str) -> None:
        """The scheduler's task for one node: its attempts, and the status it ends in
        when it is cancelled (``core.cancel_to``) or scheduling stops."""
        core = self.core
        st = core.state.nodes[nid]
        began = time.monotonic()
        if st.started_at is None:
            st.started_at = time.time()
        try:
            await self._attempts(nid)
        except asyncio.CancelledError:
            to = core.cancel_to.pop(nid, NodeStatus.cancelled)
            if st.status == NodeStatus.done:
                return  # cancelled while tidying up after its merge: it stays merged
            if to == NodeStatus.pending and st.attempts > 0:
                uncount_attempt(st)  # a stopped attempt is not a failed one
            st.last_error = {
                NodeStatus.pending: "stopped; will run again",
                NodeStatus.skipped: "skipped by request",
                NodeStatus.cancelled: "cancelled by request",
            }.get(to, "stopped")
            core.set_status(nid, to, st.last_error)
        except NodeInterrupted as exc:
            core.set_status(nid, NodeStatus.pending, str(exc))
        finally:
            if self.windows.is_open(nid):  # stopped or crashed mid-window
                with contextlib.suppress(Exception):
                    await self.windows.close(nid)
            st.wall_secs += time.monotonic() - began
            core.save(node_id=nid)

    async def _attempts(self, nid: str) -> None:
        core = self.core
        node = core.nodes[nid]
        st = core.state.nodes[nid]
        if st.human_accepted and st.held_commit and await self._merge_accepted(node, st):
            return
        while True:
            if core.stop_reason or core.run_cancelled:
                raise NodeInterrupted(core.stop_reason or "run cancelled")
            nxt = next_tier(st, core.config, core.max_attempts)
            if nxt is None:
                core.set_status(nid, NodeStatus.failed, out_of_attempts(nid, st, core.max_attempts))
                blocked = sorted(dag.dependents(core.plan, nid))
                if blocked:
                    core.notice(f"node {nid} failed; blocked: {', '.join(blocked)}", "warning", nid)
                return
            tier, escalating = nxt
            if escalating and not st.escalated:
                core.notice(f"node {nid}: escalating to {tier}", "info", nid)
            begin_attempt(st, tier, escalating)
            if await self._attempt(node, st, tier) or st.status == NodeStatus.awaiting_review:
                return  # merged, or held for the human (their answer schedules it again)

    def _spec(self, node: Node, st: NodeState, tier: str, base: str) -> AttemptSpec:
        limits = self.core.config.limits
        return AttemptSpec(
            job_id=self.core.plan.job_id,
            node=node,
            attempt=st.attempts,
            tier=tier,
            usage_role="escalation" if st.escalated else "executor",
            base_commit=base,
            feedback=st.feedback,
            limits=AttemptLimits(
                gate_timeout_secs=limits.gate_timeout_secs,
                flake_runs=limits.flake_runs,
                ignore_globs=list(self.core.config.repository.ignore),
            ),
        )

    async def _attempt(self, node: Node, st: NodeState, tier: str) -> bool:
        """One attempt; True when the node merged. With slots, it holds one from its start
        until it enters the merge queue (or ends): the executor call, the gate and the
        review all work in the slot's worktree."""
        slots = self.core.slots
        slot = await slots.acquire(node.id) if slots is not None else None
        try:
            return await self._attempt_in(node, st, tier, slot)
        finally:
            if slots is not None and slot is not None and slot.holder == node.id:
                await slots.release(slot)

    async def _attempt_in(self, node: Node, st: NodeState, tier: str, slot: Slot | None) -> bool:
        core, nid = self.core, node.id
        attempt = st.attempts
        base = core.job_head
        st.base_commit = base
        st.branch = jobs.node_branch(core.plan.job_id, nid)
        st.worktree = str(
            slot.worktree if slot is not None else jobs.node_worktree(core.store, nid)
        )
        core.call_ended.discard(nid)
        core.set_status(nid, NodeStatus.running, f"attempt {attempt} on {tier}")
        spec = self._spec(node, st, tier, base)
        sink = _NodeSink(self, nid, st)
        report = await self.executor.run(spec, sink)
        st.watch_it_fail_attempts.append(report.watch_it_fail)
        st.watch_it_fail = node_watch_it_fail(st.watch_it_fail_attempts)
        if report.outside:
            return self.windows.reject(nid, st, report.outside)
        if report.sibling_writes:
            return self.windows.reject_sibling_writes(nid, st, report.sibling_writes)
        if report.gate is None:
            reason = (
                "idle — no output for too long"
                if report.exit_reason == ExitReason.idle
                else report.exit_reason.value
            )
            st.last_error = f"agent ended without finishing ({reason}): {report.message}".strip()
            st.feedback = st.last_error
            if report.harness_error and self.harness_crashes.get(nid, 0) < MAX_HARNESS_CRASHES:
                self.harness_crashes[nid] = self.harness_crashes.get(nid, 0) + 1
                uncount_attempt(st)
                st.last_error += " — the agent CLI's own failure: this attempt is not charged"
            core.notice(f"node {nid} attempt {attempt}: {st.last_error}", "warning", nid)
            return False
        return await self._settle(node, st, spec, report, sink, slot)

    async def _settle(
        self,
        node: Node,
        st: NodeState,
        spec: AttemptSpec,
        report: AttemptReport,
        sink: _NodeSink,
        slot: Slot | None,
        *,
        rebased: bool = False,
    ) -> bool:
        """A gated attempt to its end: review, the human's hold, the merge queue (and a
        re-gate after each rebase); True when the node merged."""
        core, nid, base = self.core, node.id, spec.base_commit
        worktree = Path(st.worktree)
        while self._judge(nid, st, report.gate):
            if not rebased and not await self._review(node, st, worktree, base):
                return False
            assert report.commit is not None  # a passed gate names the commit it judged
            if core.slots is not None and slot is not None and slot.holder == nid:
                # Merging needs no worktree: the slot goes to the next node now.
                await core.slots.release(slot)
            if not rebased and self._hold_for_human(nid, st, report.commit):
                return False
            merged = await self.merges.merge(
                node, st, worktree, base, rebased=rebased, commit=report.commit
            )
            if merged.regate_onto is None:
                return merged.merged
            # Rebased onto work merged meanwhile: the gate runs again on the new base (the
            # change was reviewed already).
            base, rebased = merged.regate_onto, True
            report = await self.executor.regate(spec.model_copy(update={"base_commit": base}), sink)
            if report.outside:
                return self.windows.reject(nid, st, report.outside)
            assert report.gate is not None
        return False

    def _hold_for_human(self, nid: str, st: NodeState, commit: str) -> bool:
        """Hold a passing node for the human (``[review] human``) instead of merging it:
        it waits as ``awaiting_review`` with the judged commit until they accept, reject
        or retry it (``budget.decide``). True when held."""
        mode = self.core.config.review.human
        if mode == "off" or (mode == "on-escalation" and not st.escalated):
            return False
        st.held_commit = commit
        st.human_accepted = False
        reason = "it needed the escalation tier" if st.escalated else "[review] human = always"
        self.core.set_status(
            nid,
            NodeStatus.awaiting_review,
            f"waiting for you ({reason}): review it, then accept, reject or retry it",
        )
        self.core.ctx.bus.emit(NodeAwaitingReview(node_id=nid, commit=commit, reason=reason))
        self.core.notice(
            f"node {nid} waits for your review ({reason}): `director review {nid}`, then "
            f"`director accept {nid}` or `director reject {nid} --comment …`",
            "info",
            nid,
        )
        return True

    async def _merge_accepted(self, node: Node, st: NodeState) -> bool:
        """The human accepted the held attempt: merge the commit its gate judged, with no
        other attempt (a conflict with work merged meanwhile rebases and re-gates it)."""
        core, nid = self.core, node.id
        commit, base = st.held_commit, st.base_commit
        worktree = await core.io(self._held_worktree, nid, st)
        merged = await self.merges.merge(node, st, worktree, base, rebased=False, commit=commit)
        # Kept until now: a run stopped mid-merge merges the accepted commit when resumed.
        st.held_commit, st.human_accepted = "", False
        if merged.regate_onto is None:
            return merged.merged
        spec = self._spec(node, st, st.tier, merged.regate_onto)
        sink = _NodeSink(self, nid, st)
        report = await self.executor.regate(spec, sink)
        if report.outside:
            return self.windows.reject(nid, st, report.outside)
        return await self._settle(node, st, spec, report, sink, None, rebased=True)

    def _held_worktree(self, nid: str, st: NodeState) -> Path:
        """The node's own worktree, on its branch (the held commit): an attempt in a slot
        left the slot's, and a restart may have found none."""
        own = jobs.node_worktree(self.core.store, nid)
        if not own.exists():
            git.add_worktree(
                self.core.store.repo, own, st.branch or jobs.node_branch(self.core.plan.job_id, nid)
            )
        st.worktree = str(own)
        return own

    def _judge(self, nid: str, st: NodeState, verdict: GateVerdict | None) -> bool:
        """Record the gate's verdict on the node; True when it passed."""
        core = self.core
        assert verdict is not None
        if verdict.check != WORKTREE_CHECK:
            st.test_secs += verdict.test_secs
            st.changed_files = verdict.changed_files
            if verdict.test_runs > 1 or verdict.flaky:
                st.flake = "flaky" if verdict.flaky else "stable"
            st.flaky = st.flaky or verdict.flaky
        core.ctx.bus.emit(
            GateResult(
                node_id=nid,
                attempt=st.attempts,
                passed=verdict.passed,
                check=verdict.check,
                message=verdict.message,
                output_tail=verdict.output_tail,
            )
        )
        if not verdict.passed:
            st.last_error = f"gate ({verdict.check}): {verdict.message}"
            st.feedback = verdict.feedback()
            core.save()
            return False
        return True

    async def _review(self, node: Node, st: NodeState, worktree: Path, base: str) -> bool:
        """Stage one (advisory) when configured, stage two when the node escalated or
        touched many files; False when stage two blocks the merge."""
        core, nid, attempt = self.core, node.id, st.attempts

        async def call(role: str, prompt: str, cwd: Path) -> AgentResult:
            return await self.call(st, role, prompt, cwd, nid, attempt, None, role)

        subject = review.ReviewSubject(node, worktree, base, call)

        stopped = core.no_new_calls()  # only calls already running may finish
        if core.config.review.stage_one_llm and stopped:
            core.notice(f"node {nid}: stage one advisory check skipped ({stopped})", "info", nid)
        elif core.config.review.stage_one_llm:
            core.set_status(nid, NodeStatus.reviewing, "stage one advisory check")
            advice = await review.stage_one_advisory(subject)
            core.ctx.bus.emit(
                ReviewResult(
                    node_id=nid,
                    stage="one",
                    verdict="advisory",
                    blocking=False,
                    summary=advice[:500],
                )
            )
        if not review.needs_stage_two(
            core.config, escalated=st.escalated, files_touched=len(st.changed_files)
        ):
            return True
        stopped = core.no_new_calls()
        if stopped:
            # The review cannot start, and the node does not merge unreviewed: it runs
            # again when the run is resumed (an attempt stopped, not a failed one).
            uncount_attempt(st)
            raise NodeInterrupted(f"{stopped}: stopped before its review")
        st.stage_two = True
        core.set_status(nid, NodeStatus.reviewing, "stage two review")
        outcome = await review.stage_two(subject)
        if outcome.verdict is None:
            st.review_error = outcome.error
            core.ctx.bus.emit(
                ReviewResult(
                    node_id=nid, stage="two", verdict="error", blocking=False, summary=outcome.error
                )
            )
            core.notice(
                f"node {nid}: review error (not blocking: the deterministic gates passed, so "
                f"it merges without a review verdict): {outcome.error}",
                "warning",
                nid,
            )
            return True
        st.review = outcome.verdict
        st.review_error = ""
        core.ctx.bus.emit(
            ReviewResult(
                node_id=nid,
                stage="two",
                verdict=outcome.verdict.verdict,
                blocking=outcome.blocking,
                summary=outcome.verdict.summary,
                findings=[f.model_dump() for f in outcome.verdict.findings],
            )
        )
        if outcome.blocking:
            st.last_error = f"review blocked: {outcome.verdict.summary}"
            st.feedback = outcome.feedback()
            core.save()
            return False
        return True

    async def call(
        self,
        st: NodeState,
        role: str,
        prompt: str,
        cwd: Path,
        nid: str,
        attempt: int,
        tier: str | None,
        usage_role: str,
    ) -> AgentResult:
        """A reviewer's call of a node: timed, its tokens and cost booked on the node;
        through the node's slot's server when it holds one."""
        slots = self.core.slots
        slot = slots.held_by(nid) if slots is not None else None
        provider = None
        if slots is not None and slot is not None:
            provider = await slots.provider(slot, tier or self.core.config.tier_for(role))
        result, entry = await self.core.ctx.call_agent(
            role,
            prompt,
            cwd,
            node_id=nid,
            attempt=attempt,
            tier=tier,
            on_cancelled=lambda partial, charged: self.book(nid, st, usage_role, partial, charged),
            provider=provider,
        )
        self.book(nid, st, usage_role, result, entry)
        return result

    def book(
        self, nid: str, st: NodeState, usage_role: str, result: AgentResult, entry: CostRecord
    ) -> None:
        """Every agent call of a node: its time, tokens and cost booked on the node."""
        core = self.core
        st.agent_secs += result.duration_secs
        add_usage(st, usage_role, entry)
        core.state.cost_usd += entry.cost_usd
        core.save(node_id=nid)
        core.emit_cost(nid)


class _NodeSink:
    """An attempt's progress applied to its node (``AttemptSink``)."""

    def __init__(self, lifecycle: NodeLifecycle, nid: str, st: NodeState) -> None:
        self.lifecycle = lifecycle
        self.nid = nid
        self.st = st

    def call_finished(self, role: str, result: AgentResult, entry: CostRecord) -> None:
        self.lifecycle.core.call_ended.add(self.nid)
        self.lifecycle.book(self.nid, self.st, role, result, entry)

    def gating(self) -> None:
        self.lifecycle.core.set_status(self.nid, NodeStatus.gating, "deterministic gate")

    def test_line(self, line: str) -> None:
        self.lifecycle.core.ctx.bus.emit(TestOutput(node_id=self.nid, line=line))

    def notice(self, message: str) -> None:
        self.lifecycle.core.notice(message, "warning", self.nid)
