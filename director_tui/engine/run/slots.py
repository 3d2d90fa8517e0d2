"""Slots: the run's parallel lanes. Each slot is a fixed worktree
(``<worktrees>/_slot-<k>``) and, for OpenCode, one ``opencode serve`` of its own.

Why: a cold ``opencode run`` pays seconds of start-up per call, and a server pays them
again for every directory it has not seen (bench/sessions.py). A slot's server sees one
directory for the whole run, so every session after the first is warm. One server per
slot, not one for the run: a server's tools can write where the server can, and a
slot's server (in the OS sandbox, when it is on) can write only its slot's worktree.

An attempt holds one slot from its start until it enters the merge queue or ends: the
worktree is re-pointed to the node's branch at its base and cleaned (``reset --hard``,
``clean -ffdx``: nothing of a rejected attempt, this node's or another's, is left), and
whatever the previous calls left running is stopped — the processes below the server
that are not the server's own (its sandbox's PID namespace keeps a daemon there),
those working in the slot's worktree, and those carrying the server's environment marker
(without the sandbox, a daemon that left both). While it holds the slot, the slot's worktree *is*
the node's worktree: the state, events, costs and transcripts name the node, the
sibling watch maps the slot's folder to it, its branch is what merges. A conflict's
rebase and re-gate happen in the node's own worktree (the slot has moved on by then).

Servers come from ``ctx.servers`` (``agent_servers.py``): under ``director auto`` a slot's
server is the one its test authors used at plan time, already running. Otherwise the
first wave's slots (min(parallel, ready nodes)) start theirs in the background right after
recovery (``warm_soon``: each slot worktree detached at the job's head and scrubbed
first, the server in the slot's sandbox as always, primed for that worktree as every
server start is — ``OpenCodeServer.prime`` — so the first attempt's session finds the
directory booted), overlapping the rest of the run's set-up; any other slot's starts at
its first OpenCode call. They are health-checked
before each call and started again when dead (the call they broke runs again, not charged:
``OpenCodeServerProvider``), and stop with the run — and with director itself when it
is killed (PDEATHSIG). Only OpenCode tiers use the server; other providers run their
usual per-call CLI in the slot's worktree."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from director_tui.engine import jobs
from director_tui.engine.agent_servers import SLOT_ROLES, pick_slot, take_when_picked
from director_tui.engine.agents.base import AgentCall, AgentProvider
from director_tui.engine.agents.opencode_server import OpenCodeServer, ServerStartError
from director_tui.engine.agents.opencode_session import OpenCodeServerProvider
from director_tui.engine.config import split_tier
from director_tui.engine.proc import kill_orphans
from director_tui.engine.run.core import RunCore


def uses_slots(core: RunCore) -> bool:
    """Slots pay off when a run's attempts call OpenCode through its server here (a Ray
    cluster's workers run their attempts their own way)."""
    config = core.config
    return (
        config.opencode.server
        and config.cluster.engine == "local"
        and any(
            split_tier(config.tier_for(role))[0] == "opencode"
            for role in ("executor", "escalation")
        )
    )


class Slot:
    def __init__(self, index: int, worktree: Path) -> None:
        self.index = index
        self.worktree = worktree
        self.holder: str | None = None  # the node whose attempt holds it
        self.branch = ""
        self.base = ""
        self.server: OpenCodeServer | None = None

    @property
    def name(self) -> str:
        return f"slot {self.index}"


