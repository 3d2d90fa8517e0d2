"""How a control request reaches a live run, and how the run knows who sent it.

Agents run as the user, so anything the user can do from a shell an agent can do too —
including ``director skip <other node>`` or writing a request file. A request must come
from the user, not from an attempt's processes, so a live run takes requests only through
two doors whose sender it can check:

* **In its own process** (the app's run board, tests): :func:`deliver_local` puts the
  request in a queue the run drains at its next safe point. No agent runs in director's
  own process.
* **Over a unix socket** (``director retry|skip|…`` from another shell, an app attached to
  a headless run): the run listens on an abstract socket named after the repository, and
  for each connection the kernel tells it the sender's pid (``SO_PEERCRED``: set by the
  kernel at ``connect``, not something the sender can forge). The run refuses the request
  when that process, or any of its ancestors, is one the run started (an agent CLI, a
  scripted step, a gate's test command: all are director's descendants), carries an
  attempt's environment marker (``DIRECTOR_AGENT_CALL``), or works inside one of
  director's worktrees.

A request *file* dropped into ``.director/control/`` proves nothing about its writer: the
run refuses every one (with an answer event, so a sender sees why). Nothing of this
version writes such files.

What stays open (same uid, no OS sandbox): a process the agent gets started *outside*
director's process tree — by a server that was already running (``tmux``, ``screen``,
``systemd-run --user``, ``at``, ``ssh localhost``) — with a cleaned environment and a
working directory outside the worktrees looks exactly like the user. ``[sandbox] mode =
"bwrap"`` closes that: the agent cannot reach those servers nor ``.director/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from director_tui.engine.errors import DirectorError
from director_tui.engine.store import Store

# Set in the environment of every process an attempt starts (agent CLIs, scripted steps).
AGENT_CALL_ENV = "DIRECTOR_AGENT_CALL"
AGENT_NODE_ENV = "DIRECTOR_AGENT_NODE"
REPLY_TIMEOUT_SECS = 5.0
MAX_REQUEST_BYTES = 4096
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class NoLiveRun(DirectorError):
    """No run is listening for control requests on this repository."""


@dataclass(frozen=True)
class Delivery:
    """A request as it reached the run: ``refused`` says why it must not be applied,
    ``sender_node`` names the node whose attempt sent it, when known."""

    action: str
    node_id: str | None
    request_id: str
    at: float
    refused: str = ""
    sender_node: str | None = None


# -- the in-process door -----------------------------------------------------------------
_queues: dict[Path, deque[Delivery]] = {}
_live: set[Path] = set()
_guard = threading.Lock()


def _key(store: Store) -> Path:
    return store.root.resolve()


def deliver_local(store: Store, delivery: Delivery) -> None:
    """Queue a request for the run of ``store`` in this process (thread-safe). Queued
    before that run starts, it is applied when it does."""
    with _guard:
        _queues.setdefault(_key(store), deque()).append(delivery)


def take_deliveries(store: Store) -> list[Delivery]:
    with _guard:
        queue = _queues.get(_key(store))
        out = list(queue) if queue else []
        if queue:
            queue.clear()
    return out


def live_here(store: Store) -> bool:
    """Whether a run of ``store`` goes in this process."""
    with _guard:
        return _key(store) in _live


# -- the socket door ---------------------------------------------------------------------
def socket_address(store: Store) -> str:
    """An abstract unix socket (Linux: no file, gone with the process; no 108-byte path
    limit) named after the repository's ``.director/``."""
    digest = hashlib.sha256(str(_key(store)).encode()).hexdigest()[:32]
    return f"\0director-control-{digest}"


