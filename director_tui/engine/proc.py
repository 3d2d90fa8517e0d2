"""Subprocesses in their own process group, under timeouts, killed as a whole tree."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from director_tui.engine.sandbox import SandboxSpec

KILL_GRACE_SECS = 3.0


@dataclass
class CommandResult:
    exit_code: int | None  # None: killed by our timeout
    output: str  # stdout+stderr interleaved, only the last ``tail_lines`` lines
    duration_secs: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def kill_process_group(pgid: int, grace: float = KILL_GRACE_SECS) -> None:
    """TERM the whole group, then KILL whatever is left after ``grace`` seconds."""
    kill_process_groups([pgid], grace)


def kill_process_groups(pgids: Iterable[int], grace: float = KILL_GRACE_SECS) -> None:
    """TERM every group at once, wait once (up to ``grace`` seconds) for them all, then
    KILL the survivors: a hundred groups cost one grace period, not a hundred."""
    alive = list(dict.fromkeys(pgids))
    for pgid in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        alive = [pgid for pgid in alive if _group_alive(pgid)]
        if not alive:
            return
        time.sleep(0.05)
    for pgid in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


async def kill_process_group_async(pgid: int, grace: float = KILL_GRACE_SECS) -> None:
    await in_thread_or_here(kill_process_group, pgid, grace)


async def in_thread_or_here(fn: Callable[..., object], *args: object) -> None:
    """``fn(*args)`` in a worker thread; here, blocking, when the loop is shutting down.
    A kill shielded from Ctrl-C can outlive ``asyncio.run``'s executor, and the agent
    must still be stopped (not a 'Task exception was never retrieved' traceback)."""
    try:
        await asyncio.to_thread(fn, *args)
    except RuntimeError:  # "Executor shutdown has been called"
        fn(*args)


def wait_dead(procs: Iterable[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to ``timeout`` seconds for ``procs`` to be dead; the ones still alive.
    A zombie counts as dead: it runs nothing and holds nothing but its process-table
    entry, and when its parent is gone its reaping is up to init (a container's init may
    never reap it), so ``psutil.wait_procs`` would wait the whole timeout for it."""
    alive = list(procs)
    deadline = time.monotonic() + timeout
    while True:
        alive = [proc for proc in alive if _running(proc)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.02)


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_alive(pgid: int) -> bool:
    return _group_alive(pgid)


