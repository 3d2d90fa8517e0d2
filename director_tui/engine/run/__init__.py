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

1. A worktree ``<worktrees>/<node>`` on branch ``director/job-<id>--<node>``, cut
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
5. Pass → commit and merge into the job worktree (``<worktrees>/_job``) one at a
   time; a conflict with work merged meanwhile rebases the node onto the new head and
   re-gates it, and when the rebase itself conflicts the node re-executes on the new head
   (not counted as a failed attempt).
6. After all nodes merged: the ``[gates]`` commands as the integration gate.

Steps 1–3 up to the gate are one attempt behind ``run/executor.py``'s seam (spec in,
report out); ``LocalAttemptExecutor`` runs it here, or with ``[cluster] engine = "ray"``
``engine/cluster``'s ``RayAttemptExecutor`` on a Ray cluster (the head re-checks each
returned commit before the merge queue sees it; docs/cluster.md).

Limits: ``[limits] cost_ceiling_usd`` (0 disables it) stops scheduling once the run has
spent that much; ``on_ceiling = "finish"`` lets running calls finish but starts no new
one (a node that would need its reviewer then waits, uncharged, for the resumed run),
``"cancel"`` stops the calls running; either way the state is resumable with
``director run``.

Crash safety: after ``kill -9`` the next ``run_job`` kills the agent/test processes the
dead run left in its node worktrees (only processes started after that run began, so a
recycled pid or the user's own shell is never touched), resets nodes that were mid-flight
(a node caught mid-merge counts as merged when its branch is already in the job branch),
and reports what it recovered in a warning and in ``state.recovered``. Nodes that failed,
were blocked or cancelled get fresh attempts on a new ``director run``; skipped stay skipped.
"""

from __future__ import annotations

import asyncio

from director_tui.engine.agents import require_binaries, run_roles
from director_tui.engine.agents.model_check import require_models
from director_tui.engine.budget import fresh_attempts, uncount_attempt
from director_tui.engine.context import EngineContext
from director_tui.engine.events import Notice
from director_tui.engine.run.conclusion import Outcome, RunOutcome
from director_tui.engine.run.executor import (
    AttemptExecutor,
    AttemptReport,
    AttemptSink,
    AttemptSpec,
    GateVerdict,
    LocalAttemptExecutor,
)
from director_tui.engine.run.preflight import check_run_flags, load_approved_plan
from director_tui.engine.run.prompt import executor_prompt, watch_it_fail
from director_tui.engine.run.scheduler import ExecutorFactory, Runner

__all__ = [
    "AttemptExecutor",
    "AttemptReport",
    "AttemptSink",
    "AttemptSpec",
    "ExecutorFactory",
    "GateVerdict",
    "LocalAttemptExecutor",
    "Outcome",
    "RunOutcome",
    "Runner",
    "check_run_flags",
    "executor_prompt",
    "fresh_attempts",
    "load_approved_plan",
    "run_job",
    "run_job_blocking",
    "uncount_attempt",
    "watch_it_fail",
]


async def run_job(
    ctx: EngineContext,
    *,
    parallel: int | None = None,
    max_attempts: int | None = None,
    executor: ExecutorFactory | None = None,
) -> RunOutcome:
    """Run the approved plan to the end (see the module docstring); ``executor`` makes
    what runs each attempt (``run/executor.py``; in-process by default)."""
    check_run_flags(parallel, max_attempts)
    limits = ctx.config.limits
    if parallel is None and ctx.config.cluster.engine == "ray":
        parallel = ctx.config.cluster.max_in_flight  # the cluster's slots, not this machine's
    parallel = limits.parallel if parallel is None else parallel
    max_attempts = limits.max_attempts if max_attempts is None else max_attempts
    plan = load_approved_plan(ctx)
    if executor is None and ctx.config.cluster.engine == "ray":
        from director_tui.engine.cluster import executor_factory  # Ray loads only here

        executor = executor_factory(ctx.config.cluster)
    require_binaries(ctx.config, run_roles(ctx.config), "the run")
    models_note = await require_models(ctx.config, ctx.repo, run_roles(ctx.config), "the run")
    ctx.require_sandbox()
    with ctx.store.run_lock("run") as note:
        if note:
            ctx.bus.emit(Notice(level="warning", message=note))
        if models_note:
            ctx.bus.emit(Notice(message=models_note))
        runner = Runner(ctx, plan, parallel=parallel, max_attempts=max_attempts, executor=executor)
        # Group-commit the events while scheduling: the loop must not wait on fsync.
        previous, ctx.bus.background_fsync = ctx.bus.background_fsync, True
        try:
            return await runner.run()
        finally:
            ctx.bus.background_fsync = previous
            ctx.bus.sync()
            close = getattr(executor, "close", None)  # a cluster session ends with the run
            if close is not None:
                close()


def run_job_blocking(
    ctx: EngineContext, *, parallel: int | None = None, max_attempts: int | None = None
) -> RunOutcome:
    """``run_job`` in a fresh event loop: for a thread worker or a plain script."""
    return asyncio.run(run_job(ctx, parallel=parallel, max_attempts=max_attempts))