def send_over_socket(store: Store, payload: dict[str, object]) -> dict[str, object]:
    """Hand a request to the live run of another process; its reply (``accepted``,
    ``refused``). :class:`NoLiveRun` when nothing listens."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(REPLY_TIMEOUT_SECS)
        try:
            sock.connect(socket_address(store))
        except OSError as exc:
            raise NoLiveRun(f"no run is listening for control requests ({exc.strerror})") from exc
        sock.sendall(json.dumps(payload).encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    try:
        answer = json.loads(reply or b"null")
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise NoLiveRun("the run closed the connection without an answer")
    return answer


Judge = Callable[[int], tuple[str, str | None]]  # pid → (why refused or "", sender node)


class ControlServer:
    """The run's end of the socket: reads one request per connection, judges its
    sender, queues it (refused ones too: the run answers them at its safe point)."""

    def __init__(self, store: Store, judge: Judge) -> None:
        self.store = store
        self.judge = judge
        self._server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> ControlServer:
        with _guard:
            _live.add(_key(self.store))
        with contextlib.suppress(OSError):  # another run's socket: the lock prevents it
            self._server = await asyncio.start_unix_server(
                self._handle, path=socket_address(self.store)
            )
        return self

    async def __aexit__(self, *_exc: object) -> None:
        with _guard:
            _live.discard(_key(self.store))
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            pid, uid, _gid = _PEERCRED.unpack(
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
            )
            line = await asyncio.wait_for(reader.readline(), REPLY_TIMEOUT_SECS)
            answer = self._receive(line[:MAX_REQUEST_BYTES], pid, uid)
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (OSError, TimeoutError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _receive(self, line: bytes, pid: int, uid: int) -> dict[str, object]:
        from director_tui.engine.control import normalise  # (control imports this module)

        data = json.loads(line)
        if not isinstance(data, dict) or not isinstance(data.get("action"), str):
            return {"accepted": False, "refused": "not a control request"}
        action, node_id = normalise(data["action"], data.get("node_id"))
        request_id = str(data.get("request_id") or "")[:32] or os.urandom(6).hex()
        if uid != os.getuid():
            refused, sender_node = f"sent by another user (uid {uid})", None
        else:
            refused, sender_node = self.judge(pid)
        deliver_local(
            self.store,
            Delivery(
                action=action,
                node_id=node_id,
                request_id=request_id,
                at=time.time(),
                refused=refused,
                sender_node=sender_node,
            ),
        )
        return {"accepted": not refused, "request_id": request_id, "refused": refused}


# -- who sent it -------------------------------------------------------------------------
def judge_sender(pid: int, *, engine_pid: int, worktrees: Path) -> tuple[str, str | None]:
    """Why a request from ``pid`` must be refused ("" when it may be applied), and the node
    whose attempt sent it when that can be told. The sender and each of its ancestors
    are checked: a process director started, an attempt's environment marker, a working
    directory inside director's worktrees."""
    if pid == engine_pid:
        return "", None
    try:
        sender = psutil.Process(pid)
        chain = [sender, *sender.parents()]
    except psutil.Error:
        return f"its sender (pid {pid}) was gone before it could be checked", None
    root = worktrees.resolve()
    why, node = "", None
    for proc in chain:
        with contextlib.suppress(psutil.Error):
            env = proc.environ()
            if env.get(AGENT_CALL_ENV):
                node = node or env.get(AGENT_NODE_ENV) or None
                why = why or f"it came from an agent's process (call {env[AGENT_CALL_ENV]})"
        with contextlib.suppress(psutil.Error, OSError):
            cwd = Path(proc.cwd())
            if cwd == root or root in cwd.parents:
                inside = cwd.relative_to(root).parts[0] if cwd != root else ""
                if inside and inside != "_job":
                    node = node or inside
                why = why or f"it came from a process working in director's worktree {inside!r}"
        if proc.pid == engine_pid:
            why = why or "it came from a process the run started (an agent or a test command)"
            break
    if why:
        return f"{why}: control requests must come from you, not from an attempt", node
    return "", None


def agent_marker(call_id: str, node_id: str | None) -> dict[str, str]:
    """The environment marker of an attempt's processes."""
    return {AGENT_CALL_ENV: call_id, AGENT_NODE_ENV: node_id or ""}
