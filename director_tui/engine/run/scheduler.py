"""The scheduler: up to ``parallel`` node tasks at once, in dependency order, longest
remaining chain first; control requests, the cost ceiling and stops between them."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections.abc import Callable
from typing import NoReturn

import psutil

from director_tui.engine import control_channel, dag, git, jobs, sandbox_watch, worktree_moves
from director_tui.engine.context import EngineContext
from director_tui.engine.errors import DirectorError
from director_tui.engine.events import RunStarted
from director_tui.engine.models import NodeStatus, Plan
from director_tui.engine.run.conclusion import RunOutcome, conclude, finish
from director_tui.engine.run.core import RunCore
from director_tui.engine.run.executor import AttemptExecutor, LocalAttemptExecutor
from director_tui.engine.run.lifecycle import NodeLifecycle
from director_tui.engine.run.merge_queue import MergeQueue
from director_tui.engine.run.recovery import recover
from director_tui.engine.run.requests import apply_controls
from director_tui.engine.run.slots import SlotPool, uses_slots
from director_tui.engine.run.windows import WatchedWindows

# Statuses a dependency can be in that mean its dependents cannot run.
DEAD_ENDS = frozenset(
    {NodeStatus.failed, NodeStatus.blocked, NodeStatus.skipped, NodeStatus.cancelled}
)
POLL_SECS = 0.2  # how often the scheduler looks for control requests while waiting
# Makes the run's attempt executor (``LocalAttemptExecutor`` unless told otherwise).
ExecutorFactory = Callable[[RunCore, WatchedWindows], AttemptExecutor]


class Runner:
    """One invocation of the run: the scheduler loop over the node lifecycles."""

    def __init__(
        self,
        ctx: EngineContext,
        plan: Plan,
        *,
        parallel: int,
        max_attempts: int,
        executor: ExecutorFactory | None = None,
    ) -> None:
        self.core = RunCore(ctx, plan, parallel=parallel, max_attempts=max_attempts)
        if uses_slots(self.core):
            self.core.slots = SlotPool(self.core, parallel)
        self.windows = WatchedWindows(self.core)
        merges = MergeQueue(self.core, self.windows)
        attempts = (executor or LocalAttemptExecutor)(self.core, self.windows)
        self.lifecycle = NodeLifecycle(self.core, self.windows, merges, attempts)
        # The scheduler's priority: the heaviest chain of work below each node.
        self.chain = dag.chain_weights(plan)

    def refresh_blocked(self) -> None:
        core = self.core
        nodes = core.state.nodes
        changed = True
        while changed:
            changed = False
            for node in core.plan.nodes:
                st = nodes[node.id]
                dead = [d for d in node.depends_on if nodes[d].status in DEAD_ENDS]
                if st.status == NodeStatus.pending and dead:
                    st.last_error = f"blocked by {', '.join(dead)}"
                    core.set_status(node.id, NodeStatus.blocked, st.last_error)
                    changed = True
                elif st.status == NodeStatus.blocked and not dead:
                    core.set_status(node.id, NodeStatus.pending, "unblocked")
                    changed = True

    def ready(self) -> list[str]:
        core = self.core
        nodes = core.state.nodes
        out = []
        for node in core.plan.nodes:
            if nodes[node.id].status != NodeStatus.pending or node.id in core.tasks:
                continue
            if all(nodes[d].status == NodeStatus.done for d in node.depends_on):
                out.append(node.id)
        # Longest remaining chain first keeps the makespan near the critical path.
        out.sort(key=lambda nid: (-self.chain[nid], core.order[nid]))
        return out

    async def run(self) -> RunOutcome:
        bus = self.core.ctx.bus
        bus.subscribe(self.core.siblings)
        try:
            return await self._run()
        finally:
            if self.core.slots is not None:
                await asyncio.shield(self.core.slots.stop())
            self.windows.close_all()
            with contextlib.suppress(ValueError):
                bus.sinks.remove(self.core.siblings)

    async def _run(self) -> RunOutcome:
        core = self.core
        plan, state = core.plan, core.state
        # Worktrees an older version left inside the checkout go where they belong first.
        for moved in await core.io(worktree_moves.relocate, core.store):
            core.notice(moved, "warning" if moved.startswith("left") else "info")
        await core.io(jobs.ensure_job_worktree, core.store, plan.job_branch)
        core.job_head = await core.io(git.rev, core.store.repo, plan.job_branch)
        # Recovery reads the dead owner's start time (orphans are processes younger than
        # it): claim ownership only afterwards, or a resuming process started after the
        # orphans (`director run` again from a shell) would spare every one of them.
        notes = await core.io(recover, core)
        # What recovery left running in the slots is stopped: the first wave's slot servers
        # can start now, overlapping the rest of the set-up below.
        if core.slots is not None and not state.paused and not core.ceiling_reached():
            core.slots.warm_soon(min(core.parallel, len(self.ready())), core.job_head)
        await core.io(sandbox_watch.refresh_job_index, core.job_worktree)
        state.owner_pid = os.getpid()
        state.owner_create_time = psutil.Process().create_time()
        state.started_at = time.time()
        core.save()
        core.ctx.bus.emit(
            RunStarted(
                job_id=plan.job_id,
                job_branch=plan.job_branch,
                node_ids=plan.ids,
                parallel=core.parallel,
                ceiling_usd=core.config.limits.cost_ceiling_usd,
                tiers=core.config.tier_map(),
                scripted=core.ctx.scripted,
                pid=os.getpid(),
                sandbox=core.ctx.sandbox.line(),
            )
        )
        for note in notes:
            core.notice("recovered: " + note, "warning")
        judge = functools.partial(
            control_channel.judge_sender, engine_pid=os.getpid(), worktrees=core.store.worktrees
        )
        try:
            async with control_channel.ControlServer(core.store, judge):
                await self._loop()
        except asyncio.CancelledError:
            # Interrupted from outside (Ctrl-C, the app closing): leave a resumable state.
            core.run_cancelled = True
            await self._cancel_all(NodeStatus.pending)
            state.cancelled = True
            core.save()
            finish(core, "cancelled", "interrupted")
            raise
        return await conclude(core)

    async def _loop(self) -> None:
        core = self.core
        while True:
            if not core.store.plan.exists():
                await self._stop_for_lost_store()
            apply_controls(core)
            if core.run_cancelled:
                await self._cancel_all(NodeStatus.pending)
                return
            if core.ceiling_reached() and not core.stop_reason:
                await self._stop_for_ceiling()
            self.refresh_blocked()
            if not core.state.paused and not core.stop_reason:
                for nid in self.ready():
                    if len(core.tasks) - len(core.merge_queue) >= core.parallel:
                        break
                    core.tasks[nid] = asyncio.create_task(self.lifecycle.task(nid), name=nid)
            # Nodes held for the human keep the run live (their answer schedules them),
            # unless it stopped scheduling anyway (the cost ceiling).
            held = not core.stop_reason and any(
                st.status == NodeStatus.awaiting_review for st in core.state.nodes.values()
            )
            if not core.tasks and not core.state.paused and not held:
                return
            if core.tasks:
                await self._wait_for_a_task()
            else:
                await asyncio.sleep(POLL_SECS)  # paused or waiting for the human

    async def _wait_for_a_task(self) -> None:
        """Until a node task ends or frees its slot (or ``POLL_SECS``); a task that ended
        with an exception fails its node."""
        core = self.core
        core.slot_freed.clear()
        slot_freed = asyncio.ensure_future(core.slot_freed.wait())
        finished, _ = await asyncio.wait(
            {*core.tasks.values(), slot_freed},
            timeout=POLL_SECS,
            return_when=asyncio.FIRST_COMPLETED,
        )
        slot_freed.cancel()
        finished.discard(slot_freed)
        for task in finished:
            core.tasks.pop(task.get_name(), None)
            exc = None if task.cancelled() else task.exception()
            if exc is not None and core.store.plan.exists():  # else: the loop stops the run
                nid = task.get_name()
                st = core.state.nodes[nid]
                st.last_error = (
                    str(exc)
                    if isinstance(exc, DirectorError)
                    else f"internal error: {type(exc).__name__}: {exc}"
                )
                core.set_status(nid, NodeStatus.failed, st.last_error)
                core.notice(f"node {nid}: {st.last_error}", "error", nid)

    async def _stop_for_lost_store(self) -> NoReturn:
        """``.director/`` (or its plan.json) was deleted under the run: nothing is left to
        record progress in or resume from. Stop the agents as a cancel does, then say so
        (rather than gate a node against a job worktree that is gone)."""
        await self._cancel_all(NodeStatus.pending)
        branch = self.core.plan.job_branch
        raise DirectorError(
            f"{self.core.store.plan} disappeared while the run went (was .director/ deleted?): "
            "the run stopped, its agents were stopped, and it cannot be resumed",
            hint=f"what was merged is on {branch} (`git log {branch}`); to start over: "
            '`director init` if config.toml went too, then `director plan "<task>"`',
        )

    async def _stop_for_ceiling(self) -> None:
        core = self.core
        limits = core.config.limits
        core.stop_reason = core.ceiling_message()
        core.state.stopped_reason = core.stop_reason
        core.save()
        how = "running calls finish" if limits.on_ceiling == "finish" else "running calls cancelled"
        core.notice(f"{core.stop_reason}: no new work is scheduled ({how})", "warning")
        if limits.on_ceiling == "cancel":
            # Only agent calls cost money: a node past its executor call (gating, or about
            # to) or merging finishes; one that would need a reviewer stops before it.
            await self._cancel_all(NodeStatus.pending, spare=self._past_its_call)

    def _past_its_call(self, nid: str) -> bool:
        status = self.core.state.nodes[nid].status
        return status == NodeStatus.gating or (
            status == NodeStatus.running and nid in self.core.call_ended
        )

    async def _cancel_all(
        self, to: NodeStatus, spare: Callable[[str], bool] = lambda _nid: False
    ) -> None:
        core = self.core
        for nid, task in list(core.tasks.items()):
            status = core.state.nodes[nid].status
            if status in (NodeStatus.merging, NodeStatus.done) or spare(nid):
                continue  # a merge is short and must not be torn
            core.cancel_to[nid] = to
            task.cancel()
        if core.tasks:
            await asyncio.gather(*core.tasks.values(), return_exceptions=True)
        core.tasks.clear()
