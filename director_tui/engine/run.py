"""The run engine: schedule the approved plan's nodes and carry each one to a merge.

Entry point (the CLI, the TUI and the bench call this)::

    outcome = await run_job(ctx, parallel=None, max_attempts=None)   # -> RunOutcome
    outcome = run_job_blocking(ctx, ...)   # asyncio.run() around it, for a thread worker

``run_job`` installs no signal handlers, so it runs in any thread with its own event
loop. It holds the repository's run lock (``LockHeldError``, exit 4, when another process
has it), refuses a plan that is not approved (``UsageError``, exit 2, naming the next
step), and emits an event for every transition: ``RunStarted``, ``NodeStateChanged``,
``AgentStarted/Finished`` (through ``ctx.call_agent``), ``TestOutput`` while tests run,
``GateResult``, ``ReviewResult``, ``NodeMerged``, ``CostUpdate``, ``IntegrationResult``,
``ControlApplied`` and ``RunFinished``. ``state.json`` is rewritten atomically after each.

Node lifecycle, up to ``parallel`` nodes at once, in dependency order:

1. A worktree ``.director/worktrees/<node>`` on branch ``director/job-<id>--<node>``, cut
   from the job branch's current head (so it sees its dependencies' merged work); every
   attempt starts from a clean tree.
2. The executor gets the spec, the allowlisted files, the tests, the captured failing
   output, the repo's guidance and, on a retry, what rejected the previous attempt.
3. The deterministic gate (``gates.node_gate``), then review (``review``): stage two only
   when the node escalated or touched more than the threshold of files. The executor
   call and the gate's tests form one *watched window* (``sandbox_watch``): a change in
   the user's checkout or the job worktree meanwhile fails the attempt
   (``outside_worktree``), attributed to the executors whose windows were open.
4. Failure → retry up to ``max_attempts``; then once at the escalation tier (an
   escalation is one attempt, automatic or asked for with ``escalate``); then the node
   is ``failed`` (worktree and branch kept), its dependents ``blocked``; others go on.
   An attempt stopped through no fault of its own is not counted (an escalated one is
   owed again).
5. Pass → commit and merge into the job worktree (``.director/worktrees/_job``) one at a
   time; a conflict with work merged meanwhile rebases the node onto the new head and
   re-gates it, and when the rebase itself conflicts the node re-executes on the new head
   (not counted as a failed attempt).
6. After all nodes merged: the ``[gates]`` commands as the integration gate.

Limits: ``[limits] cost_ceiling_usd`` (0 disables it) stops scheduling once the run has
spent that much; ``on_ceiling = "finish"`` lets running calls finish, ``"cancel"`` stops
them; either way the state is resumable with ``director run``.

Crash safety: after ``kill -9`` the next ``run_job`` kills the agent/test processes the
dead run left in its node worktrees (only processes started after that run began, so a
recycled pid or the user's own shell is never touched), resets nodes that were mid-flight
(a node caught mid-merge counts as merged when its branch is already in the job branch),
and reports what it recovered in a warning and in ``state.recovered``. Nodes that failed,
were blocked or cancelled get fresh attempts on a new ``director run``; skipped stay skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

import psutil

from director_tui.engine import control, dag, gates, git, jobs, review, sandbox_watch
from director_tui.engine.agents import require_binaries, run_roles
from director_tui.engine.agents.base import AgentResult, ExitReason, ToolCall
from director_tui.engine.context import EngineContext
from director_tui.engine.cost import CostRecord
from director_tui.engine.errors import DirectorError, GitError, PlanInvalidError, UsageError
from director_tui.engine.events import (
    INTEGRATION_OUTPUT,
    ControlApplied,
    CostUpdate,
    GateResult,
    IntegrationResult,
    NodeMerged,
    NodeStateChanged,
    Notice,
    ReviewResult,
    RunFinished,
    RunStarted,
    TestOutput,
)
from director_tui.engine.guidance import guidance_prompt
from director_tui.engine.metrics import write_run_metrics
from director_tui.engine.models import (
    ACTIVE,
    ControlRecord,
    Node,
    NodeState,
    NodeStatus,
    Plan,
    PlanStage,
    RoleUsage,
    RunState,
    Stage,
)
from director_tui.engine.proc import kill_process_group
from director_tui.engine.store import atomic_write_text

Outcome = Literal["success", "failed", "stopped", "cancelled"]
T = TypeVar("T")
# Statuses a dependency can be in that mean its dependents cannot run.
DEAD_ENDS = frozenset(
    {NodeStatus.failed, NodeStatus.blocked, NodeStatus.skipped, NodeStatus.cancelled}
)
FILE_CHARS = 40_000  # per allowlisted/test file shown to the executor
POLL_SECS = 0.2  # how often the scheduler looks for control requests while waiting
EDIT_TOOLS = frozenset({"write", "edit", "multiedit", "patch", "apply_patch", "str_replace"})
MAX_CONFLICT_RETRIES = 3


@dataclass
class RunOutcome:
    job_id: str
    outcome: Outcome
    message: str = ""
    n_nodes: int = 0
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)
    executor_tier_pct: float = 0.0
    stage_two_trigger_rate: float = 0.0
    escalation_rate: float = 0.0
    integration: str = "pending"
    integration_ok: bool = False
    integration_report: str = ""
    cost_total: float = 0.0
    wall_secs: float = 0.0
    recovered: list[str] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.outcome == "success"

    @property
    def exit_code(self) -> int:
        return 0 if self.success else 1


# -- loading ------------------------------------------------------------------------------
def load_approved_plan(ctx: EngineContext) -> Plan:
    """The plan, if it exists, is approved and is valid; else a UsageError naming the step."""
    store = ctx.store
    stage = store.read_model(store.plan_stage, PlanStage)
    plan = store.read_model(store.plan, Plan)
    if plan is None or stage is None:
        raise UsageError(
            f"no plan to run in {store.repo}", hint='make one with `director plan "<task>"`'
        )
    if stage.stage != Stage.approved:
        where = {
            Stage.gate1: "waiting at Gate 1 (spec)",
            Stage.gate2: "waiting at Gate 2 (DAG + tests)",
        }.get(stage.stage, f"at stage {stage.stage.value!r}")
        raise UsageError(
            f"the plan is not approved yet: it is {where}",
            hint="review it, then `director plan --continue` (or `director tui`) to approve",
        )
    errors = dag.validate(plan)
    if errors:
        raise PlanInvalidError(errors)
    if not plan.job_branch or not git.branch_exists(store.repo, plan.job_branch):
        raise UsageError(
            f"the plan's job branch {plan.job_branch!r} does not exist",
            hint='re-plan with `director plan "<task>"`',
        )
    return plan


# -- small helpers ------------------------------------------------------------------------
def watch_it_fail(
    tool_calls: list[ToolCall], node: Node
) -> Literal["observed", "not_observed", "unknown"]:
    """Did the executor run the node's tests before its first edit?"""
    if not tool_calls:
        return "unknown"
    markers = [node.test_cmd.strip(), *node.tests, *(Path(t).name for t in node.tests)]
    markers = [m for m in markers if m]
    for call in tool_calls:
        name = call.tool.lower()
        if name in EDIT_TOOLS:
            return "not_observed"
        if name == "bash":
            command = str(call.input.get("command", ""))
            if any(m in command for m in markers):
                return "observed"
    return "not_observed"


