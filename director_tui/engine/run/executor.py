"""A node attempt as a unit of work behind one small interface.

The lifecycle hands an executor an ``AttemptSpec`` (the node with its frozen test
hashes, the base commit, the tier, the feedback for the prompt, the limits) and gets an
``AttemptReport`` back (the commit the gate judged or none, the exit reason, the usage,
the transcript, the gate's verdict, changes seen outside the worktree). Both are
pydantic models, so an executor elsewhere (a cluster worker, an agent server per slot)
can take and return them as JSON. While it works it reports progress through an
``AttemptSink`` (calls that ended — so the cost ceiling sees their cost at once —, the
gating phase, test output lines, notices); a remote executor streams those back.

The scheduler, the merge queue and the views never learn where an attempt ran.
``LocalAttemptExecutor`` is the one implementation: a worktree of this repository, the
agent CLI as a child process, the gate's tests here, inside a watched window
(``windows.py``)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from director_tui.engine import gates, git, jobs, sandbox_watch
from director_tui.engine.agents.base import AgentResult, ExitReason
from director_tui.engine.cost import CostRecord
from director_tui.engine.models import Node
from director_tui.engine.proc import CREATE_TIME_SLACK_SECS, kill_orphans
from director_tui.engine.run.core import RunCore
from director_tui.engine.run.prompt import executor_prompt, watch_it_fail
from director_tui.engine.run.windows import WatchedWindows

WORKTREE_CHECK = "worktree"  # the gate check of an attempt that broke its .git link


class AttemptLimits(BaseModel):
    model_config = ConfigDict(frozen=True)

    gate_timeout_secs: float
    flake_runs: int
    ignore_globs: list[str] = Field(default_factory=list)


class AttemptSpec(BaseModel):
    """What one attempt needs, and nothing else (the node carries its frozen test hashes)."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    node: Node
    attempt: int
    tier: str
    usage_role: Literal["executor", "escalation"] = "executor"
    base_commit: str
    feedback: str = ""  # why the previous attempt was rejected, for the prompt
    limits: AttemptLimits

    @property
    def branch(self) -> str:
        return jobs.node_branch(self.job_id, self.node.id)


class GateVerdict(BaseModel):
    """The deterministic gate's verdict on an attempt's commit."""

    passed: bool
    check: str
    message: str = ""
    output_tail: str = ""
    changed_files: list[str] = Field(default_factory=list)
    flaky: bool = False
    test_runs: int = 0
    test_secs: float = 0.0

    @classmethod
    def of(cls, outcome: gates.GateOutcome) -> GateVerdict:
        return cls(
            passed=outcome.passed,
            check=outcome.check,
            message=outcome.message,
            output_tail=outcome.output_tail,
            changed_files=outcome.changed_files,
            flaky=outcome.flaky,
            test_runs=outcome.test_runs,
            test_secs=outcome.test_secs,
        )

    def feedback(self) -> str:
        """What the next attempt is told about this one."""
        if self.check == WORKTREE_CHECK:
            return f"The deterministic gate rejected the previous attempt: {self.message}"
        return gates.GateOutcome(
            passed=self.passed,
            check=self.check,
            message=self.message,
            output_tail=self.output_tail,
        ).feedback()


class AttemptReport(BaseModel):
    """What one attempt produced."""

    exit_reason: ExitReason
    message: str = ""  # the agent's own, when it did not finish
    harness_error: bool = False  # the agent CLI's own machinery failed, not the agent
    commit: str | None = None  # the commit the gate judged and passed
    usage: CostRecord | None = None  # the executor call's
    transcript_path: Path | None = None
    watch_it_fail: Literal["observed", "not_observed", "unknown"] = "unknown"
    gate: GateVerdict | None = None  # None: the agent did not finish, no gate ran
    # Changes outside the worktree while the attempt ran (a local executor's watch).
    outside: list[sandbox_watch.Incident] = Field(default_factory=list)
    # Writes the agent's own tool calls made into other nodes' worktrees (sibling_watch).
    sibling_writes: list[str] = Field(default_factory=list)


class AttemptSink(Protocol):
    """Progress of an attempt while it runs, for the run's state and events."""

    def call_finished(self, role: str, result: AgentResult, entry: CostRecord) -> None: ...
    def gating(self) -> None: ...
    def test_line(self, line: str) -> None: ...
    def notice(self, message: str) -> None: ...


class AttemptExecutor(Protocol):
    async def run(self, spec: AttemptSpec, sink: AttemptSink) -> AttemptReport:
        """Execute the node from ``spec.base_commit`` and gate the result."""
        ...

    async def regate(self, spec: AttemptSpec, sink: AttemptSink) -> AttemptReport:
        """Gate the node's commit again, rebased onto ``spec.base_commit``."""
        ...