class SlotPool:
    """The run's slots; ``acquire`` waits for a free one, and takes one whose server is
    running before one that would have to start its own (seconds of CPU each) — and when
    this process's sessions end faster than a server starts, waits for such a one rather
    than start another (``agent_servers.pick_slot``)."""

    def __init__(self, core: RunCore, count: int) -> None:
        self.core = core
        self.slots = [Slot(k, jobs.slot_worktree(core.store, k)) for k in range(count)]
        self._free: list[Slot] = list(self.slots)
        self._freed = asyncio.Condition()
        self._waiting = 0  # attempts in acquire
        self._told_waiting = False  # the notice of work waiting for a warm slot, once a run
        self._warming: asyncio.Task[None] | None = None
        self._starting: list[asyncio.Task[object]] = []
        # Leftovers by working directory count only when younger than the run's slots
        # (a shell the user opened there earlier is not ours).
        self.created_at = time.time()

    def held_by(self, nid: str) -> Slot | None:
        return next((s for s in self.slots if s.holder == nid), None)

    def holder_of(self, folder: str) -> str | None:
        """The node whose attempt holds the slot in ``worktrees/<folder>``, if any."""
        return next((s.holder for s in self.slots if s.worktree.name == folder), None)

    def warm_soon(self, count: int, base: str) -> None:
        """In the background, while the run gets ready: the first ``count`` slots' worktrees
        made (detached at ``base``, clean) and their servers started, so the first wave's
        attempts find them started (and primed) or starting instead of paying it themselves.
        ``count`` is what the first wave takes (min(parallel, ready nodes)): a server for a
        slot nobody takes would only take CPU from the ones that are used (and with
        sessions faster than a start, the servers running already are all it takes).
        Nothing starts
        when the executors' calls do not go through a server (another tier, ``[opencode]
        server = false``)."""
        servers = self.core.ctx.servers
        if count <= 0 or not servers.wanted("executor"):
            return
        if not servers.another_server_pays():
            # Sessions end faster than a server starts: the first wave waits for the
            # servers running already (``director auto``'s) rather than start more.
            running = sum(1 for slot in self.slots if (s := self._server(slot)) and s.alive)
            count = min(count, max(running, 1))
        self._warming = asyncio.ensure_future(self._warm(self.slots[:count], base))

    async def _warm(self, slots: list[Slot], base: str) -> None:
        for slot in slots:
            made_anew = await self.core.io(
                jobs.park_slot_worktree, self.core.store, slot.worktree, base
            )
            server = slot.server or self._new_server(slot)
            if made_anew:
                await server.stop()  # a server of `auto`'s tests stage has the old folder bound
            self._starting.append(self.core.ctx.servers.start_soon(server))

    async def acquire(self, nid: str) -> Slot:
        if self._warming is not None:
            # Not before the warm-up is through with the slots' worktrees (its failure is
            # the attempt's: prepare does the same again).
            await asyncio.gather(asyncio.shield(self._warming), return_exceptions=True)
        async with self._freed:
            self._waiting += 1
            try:
                if not self._told_waiting and self._waits_though_a_slot_is_free():
                    self._told_waiting = True
                    # Otherwise `--parallel 2` with one node running and one pending and
                    # a slot free reads like a bug.
                    self.core.notice(
                        f"node {nid} waits for a slot whose OpenCode server is running: this "
                        "run's sessions end sooner than a server starts, so starting "
                        "another would not finish it sooner",
                        "info",
                        nid,
                    )
                slot = await take_when_picked(self._freed, self._pick)
            finally:
                self._waiting -= 1
            self._free.remove(slot)
        slot.holder = nid
        self.core.siblings.place(nid, slot.worktree.name)
        return slot

    async def release(self, slot: Slot) -> None:
        """Back to the pool: what the attempt left running stopped, the node's branch let
        go. Shielded: a cancelled node must not take its slot with it."""
        await asyncio.shield(self._release(slot))

    async def _release(self, slot: Slot) -> None:
        try:
            await self.clear(slot, since=self.created_at)
            await self.core.io(jobs.release_slot_worktree, self.core.store, slot.worktree)
        finally:
            if slot.holder is not None:
                self.core.siblings.place(slot.holder, None)
            slot.holder = None
            async with self._freed:
                self._free.append(slot)
                self._freed.notify()

    def _pick(self, another_pays: Callable[[], bool] | None = None) -> Slot | None:
        """Warm first (``_coldness``); when the executors' calls go through the slots'
        servers, a slot whose server is still to start is taken only as ``pick_slot``
        says (not while a warm one will come soon enough)."""
        free = sorted(self._free, key=self._coldness)
        if not free or not self.core.ctx.servers.wanted("executor"):
            return free[0] if free else None
        return pick_slot(
            free,
            self._server,
            busy=len(self.slots) - len(self._free),
            waiting=self._waiting,
            another_pays=another_pays or self.core.ctx.servers.another_server_pays,
        )

    def _waits_though_a_slot_is_free(self) -> bool:
        """Whether ``_pick`` turns down a free slot only because sessions end sooner than
        a server starts (it would take it if one more server paid)."""
        return self._pick() is None and self._pick(lambda: True) is not None

    def _server(self, slot: Slot) -> OpenCodeServer | None:
        """Its server: its own, or the one ``director auto``'s test authors left there."""
        if slot.server is not None:
            return slot.server
        served = self.core.ctx.servers.get(slot.worktree)
        return served.server if served is not None else None

    @staticmethod
    def _coldness(slot: Slot) -> tuple[int, int]:
        """Warm first: a slot whose server runs, then one whose server was started (it
        restarts), then one never used; lowest index among equals."""
        server = slot.server
        return (0 if server is not None and server.alive else 1 if server else 2, slot.index)

    async def prepare(self, slot: Slot, branch: str, base: str) -> None:
        """The slot's worktree on ``branch`` at ``base``, clean, nothing running in it."""
        slot.branch, slot.base = branch, base
        await self.clear(slot, since=self.created_at)
        made_anew = await self.core.io(
            jobs.point_slot_worktree, self.core.store, slot.worktree, branch, base
        )
        if made_anew and slot.server is not None:
            # A sandboxed server has the old folder bound: it starts again on the new one.
            await slot.server.stop()

    async def clear(self, slot: Slot, *, since: float) -> list[str]:
        """Stop what agent calls left running in the slot: every process below its server
        but the server's own, and whatever works in its worktree (started after
        ``since``), never the server."""
        return await self.core.ctx.servers.clear(slot.worktree, since=since)

    async def provider(self, slot: Slot, tier: str) -> AgentProvider | None:
        """The slot's server for an OpenCode tier (started now when it is not running);
        None: the tier's own per-call provider."""
        if split_tier(tier)[0] != "opencode" or not self.core.config.opencode.server:
            return None
        server = slot.server or self._new_server(slot)
        try:
            await server.ensure_running()
        except ServerStartError:
            pass  # the provider tries again and its call says why it failed (not charged)

        async def reset(_call: AgentCall) -> None:
            # The server died under the call: the call runs again from a clean tree.
            if slot.branch:
                await self.prepare(slot, slot.branch, slot.base)

        return OpenCodeServerProvider(server, before_retry=reset)

    def _new_server(self, slot: Slot) -> OpenCodeServer:
        """The slot's server: the one the planning pass's test authors used in this slot's
        worktree when it runs in this process (``director auto``), else a new one."""
        slot.server = self.core.ctx.servers.server(
            slot.worktree,
            writable=True,
            roles=SLOT_ROLES,
            name=f"opencode-server-slot-{slot.index}",
        )
        slot.server.on_start = lambda started: self.core.notice(
            f"{slot.name}: OpenCode server started (pid {started.pid}, start "
            f"{started.starts}) in {slot.worktree.name}",
            "info",
            slot.holder,
        )
        return slot.server

    async def stop(self, *, remove_worktrees: bool = False) -> None:
        """When the run's nodes are through (and again as the run ends, a no-op then):
        servers and whatever runs below them stopped; the slot worktrees removed when
        ``remove_worktrees`` (every node merged: its work is on the job branch), else
        kept, like a failed node's own worktree, for a look at what its last attempt
        left. Its own threads: the run's pool may be shut down already."""
        # A warm-up's start still to come would start a server after its stop.
        for task in [*filter(None, [self._warming]), *self._starting]:
            task.cancel()
        await asyncio.gather(
            *filter(None, [self._warming]), *self._starting, return_exceptions=True
        )
        self._warming, self._starting = None, []
        await asyncio.gather(*(self._stop_slot(s, remove_worktrees) for s in self.slots))

    async def _stop_slot(self, slot: Slot, remove_worktree: bool) -> None:
        slot.server = None
        await self.core.ctx.servers.stop(slot.worktree)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(kill_orphans, [slot.worktree], started_after=self.created_at)
        if remove_worktree and slot.worktree.exists():
            with contextlib.suppress(Exception):
                await asyncio.to_thread(jobs.remove_node_worktree, self.core.store, slot.worktree)

    def servers_started(self) -> int:
        return sum(slot.server.starts for slot in self.slots if slot.server is not None)
