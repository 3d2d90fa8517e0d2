"""Where a test author works: its node's scratch worktree, or — when test authors are
OpenCode sessions on persistent servers (``[opencode] server``) — one of the tests
stage's slots.

A slot is one of the fixed slot worktrees a run uses too (``jobs.slot_worktree``) and one
``opencode serve`` of its own (``agent_servers.py``), sandboxed so its tools can write
only that worktree. A node holds a slot for all its tries: the slot is re-pointed to
the slot's scratch branch at the stage's base and cleaned (``reset --hard``,
``clean -ffdx``), what earlier calls left running there is stopped (never the server),
and the node's test files are brought in from its own scratch worktree
(``test_worktrees.open_test_worktree``: an earlier pass's leftovers, or the versions
written by hand at Gate 2). When the node is done with the slot — red, failed or
stopped — its test files go back into its own scratch worktree, so everything after
(the commit in plan order, ``director plan --continue``'s leftover check, "fix it
there") reads exactly what the one-worktree-per-node pass leaves. Only a hard kill in
the middle of a node loses what its test author had written by then (the slot is
cleaned at the next pass).

With ``director auto`` the run finds each slot's server running (same worktree, same
sandbox) and does not start it again."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from director_tui.engine import jobs
from director_tui.engine.agent_servers import SLOT_ROLES, BeforeRetry, pick_slot, take_when_picked
from director_tui.engine.agents.base import AgentCall
from director_tui.engine.agents.opencode_server import OpenCodeServer
from director_tui.engine.context import EngineContext
from director_tui.engine.models import Node
from director_tui.engine.plan.test_worktrees import (
    copy_existing_tests,
    open_test_worktree,
    test_branch,
)

# Slot servers started before decompose: 2, not ``parallel`` — most plans have two
# nodes or more, and a server no node takes costs the others ~3 s of CPU (2 cores).
EARLY_SLOTS = 2


def slot_branch(job_id: str, index: int) -> str:
    """The scratch branch a test author's slot is on (removed with the stage's others)."""
    return test_branch(job_id, f"{jobs.SLOT_PREFIX}{index}")


async def warm_slots(
    ctx: EngineContext, job_id: str, base: str, reader: OpenCodeServer | None = None
) -> None:
    """Before the tests stage (while recon, spec and decompose talk to the model): the
    first ``early_slots`` slots' worktrees made and their servers started and primed in
    the background, so the first test authors' sessions find them warm. How many nodes
    need tests is not known before decompose: the tests stage starts any other slot's
    server when a node waiting for a slot should not wait for a warm one
    (``TestPlaces._pick``), min(parallel, nodes to author) at most.

    With the planner's server (``reader``), the first slot's server starts at once and
    the second only once the planner's first session has ended, and only when sessions
    outlast a server's start (``another_server_pays``): with a model that answers
    faster, the test authors taking turns in the first slot end sooner than a second
    server's seconds of CPU would let them."""
    if not ctx.servers.wanted("test_author"):
        return
    for index in range(early_slots(ctx.config.limits.parallel)):
        if index > 0 and reader is not None:
            await ctx.servers.first_session(reader)
            if not ctx.servers.another_server_pays():
                return
        slot = jobs.slot_worktree(ctx.store, index)

        def make(slot: Path = slot, index: int = index) -> bool:
            made = jobs.point_slot_worktree(ctx.store, slot, slot_branch(job_id, index), base)
            jobs.release_slot_worktree(ctx.store, slot)
            return made

        made_anew = await asyncio.to_thread(make)
        served = ctx.servers.get(slot)
        if made_anew and served is not None:
            await served.server.stop()
        ctx.servers.start_soon(_slot_server(ctx, slot, index))


def early_slots(parallel: int) -> int:
    """How many slot servers ``warm_slots`` starts before decompose says how many nodes
    there are. Each costs ~3 s of CPU to start and prime; a server started here that no
    node takes only slows the others (on 2 cores)."""
    return min(parallel, EARLY_SLOTS)


def _slot_server(
    ctx: EngineContext, slot: Path, index: int, before_retry: BeforeRetry | None = None
) -> OpenCodeServer:
    return ctx.servers.server(
        slot,
        writable=True,
        roles=SLOT_ROLES,
        name=f"opencode-server-slot-{index}",
        before_retry=before_retry,
    )