class LocalAttemptExecutor:
    """Attempts in this machine's worktrees: the node's slot's (``_slot-<k>``, its calls
    sessions on the slot's OpenCode server) when the run has slots, else the node's own
    (``<worktrees>/<node>``)."""

    def __init__(self, core: RunCore, windows: WatchedWindows) -> None:
        self.core = core
        self.windows = windows

    async def run(self, spec: AttemptSpec, sink: AttemptSink) -> AttemptReport:
        core, node, nid = self.core, spec.node, spec.node.id
        slot = core.slots.held_by(nid) if core.slots is not None else None
        provider = None
        if slot is not None and core.slots is not None:
            worktree = slot.worktree
            await core.slots.prepare(slot, spec.branch, spec.base_commit)
            provider = await core.slots.provider(slot, spec.tier)
        else:
            worktree = jobs.node_worktree(core.store, nid)
            await core.io(
                jobs.prepare_node_worktree, core.store, worktree, spec.branch, spec.base_commit
            )
        core.siblings.begin_attempt(nid)
        # The watched window (sandbox_watch) spans the call and this attempt's gate tests.
        # Its opening fingerprint (the checkout, the job worktree) and the prompt (read from
        # this worktree) need nothing of each other: side by side, both ended before the
        # call — a failure of either is raised once both are done, so a window left open
        # is one the lifecycle knows of and closes.
        prompt, opened = await asyncio.gather(
            core.io(executor_prompt, node, worktree, feedback=spec.feedback, attempt=spec.attempt),
            self.windows.open(nid),
            return_exceptions=True,
        )
        for failure in (prompt, opened):
            if isinstance(failure, BaseException):
                raise failure
        assert isinstance(prompt, str)
        called_at = time.time()
        result, entry = await core.ctx.call_agent(
            "executor",
            prompt,
            worktree,
            node_id=nid,
            attempt=spec.attempt,
            tier=spec.tier,
            # Cancelled mid-call: what its finished steps cost still counts (ceiling too).
            on_cancelled=lambda partial, charged: sink.call_finished(
                spec.usage_role, partial, charged
            ),
            provider=provider,
        )
        sink.call_finished(spec.usage_role, result, entry)
        # An agent can start daemons (`nohup …&`, `setsid …`) that outlive its CLI's process
        # group; whatever still runs in this worktree and started with this call goes now.
        # (create times come from the boot time, which the kernel gives in whole seconds:
        # allow for that, or a daemon started right after the call looks older than it.)
        since = called_at - CREATE_TIME_SLACK_SECS
        if slot is not None and core.slots is not None:
            # In a slot, what runs below its server goes too (never the server).
            leftovers = await core.slots.clear(slot, since=since)
        elif result.processes_ended:
            # All of it ran in the sandbox's PID namespace, gone with it: nothing to find
            # (the sweep reads every process on the machine, ~4 ms a node here).
            leftovers = []
        else:
            leftovers = await core.io(kill_orphans, [worktree], started_after=since)
        if leftovers:
            sink.notice(f"node {nid}: stopped what the agent left running: {', '.join(leftovers)}")
        report = AttemptReport(
            exit_reason=result.exit_reason,
            message=result.message,
            harness_error=result.harness_error,
            usage=entry,
            transcript_path=result.transcript_path,
            watch_it_fail=watch_it_fail(result.tool_calls, node),
        )
        core.siblings.note_calls(nid, result.tool_calls)
        report.sibling_writes = core.siblings.take_offences(nid)
        if not result.ok or report.sibling_writes:
            report.outside = await self.windows.close(nid)
            return report
        return await self._gate(spec, sink, worktree, report)

    async def regate(self, spec: AttemptSpec, sink: AttemptSink) -> AttemptReport:
        worktree = jobs.node_worktree(self.core.store, spec.node.id)
        return await self._gate(spec, sink, worktree, AttemptReport(exit_reason=ExitReason.ok))

    async def _gate(
        self, spec: AttemptSpec, sink: AttemptSink, worktree: Path, report: AttemptReport
    ) -> AttemptReport:
        core, node, nid = self.core, spec.node, spec.node.id
        sink.gating()
        if not self.windows.is_open(nid):
            await self.windows.open(nid)  # a re-gate after a rebase runs the tests again
        if not await core.io(git.worktree_intact, core.store.repo, worktree):
            report.outside = await self.windows.close(nid)
            # Committing here would reach the user's checkout: reject before any git.
            report.gate = GateVerdict(
                passed=False,
                check=WORKTREE_CHECK,
                message=(
                    "the worktree's .git link was deleted or replaced; never touch .git "
                    "(the attempt's work is discarded)"
                ),
            )
            return report
        gated_at = time.time()
        sandbox = core.ctx.sandbox_spec(worktree)
        outcome = await gates.node_gate(
            node,
            worktree,
            spec.base_commit,
            ignore_globs=spec.limits.ignore_globs,
            flake_runs=spec.limits.flake_runs,
            timeout=spec.limits.gate_timeout_secs,
            on_line=sink.test_line,
            commit_message=f"director: node {nid} — {node.title}".strip(" —"),
            branch=spec.branch,
            sandbox=sandbox,
        )
        if sandbox is None or outcome.timed_out:
            # The tests run the agent's code, which can start daemons too: stop them
            # before the watched window closes, as after the agent's call. In the sandbox
            # the gate's only processes are its test runs, each in a PID namespace of its
            # own that the kernel empties when the run ends by itself (bwrap
            # --unshare-pid): nothing is left to find, and the sweep of every process cost
            # ~4 ms a node. (A run killed at the timeout ends its namespace unwaited.)
            leftovers = await core.io(
                kill_orphans, [worktree], started_after=gated_at - CREATE_TIME_SLACK_SECS
            )
            if leftovers:
                sink.notice(
                    f"node {nid}: stopped what its tests left running: {', '.join(leftovers)}"
                )
        report.outside = await self.windows.close(nid)
        report.gate = GateVerdict.of(outcome)
        if outcome.passed:
            report.commit = outcome.commit
        return report
