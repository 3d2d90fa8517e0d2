"""A worker's side of one attempt: rebuild the node's base from the job's commit cache,
run the attempt with the very code a local run uses (``LocalAttemptExecutor`` in a clone
of its own, gate included), and hand back one commit on the base as a pack.

No Ray here: the transport (``fetch_pack``, ``push``) is given by ``ray_backend``.

Per worker machine, ``<work_root>/<job>/cache.git`` holds the job's commits fetched so
far (a commit is fetched once per machine, only the objects the cache lacks);
each execution clones it (``--shared``: no object copied) into
``<work_root>/<job>/attempts/<node>--<attempt>--<token>``, removed afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from director_tui.engine import git, jobs, sandbox_watch, worktree_home
from director_tui.engine.agents.base import AgentResult
from director_tui.engine.cluster import packs
from director_tui.engine.cluster.wire import AttemptTicket, ProgressKind, WorkerReply
from director_tui.engine.context import EngineContext
from director_tui.engine.cost import CostRecord
from director_tui.engine.events import AgentActivity, AgentFinished, AgentStarted, EventBus
from director_tui.engine.models import Plan
from director_tui.engine.proc import kill_orphans
from director_tui.engine.run.core import RunCore
from director_tui.engine.run.executor import LocalAttemptExecutor
from director_tui.engine.run.windows import WatchedWindows
from director_tui.engine.store import Store

FetchPack = Callable[[str, list[str]], bytes]  # (commit, commits the cache has) → pack
Push = Callable[[ProgressKind, dict[str, Any]], None]
CACHE_REF = "refs/director-cache/"
TRANSCRIPT_LIMIT = 4_000_000  # characters of transcript sent back
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def job_dir(work_root: Path, job_id: str) -> Path:
    return work_root / _SAFE.sub("_", job_id)


def attempt_dir(work_root: Path, ticket: AttemptTicket) -> Path:
    spec = ticket.spec
    name = f"{spec.node.id}--{spec.attempt}--{ticket.token[:12]}"
    return job_dir(work_root, spec.job_id) / "attempts" / _SAFE.sub("_", name)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_base(work_root: Path, job_id: str, base: str, fetch_pack: FetchPack) -> Path:
    """The job's commit cache on this machine, holding ``base`` (fetched when missing)."""
    root = job_dir(work_root, job_id)
    cache = root / "cache.git"
    with _locked(root / "cache.lock"):
        if not (cache / "HEAD").is_file():
            root.mkdir(parents=True, exist_ok=True)
            git.git(["init", "-q", "--bare", str(cache)], root)
        if not packs.has_commit(cache, base):
            listed = git.git(["for-each-ref", "--format=%(objectname)", CACHE_REF], cache)
            haves = listed.stdout.split()[-32:]  # the newest few are enough to send less
            packs.apply_pack(cache, fetch_pack(base, haves))
            git.git(["update-ref", CACHE_REF + base, base], cache)
    return cache


REAP_DEADLINE_SECS = 20.0
REAP_SETTLED_SECS = 1.0  # gone this long: the cancelled task is not writing any more


def reap(path: Path) -> list[str]:
    """Kill what still runs in an execution's folder (a cancelled or abandoned attempt's
    agent and tests) and remove the folder."""
    killed: list[str] = []
    # The force-cancelled task's process can still be writing into the folder while it is
    # removed — it dies when Ray gets to it, seconds later on a loaded machine: kill and
    # remove again until the folder has stayed gone for a while.
    deadline = time.monotonic() + REAP_DEADLINE_SECS
    gone_since: float | None = None
    while time.monotonic() < deadline:
        if path.exists() or os.path.lexists(path):
            gone_since = None
            killed += kill_orphans([path], started_after=0.0)
            shutil.rmtree(path, ignore_errors=True)
        elif gone_since is None:
            gone_since = time.monotonic()
        elif time.monotonic() - gone_since >= REAP_SETTLED_SECS:
            break
        time.sleep(0.1)
    return killed


def reap_node(work_root: Path, job_id: str, node_id: str) -> None:
    """Earlier executions of the node on this machine (one the head gave up on, or the
    dead head's): a node has one execution at a time, so they are stale."""
    attempts = job_dir(work_root, job_id) / "attempts"
    for stale in attempts.glob(f"{_SAFE.sub('_', node_id)}--*") if attempts.is_dir() else []:
        reap(stale)