def _read_for_prompt(path: Path) -> str:
    if not path.is_file():
        return "(does not exist yet — create it)"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(cannot read: {exc.strerror})"
    if len(text) > FILE_CHARS:
        return text[:FILE_CHARS] + f"\n[… cut at {FILE_CHARS} characters]"
    return text


def executor_prompt(node: Node, worktree: Path, *, feedback: str, attempt: int) -> str:
    """The executor's message for one attempt (its role prompt is its system prompt)."""
    parts = [
        f"# Node `{node.id}`: {node.title}".rstrip(": "),
        "",
        "## Spec",
        node.spec or "(no spec text: follow the tests)",
        "",
        "## Files you may change (allowlist)",
        "Change only these; anything else rejects your work.",
    ]
    for rel in node.files:
        if rel.endswith("/"):
            parts.append(f"### {rel} (folder: new files under it are allowed)")
            continue
        parts += [f"### {rel}", "```", _read_for_prompt(worktree / rel), "```"]
    parts += [
        "",
        "## Tests (frozen: never edit them)",
        f"Test command: `{node.test_cmd}`",
    ]
    for rel in node.tests:
        parts += [f"### {rel}", "```", _read_for_prompt(worktree / rel), "```"]
    if node.red_output.strip():
        parts += [
            "",
            "## How the tests fail right now",
            "```",
            node.red_output.strip()[-8000:],
            "```",
        ]
    guidance = guidance_prompt(worktree, [*node.files, *node.tests])
    if guidance:
        parts += ["", guidance]
    if feedback.strip():
        parts += [
            "",
            f"## Why attempt {attempt - 1} was rejected",
            "Start again from a clean tree; do not repeat the mistake.",
            "```",
            feedback.strip()[-8000:],
            "```",
        ]
    parts += [
        "",
        f"Run `{node.test_cmd}` first and watch it fail, then implement, then run it again "
        "until it passes.",
    ]
    return "\n".join(parts)


def _process_cwd_under(proc: psutil.Process, roots: list[Path]) -> bool:
    try:
        cwd = Path(proc.cwd())
    except (psutil.Error, OSError):
        return False
    return any(cwd == root or root in cwd.parents for root in roots)


# psutil's process create time is the boot time (whole seconds) plus the start offset.
CREATE_TIME_SLACK_SECS = 1.5


def kill_orphans(roots: list[Path], *, started_after: float) -> list[str]:
    """Kill process groups left running in ``roots`` by a dead run or a finished agent.

    Only processes created after ``started_after`` (the dead run's or the call's start)
    qualify, so
    a pid the kernel recycled for something else, or a shell the user opened in a
    worktree earlier, is left alone."""
    if not roots:
        return []
    resolved = [r.resolve() for r in roots if r.exists()]
    me = os.getpid()
    own_group = os.getpgrp()
    killed: list[str] = []
    groups: set[int] = set()
    for proc in psutil.process_iter(["pid", "create_time", "name"]):
        try:
            if proc.pid == me or proc.info["create_time"] < started_after:
                continue
            if not _process_cwd_under(proc, resolved):
                continue
            pgid = os.getpgid(proc.pid)
        except (psutil.Error, OSError):
            continue
        if pgid == own_group:
            with contextlib.suppress(psutil.Error):
                proc.kill()
            killed.append(f"pid {proc.pid} ({proc.info['name']})")
        elif pgid not in groups:
            groups.add(pgid)
            kill_process_group(pgid, grace=1.0)
            killed.append(f"process group {pgid} ({proc.info['name']})")
    return killed


def _add_usage(st: NodeState, role: str, entry: CostRecord) -> None:
    usage = st.usage.setdefault(role, RoleUsage())
    usage.input_tokens += entry.input_tokens
    usage.output_tokens += entry.output_tokens
    usage.reasoning_tokens += entry.reasoning_tokens
    usage.cache_read_tokens += entry.cache_read_tokens
    usage.cache_write_tokens += entry.cache_write_tokens
    usage.cost_usd += entry.cost_usd
    usage.calls += 1
    if not entry.priced:
        usage.unpriced_calls += 1


def uncount_attempt(st: NodeState) -> None:
    """An attempt that ended through no fault of its own (stopped, interrupted, a merge
    conflict, an outside change that cannot be pinned on it) does not count. When it was
    the escalated attempt, the node is owed that attempt again: without this the node
    stayed 'escalated' and failed at once — out of attempts without a try."""
    st.attempts = max(0, st.attempts - 1)
    if st.escalated and st.escalated_attempts > 0:
        st.escalated_attempts -= 1
        st.escalate_requested = True


def fresh_attempts(st: NodeState) -> None:
    """A node that ended (failed, blocked, cancelled) starts its budget over."""
    st.attempts = 0
    st.escalated = False
    st.escalated_attempts = 0


@dataclass
class _WindowOp:
    """A watched window opening (``begin``) or closing, applied after a checkpoint."""

    nid: str
    begin: bool
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    applied: bool = False
    abandoned: bool = False
    incidents: list[sandbox_watch.Incident] = field(default_factory=list)


class _JobBranchMoved(Exception):
    """The job branch is not where the engine's last merge left it."""


class _NodeInterrupted(Exception):
    """Raised inside a node task when scheduling stopped before its next attempt."""


