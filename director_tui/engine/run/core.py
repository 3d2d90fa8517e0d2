"""What every part of one run shares: the plan, the state, the tasks and the ways to
record a transition (state.json, events) and to run blocking work off the loop."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from director_tui.engine import jobs
from director_tui.engine.context import EngineContext
from director_tui.engine.events import CostUpdate, NodeStateChanged, Notice
from director_tui.engine.models import NodeState, NodeStatus, Plan, RunState
from director_tui.engine.run.state_writer import StateWriter
from director_tui.engine.sibling_watch import SiblingWatch

if TYPE_CHECKING:
    from director_tui.engine.run.slots import SlotPool

T = TypeVar("T")


class RunCore:
    """The shared state of one invocation of the run."""

    def __init__(self, ctx: EngineContext, plan: Plan, *, parallel: int, max_attempts: int) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.config = ctx.config
        self.plan = plan
        self.nodes = {n.id: n for n in plan.nodes}
        self.order = {n.id: i for i, n in enumerate(plan.nodes)}
        self.parallel = parallel
        self.max_attempts = max_attempts
        self.state = self._initial_state()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        # Nodes that passed their gates and wait for (or are in) the merge queue: they hold
        # no slot, so the next node's agent starts while merges go one at a time.
        self.merge_queue: set[str] = set()
        self.slot_freed = asyncio.Event()
        # Why a node task was cancelled: the status it should end in.
        self.cancel_to: dict[str, NodeStatus] = {}
        self.merge_lock = asyncio.Lock()
        self.stop_reason = ""  # set when the cost ceiling stops scheduling
        # Nodes whose current attempt's executor call has ended (gating next): stopping
        # them for the cost ceiling would save nothing.
        self.call_ended: set[str] = set()
        self.run_cancelled = False
        self.job_worktree = jobs.job_worktree(self.store)
        self.started = time.monotonic()
        self.cleanups: list[asyncio.Future[None]] = []
        # The job head as of the last merge (kept in memory: one git call less per node).
        self.job_head = ""
        # Agents' writes into other nodes' worktrees (an event-bus sink while the run goes).
        self.siblings = SiblingWatch(self.store.worktrees, plan.ids)
        # Per node, the commit its last passed gate judged: what the merge queue merges.
        self.judged: dict[str, str] = {}
        self.writer = StateWriter(self.store.state, self.state)
        # Git work of the nodes runs on threads of its own, sized to the parallelism, so
        # worktree clean-ups never queue a starting node behind them.
        self.git_pool = ThreadPoolExecutor(max_workers=parallel + 2, thread_name_prefix="node-git")
        # The run's slots (fixed worktrees, an OpenCode server each) when its attempts call
        # OpenCode through servers; None: every node works in its own worktree.
        self.slots: SlotPool | None = None

    def _initial_state(self) -> RunState:
        previous = self.store.read_model(self.store.state, RunState)
        # No state for this job (first run, or state.json deleted): recovery looks on the
        # job branch for nodes merged already.
        self.fresh_state = previous is None or previous.job_id != self.plan.job_id
        if previous is not None and not self.fresh_state:
            state = previous
        else:
            state = RunState(job_id=self.plan.job_id, job_branch=self.plan.job_branch)
        for node in self.plan.nodes:
            state.nodes.setdefault(node.id, NodeState())
        return state

    async def io(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking git/file work off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.git_pool, functools.partial(fn, *args, **kwargs))

    def save(self, *, durable: bool = False, node_id: str | None = None) -> None:
        """Rewrite state.json after a transition (see ``StateWriter.save``)."""
        self.writer.save(durable=durable, node_id=node_id)

    def set_status(self, node_id: str, status: NodeStatus, message: str = "") -> None:
        st = self.state.nodes[node_id]
        st.status = status
        if status.finished:
            st.finished_at = time.time()
        self.save(durable=status.finished, node_id=node_id)
        self.ctx.bus.emit(
            NodeStateChanged(
                node_id=node_id,
                status=status.value,
                attempt=st.attempts,
                max_attempts=self.max_attempts,
                tier=st.tier,
                message=message,
                escalated=st.escalated,
            )
        )

    def notice(
        self,
        message: str,
        level: Literal["info", "warning", "error"] = "info",
        node_id: str | None = None,
    ) -> None:
        self.ctx.bus.emit(Notice(level=level, message=message, node_id=node_id))

    def ceiling_reached(self) -> bool:
        ceiling = self.config.limits.cost_ceiling_usd
        return ceiling > 0 and self.state.cost_usd >= ceiling

    def ceiling_message(self) -> str:
        ceiling = self.config.limits.cost_ceiling_usd
        return f"cost ceiling reached: ${self.state.cost_usd:.4f} of ${ceiling:.2f}"

    def no_new_calls(self) -> str:
        """Why no new agent call may start (the cost ceiling), or "" when they may. Asked
        by a node itself, so it does not wait for the loop to notice the ceiling."""
        if self.stop_reason:
            return self.stop_reason
        return self.ceiling_message() if self.ceiling_reached() else ""

    def emit_cost(self, nid: str | None) -> None:
        unpriced = sum(
            u.unpriced_calls for st in self.state.nodes.values() for u in st.usage.values()
        )
        self.ctx.bus.emit(
            CostUpdate(
                total_usd=self.state.cost_usd,
                ceiling_usd=self.config.limits.cost_ceiling_usd,
                node_id=nid,
                unpriced_calls=unpriced,
            )
        )