class TestPlaces:
    """Hands each node the worktree its test author works in (``open``)."""

    def __init__(self, ctx: EngineContext, job_id: str, base: str, job_wt: Path) -> None:
        self.ctx = ctx
        self.job_id = job_id
        self.base = base
        self.job_wt = job_wt
        self.count = ctx.config.limits.parallel
        self.slotted = ctx.servers.wanted("test_author")
        self._free = list(range(self.count)) if self.slotted else []
        self._freed = asyncio.Condition()
        self._waiting = 0  # nodes in _acquire
        self.created_at = time.time()

    @contextlib.asynccontextmanager
    async def open(self, node: Node) -> AsyncIterator[Path]:
        """The worktree ``node``'s test author works in, for all its tries."""
        own = await asyncio.to_thread(
            open_test_worktree, self.ctx.store, self.job_id, node, self.base, self.job_wt
        )
        if not self.slotted:
            yield own
            return
        index = await self._acquire()
        slot = jobs.slot_worktree(self.ctx.store, index)
        try:
            await self._point(slot, index, node, own)
            try:
                yield slot
            finally:
                # Red, failed or stopped: the node's files back where the rest reads them.
                await asyncio.shield(asyncio.to_thread(copy_existing_tests, node, slot, own))
        finally:
            await asyncio.shield(self._release(slot, index))

    async def _acquire(self) -> int:
        await self.ctx.servers.prepared()  # slots warmed ahead (warm_slots) are ready
        async with self._freed:
            self._waiting += 1
            try:
                # A slot whose server is ready, else one starting: see ``pick_slot``.
                index = await take_when_picked(self._freed, self._pick)
            finally:
                self._waiting -= 1
            self._free.remove(index)
            return index

    def _pick(self) -> int | None:
        return pick_slot(
            self._free,
            self._server,
            busy=self.count - len(self._free),
            waiting=self._waiting,
            another_pays=self.ctx.servers.another_server_pays,
        )

    def _server(self, index: int) -> OpenCodeServer | None:
        served = self.ctx.servers.get(jobs.slot_worktree(self.ctx.store, index))
        return served.server if served is not None else None

    async def _point(self, slot: Path, index: int, node: Node, own: Path) -> None:
        """The slot clean at the stage's base with the node's test files from its own
        worktree, nothing of an earlier call running, its server started (in the
        background when it is not running yet)."""
        servers = self.ctx.servers
        branch = slot_branch(self.job_id, index)
        await servers.clear(slot, since=self.created_at)

        def point() -> bool:
            made = jobs.point_slot_worktree(self.ctx.store, slot, branch, self.base)
            copy_existing_tests(node, own, slot)
            return made

        made_anew = await asyncio.to_thread(point)
        served = servers.get(slot)
        if made_anew and served is not None:
            # A sandboxed server has the old folder bound: it starts again on the new one.
            await served.server.stop()

        async def reset(_call: AgentCall) -> None:
            # The server died under the call: the call runs again from a clean tree with
            # the test files it was given (from the node's own worktree).
            await asyncio.to_thread(point)

        servers.start_soon(_slot_server(self.ctx, slot, index, reset))

    async def _release(self, slot: Path, index: int) -> None:
        try:
            await self.ctx.servers.clear(slot, since=self.created_at)
            await asyncio.to_thread(jobs.release_slot_worktree, self.ctx.store, slot)
        finally:
            async with self._freed:
                self._free.append(index)
                self._free.sort()
                self._freed.notify()

    async def close(self, *, keep_for_run: bool) -> None:
        """The stage is over: unless the run comes next in this process (``director
        auto``), the slots' servers stop and their worktrees go (detached at the stage's
        base; the node's files are in its own worktree already)."""
        if not self.slotted or keep_for_run:
            return
        for index in range(self.ctx.config.limits.parallel):
            slot = jobs.slot_worktree(self.ctx.store, index)
            await self.ctx.servers.stop(slot)
            if slot.exists():
                await asyncio.to_thread(jobs.remove_node_worktree, self.ctx.store, slot)