# -- the runner ---------------------------------------------------------------------------
class Runner:
    """One invocation of the run: the scheduler loop and every node's lifecycle."""

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
        self._slot_freed = asyncio.Event()
        # Why a node task was cancelled: the status it should end in.
        self.cancel_to: dict[str, NodeStatus] = {}
        self.merge_lock = asyncio.Lock()
        self.stop_reason = ""  # set when the cost ceiling stops scheduling
        self.run_cancelled = False
        self.job_worktree = jobs.job_worktree(self.store)
        self.started = time.monotonic()
        self.cleanups: list[asyncio.Future[None]] = []
        self.job_head = ""
        # state.json writer: one thread, newest snapshot wins (see ``save``).
        self._state_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state")
        self._state_io = threading.Lock()
        self._state_version = 0
        self._state_written = 0
        self._state_latest: tuple[int, str] = (0, "")
        self._state_durable = False
        self._node_json: dict[str, str] = {}
        # Git work of the nodes runs on threads of its own, sized to the parallelism, so
        # worktree clean-ups never queue a starting node behind them.
        self._git_pool = ThreadPoolExecutor(max_workers=parallel + 2, thread_name_prefix="node-git")
        # Watched windows (executor call + gate tests): see sandbox_watch's docstring.
        self.fingerprinter = sandbox_watch.Fingerprinter(
            self.store.repo, self.job_worktree, plan.job_branch, self.store.root
        )
        self.ledger = sandbox_watch.Ledger()
        self.window_gate = sandbox_watch.WindowGate()
        self._fingerprint: sandbox_watch.Fingerprint | None = None
        # Open watched windows as the node tasks see them: node id → run alone.
        self._windows: dict[str, bool] = {}
        self._window_ops: list[_WindowOp] = []
        self._checkpointer: asyncio.Task[None] | None = None
        self._run_alone: set[str] = set()  # nodes whose last incident was ambiguous

    async def _io(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking git/file work off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._git_pool, functools.partial(fn, *args, **kwargs))

    # -- state ----------------------------------------------------------------------------
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

    def _snapshot(self, node_id: str | None) -> str:
        """state.json's text. Each node's JSON is cached and re-made only when that node
        changed (``node_id``; None re-makes all): with hundreds of nodes, dumping the
        whole state on every transition would cost the loop milliseconds each time."""
        if node_id is None:
            self._node_json.clear()
        else:
            self._node_json.pop(node_id, None)
        parts = []
        for nid, st in self.state.nodes.items():
            text = self._node_json.get(nid)
            if text is None:
                text = self._node_json[nid] = st.model_dump_json()
            parts.append(f"{json.dumps(nid)}: {text}")
        head = self.state.model_dump_json(exclude={"nodes"})
        return head[:-1] + ', "nodes": {' + ",\n".join(parts) + "}}\n"

    def save(self, *, durable: bool = False, node_id: str | None = None) -> None:
        """Rewrite state.json after a transition, off the event loop.

        The snapshot is taken here (so it is exactly this transition's state) and handed
        to the one writer thread, which writes the newest snapshot it has: temp file +
        rename, so a kill -9 leaves the old or the new file, never a torn one. ``durable``
        writes (outcomes) are also fsynced. The loop never waits on the disk."""
        self._state_version += 1
        self._state_latest = (self._state_version, self._snapshot(node_id))
        self._state_durable = self._state_durable or durable
        self._state_pool.submit(self._write_state)

    def _write_state(self) -> None:
        with self._state_io:
            version, text = self._state_latest
            if version <= self._state_written:
                return  # a newer write already covered this one
            durable, self._state_durable = self._state_durable, False
            if durable:
                atomic_write_text(self.store.state, text)
            else:
                path = self.store.state
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                tmp.write_text(text, encoding="utf-8")
                os.replace(tmp, path)
            self._state_written = version

    def flush_state(self) -> None:
        """Wait until state.json holds the newest snapshot (used at the end of a run)."""
        self._state_pool.submit(self._write_state).result()

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

    # -- recovery -------------------------------------------------------------------------
    def recover(self) -> list[str]:
        """Make the state of an interrupted or earlier run safe to continue from."""
        notes: list[str] = []
        st_map = self.state.nodes
        active = [nid for nid, st in st_map.items() if st.status in ACTIVE]
        if active or self.state.owner_pid:
            started_after = self.state.owner_create_time or self.state.started_at
            roots = [jobs.node_worktree(self.store, nid) for nid in active]
            killed = kill_orphans(roots, started_after=started_after - 1.0)
            if killed:
                notes.append(
                    "killed processes the interrupted run left behind: " + ", ".join(killed)
                )
        # A merge interrupted half-way leaves MERGE_HEAD in the job worktree.
        if self.job_worktree.exists():
            merging = git.git(
                ["rev-parse", "-q", "--verify", "MERGE_HEAD"], self.job_worktree, check=False
            )
            if merging.returncode == 0:
                git.git(["merge", "--abort"], self.job_worktree, check=False)
                notes.append("aborted a merge the interrupted run left half-done")
        behind = self.sync_job_worktree()
        if behind:
            notes.append(behind)
        job_head = git.rev(self.store.repo, self.plan.job_branch)
        if self.fresh_state:
            for nid, st in st_map.items():
                branch = jobs.node_branch(self.plan.job_id, nid)
                if st.status == NodeStatus.pending and self._merged_already(nid, branch, job_head):
                    st.status, st.branch, st.finished_at = NodeStatus.done, branch, time.time()
                    notes.append(
                        f"node {nid} is merged on the job branch already (no state.json "
                        "said so): kept as done"
                    )
        for nid in active:
            st = st_map[nid]
            branch = st.branch or jobs.node_branch(self.plan.job_id, nid)
            # state.json may lag a transition behind: any node caught mid-flight whose
            # commit is already in the job branch was merged.
            if self._merged_already(nid, branch, job_head):
                st.status = NodeStatus.done
                st.finished_at = time.time()
                notes.append(f"node {nid} had been merged when the run stopped: kept as done")
                continue
            was = st.status.value
            st.status = NodeStatus.pending
            uncount_attempt(st)  # the interrupted attempt did not finish
            notes.append(f"node {nid} was {was} when the run stopped: reset, it will run again")
        for st in st_map.values():
            if st.status in (NodeStatus.failed, NodeStatus.blocked, NodeStatus.cancelled):
                st.status = NodeStatus.pending
                fresh_attempts(st)
        self.state.cancelled = False
        self.state.stopped_reason = ""
        self.state.finished_at = None
        self.state.integration = "pending"
        self.state.integration_report = ""
        self.state.recovered = notes
        return notes

    def _merged_already(self, nid: str, branch: str, job_head: str) -> bool:
        """Is the node's own attempt commit (not a base its branch was reset to) already
        part of the job branch?"""
        if not git.branch_exists(self.store.repo, branch):
            return False
        head = git.rev(self.store.repo, branch)
        subject = git.out(["log", "-1", "--format=%s", head], self.store.repo)
        mine = f"director: node {nid}"
        if subject != mine and not subject.startswith(mine + " "):
            return False  # the branch sits at a base commit: no attempt was committed
        return (
            git.git(
                ["merge-base", "--is-ancestor", head, job_head], self.store.repo, check=False
            ).returncode
            == 0
        )

    # -- scheduling -----------------------------------------------------------------------
    def ceiling_reached(self) -> bool:
        ceiling = self.config.limits.cost_ceiling_usd
        return ceiling > 0 and self.state.cost_usd >= ceiling

    def refresh_blocked(self) -> None:
        changed = True
        while changed:
            changed = False
            for node in self.plan.nodes:
                st = self.state.nodes[node.id]
                dead = [d for d in node.depends_on if self.state.nodes[d].status in DEAD_ENDS]
                if st.status == NodeStatus.pending and dead:
                    st.last_error = f"blocked by {', '.join(dead)}"
                    self.set_status(node.id, NodeStatus.blocked, st.last_error)
                    changed = True
                elif st.status == NodeStatus.blocked and not dead:
                    self.set_status(node.id, NodeStatus.pending, "unblocked")
                    changed = True

    def ready(self) -> list[str]:
        out = []
        for node in self.plan.nodes:
            st = self.state.nodes[node.id]
            if st.status != NodeStatus.pending or node.id in self.tasks:
                continue
            if all(self.state.nodes[d].status == NodeStatus.done for d in node.depends_on):
                out.append(node.id)
        # Longest remaining chain first keeps the makespan near the critical path.
        out.sort(key=lambda nid: (-self.chain[nid], self.order[nid]))
        return out

    async def run(self) -> RunOutcome:
        self.chain = chain_lengths(self.plan)
        ctx = self.ctx
        await self._io(jobs.ensure_job_worktree, self.store, self.plan.job_branch)
        self.job_head = await self._io(git.rev, self.store.repo, self.plan.job_branch)
        # Recovery reads the dead owner's start time (orphans are processes younger than
        # it): claim ownership only afterwards, or a resuming process started after the
        # orphans (`director run` again from a shell) would spare every one of them.
        notes = await self._io(self.recover)
        await self._io(sandbox_watch.refresh_job_index, self.job_worktree)
        self.state.owner_pid = os.getpid()
        self.state.owner_create_time = psutil.Process().create_time()
        self.state.started_at = time.time()
        self.save()
        ctx.bus.emit(
            RunStarted(
                job_id=self.plan.job_id,
                job_branch=self.plan.job_branch,
                node_ids=self.plan.ids,
                parallel=self.parallel,
                ceiling_usd=self.config.limits.cost_ceiling_usd,
                tiers=self.config.tier_map(),
                scripted=ctx.scripted,
                pid=os.getpid(),
            )
        )
        for note in notes:
            self.notice("recovered: " + note, "warning")
        try:
            await self._loop()
        except asyncio.CancelledError:
            # Interrupted from outside (Ctrl-C, the app closing): leave a resumable state.
            self.run_cancelled = True
            await self._cancel_all(NodeStatus.pending)
            self.state.cancelled = True
            self.save()
            self._finish("cancelled", "interrupted")
            raise
        return await self._conclude()

    async def _loop(self) -> None:
        while True:
            if not self.store.plan.exists():
                await self._stop_for_lost_store()
            self.apply_controls()
            if self.run_cancelled:
                await self._cancel_all(NodeStatus.pending)
                return
            if self.ceiling_reached() and not self.stop_reason:
                await self._stop_for_ceiling()
            self.refresh_blocked()
            if not self.state.paused and not self.stop_reason:
                for nid in self.ready():
                    if len(self.tasks) - len(self.merge_queue) >= self.parallel:
                        break
                    self.tasks[nid] = asyncio.create_task(self._node_task(nid), name=nid)
            if not self.tasks and not self.state.paused:
                return
            if self.tasks:
                self._slot_freed.clear()
                slot_freed = asyncio.ensure_future(self._slot_freed.wait())
                finished, _ = await asyncio.wait(
                    {*self.tasks.values(), slot_freed},
                    timeout=POLL_SECS,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                slot_freed.cancel()
                finished.discard(slot_freed)
                for task in finished:
                    self.tasks.pop(task.get_name(), None)
                    exc = None if task.cancelled() else task.exception()
                    if exc is not None and self.store.plan.exists():  # else: stopped above
                        nid = task.get_name()
                        st = self.state.nodes[nid]
                        st.last_error = (
                            str(exc)
                            if isinstance(exc, DirectorError)
                            else f"internal error: {type(exc).__name__}: {exc}"
                        )
                        self.set_status(nid, NodeStatus.failed, st.last_error)
                        self.notice(f"node {nid}: {st.last_error}", "error", nid)
            else:
                await asyncio.sleep(POLL_SECS)  # paused with nothing running

    async def _stop_for_lost_store(self) -> NoReturn:
        """``.director/`` (or its plan.json) was deleted under the run: nothing is left to
        record progress in or resume from. Stop the agents as a cancel does, then say so
        (rather than gate a node against a job worktree that is gone)."""
        await self._cancel_all(NodeStatus.pending)
        branch = self.plan.job_branch
        raise DirectorError(
            f"{self.store.plan} disappeared while the run went (was .director/ deleted?): the "
            "run stopped, its agents were stopped, and it cannot be resumed",
            hint=f"what was merged is on {branch} (`git log {branch}`); to start over: "
            '`director init` if config.toml went too, then `director plan "<task>"`',
        )

    async def _stop_for_ceiling(self) -> None:
        limits = self.config.limits
        self.stop_reason = (
            f"cost ceiling reached: ${self.state.cost_usd:.4f} of ${limits.cost_ceiling_usd:.2f}"
        )
        self.state.stopped_reason = self.stop_reason
        self.save()
        how = "running calls finish" if limits.on_ceiling == "finish" else "running calls cancelled"
        self.notice(f"{self.stop_reason}: no new work is scheduled ({how})", "warning")
        if limits.on_ceiling == "cancel":
            # Only agent calls cost money: a node already gating or merging finishes.
            await self._cancel_all(NodeStatus.pending, spare=(NodeStatus.gating,))

    async def _cancel_all(self, to: NodeStatus, spare: tuple[NodeStatus, ...] = ()) -> None:
        for nid, task in list(self.tasks.items()):
            status = self.state.nodes[nid].status
            if status in (NodeStatus.merging, NodeStatus.done, *spare):
                continue  # a merge is short and must not be torn
            self.cancel_to[nid] = to
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        self.tasks.clear()

    # -- control --------------------------------------------------------------------------
    def apply_controls(self) -> None:
        for request in control.take_requests(self.store):
            ok, message = self._apply(request)
            record = ControlRecord(
                request_id=request.request_id,
                action=request.action,
                node_id=request.node_id,
                ok=ok,
                message=message,
            )
            self.state.controls.append(record)
            self.save()
            self.ctx.bus.emit(
                ControlApplied(
                    action=request.action,
                    node_id=request.node_id,
                    ok=ok,
                    message=message,
                    request_id=request.request_id,
                )
            )

    def _apply(self, request: control.ControlRequest) -> tuple[bool, str]:
        action, nid = request.action, request.node_id
        try:
            control.check_request(action, nid)
        except UsageError as exc:
            return False, exc.message
        if action == "pause":
            self.state.paused = True
            return True, "paused: no new node starts; running nodes go on"
        if action == "resume":
            self.state.paused = False
            return True, "resumed scheduling"
        if action == "cancel" and nid is None:
            self.run_cancelled = True
            return True, "run cancelled: running nodes stopped; `director run` resumes"
        assert nid is not None
        if nid not in self.nodes:
            return False, f"no node {nid!r} in the plan"
        st = self.state.nodes[nid]
        running = nid in self.tasks
        if st.status == NodeStatus.done:
            return False, f"node {nid} is already merged"
        if st.status == NodeStatus.merging:
            return False, f"node {nid} is merging right now; try again in a moment"
        if action == "retry":
            if running or st.status == NodeStatus.pending:
                return False, f"node {nid} is {st.status.value}: nothing to retry"
            fresh_attempts(st)
            self.set_status(nid, NodeStatus.pending, "retry requested")
            return True, f"node {nid} will run again with fresh attempts"
        if action == "escalate":
            if not running and st.status.finished:
                fresh_attempts(st)  # a finished node starts over, straight at escalation
            st.escalate_requested = True
            if running:
                self.cancel_to[nid] = NodeStatus.pending
                self.tasks[nid].cancel()
                return (
                    True,
                    f"node {nid}: current attempt stopped; restarting at the escalation tier",
                )
            if st.status != NodeStatus.pending:
                self.set_status(nid, NodeStatus.pending, "escalation requested")
            return True, f"node {nid} will run next at the escalation tier"
        if action == "skip":
            if running:
                self.cancel_to[nid] = NodeStatus.skipped
                self.tasks[nid].cancel()
            else:
                self.set_status(nid, NodeStatus.skipped, "skipped by request")
            blocked = sorted(dag.dependents(self.plan, nid))
            return True, f"node {nid} skipped" + (
                f"; its dependents are blocked: {', '.join(blocked)}" if blocked else ""
            )
        if action == "cancel":
            if running:
                self.cancel_to[nid] = NodeStatus.cancelled
                self.tasks[nid].cancel()
            elif st.status == NodeStatus.pending:
                self.set_status(nid, NodeStatus.cancelled, "cancelled by request")
            else:
                return False, f"node {nid} is {st.status.value}: not running"
            return True, f"node {nid} cancelled"
        return False, f"unknown action {action!r}"

    # -- one node -------------------------------------------------------------------------
    async def _node_task(self, nid: str) -> None:
        st = self.state.nodes[nid]
        began = time.monotonic()
        if st.started_at is None:
            st.started_at = time.time()
        try:
            await self._node_lifecycle(nid)
        except asyncio.CancelledError:
            to = self.cancel_to.pop(nid, NodeStatus.cancelled)
            if st.status == NodeStatus.done:
                return  # cancelled while tidying up after its merge: it stays merged
            if to == NodeStatus.pending and st.attempts > 0:
                uncount_attempt(st)  # a stopped attempt is not a failed one
            st.last_error = {
                NodeStatus.pending: "stopped; will run again",
                NodeStatus.skipped: "skipped by request",
                NodeStatus.cancelled: "cancelled by request",
            }.get(to, "stopped")
            self.set_status(nid, to, st.last_error)
        except _NodeInterrupted as exc:
            self.set_status(nid, NodeStatus.pending, str(exc))
        finally:
            if nid in self._windows:  # stopped or crashed mid-window
                with contextlib.suppress(Exception):
                    await self._close_window(nid)
            st.wall_secs += time.monotonic() - began
            self.save(node_id=nid)

    def _next_tier(self, st: NodeState) -> tuple[str, bool] | None:
        """(tier, escalated) of the next attempt, or None when the node is out of tries."""
        if st.escalate_requested:
            return self.config.tier_for("escalation"), True
        if st.escalated:
            return None  # the escalation attempt was the last one
        if st.attempts < self.max_attempts:
            return self.config.tier_for("executor"), False
        return self.config.tier_for("escalation"), True

    async def _node_lifecycle(self, nid: str) -> None:
        node = self.nodes[nid]
        st = self.state.nodes[nid]
        while True:
            if self.stop_reason or self.run_cancelled:
                raise _NodeInterrupted(self.stop_reason or "run cancelled")
            nxt = self._next_tier(st)
            if nxt is None:
                self.set_status(nid, NodeStatus.failed, self._out_of_attempts(nid, st))
                blocked = sorted(dag.dependents(self.plan, nid))
                if blocked:
                    self.notice(f"node {nid} failed; blocked: {', '.join(blocked)}", "warning", nid)
                return
            tier, escalating = nxt
            if escalating and not st.escalated:
                self.notice(f"node {nid}: escalating to {tier}", "info", nid)
            st.escalated = st.escalated or escalating
            st.escalate_requested = False
            st.attempts += 1
            if escalating:
                st.escalated_attempts += 1
            st.tier = tier
            ok = await self._attempt(node, st, tier)
            if ok:
                return

    # -- watched windows: changes outside the node's worktree (see sandbox_watch) ---------
    async def _open_window(self, nid: str) -> None:
        exclusive = nid in self._run_alone
        await self.window_gate.acquire(exclusive)
        op = _WindowOp(nid, begin=True)
        try:
            await self._window_op(op)
        except BaseException:
            if op.applied:
                self._queue_window_op(_WindowOp(nid, begin=False))  # undo, result unused
            op.abandoned = True
            self.window_gate.release(exclusive)
            raise
        self._windows[nid] = exclusive

    async def _close_window(self, nid: str) -> list[sandbox_watch.Incident]:
        """Close the node's window: what changed outside while it was open, if anything."""
        if nid not in self._windows:
            return []
        exclusive = self._windows.pop(nid)
        op = _WindowOp(nid, begin=False)
        try:
            await self._window_op(op)
        finally:
            self.window_gate.release(exclusive)
            if exclusive:
                self._run_alone.discard(nid)
        return op.incidents

    async def _window_op(self, op: _WindowOp) -> None:
        """Apply a window's opening or closing after a fresh checkpoint. Requests that
        arrive together share one: the open set changes only after that fingerprint,
        so attribution stays exact while parallel nodes stop queueing one fingerprint
        each behind the merge lock."""
        self._queue_window_op(op)
        await asyncio.shield(op.done)

    def _queue_window_op(self, op: _WindowOp) -> None:
        self._window_ops.append(op)
        if self._checkpointer is None or self._checkpointer.done():
            self._checkpointer = asyncio.create_task(self._run_window_ops())

    async def _run_window_ops(self) -> None:
        while self._window_ops:
            batch, self._window_ops = self._window_ops, []
            try:
                async with self.merge_lock:
                    await self._checkpoint()
            except Exception as exc:  # never leave a window half-open over a git hiccup
                self.notice(f"outside-the-worktree check failed: {exc}", "warning")
            for op in batch:
                if op.begin and not op.abandoned:
                    self.ledger.begin(op.nid)
                elif not op.begin:
                    op.incidents = self.ledger.end(op.nid)
                op.applied = True
                if not op.done.done():
                    op.done.set_result(None)

    async def _checkpoint(self) -> None:
        """Fingerprint the user's checkout and the job worktree, attribute a change to the
        open windows, and put the job worktree back when it changed. The caller holds the
        merge lock, so no merge of ours moves the job branch meanwhile."""
        if not self.store.plan.exists():
            return  # .director/ was deleted: the loop stops the run; re-create nothing in it
        now = await self._io(self.fingerprinter.take, self.job_head)
        before, self._fingerprint = self._fingerprint, now
        if before is None:
            return
        changes = sandbox_watch.compare(before, now)
        if not changes:
            return
        incident = self.ledger.record(changes)
        if incident is not None and before.touches_guarded(now, changes):
            undone = await self._io(self.fingerprinter.guarded.restore, before.guarded, now.guarded)
            self.notice(
                f"director's contract or git's own files changed while "
                f"{', '.join(incident.suspects)} ran; put back: " + "; ".join(undone),
                "warning",
            )
            now = await self._io(self.fingerprinter.take, self.job_head)
            self._fingerprint = now
        if not changes.job:
            return  # the user's checkout is never touched; with no window open, theirs
        moved_to = now.job_branch_oid
        if incident is None and moved_to is not None and moved_to != self.job_head:
            self.notice(
                f"the job branch {self.plan.job_branch} was moved outside director (to "
                f"{moved_to[:10]}) while no executor was running; director builds on it",
                "warning",
            )
            self.job_head = moved_to
            if changes.job == [sandbox_watch.JOB_BRANCH_KEY]:
                self._fingerprint = await self._io(self.fingerprinter.take, self.job_head)
                return
        done = await self._io(
            sandbox_watch.restore_job_worktree,
            self.store,
            self.plan.job_branch,
            self.job_head,
            put_branch_back=incident is not None,
        )
        who = (
            f"while {', '.join(incident.suspects)} ran"
            if incident is not None
            else "while no executor was running"
        )
        self.notice(
            f"the job worktree changed {who} ({', '.join(changes.job[:12])}); it is "
            "director's own and must stay clean: " + "; ".join(done),
            "warning",
        )
        self._fingerprint = await self._io(self.fingerprinter.take, self.job_head)

    def _reject_outside(
        self, nid: str, st: NodeState, incidents: list[sandbox_watch.Incident]
    ) -> bool:
        """Fail the attempt for changes outside its worktree (policy: sandbox_watch)."""
        message = sandbox_watch.describe(nid, incidents, self.store.repo, self.job_worktree)
        self.ctx.bus.emit(
            GateResult(
                node_id=nid,
                attempt=st.attempts,
                passed=False,
                check=sandbox_watch.CHECK,
                message=message,
            )
        )
        st.last_error = f"gate ({sandbox_watch.CHECK}): {message}"
        st.feedback = sandbox_watch.agent_feedback(incidents)
        if all(incident.ambiguous for incident in incidents):
            uncount_attempt(st)  # it may not have been this node: not charged
            self._run_alone.add(nid)
        self.save(node_id=nid)
        return False

    def _out_of_attempts(self, nid: str, st: NodeState) -> str:
        """Why a node failed, with the budget that ran out: an escalation is one attempt,
        and an escalation asked for early skips the executor attempts left."""
        last = f" — last error: {st.last_error}" if st.last_error else ""
        retry = f"press r or run `director retry {nid}` for fresh attempts"
        if not st.escalated:
            return f"out of attempts ({st.attempts} of {self.max_attempts}); {retry}{last}"
        escalated = max(1, st.escalated_attempts)
        executor = max(0, st.attempts - escalated)
        skipped = (
            "; escalating skipped the executor attempts left"
            if executor < self.max_attempts
            else ""
        )
        return (
            f"out of attempts: the escalated attempt on {st.tier} failed too (an escalation "
            f"is a single attempt — escalated attempts: {escalated} of {escalated}, after "
            f"{executor} of {self.max_attempts} executor attempts{skipped}); {retry}{last}"
        )

    async def _attempt(self, node: Node, st: NodeState, tier: str) -> bool:
        """One attempt; True when the node merged."""
        nid = node.id
        attempt = st.attempts
        # The job head as of the last merge (kept in memory: one git call less per node).
        base = self.job_head
        worktree = jobs.node_worktree(self.store, nid)
        branch = jobs.node_branch(self.plan.job_id, nid)
        st.base_commit, st.branch, st.worktree = base, branch, str(worktree)
        self.set_status(nid, NodeStatus.running, f"attempt {attempt} on {tier}")
        await self._io(self._prepare_worktree, worktree, branch, base)
        prompt = await self._io(
            executor_prompt, node, worktree, feedback=st.feedback, attempt=attempt
        )
        usage_role = "escalation" if st.escalated else "executor"
        # The watched window (sandbox_watch) spans the call and this attempt's gate tests.
        await self._open_window(nid)
        called_at = time.time()
        result = await self._call(st, "executor", prompt, worktree, nid, attempt, tier, usage_role)
        # An agent can start daemons (`nohup …&`, `setsid …`) that outlive its CLI's process
        # group; whatever still runs in this worktree and started with this call goes now.
        # (create times come from the boot time, which the kernel gives in whole seconds:
        # allow for that, or a daemon started right after the call looks older than it.)
        leftovers = await self._io(
            kill_orphans, [worktree], started_after=called_at - CREATE_TIME_SLACK_SECS
        )
        if leftovers:
            self.notice(
                f"node {nid}: stopped what the agent left running: {', '.join(leftovers)}",
                "warning",
                nid,
            )
        st.watch_it_fail = watch_it_fail(result.tool_calls, node)
        if not result.ok:
            incidents = await self._close_window(nid)
            if incidents:
                return self._reject_outside(nid, st, incidents)
            reason = (
                "idle — no output for too long"
                if result.exit_reason == ExitReason.idle
                else result.exit_reason.value
            )
            st.last_error = f"agent ended without finishing ({reason}): {result.message}".strip()
            st.feedback = st.last_error
            self.notice(f"node {nid} attempt {attempt}: {st.last_error}", "warning", nid)
            return False
        return await self._gate_review_merge(node, st, worktree, base, rebased=False)

    async def _gate_review_merge(
        self, node: Node, st: NodeState, worktree: Path, base: str, *, rebased: bool
    ) -> bool:
        nid, attempt = node.id, st.attempts
        self.set_status(nid, NodeStatus.gating, "deterministic gate")
        limits = self.config.limits
        if nid not in self._windows:
            await self._open_window(nid)  # a re-gate after a rebase runs the tests again
        if not await self._io(git.worktree_intact, self.store.repo, worktree):
            incidents = await self._close_window(nid)
            if incidents:
                return self._reject_outside(nid, st, incidents)
            # Committing here would reach the user's checkout: reject before any git.
            message = (
                "the worktree's .git link was deleted or replaced; never touch .git "
                "(the attempt's work is discarded)"
            )
            self.ctx.bus.emit(
                GateResult(
                    node_id=nid, attempt=attempt, passed=False, check="worktree", message=message
                )
            )
            st.last_error = f"gate (worktree): {message}"
            st.feedback = f"The deterministic gate rejected the previous attempt: {message}"
            self.save()
            return False
        outcome = await gates.node_gate(
            node,
            worktree,
            base,
            ignore_globs=self.config.repository.ignore,
            flake_runs=limits.flake_runs,
            timeout=limits.gate_timeout_secs,
            on_line=lambda line: self.ctx.bus.emit(TestOutput(node_id=nid, line=line)),
            commit_message=f"director: node {nid} — {node.title}".strip(" —"),
            branch=jobs.node_branch(self.plan.job_id, nid),
        )
        incidents = await self._close_window(nid)
        if incidents:
            return self._reject_outside(nid, st, incidents)
        st.test_secs += outcome.test_secs
        st.changed_files = outcome.changed_files
        if outcome.test_runs > 1 or outcome.flaky:
            st.flake = "flaky" if outcome.flaky else "stable"
        st.flaky = st.flaky or outcome.flaky
        self.ctx.bus.emit(
            GateResult(
                node_id=nid,
                attempt=attempt,
                passed=outcome.passed,
                check=outcome.check,
                message=outcome.message,
                output_tail=outcome.output_tail,
            )
        )
        if not outcome.passed:
            st.last_error = f"gate ({outcome.check}): {outcome.message}"
            st.feedback = outcome.feedback()
            self.save()
            return False
        if self.config.review.stage_one_llm and not rebased:
            self.set_status(nid, NodeStatus.reviewing, "stage one advisory check")

            async def call(role: str, prompt: str, cwd: Path) -> AgentResult:
                return await self._call(st, role, prompt, cwd, nid, attempt, None, role)

            advice = await review.stage_one_advisory(
                self.ctx, node, worktree, base, attempt=attempt, call=call
            )
            self.ctx.bus.emit(
                ReviewResult(
                    node_id=nid,
                    stage="one",
                    verdict="advisory",
                    blocking=False,
                    summary=advice[:500],
                )
            )
        if not rebased and review.needs_stage_two(
            self.config, escalated=st.escalated, files_touched=len(outcome.changed_files)
        ):
            st.stage_two = True
            self.set_status(nid, NodeStatus.reviewing, "stage two review")
            verdict = await self._review(node, st, worktree, base)
            if not verdict:
                return False
        return await self._merge(node, st, worktree, base, rebased=rebased)

    async def _review(self, node: Node, st: NodeState, worktree: Path, base: str) -> bool:
        nid = node.id

        async def call(role: str, prompt: str, cwd: Path) -> AgentResult:
            return await self._call(st, role, prompt, cwd, nid, st.attempts, None, role)

        outcome = await review.stage_two(
            self.ctx, node, worktree, base, attempt=st.attempts, call=call
        )
        if outcome.verdict is None:
            st.review_error = outcome.error
            self.ctx.bus.emit(
                ReviewResult(
                    node_id=nid, stage="two", verdict="error", blocking=False, summary=outcome.error
                )
            )
            self.notice(f"node {nid}: review error (not blocking): {outcome.error}", "warning", nid)
            return True
        st.review = outcome.verdict
        st.review_error = ""
        self.ctx.bus.emit(
            ReviewResult(
                node_id=nid,
                stage="two",
                verdict=outcome.verdict.verdict,
                blocking=outcome.blocking,
                summary=outcome.verdict.summary,
                findings=[f.model_dump() for f in outcome.verdict.findings],
            )
        )
        if outcome.blocking:
            st.last_error = f"review blocked: {outcome.verdict.summary}"
            st.feedback = outcome.feedback()
            self.save()
            return False
        return True

    async def _merge(
        self, node: Node, st: NodeState, worktree: Path, base: str, *, rebased: bool
    ) -> bool:
        nid = node.id
        self.set_status(nid, NodeStatus.merging, "waiting for the merge queue")
        self.merge_queue.add(nid)
        self._slot_freed.set()
        try:
            return await self._merge_in_queue(node, st, worktree, base, rebased=rebased)
        finally:
            # Back in a slot when it has to re-gate or re-run; gone when merged.
            self.merge_queue.discard(nid)

    async def _merge_in_queue(
        self, node: Node, st: NodeState, worktree: Path, base: str, *, rebased: bool
    ) -> bool:
        nid = node.id
        async with self.merge_lock:
            node_branch = jobs.node_branch(self.plan.job_id, nid)
            message = f"director: merge node {nid} — {node.title}".strip(" —")
            try:
                merge_commit = await self._io(
                    self._merge_commit, node_branch, message, expected_head=self.job_head
                )
            except _JobBranchMoved:
                # Not by a merge of ours: attribute it (and put it back) before merging.
                await self._checkpoint()
                merge_commit = await self._io(self._merge_commit, node_branch, message)
            if merge_commit is not None:
                self.job_head = merge_commit
                st.merge_commit = merge_commit
                st.last_error = ""
                st.feedback = ""
                self.set_status(nid, NodeStatus.done, f"merged as {merge_commit[:10]}")
                self.ctx.bus.emit(NodeMerged(node_id=nid, commit=merge_commit, rebased=rebased))
                # Off the node's critical path: dependents may start while git tidies up.
                self.cleanups.append(asyncio.create_task(self._io(self._cleanup, worktree)))
                return True
            # The job branch moved under us and the change conflicts: rebase and re-gate.
            head = await self._io(git.rev, self.store.repo, self.plan.job_branch)
            self.job_head = head
            rebased_ok = head != base and await self._io(git.rebase, worktree, head)
        st.conflicts += 1
        if rebased_ok:
            self.notice(
                f"node {nid}: merge conflict; rebased onto {head[:10]}, re-gating", "info", nid
            )
            st.base_commit = head
            self.merge_queue.discard(nid)  # the re-gate runs tests: it takes a slot again
            return await self._gate_review_merge(node, st, worktree, head, rebased=True)
        if st.conflicts > MAX_CONFLICT_RETRIES:
            st.last_error = "its change keeps conflicting with work merged meanwhile"
            st.feedback = st.last_error
            return False
        # Re-execute on the new head; a conflict is not the executor's fault.
        uncount_attempt(st)
        st.last_error = "merge conflict with work merged meanwhile; re-running on the new head"
        st.feedback = (
            "Your previous change conflicted with work merged into the job branch meanwhile. "
            "The files now contain that work: build on it."
        )
        self.notice(f"node {nid}: {st.last_error}", "info", nid)
        return False

    def _merge_commit(
        self, node_branch: str, message: str, expected_head: str | None = None
    ) -> str | None:
        """Merge ``node_branch`` into the job branch with git objects only (``merge-tree
        --write-tree`` + ``commit-tree`` + a compare-and-swap ``update-ref``): no checkout,
        so the merge queue costs a few milliseconds. Returns the merge commit, or None
        on a conflict. The job worktree's files catch up in :meth:`sync_job_worktree`.
        ``_JobBranchMoved`` when the branch is not at ``expected_head``."""
        repo, branch = self.store.repo, self.plan.job_branch
        head = git.rev(repo, branch)
        if expected_head is not None and head != expected_head:
            raise _JobBranchMoved(head)
        tip = git.rev(repo, node_branch)
        proc = git.git(
            ["merge-tree", "--write-tree", "--no-messages", head, tip], repo, check=False
        )
        if proc.returncode == 1:
            return None
        if proc.returncode != 0:
            raise GitError(f"git merge-tree failed: {proc.stderr.strip()}")
        tree = proc.stdout.split("\n", 1)[0].strip()
        commit = git.out(["commit-tree", tree, "-p", head, "-p", tip, "-m", message], repo)
        # The old value makes this a compare-and-swap: a commit someone else put on the
        # job branch meanwhile makes it fail instead of being overwritten.
        swapped = git.git(["update-ref", f"refs/heads/{branch}", commit, head], repo, check=False)
        return commit if swapped.returncode == 0 else None

    def sync_job_worktree(self) -> str | None:
        """Bring the job worktree's files up to the job branch (merges move only the
        branch). A two-tree ``read-tree -m -u`` keeps anything else in it; a warning
        comes back when it cannot."""
        wt = self.job_worktree
        if not wt.exists():
            return None
        index_tree = git.out(["write-tree"], wt)
        head_tree = git.out(["rev-parse", "HEAD^{tree}"], wt)
        if index_tree == head_tree:
            return None
        proc = git.git(["read-tree", "-m", "-u", index_tree, "HEAD"], wt, check=False)
        if proc.returncode == 0:
            return None
        return (
            f"the job worktree {wt} has changes of its own and was not updated to the job "
            f"branch: {proc.stderr.strip()[:200]}"
        )

    def _prepare_worktree(self, worktree: Path, branch: str, base: str) -> None:
        """The node worktree on ``branch`` at ``base``, clean (created or reset)."""
        if worktree.exists() and not git.worktree_intact(self.store.repo, worktree):
            # A previous attempt broke the git link (rm .git, a .git of its own): git run
            # in the folder would reach the user's checkout. Throw the folder away.
            shutil.rmtree(worktree, ignore_errors=True)
            git.git(["worktree", "remove", "--force", str(worktree)], self.store.repo, check=False)
        if not worktree.exists():
            try:  # the common case, in one git call
                git.add_worktree(self.store.repo, worktree, branch, start=base)
                return
            except GitError:
                pass  # the branch is checked out somewhere else: sort it out below
        checked_out = git.worktree_branches(self.store.repo)
        where = checked_out.get(branch)
        if where is not None and not where.resolve().is_relative_to(self.store.worktrees.resolve()):
            # The user's checkout or a worktree of their own: never reset or remove it.
            raise GitError(
                f"the node's branch {branch} is checked out at {where}; director leaves that "
                f"checkout alone — switch it to another branch, then `director retry {worktree.name}`"
            )
        if where is not None and where.resolve() == worktree.resolve() and worktree.exists():
            git.git(["rebase", "--abort"], worktree, check=False)
            git.reset_clean(worktree, base)
            return
        if worktree.exists() or where is not None:
            git.remove_worktree(self.store.repo, where or worktree)
            if worktree.exists():
                git.remove_worktree(self.store.repo, worktree)
        git.add_worktree(self.store.repo, worktree, branch, start=base)

    def _cleanup(self, worktree: Path) -> None:
        """A merged node's worktree is no longer needed (its work is merged). No ``git
        worktree prune`` here: it could race a worktree another node is adding."""
        git.git(["worktree", "remove", "--force", str(worktree)], self.store.repo, check=False)

    async def _call(
        self,
        st: NodeState,
        role: str,
        prompt: str,
        cwd: Path,
        nid: str,
        attempt: int,
        tier: str | None,
        usage_role: str,
    ) -> AgentResult:
        """Every agent call of a node: timed, its tokens and cost booked on the node."""
        result, entry = await self.ctx.call_agent(
            role, prompt, cwd, node_id=nid, attempt=attempt, tier=tier
        )
        st.agent_secs += result.duration_secs
        _add_usage(st, usage_role, entry)
        self.state.cost_usd += entry.cost_usd
        self.save(node_id=nid)
        self._emit_cost(nid)
        return result

    def _emit_cost(self, nid: str | None) -> None:
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

    # -- the end --------------------------------------------------------------------------
    async def _conclude(self) -> RunOutcome:
        if self.cleanups:
            await asyncio.gather(*self.cleanups, return_exceptions=True)
        warning = await self._io(self.sync_job_worktree)
        if warning:
            self.notice(warning, "warning")
        statuses = {nid: st.status for nid, st in self.state.nodes.items()}
        all_done = all(s == NodeStatus.done for s in statuses.values())
        if self.run_cancelled:
            self.state.cancelled = True
            self.save()
            return self._finish("cancelled", "run cancelled by request; `director run` resumes")
        if self.stop_reason:
            self.save()
            return self._finish(
                "stopped",
                f"{self.stop_reason}; raise [limits] cost_ceiling_usd and `director run` "
                "again to continue",
            )
        if not all_done:
            self.state.integration = "skipped"
            self.save()
            bad = [nid for nid, s in statuses.items() if s != NodeStatus.done]
            return self._finish("failed", f"not merged: {', '.join(bad)}")
        commands = self.config.gate_commands()
        if not commands:
            self.state.integration = "skipped"
            self.state.integration_report = "no [gates] configured: integration gate skipped"
            self.save()
            return self._finish("success", "all nodes merged; no [gates] configured")
        merged = sorted(
            (nid for nid in self.plan.ids),
            key=lambda nid: self.state.nodes[nid].finished_at or 0.0,
        )
        result = await gates.integration_gate(
            commands,
            self.job_worktree,
            [(nid, self.state.nodes[nid].changed_files) for nid in merged],
            timeout=self.config.limits.gate_timeout_secs,
            on_line=lambda line: self.ctx.bus.emit(
                TestOutput(node_id=INTEGRATION_OUTPUT, line=line)
            ),
        )
        self.state.integration = "passed" if result.passed else "failed"
        self.state.integration_report = result.report()
        self.save()
        self.ctx.bus.emit(
            IntegrationResult(
                passed=result.passed,
                command=result.command,
                name=result.name,
                exit_code=result.exit_code,
                output_tail=result.output_tail,
                suspects=result.suspects,
            )
        )
        if result.passed:
            return self._finish("success", "all nodes merged; " + result.report())
        return self._finish("failed", result.report())

    def _finish(self, outcome: Outcome, message: str) -> RunOutcome:
        wall = time.monotonic() - self.started
        self.state.finished_at = time.time()
        if outcome == "stopped":
            self.state.stopped_reason = self.stop_reason
        self.save(durable=True)
        self.flush_state()
        self._state_pool.shutdown(wait=True)
        self._git_pool.shutdown(wait=False)
        self.fingerprinter.close()
        record = write_run_metrics(
            self.store,
            self.plan,
            self.state,
            self.config,
            outcome=outcome,
            wall_secs=wall,
            scripted=self.ctx.scripted,
        )
        self.ctx.bus.emit(
            RunFinished(
                job_id=self.plan.job_id,
                outcome=outcome,
                message=message,
                cost_usd=self.state.cost_usd,
            )
        )
        by = lambda status: [nid for nid in self.plan.ids if self.state.nodes[nid].status == status]  # noqa: E731
        return RunOutcome(
            job_id=self.plan.job_id,
            outcome=outcome,
            message=message,
            n_nodes=len(self.plan.nodes),
            done=by(NodeStatus.done),
            failed=by(NodeStatus.failed),
            blocked=by(NodeStatus.blocked),
            skipped=by(NodeStatus.skipped),
            pending=by(NodeStatus.pending),
            escalated=[nid for nid in self.plan.ids if self.state.nodes[nid].escalated],
            executor_tier_pct=record["executor_tier_pct"],
            stage_two_trigger_rate=record["stage_two_trigger_rate"],
            escalation_rate=record["escalation_rate"],
            integration=self.state.integration,
            integration_ok=bool(record["integration_ok"]),
            integration_report=self.state.integration_report,
            cost_total=self.state.cost_usd,
            wall_secs=wall,
            recovered=list(self.state.recovered),
        )


def chain_lengths(plan: Plan) -> dict[str, float]:
    """The scheduler's priority: per node, the heaviest chain of work from it to the end
    of the DAG (difficulty as weight — the agents' real durations are unknown up front)."""
    weight = {n.id: dag.DIFFICULTY_WEIGHT[n.estimated_difficulty] for n in plan.nodes}
    below: dict[str, float] = {}
    for layer in reversed(dag.layers(plan)):
        for nid in layer:
            children = [n.id for n in plan.nodes if nid in n.depends_on]
            below[nid] = weight[nid] + max((below[c] for c in children), default=0.0)
    return below


def check_run_flags(parallel: int | None, max_attempts: int | None) -> None:
    """``UsageError`` for a ``--parallel``/``--max-attempts`` below 1 (None: the config's)."""
    if parallel is not None and parallel < 1:
        raise UsageError("--parallel must be at least 1")
    if max_attempts is not None and max_attempts < 1:
        raise UsageError("--max-attempts must be at least 1")


async def run_job(
    ctx: EngineContext, *, parallel: int | None = None, max_attempts: int | None = None
) -> RunOutcome:
    """Run the approved plan to the end (see the module docstring)."""
    check_run_flags(parallel, max_attempts)
    limits = ctx.config.limits
    parallel = limits.parallel if parallel is None else parallel
    max_attempts = limits.max_attempts if max_attempts is None else max_attempts
    plan = load_approved_plan(ctx)
    require_binaries(ctx.config, run_roles(ctx.config), "the run")
    with ctx.store.run_lock("run") as note:
        if note:
            ctx.bus.emit(Notice(level="warning", message=note))
        runner = Runner(ctx, plan, parallel=parallel, max_attempts=max_attempts)
        # Group-commit the events while scheduling: the loop must not wait on fsync.
        previous, ctx.bus.background_fsync = ctx.bus.background_fsync, True
        try:
            return await runner.run()
        finally:
            ctx.bus.background_fsync = previous
            ctx.bus.sync()


def run_job_blocking(
    ctx: EngineContext, *, parallel: int | None = None, max_attempts: int | None = None
) -> RunOutcome:
    """``run_job`` in a fresh event loop: for a thread worker or a plain script."""
    return asyncio.run(run_job(ctx, parallel=parallel, max_attempts=max_attempts))