async def run_command(
    command: str,
    cwd: Path,
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    tail_lines: int = 400,
    sandbox: SandboxSpec | None = None,
) -> CommandResult:
    """Run a shell command (the repo's own test/lint commands are shell strings), inside
    ``sandbox`` when given (then nothing it starts outlives it)."""
    started = time.monotonic()
    argv = ["/bin/sh", "-c", command]
    if sandbox is not None:
        argv = sandbox.wrap(argv)
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=str(cwd),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    lines: deque[str] = deque(maxlen=tail_lines)

    async def pump() -> None:
        assert proc.stdout is not None
        while True:
            raw = await proc.stdout.readline()
            if not raw:
                break
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            lines.append(line)
            if on_line is not None:
                on_line(line)

    async def pump_and_wait() -> None:
        # A coroutine, not the bare gather: wait_for then cancels a task that awaits the
        # gather, so a cancelled gather's exception is retrieved instead of being logged
        # as "exception was never retrieved" (one traceback per command at Ctrl-C).
        await asyncio.gather(pump(), proc.wait())

    timed_out = False
    try:
        await asyncio.wait_for(pump_and_wait(), timeout=timeout)
    except TimeoutError:
        timed_out = True
        await kill_process_group_async(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            await proc.wait()
        lines.append(f"[director] killed after {timeout:g}s (gate timeout)")
    except asyncio.CancelledError:
        await kill_process_group_async(proc.pid, grace=1.0)
        raise
    finally:
        # A test command may leave daemons behind in its group: take them down too.
        if _group_alive(proc.pid):
            await kill_process_group_async(proc.pid, grace=0.5)
    return CommandResult(
        exit_code=None if timed_out else proc.returncode,
        output="\n".join(lines),
        duration_secs=time.monotonic() - started,
        timed_out=timed_out,
    )


# psutil's process create time is the boot time (whole seconds) plus the start offset.
CREATE_TIME_SLACK_SECS = 1.5


def _process_cwd_under(proc: psutil.Process, roots: list[Path]) -> bool:
    try:
        cwd = Path(proc.cwd())
    except (psutil.Error, OSError):
        return False
    return any(cwd == root or root in cwd.parents for root in roots)


def kill_orphans(
    roots: list[Path], *, started_after: float, spare: Collection[int] = ()
) -> list[str]:
    """Kill process groups left running in ``roots`` by a dead run or a finished agent.

    Only processes created after ``started_after`` (the dead run's or the call's start)
    qualify, so a pid the kernel recycled for something else, or a shell the user opened
    in a worktree earlier, is left alone. ``spare`` names processes that must live on (a
    slot's agent server, which works in that worktree too): they are never killed, and a
    leftover in one of their process groups is killed alone, not with its group."""
    if not roots:
        return []
    resolved = [r.resolve() for r in roots if r.exists()]
    me = os.getpid()
    protected_groups = {os.getpgrp(), *(_pgid(pid) for pid in spare)}
    killed: list[str] = []
    groups: dict[int, str] = {}  # killed together below, with one grace period
    for proc in _created_since(started_after):
        try:
            if proc.pid == me or proc.pid in spare or proc.info["create_time"] < started_after:
                continue
            if not _process_cwd_under(proc, resolved):
                continue
            pgid = os.getpgid(proc.pid)
        except (psutil.Error, OSError):
            continue
        if pgid in protected_groups:
            with contextlib.suppress(psutil.Error):
                proc.kill()
            killed.append(f"pid {proc.pid} ({proc.info['name']})")
        elif pgid not in groups:
            groups[pgid] = f"process group {pgid} ({proc.info['name']})"
    kill_process_groups(groups, grace=1.0)
    return killed + list(groups.values())


# How much earlier than psutil's create time the /proc prefilter may place a process:
# it must only ever let more through, psutil's own create time decides.
_PREFILTER_SLACK_SECS = 2.0


def _created_since(started_after: float) -> Iterable[psutil.Process]:
    """The processes created after ``started_after`` (``proc.info``: pid, create_time,
    name), as ``psutil.process_iter`` gives them. On Linux the few that qualify are
    first picked from ``/proc/<pid>/stat`` directly: psutil makes an object and parses a
    file per process on the machine, ~8 ms per call on a busy one, twice per node attempt
    (bench/overhead.py); this reads the one field for a third of that."""
    try:
        names = os.listdir("/proc")
        boot, ticks = psutil.boot_time(), os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, psutil.Error):
        yield from psutil.process_iter(["pid", "create_time", "name"])
        return
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
            # The command name is in parentheses and may hold spaces and ')': fields
            # count from the last one. starttime is field 22 (the 20th after it).
            starttime = int(stat[stat.rindex(b")") + 2 :].split()[19])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not readable: psutil could not read it either
        if boot + starttime / ticks < started_after - _PREFILTER_SLACK_SECS:
            continue
        try:
            proc = psutil.Process(int(name))
            proc.info = proc.as_dict(["pid", "create_time", "name"])
        except psutil.Error:
            continue
        yield proc


def kill_marked(
    key: str, value: str, *, started_after: float, spare: Collection[int] = (), grace: float = 1.0
) -> list[str]:
    """Kill every process whose environment holds ``key=value`` (a marker only one
    server's processes carry), but those in ``spare``: what that server's tools left
    running after leaving both its process tree and its worktree (``setsid``, ``cd /``),
    found by what they inherited. One TERM each, one grace period, then KILL."""
    me = os.getpid()
    victims: list[psutil.Process] = []
    for proc in _created_since(started_after):
        if proc.pid == me or proc.pid in spare or proc.info["create_time"] < started_after:
            continue
        with contextlib.suppress(psutil.Error):
            if proc.environ().get(key) == value:
                victims.append(proc)
    return terminate_then_kill(victims, grace)


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except OSError:
        return -1


def process_tree(pid: int) -> list[int]:
    """``pid`` and every live process below it (empty when it is gone; zombies, dead
    already, are left out)."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    alive = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child.pid)
    return [pid, *alive]


def kill_below(pid: int, spare: Collection[int], grace: float = 1.0) -> list[str]:
    """Kill every process below ``pid`` except those in ``spare`` (and ``pid`` itself):
    what an agent server's tools left running under it. A daemon re-parented to the
    init of the server's own PID namespace (a sandbox's) is still below it, so
    ``nohup sleep 600 &`` is found here. One TERM each, one grace period, then KILL."""
    try:
        victims = [
            child
            for child in psutil.Process(pid).children(recursive=True)
            if child.pid not in spare
        ]
    except psutil.Error:
        return []
    return terminate_then_kill(victims, grace)


def terminate_then_kill(victims: list[psutil.Process], grace: float) -> list[str]:
    """One TERM each, one shared grace period, then KILL for what still runs; the names
    of the processes it was sent to."""
    names: list[str] = []
    for proc in victims:
        with contextlib.suppress(psutil.Error):
            names.append(f"pid {proc.pid} ({proc.name()})")
            proc.terminate()
    _, alive = psutil.wait_procs(victims, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return names
