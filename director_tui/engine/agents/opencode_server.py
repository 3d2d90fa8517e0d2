"""One persistent ``opencode serve`` process, for OpenCode calls run as sessions
(``opencode_session.py``) instead of a cold ``opencode run`` each (~3.5 s quiet, 8 s
under load on 2 cores, most of it start-up).

``OpenCodeServer``: 127.0.0.1, a port of its own choosing, a fresh password (HTTP Basic,
user ``opencode``), our role agents in its inline ``OPENCODE_CONFIG_CONTENT`` built by
the same code as the ``opencode run`` driver's. It runs in its own process group with
PDEATHSIG (and inside whatever ``wrap_argv`` puts around it, e.g. a bwrap sandbox with
``--die-with-parent``), so it never outlives director. ``ensure_running()`` health-checks
it and starts it again when it died.

Priming: a server boots each directory's instance lazily, at the first request naming it
— about 2 s of CPU that its first prompt would pay (a later prompt takes 0.1-0.2 s). Each
start (the first and every restart) pays it right after the server listens, without a
model call, for the directory the server serves: ``GET /config/providers`` boots the
instance and its provider state, ``GET /find/file`` (one result) its file watcher and
project refresh — the first prompt needs both, neither alone is enough. The start waits
for the priming (a call would only wait for the same boot inside its prompt); a priming
that fails or is refused is noted (``prime_error``) and the start goes on: the first
prompt pays it then.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from director_tui.engine.agents.collect import agent_env, one_line
from director_tui.engine.agents.first_start import first_start_turn
from director_tui.engine.agents.local_http import LocalHttpError, LocalServer, request
from director_tui.engine.agents.opencode import (
    INSTALL_HINT,
    OpenCodeProvider,
    merged_agents_config,
)
from director_tui.engine.agents.stream import die_with_parent, kill_tree
from director_tui.engine.proc import process_tree

USERNAME = "opencode"
STARTUP_TIMEOUT_SECS = 120.0  # 9-12 s measured under load on 2 cores; a wide margin
PRIME_TIMEOUT_SECS = 60.0  # each priming request: ~1.5 s quiet, several under load
# What boots a directory's instance (providers) and its location services (file
# watcher, project refresh) without a model call; a session alone boots neither.
PRIME_PATHS = ("/config/providers", "/find/file?query=a&limit=1")
_LISTENING = re.compile(r"listening on (http://[^\s]+)")

WrapArgv = Callable[[list[str]], list[str]]


class ServerStartError(Exception):
    """``opencode serve`` did not come up; the message says why (its stderr's tail)."""


class OpenCodeServer:
    """One ``opencode serve`` process and how to reach it."""

    def __init__(
        self,
        binary: str,
        *,
        agents: dict[str, dict[str, Any]],
        log_dir: Path,
        name: str = "opencode-server",
        wrap_argv: WrapArgv | None = None,
        startup_timeout_secs: float = STARTUP_TIMEOUT_SECS,
        extra_env: dict[str, str] | None = None,
        on_start: Callable[[OpenCodeServer], None] | None = None,
        directory: Path | None = None,
        log_level: str = "ERROR",
    ) -> None:
        self.binary = binary
        self.agents = dict(agents)
        self.log_dir = log_dir
        self.name = name
        self.wrap_argv = wrap_argv
        self.startup_timeout_secs = startup_timeout_secs
        self.extra_env = dict(extra_env or {})
        self.on_start = on_start  # told after every start (the first and each restart)
        self.directory = directory  # what it serves: primed at each start (None: nothing)
        self.log_level = log_level
        self.prime_error = ""  # why the last start's priming failed ("" when it did not)
        self.password = secrets.token_urlsafe(24)
        self.endpoint: LocalServer | None = None
        self.starts = 0  # how many times it was started (restarts = starts - 1)
        # How long its starts (listening and primed) and its sessions took: whether one
        # more server is worth starting for work that could wait for this one
        # (``AgentServers.another_server_pays``).
        self.start_secs: list[float] = []
        self.session_secs: list[float] = []
        self.sessions_since: list[float] = []  # when each session under way began (monotonic)
        # The server's own processes as it started listening (its sandbox, a launcher, the
        # server itself): what clearing the leftovers of its agents' tools must spare.
        self.machinery: frozenset[int] = frozenset()
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        # Set by retire(): stopped for good. A start asked for afterwards (a background
        # warm-up still waiting for the lock as director stops) would leave a server
        # nobody stops, so it is refused.
        self.retired = False

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / f"{self.name}.out"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / f"{self.name}.stderr"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def argv(self) -> list[str]:
        argv = [
            self.binary,
            "serve",
            "--hostname",
            "127.0.0.1",
            "--port",
            "0",  # 4096 when free, else one the OS picks: read back from its first line
            "--print-logs",
            "--log-level",
            self.log_level,
        ]
        return self.wrap_argv(argv) if self.wrap_argv else argv

    def env(self) -> dict[str, str]:
        """May raise ``opencode.UserConfigError`` (the user's own variable is broken)."""
        content = merged_agents_config(self.agents, os.environ.get("OPENCODE_CONFIG_CONTENT"))
        return agent_env(
            {
                "OPENCODE_CONFIG_CONTENT": content,
                "OPENCODE_SERVER_PASSWORD": self.password,
                "OPENCODE_SERVER_USERNAME": USERNAME,
                **self.extra_env,
            }
        )

    async def start(self) -> None:
        """Called with the lock held (``ensure_running``)."""
        if self.retired:
            raise ServerStartError(f"the {self.name} server was stopped for good")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = self.env()
        # Servers of parallel slots starting at once in a fresh HOME race on OpenCode's
        # database like first `opencode run`s do: one first start at a time.
        release = await first_start_turn(OpenCodeProvider().state_dir(env) or self.log_dir)
        began = time.monotonic()  # after the turn: what the start itself costs
        try:
            await self._start(env)
        finally:
            release(self.endpoint is not None)
        # After the first-start turn: priming writes no database schema, and slots'
        # servers priming side by side is what starting them early is for.
        await self.prime()
        self.start_secs.append(time.monotonic() - began)

    async def prime(self) -> None:
        """Boot the instance of the directory it serves (see the module's docstring);
        never raises: a failure is kept in ``prime_error`` for the first prompt to pay."""
        self.prime_error = ""
        if self.directory is None or self.endpoint is None:
            return
        directory = quote(str(self.directory), safe="")
        for path in PRIME_PATHS:
            sep = "&" if "?" in path else "?"
            try:
                answer = await request(
                    self.endpoint,
                    "GET",
                    f"{path}{sep}directory={directory}",
                    timeout=PRIME_TIMEOUT_SECS,
                )
            except LocalHttpError as exc:
                self.prime_error = str(exc)
                return
            if answer.status != 200:
                self.prime_error = f"GET {path}: HTTP {answer.status}"
                return

    async def _start(self, env: dict[str, str]) -> None:
        offset = log_size(self.stdout_path)
        # The logs are appended to by every start: a failed start quotes only its own.
        err_offset = log_size(self.stderr_path)
        # Files, not pipes: nobody has to drain them for the server to keep running.
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            try:
                self._proc = await asyncio.create_subprocess_exec(
                    *self.argv(),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=env,
                    start_new_session=True,  # its own group: the whole tree is stopped
                    preexec_fn=die_with_parent,
                )
            except OSError as exc:
                raise ServerStartError(
                    f"cannot start {self.binary} serve: {exc.strerror or exc}. {INSTALL_HINT}"
                ) from exc
        self.starts += 1
        try:
            await self._until_listening(offset, err_offset)
        except BaseException:
            # A start that did not finish — it failed, timed out or was cancelled (Ctrl-C
            # while a server boots) — leaves no process behind, even when nobody calls
            # stop() afterwards: a server in its sandbox's PID namespace outlives
            # director's exit otherwise.
            await asyncio.shield(self._stop())
            raise

    async def _until_listening(self, offset: int, err_offset: int) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout_secs
        while True:
            url = self._listening_url(offset)
            if url:
                self.endpoint = LocalServer(url, USERNAME, self.password)
                self.machinery = frozenset(process_tree(self._proc.pid))
                if self.on_start is not None:
                    self.on_start(self)
                return
            if not self.alive:
                raise ServerStartError(
                    f"opencode serve exited with code {self._proc.returncode} before listening"
                    + self._stderr_note(err_offset)
                )
            if time.monotonic() >= deadline:
                raise ServerStartError(
                    f"opencode serve did not listen within {self.startup_timeout_secs:g}s"
                    + self._stderr_note(err_offset)
                )
            await asyncio.sleep(0.05)

    def _listening_url(self, offset: int) -> str:
        try:
            with self.stdout_path.open("rb") as fh:
                fh.seek(offset)
                text = fh.read(64 * 1024).decode("utf-8", errors="replace")
        except OSError:
            return ""
        match = _LISTENING.search(text)
        return match.group(1) if match else ""

    def _stderr_note(self, since: int) -> str:
        tail = stderr_tail(self.stderr_path, since=since)
        return f": {one_line(tail[-600:], 600)}" if tail else ""

    @property
    def ready(self) -> bool:
        """Listening, primed, and no start or stop under way: a session now is warm."""
        return self.alive and self.endpoint is not None and not self._lock.locked()

    @property
    def settling(self) -> bool:
        """A start (or a stop, or a clearing of its leftovers) is under way."""
        return self._lock.locked()

    async def healthy(self) -> bool:
        if not self.alive or self.endpoint is None:
            return False
        try:
            answer = await request(self.endpoint, "GET", "/global/health", timeout=10)
            return answer.status == 200 and bool(answer.json().get("healthy"))
        except (LocalHttpError, ValueError, AttributeError):
            return False

    async def ensure_running(self) -> bool:
        """Start it when it is not running or does not answer; True when it was (re)started."""
        async with self._lock:
            if await self.healthy():
                return False
            await self._stop()
            await self.start()
            return True

    async def use_agent(self, name: str, definition: dict[str, Any]) -> None:
        """Make sure the server serves ``name`` as ``definition``; an agent it was not
        started with (another role, other sampling) means a restart with it added."""
        if self.agents.get(name) == definition:
            return
        async with self._lock:
            self.agents[name] = definition
            await self._stop()

    async def stop(self) -> None:
        async with self._lock:
            await self._stop()

    async def retire(self) -> None:
        """Stop it for good: every later start is refused (``ServerStartError``)."""
        self.retired = True
        await self.stop()

    @contextlib.asynccontextmanager
    async def settled(self) -> AsyncIterator[None]:
        """Inside, no start (or stop) is under way and none begins: ``machinery`` is the
        running server's, so clearing what its tools left cannot take a server still
        starting (its processes carry the same marker and may work in the same folder)."""
        async with self._lock:
            yield

    async def _stop(self) -> None:
        proc, self._proc, self.endpoint = self._proc, None, None
        if proc is None:
            return
        await kill_tree(proc.pid, 2.0)
        with contextlib.suppress(ProcessLookupError):
            await proc.wait()


def log_size(path: Path) -> int:
    """Where the log ends now: what a call's ``stderr_tail(path, since=...)`` starts at."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def stderr_tail(path: Path, limit: int = 4096, *, since: int = 0) -> str:
    """The log's last ``limit`` bytes, none from before offset ``since``."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(since, fh.tell() - limit))
            return fh.read().decode("utf-8", errors="replace").strip()
    except OSError:
        return ""
