"""Node attempts as Ray tasks: the one module that imports Ray (an import-linter
contract keeps it so); imported only when ``[cluster] engine = "ray"``.

Per run, a ``RaySession`` joins the cluster (or starts a Ray here) and places two small
actors on the head's own node: ``_RepoServer`` (packs of the job's commits, for the
workers' caches) and ``_Channel`` (the workers' progress, which the head polls into its
event bus). Each attempt is the task ``director-attempt:<node>:<attempt>``
(``_attempt_task``), whose reply the head re-checks (``verify.adopt``) before the merge
queue sees it. A worker lost mid-attempt (its node died, its process crashed) is not the
attempt's fault: the same attempt is submitted again, uncharged; a cancel or a timeout
force-cancels the task and reaps the agent's processes on that worker (``_reap_task``)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from director_tui.engine.agents.base import AgentResult, ExitReason
from director_tui.engine.cluster import packs, verify, worker
from director_tui.engine.cluster.status import WorkerNode
from director_tui.engine.cluster.wire import AttemptTicket, Progress, ProgressKind, WorkerReply
from director_tui.engine.config import Cluster
from director_tui.engine.cost import CostRecord, director_cli_fields
from director_tui.engine.errors import UsageError
from director_tui.engine.events import AgentStarted, ClusterStatus, parse_event
from director_tui.engine.run.core import RunCore
from director_tui.engine.run.executor import (
    AttemptReport,
    AttemptSink,
    AttemptSpec,
    LocalAttemptExecutor,
)
from director_tui.engine.run.windows import WatchedWindows
from director_tui.engine.store import append_jsonl

MAX_RESUBMITS = 3  # executions of one attempt lost with their worker before giving up
POLL_SECS = 0.1  # how often the head drains the workers' progress
FLUSH_SECS = 0.1  # how often a worker sends it
STATUS_SECS = 2.0  # how often the cluster line is refreshed
WORK_ROOT_ENV = "DIRECTOR_WORKER_DIR"  # where a worker keeps caches and clones


# -- on the head's node -------------------------------------------------------------------
@ray.remote(num_cpus=0)
class _Channel:
    """Progress messages from the workers, until the head drains them."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def push(self, items: list[dict[str, Any]]) -> None:
        self.items.extend(items)

    def drain(self) -> list[dict[str, Any]]:
        out, self.items = self.items, []
        return out


@ray.remote(num_cpus=0)
class _RepoServer:
    """Packs of the job's commits out of the head's repository."""

    def __init__(self, repo: str) -> None:
        self.repo = Path(repo)

    def pack(self, commit: str, haves: list[str]) -> bytes:
        return packs.make_pack(self.repo, commit, haves)


# -- on a worker --------------------------------------------------------------------------
class _Outbox:
    """Progress batched and pushed in order, every ``FLUSH_SECS`` and at the end."""

    def __init__(self, channel: Any, token: str) -> None:
        self.channel, self.token = channel, token
        self.items: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="director-outbox", daemon=True)
        self.thread.start()

    def push(self, kind: ProgressKind, data: dict[str, Any]) -> None:
        with self.lock:
            self.items.append(Progress(token=self.token, kind=kind, data=data).model_dump())
        if kind == "placed":
            # Where the attempt runs is what a cancel needs to reap it: sent at once, not
            # with the next batch — a force-cancel kills this process, batch and all, and
            # the attempt's folder was then left on the worker for good.
            self.flush()

    def flush(self) -> None:
        with self.lock:
            batch, self.items = self.items, []
        if batch:
            ray.get(self.channel.push.remote(batch))

    def _loop(self) -> None:
        while not self.stop.wait(FLUSH_SECS):
            self.flush()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.flush()


def work_root() -> Path:
    return Path(os.environ.get(WORK_ROOT_ENV) or Path(tempfile.gettempdir()) / "director-worker")


@ray.remote(max_retries=0)
def _attempt_task(ticket_json: str, channel: Any, repo_server: Any) -> tuple[str, bytes]:
    ticket = AttemptTicket.model_validate_json(ticket_json)
    outbox = _Outbox(channel, ticket.token)
    node_id = ray.get_runtime_context().get_node_id()
    name = f"{socket.gethostname()}/{node_id[:8]}"  # as cluster_nodes names it
    outbox.push("placed", {"node_id": node_id})

    def fetch(commit: str, haves: list[str]) -> bytes:
        data: bytes = ray.get(repo_server.pack.remote(commit, haves))
        return data

    try:
        reply, pack = asyncio.run(worker.run_ticket(ticket, work_root(), fetch, outbox.push, name))
    finally:
        outbox.close()
    return reply.model_dump_json(), pack


