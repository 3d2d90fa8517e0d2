"""The persistent OpenCode servers of one director process, one per worktree it serves.

Why one per worktree: a server's tools can write wherever the server can, so a server
(in the OS sandbox, when it is on) is started with only the worktree it serves writable —
or nothing writable, for the planning roles that only read (explorer, brainstorm,
planner, critic in the job worktree). A server serves exactly one directory for its whole
life, and boots that directory's instance as it starts (``OpenCodeServer.prime``), so
even its first session is warm (bench/sessions.py).

Who uses them: the planning pass (the read-only planner calls in the job worktree; the
test authors in the slot worktrees ``jobs.slot_worktree``) and the run (its slots, the
same slot worktrees). Both ask this registry, so ``director auto`` — plan and run in one
process — hands each slot's server from the test authors to the run's attempts instead of
starting it again. Servers stop when the outermost ``session()`` ends (a planning pass
alone, or ``auto`` around both), when their owner stops them, and with director itself
(PDEATHSIG, bwrap's ``--die-with-parent``).

``EngineContext.call_agent`` picks a server here by the call's directory: an OpenCode
tier, ``[opencode] server`` on, a server registered for that directory, and a role that
may run there (a writer role never runs on a read-only server)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from director_tui.engine.agents.base import AgentCall, AgentProvider
from director_tui.engine.agents.collect import agent_env, find_binary
from director_tui.engine.agents.opencode import (
    BINARY_ENV,
    OpenCodeProvider,
    role_agent_definition,
)
from director_tui.engine.agents.opencode import agent_name as opencode_agent_name
from director_tui.engine.agents.opencode_server import OpenCodeServer
from director_tui.engine.agents.opencode_session import OpenCodeServerProvider
from director_tui.engine.config import split_tier
from director_tui.engine.control_channel import agent_marker
from director_tui.engine.proc import kill_below, kill_marked, kill_orphans
from director_tui.engine.prompts import READ_ONLY_ROLES, normalize_role
from director_tui.engine.sandbox import tool_folders

if TYPE_CHECKING:
    from director_tui.engine.context import EngineContext

# The roles a slot's server serves from its start (test authors at plan time, then the
# run's attempts and reviews): one inline config for both, so handing a slot's server
# from planning to the run (``director auto``) never restarts it for a new agent.
SLOT_ROLES = ("test_author", "executor", "escalation", "reviewer", "explorer")
# The planning roles that only read, served in the job worktree by a read-only server.
READER_ROLES = ("explorer", "brainstorm", "planner", "critic")
# In a server's environment, so in every process its tools start: a value of its own, by
# which clearing finds what they left running outside both the server's process tree
# and its worktree (without the sandbox's PID namespace, a `setsid` daemon that `cd /`).
SERVER_ENV = "DIRECTOR_AGENT_SERVER"

BeforeRetry = Callable[[AgentCall], Awaitable[None]]
SlotT = TypeVar("SlotT")
# How often work waiting for a slot looks again whether a server has got ready (a start
# ending notifies nobody).
PICK_POLL_SECS = 0.05


@dataclass
class Served:
    server: OpenCodeServer
    writable: bool
    before_retry: BeforeRetry | None = None  # what puts its directory back after a lost call
    marker: str = ""  # SERVER_ENV's value in its processes' environment
    made_at: float = 0.0  # nothing older is a leftover of its tools (with a margin: below)

    @property
    def since(self) -> float:
        # A process's start time is read from boot-time ticks, which can drift from the
        # wall clock by a little: only reading older processes' environments is saved.
        return self.made_at - 60


def _key(worktree: Path) -> str:
    return os.path.abspath(worktree)


def pick_slot(
    free: Sequence[SlotT],
    server_of: Callable[[SlotT], OpenCodeServer | None],
    *,
    busy: int,
    waiting: int,
    another_pays: Callable[[], bool],
) -> SlotT | None:
    """Of the ``free`` slots (in order of preference), the one to take now, or None to
    wait: one whose server is ready; else, while a server is starting or a slot is busy,
    none — unless more work waits (``waiting``) than servers are starting and one more
    server pays (``AgentServers.another_server_pays``) — and otherwise one whose server
    is still to start."""
    starting: list[SlotT] = []
    cold: list[SlotT] = []
    for slot in free:
        server = server_of(slot)
        if server is not None and server.ready:
            return slot
        (starting if server is not None and server.settling else cold).append(slot)
    if not cold:
        return None
    if not starting and not busy:
        return cold[0]  # nothing else will come
    if waiting > len(starting) and another_pays():
        return cold[0]
    return None


async def take_when_picked(freed: asyncio.Condition, pick: Callable[[], SlotT | None]) -> SlotT:
    """With ``freed`` held: the slot ``pick`` names, as soon as it names one — asked again
    when a slot is freed (``freed`` notified) and every ``PICK_POLL_SECS``, since a server
    getting ready notifies nobody."""
    while (slot := pick()) is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(freed.wait(), PICK_POLL_SECS)
    return slot


class AgentServers:
    """The process's OpenCode servers by the directory each serves."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self._served: dict[str, Served] = {}
        self._depth = 0
        self._starting: set[asyncio.Task[object]] = set()
        self._preparing: list[asyncio.Task[None]] = []
        # Set by prepared(): what prepare_soon runs stops waiting for news (first_session)
        # and decides with what it knows, since its worktrees are wanted now.
        self._wanted_now = False

    @property
    def enabled(self) -> bool:
        return self.ctx.config.opencode.server

    def wanted(self, role: str) -> bool:
        """Whether ``role``'s calls would go through a server (an OpenCode tier, servers on)."""
        return self.enabled and split_tier(self.ctx.config.tier_for(role))[0] == "opencode"

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AgentServers]:
        """Servers registered inside live until the outermost session ends."""
        self._depth += 1
        try:
            yield self
        finally:
            self._depth -= 1
            if self._depth == 0:
                await asyncio.shield(self.stop_all())

    def get(self, worktree: Path) -> Served | None:
        return self._served.get(_key(worktree))

    def server(
        self,
        worktree: Path,
        *,
        writable: bool,
        roles: Iterable[str],
        name: str,
        before_retry: BeforeRetry | None = None,
    ) -> OpenCodeServer:
        """The server of ``worktree`` (made now, not started, when there is none or the one
        there has other write rights)."""
        served = self.get(worktree)
        if served is not None and served.writable == writable:
            served.before_retry = before_retry
            return served.server
        config = self.ctx.config
        marker = f"{os.getpid()}-{secrets.token_hex(8)}"
        agents = {
            opencode_agent_name(role): role_agent_definition(role, config.sampling_for(role))
            for role in roles
        }
        server = OpenCodeServer(
            find_binary(BINARY_ENV, "opencode") or "opencode",
            agents=agents,
            log_dir=self.ctx.store.logs,
            name=name,
            wrap_argv=self._sandboxed(worktree, writable) if self.ctx.sandbox.enabled else None,
            # Its tools' processes carry an attempt's marker: the control channel refuses
            # requests from them like from any agent's.
            extra_env={**agent_marker(name, None), SERVER_ENV: marker},
            directory=Path(_key(worktree)),  # primed at each start: its first call is warm
        )
        self._served[_key(worktree)] = Served(
            server, writable, before_retry, marker=marker, made_at=time.time()
        )
        return server

    def start_soon(self, server: OpenCodeServer) -> asyncio.Task[object]:
        """Start ``server`` in the background (it overlaps whatever comes before its first
        call); a failed start is left to that call, which says why. The task is returned
        for an owner that stops the server before ``stop_all`` (cancel it first: a start
        that begins after the stop would leave a server nobody stops)."""

        async def start() -> None:
            with contextlib.suppress(Exception):
                await server.ensure_running()

        task: asyncio.Task[object] = asyncio.ensure_future(start())
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)
        return task

    def prepare_soon(self, work: Awaitable[None]) -> None:
        """Run ``work`` (worktrees and servers made ahead of need) in the background;
        ``prepared()`` waits for it before those worktrees are used."""
        self._wanted_now = False
        self._preparing.append(asyncio.ensure_future(work))

    async def prepared(self) -> None:
        """Whatever ``prepare_soon`` started is done (its failure left to the callers'
        own preparation, which does the same again)."""
        self._wanted_now = True
        tasks, self._preparing = self._preparing, []
        await asyncio.gather(*tasks, return_exceptions=True)

    async def first_session(self, server: OpenCodeServer) -> None:
        """Until ``server`` has ended a session (so ``another_server_pays`` knows how
        long one lasts), or what is being prepared is wanted now (``prepared``)."""
        while not server.session_secs and not self._wanted_now:
            await asyncio.sleep(PICK_POLL_SECS)

    def provider(self, role: str, tier: str, cwd: Path) -> AgentProvider | None:
        """The server of ``cwd`` for this call, or None (the tier's per-call driver)."""
        if not self.enabled or split_tier(tier)[0] != "opencode":
            return None
        served = self.get(cwd)
        if served is None or (not served.writable and normalize_role(role) not in READ_ONLY_ROLES):
            return None
        return OpenCodeServerProvider(served.server, before_retry=served.before_retry)

    def another_server_pays(self) -> bool:
        """Whether work that could wait for a busy server should start one more: only when
        two of this process's sessions last longer than one of its servers took to start
        (medians; with nothing measured yet, yes). Work that waits runs after the session
        ahead of it, so a new server ends it sooner when it starts within about that
        session and its own; and a start costs seconds of CPU (~3.5 s on 2 cores) that
        slow every session meanwhile: with a model that answers fast, waiting for a warm
        server ends sooner. (One session, not two, against a start under load left a
        3-node plan at 3 s a turn to one slot: sessions 3.3 s, a start 4.5 s.) And yes
        while a session has been under way for longer than a start."""
        servers = [served.server for served in self._served.values()]
        sessions = [secs for server in servers for secs in server.session_secs]
        starts = [secs for server in servers for secs in server.start_secs]
        if not sessions or not starts:
            return True
        start = statistics.median(starts)
        # A session under way for longer than a start (a hung or a long one) may keep its
        # slot for a long while yet: work waiting behind it is not left to wait for it.
        now = time.monotonic()
        if any(now - began > start for server in servers for began in server.sessions_since):
            return True
        return 2 * statistics.median(sessions) > start

    @property
    def _uncontained(self) -> bool:
        """Whether a server's tools can leave its process tree: without the sandbox's PID
        namespace (which keeps them below it, and ends them with it). Only then is every
        process's environment read for its marker (~10 ms on a busy machine)."""
        return not self.ctx.sandbox.enabled

    def _sandboxed(self, worktree: Path, writable: bool) -> Callable[[list[str]], list[str]]:
        """The server inside the OS sandbox of its worktree: only that worktree (unless
        read-only) and OpenCode's own state folders writable, its .git and the shared git
        directory read-only, home and .director/ hidden, its own PID namespace (where a
        daemon its tools leave stays below it, for ``clear``), gone with director
        (``--die-with-parent``). Asked at every start: the worktree may have been made anew."""

        def wrap(argv: list[str]) -> list[str]:
            spec = self.ctx.sandbox_spec(worktree, writable=writable)
            if spec is None:
                return argv
            env = agent_env()
            folders = OpenCodeProvider().sandbox_writable_dirs(env)
            for folder in folders:
                folder.mkdir(parents=True, exist_ok=True)
            return spec.plus(
                tools=tool_folders(argv[0], env.get("PATH", ""), spec.hide), writable=folders
            ).wrap(argv)

        return wrap

    async def clear(self, worktree: Path, *, since: float) -> list[str]:
        """Stop what agent calls left running for ``worktree``: every process below its
        server but the server's own, whatever works in the worktree (started after
        ``since``), and whatever carries its server's ``SERVER_ENV`` marker — never the
        server."""
        served = self.get(worktree)
        server = served.server if served is not None else None
        # A server started in the background (start_soon) may be starting still: its own
        # processes are known only once it listens, and none starts while clearing.
        async with server.settled() if server is not None else contextlib.nullcontext():
            alive = server is not None and server.alive
            spare = server.machinery if server is not None and alive else frozenset()
            stopped: list[str] = []
            if server is not None and alive and server.pid is not None:
                stopped += await asyncio.to_thread(kill_below, server.pid, spare)
            stopped += await asyncio.to_thread(
                kill_orphans, [worktree], started_after=since, spare=spare
            )
            if served is not None and self._uncontained:
                stopped += await asyncio.to_thread(
                    kill_marked, SERVER_ENV, served.marker, started_after=served.since, spare=spare
                )
        return stopped

    async def stop(self, worktree: Path) -> None:
        """The server of ``worktree`` and whatever runs below it stopped for good (a
        background start still holding it starts nothing), and forgotten."""
        served = self._served.pop(_key(worktree), None)
        if served is None:
            return
        server = served.server
        if server.pid is not None and server.alive:
            spare = server.machinery
            with contextlib.suppress(Exception):
                await asyncio.to_thread(kill_below, server.pid, spare)
        with contextlib.suppress(Exception):
            await server.retire()
        if not self._uncontained:
            return
        with contextlib.suppress(Exception):
            await asyncio.to_thread(
                kill_marked, SERVER_ENV, served.marker, started_after=served.since
            )

    async def stop_all(self) -> None:
        for task in [*self._starting, *self._preparing]:
            task.cancel()
        await self.prepared()
        await asyncio.gather(*(self.stop(Path(key)) for key in list(self._served)))