class _Forward:
    """The attempt's progress (``AttemptSink``) and its agent events, to the head."""

    def __init__(self, push: Push) -> None:
        self.push = push

    def __call__(self, event: Any) -> None:  # an event-bus sink
        if isinstance(event, AgentStarted | AgentActivity | AgentFinished):
            self.push("event", event.model_dump(mode="json"))

    def call_finished(self, role: str, result: AgentResult, entry: CostRecord) -> None:
        self.push(
            "call_finished",
            {
                "role": role,
                "result": result.model_dump(mode="json"),
                "entry": entry.model_dump(mode="json"),
            },
        )

    def gating(self) -> None:
        self.push("gating", {})

    def test_line(self, line: str) -> None:
        self.push("test_line", {"line": line})

    def notice(self, message: str) -> None:
        self.push("notice", {"message": message})


async def run_ticket(
    ticket: AttemptTicket, work_root: Path, fetch_pack: FetchPack, push: Push, worker: str
) -> tuple[WorkerReply, bytes]:
    """Execute one attempt here: (the reply, the pack of its commit — empty without one)."""
    spec = ticket.spec
    reap_node(work_root, spec.job_id, spec.node.id)
    here = attempt_dir(work_root, ticket)
    push("placed", {"worker": worker, "attempt_dir": str(here)})
    cache = await asyncio.to_thread(
        ensure_base, work_root, spec.job_id, spec.base_commit, fetch_pack
    )
    try:
        return await _run_in_clone(ticket, cache, here, push, worker)
    finally:
        await asyncio.to_thread(reap, here)


def _clone(cache: Path, here: Path, ticket: AttemptTicket) -> Store:
    spec = ticket.spec
    here.parent.mkdir(parents=True, exist_ok=True)
    git.git(["clone", "-q", "--shared", "--no-checkout", str(cache), str(here)], here.parent)
    for key, value in (("user.name", "director"), ("user.email", "director@localhost")):
        git.git(["config", key, value], here)
    git.git(["checkout", "-q", "--detach", spec.base_commit], here)
    git.git(["branch", "-f", jobs.job_branch(spec.job_id), spec.base_commit], here)
    # The clone is director's own, not a user's checkout: its worktrees live inside it
    # (where director's git and the sandbox know them) and go when `reap` removes it.
    store = Store(here, worktrees=here / ".director" / worktree_home.LEGACY_FOLDER)
    store.ensure()
    if ticket.script is not None:
        (store.root / "script.json").write_text(ticket.script, encoding="utf-8")
    jobs.ensure_job_worktree(store, jobs.job_branch(spec.job_id))
    sandbox_watch.refresh_job_index(jobs.job_worktree(store))
    return store


async def _run_in_clone(
    ticket: AttemptTicket, cache: Path, here: Path, push: Push, worker: str
) -> tuple[WorkerReply, bytes]:
    spec = ticket.spec
    store = await asyncio.to_thread(_clone, cache, here, ticket)
    config = ticket.config
    if ticket.script is not None:
        scripted = config.scripted.model_copy(update={"script": str(store.root / "script.json")})
        config = config.model_copy(update={"scripted": scripted})
    forward = _Forward(push)
    ctx = EngineContext(store=store, config=config, bus=EventBus(store.events, [forward]))
    plan = Plan(
        job_id=spec.job_id,
        job_branch=jobs.job_branch(spec.job_id),
        base_commit=spec.base_commit,
        nodes=[spec.node],
    )
    core = RunCore(ctx, plan, parallel=1, max_attempts=1)
    core.job_head = spec.base_commit
    windows = WatchedWindows(core)
    try:
        report = await LocalAttemptExecutor(core, windows).run(spec, forward)
    finally:
        windows.close_all()
        core.writer.close()
        core.git_pool.shutdown(wait=False)
    transcript = ""
    if report.transcript_path is not None and report.transcript_path.is_file():
        transcript = report.transcript_path.read_text(encoding="utf-8", errors="replace")
        transcript = transcript[-TRANSCRIPT_LIMIT:]
    report.transcript_path = None  # a path on this machine means nothing to the head
    pack = b""
    if report.commit is not None:
        message = f"director: node {spec.node.id} — {spec.node.title}".strip(" —")
        worktree = jobs.node_worktree(store, spec.node.id)
        squashed = await asyncio.to_thread(
            packs.squash_onto, worktree, report.commit, spec.base_commit, message
        )
        pack = await asyncio.to_thread(packs.make_pack, worktree, squashed, [spec.base_commit])
        report.commit = squashed
    return WorkerReply(
        token=ticket.token, worker=worker, report=report, transcript=transcript
    ), pack