@ray.remote(num_cpus=0, max_retries=0)
def _reap_task(path: str) -> list[str]:
    return worker.reap(Path(path))


# -- the head -----------------------------------------------------------------------------
class _Listener:
    """One execution's progress applied on the head, as a local attempt's would be."""

    def __init__(self, core: RunCore, sink: AttemptSink) -> None:
        self.core, self.sink = core, sink
        self.worker = ""
        self.node_id = ""
        self.attempt_dir = ""

    @property
    def placed(self) -> bool:
        """Where it runs is known: the node and the folder (a reap can go there)."""
        return bool(self.node_id and self.attempt_dir)

    def apply(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "placed":
            self.node_id = data.get("node_id", self.node_id)
            self.worker = data.get("worker", self.worker)
            self.attempt_dir = data.get("attempt_dir", self.attempt_dir)
        elif kind == "event":
            event = parse_event(data)
            if event is None:
                return
            if isinstance(event, AgentStarted):
                event.worker = self.worker
            self.core.ctx.bus.emit(event)
        elif kind == "call_finished":
            result = AgentResult.model_validate(data["result"])
            entry = CostRecord.model_validate(data["entry"])
            # The head's ledger is the one costs.jsonl: the worker's stays there.
            append_jsonl(
                self.core.store.costs, entry.model_dump(mode="json") | director_cli_fields(entry)
            )
            self.sink.call_finished(str(data["role"]), result, entry)
        elif kind == "gating":
            self.sink.gating()
        elif kind == "test_line":
            self.sink.test_line(str(data["line"]))
        elif kind == "notice":
            self.sink.notice(str(data["message"]))


class RaySession:
    """Ray joined for one run: the actors on the head's node, the progress poller, the
    attempts in flight."""

    def __init__(self, cluster: Cluster, core: RunCore) -> None:
        self.cluster, self.core = cluster, core
        self.started_ray = False
        if not ray.is_initialized():
            address = cluster.address or os.environ.get("RAY_ADDRESS") or None
            if address and address.startswith("ray://"):
                raise UsageError(
                    f"{address}: a Ray client address; director's head must be a node of the "
                    "cluster (it serves the job's commits from this repository)",
                    hint="`ray start --address=<head>:6379` here, then use that address "
                    "(docs/cluster.md)",
                )
            try:
                # No address: a Ray of the run's own ("local"). Ray's address-less init
                # joins the latest cluster started on this machine instead (its address
                # is in /tmp/ray/ray_current_cluster): anyone's `ray start`, another
                # run's, a test's — whose workers then ran this run's attempts.
                ray.init(address=address or "local", log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise UsageError(
                    f"cannot join the Ray cluster at {address!r}: {exc}"
                    if address
                    else f"cannot start a Ray on this machine for the run: {exc}",
                    hint="check [cluster] address / RAY_ADDRESS / --address, or "
                    "`ray status` on the head (docs/cluster.md)",
                ) from exc
            self.started_ray = True
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        self.channel = _Channel.options(scheduling_strategy=here).remote()  # type: ignore[attr-defined]
        self.repo_server = _RepoServer.options(scheduling_strategy=here).remote(  # type: ignore[attr-defined]
            str(core.store.repo)
        )
        self.listeners: dict[str, _Listener] = {}
        self.unplaced: dict[str, _Listener] = {}  # stopped before their place was known
        self.slots = asyncio.Semaphore(cluster.max_in_flight)
        self.in_flight: dict[str, str] = {}  # token → attempt id
        self.reaps: list[Any] = []
        self.pending_drains: set[concurrent.futures.Future[Any]] = set()  # see drain()
        self.poller: asyncio.Task[None] | None = None
        self.last_status: tuple[int, int] | None = None
        self.status_at = 0.0
        # The head's own time on attempts, by phase (submit, receive, verify): bench/cluster.py.
        self.overhead: dict[str, float] = {"submit": 0.0, "receive": 0.0, "verify": 0.0}

    def ensure_poller(self) -> None:
        if self.poller is None or self.poller.done():
            self.poller = asyncio.get_running_loop().create_task(self._poll())

    async def drain(self) -> None:
        # The channel hands its items over once: a drain cancelled while they travel (the
        # poller, as the run ends) must not lose them — a stopped attempt's "placed" is
        # how its folder gets reaped. Its answer is shielded and, until applied, kept for close().
        future = self.channel.drain.remote().future()
        self.pending_drains.add(future)
        try:
            items: list[dict[str, Any]] = await asyncio.shield(asyncio.wrap_future(future))
        except asyncio.CancelledError:
            raise  # still pending: close() applies its items
        except BaseException:
            self.pending_drains.discard(future)  # failed: nothing to apply, ever
            raise
        self.pending_drains.discard(future)
        self._apply(items)

    def _apply(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            listener = self.listeners.get(item["token"])
            if listener is not None:  # else: an execution the head gave up on
                listener.apply(item["kind"], item["data"])
            elif item["kind"] == "placed" and item["token"] in self.unplaced:
                # One the head stopped before it knew where it ran (its node and its
                # folder come in two "placed"): reaped there once both are known.
                stopped = self.unplaced[item["token"]]
                stopped.apply("placed", item["data"])
                if stopped.placed:
                    del self.unplaced[item["token"]]
                    self.reap(stopped)

    async def _poll(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.drain()
                await self._status()
            await asyncio.sleep(POLL_SECS)

    async def _status(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.status_at < STATUS_SECS:
            return
        self.status_at = now
        nodes = await asyncio.to_thread(alive_nodes)
        key = (len(nodes), len(self.in_flight))
        if key == self.last_status and not force:
            return
        self.last_status = key
        cpus = sum(n["Resources"].get("CPU", 0.0) for n in nodes)
        self.core.ctx.bus.emit(
            ClusterStatus(workers=len(nodes), cpus=cpus, in_flight=len(self.in_flight))
        )

    def reap(self, listener: _Listener) -> None:
        if not listener.placed:
            return
        there = NodeAffinitySchedulingStrategy(listener.node_id, soft=False)
        self.reaps.append(
            _reap_task.options(scheduling_strategy=there).remote(listener.attempt_dir)
        )

    def close(self) -> None:
        if self.poller is not None:
            self.poller.cancel()
        for future in list(self.pending_drains):  # drains cut short: their items count
            with contextlib.suppress(Exception):
                self._apply(future.result(timeout=10))
        self.pending_drains.clear()
        if self.unplaced:
            with contextlib.suppress(Exception):
                self._apply(ray.get(self.channel.drain.remote(), timeout=10))
        with contextlib.suppress(Exception):
            ray.get(self.reaps, timeout=30)
        for actor in (self.channel, self.repo_server):
            with contextlib.suppress(Exception):
                ray.kill(actor)
        if self.started_ray:
            ray.shutdown()


def alive_nodes() -> list[dict[str, Any]]:
    return [n for n in ray.nodes() if n.get("Alive")]


def cluster_nodes(address: str) -> tuple[str, list[WorkerNode]]:
    """(the address joined, the cluster's nodes): joins as a driver for the question."""
    where = address or os.environ.get("RAY_ADDRESS") or "auto"
    joined_here = not ray.is_initialized()
    if joined_here:
        try:
            ray.init(address=where, log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UsageError(
                f"no Ray cluster to ask at {where!r}: {exc}",
                hint="start one (`ray start --head`), or name it: [cluster] address, "
                "RAY_ADDRESS or --address",
            ) from exc
    try:
        nodes = [
            WorkerNode(
                name=f"{n.get('NodeManagerHostname', '?')}/{n['NodeID'][:8]}",
                alive=bool(n.get("Alive")),
                resources={
                    k: float(v)
                    for k, v in n.get("Resources", {}).items()
                    if not k.startswith("node:")
                },
            )
            for n in ray.nodes()
        ]
    finally:
        if joined_here:
            ray.shutdown()
    return where, nodes


class _Lost(Exception):
    """The execution's worker was lost (not the attempt's fault)."""


class RayAttemptExecutor:
    """``AttemptExecutor`` on a Ray cluster; a re-gate after a rebase runs here."""

    def __init__(self, core: RunCore, windows: WatchedWindows, session: RaySession) -> None:
        self.core, self.windows, self.session = core, windows, session
        self.local = LocalAttemptExecutor(core, windows)
        self.script = _script_text(core)

    async def run(self, spec: AttemptSpec, sink: AttemptSink) -> AttemptReport:
        session = self.session
        session.ensure_poller()
        async with session.slots:
            for lost in range(MAX_RESUBMITS + 1):
                ticket = AttemptTicket(
                    token=uuid.uuid4().hex,
                    spec=spec,
                    config=self.core.config,
                    script=self.script,
                )
                try:
                    reply, pack = await self._execute(ticket, sink)
                except _Lost as exc:
                    sink.notice(
                        f"node {spec.node.id}: its worker was lost mid-attempt ({exc}); "
                        + ("submitted again (not counted)" if lost < MAX_RESUBMITS else "giving up")
                    )
                    continue
                if isinstance(reply, AttemptReport):
                    return reply
                began = time.monotonic()
                report = await verify.adopt(
                    self.core,
                    self.windows,
                    spec,
                    reply,
                    pack,
                    sink,
                    verify_tests=self.session.cluster.verify_tests,
                )
                session.overhead["verify"] += time.monotonic() - began
                return report
        return AttemptReport(
            exit_reason=ExitReason.crashed,
            harness_error=True,
            message=f"the attempt's worker was lost {MAX_RESUBMITS + 1} times",
        )

    async def regate(self, spec: AttemptSpec, sink: AttemptSink) -> AttemptReport:
        # The rebased commit is in the head's node worktree already: its gate runs here.
        return await self.local.regate(spec, sink)

    def _deadline(self, spec: AttemptSpec) -> float:
        limits = self.core.config.limits
        gate = spec.limits.gate_timeout_secs * (spec.limits.flake_runs + 1)
        return limits.node_timeout_secs + gate + 120.0

    async def _execute(
        self, ticket: AttemptTicket, sink: AttemptSink
    ) -> tuple[WorkerReply | AttemptReport, bytes]:
        session, spec = self.session, ticket.spec
        began = time.monotonic()
        resources = self.session.cluster.resources_for(spec.usage_role)
        cpus = resources.pop("CPU", 1.0)
        listener = _Listener(self.core, sink)
        session.listeners[ticket.token] = listener
        session.in_flight[ticket.token] = ticket.attempt_id
        ref = _attempt_task.options(
            name=ticket.task_name, num_cpus=cpus, resources=resources
        ).remote(ticket.model_dump_json(), session.channel, session.repo_server)
        session.overhead["submit"] += time.monotonic() - began
        try:
            reply_json, pack = await asyncio.wait_for(
                asyncio.wrap_future(ref.future()), timeout=self._deadline(spec)
            )
        except TimeoutError:
            self._stop(ref, listener, ticket.token)
            return AttemptReport(
                exit_reason=ExitReason.timeout,
                message="the attempt's task outlived its deadline on the cluster",
            ), b""
        except asyncio.CancelledError:
            self._stop(ref, listener, ticket.token)
            raise
        except ray.exceptions.RayTaskError as exc:
            # Our code failed on the worker (not the agent): the harness's failure.
            return AttemptReport(
                exit_reason=ExitReason.crashed,
                harness_error=True,
                message=f"the worker failed: {str(exc).strip().splitlines()[-1][:500]}",
            ), b""
        except ray.exceptions.RayError as exc:
            self._stop(ref, listener, ticket.token)
            raise _Lost(type(exc).__name__) from exc
        finally:
            session.in_flight.pop(ticket.token, None)
        began = time.monotonic()
        with contextlib.suppress(Exception):
            await session.drain()  # the last progress before the result
        session.listeners.pop(ticket.token, None)
        reply = WorkerReply.model_validate_json(reply_json)
        if reply.token != ticket.token:
            reply.report.commit = None  # not this execution's: never merged
        session.overhead["receive"] += time.monotonic() - began
        return reply, pack

    def _stop(self, ref: Any, listener: _Listener, token: str) -> None:
        with contextlib.suppress(Exception):
            ray.cancel(ref, force=True)
        self.session.listeners = {
            k: v for k, v in self.session.listeners.items() if v is not listener
        }
        if listener.placed:
            self.session.reap(listener)
        else:
            # Where it runs is not known yet (its "placed" progress is on the way):
            # reaped once the next drain — the poller's or close's — brings it.
            self.session.unplaced[token] = listener


def _script_text(core: RunCore) -> str | None:
    if not core.ctx.scripted:
        return None
    path = Path(core.config.scripted.script)
    path = path if path.is_absolute() else core.store.repo / path
    return path.read_text(encoding="utf-8") if path.is_file() else None


class RayExecutorFactory:
    """Makes the run's ``RayAttemptExecutor`` (``run_job(executor=...)``); ``close``
    ends the session (and the Ray it started)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.session: RaySession | None = None

    def __call__(self, core: RunCore, windows: WatchedWindows) -> RayAttemptExecutor:
        self.session = RaySession(self.cluster, core)
        return RayAttemptExecutor(core, windows, self.session)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
