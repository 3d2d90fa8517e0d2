"""The end of a run: the integration gate once every node merged, the outcome, the
metrics record and ``RunFinished``."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Literal

from director_tui.engine import gates, jobs
from director_tui.engine.events import (
    INTEGRATION_OUTPUT,
    IntegrationResult,
    RunFinished,
    TestOutput,
)
from director_tui.engine.metrics import run_record, write_run_metrics
from director_tui.engine.models import NodeStatus
from director_tui.engine.proc import CREATE_TIME_SLACK_SECS, kill_orphans
from director_tui.engine.run.core import RunCore

Outcome = Literal["success", "failed", "stopped", "cancelled"]


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


async def conclude(core: RunCore) -> RunOutcome:
    """After the scheduler's loop returned: the outcome, with the integration gate when
    every node merged."""
    if core.cleanups:
        await asyncio.gather(*core.cleanups, return_exceptions=True)
    state = core.state
    statuses = {nid: st.status for nid, st in state.nodes.items()}
    if core.slots is not None:  # no agent runs after the nodes: their CPU is the gate's
        await core.slots.stop(remove_worktrees=all(s == NodeStatus.done for s in statuses.values()))
    warning = await core.io(jobs.sync_job_worktree, core.store)
    if warning:
        core.notice(warning, "warning")
    if core.run_cancelled:
        state.cancelled = True
        core.save()
        return finish(core, "cancelled", "run cancelled by request; `director run` resumes")
    if core.stop_reason:
        core.save()
        return finish(
            core,
            "stopped",
            f"{core.stop_reason}; raise [limits] cost_ceiling_usd and `director run` "
            "again to continue",
        )
    if not all(s == NodeStatus.done for s in statuses.values()):
        state.integration = "skipped"
        core.save()
        return finish(core, "failed", not_merged_message(statuses))
    commands = core.config.gate_commands()
    if not commands:
        state.integration = "skipped"
        state.integration_report = "no [gates] configured: integration gate skipped"
        core.save()
        return finish(core, "success", "all nodes merged; no [gates] configured")
    merged = sorted(core.plan.ids, key=lambda nid: state.nodes[nid].finished_at or 0.0)
    gated_at = time.time()
    result = await gates.integration_gate(
        commands,
        core.job_worktree,
        [(nid, state.nodes[nid].changed_files) for nid in merged],
        timeout=core.config.limits.gate_timeout_secs,
        on_line=lambda line: core.ctx.bus.emit(TestOutput(node_id=INTEGRATION_OUTPUT, line=line)),
        sandbox=core.ctx.sandbox_spec(core.job_worktree),
    )
    # What the merged code started and left running (without the sandbox) ends with it.
    leftovers = await core.io(
        kill_orphans, [core.job_worktree], started_after=gated_at - CREATE_TIME_SLACK_SECS
    )
    if leftovers:
        core.notice(f"integration gate: stopped what it left running: {', '.join(leftovers)}")
    state.integration = "passed" if result.passed else "failed"
    state.integration_report = result.report()
    core.save()
    core.ctx.bus.emit(
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
        return finish(core, "success", "all nodes merged; " + result.report())
    return finish(core, "failed", result.report())


# Why a node did not merge, in the user's words: a cancel is the user's, not a failure.
NOT_MERGED = {
    NodeStatus.cancelled: "cancelled by request",
    NodeStatus.failed: "failed",
    NodeStatus.blocked: "blocked by a node that did not merge",
    NodeStatus.skipped: "skipped by request",
}


def not_merged_message(statuses: dict[str, NodeStatus]) -> str:
    """The run ended with nodes unmerged: which, and why, then what resumes them."""
    parts = []
    for status, why in NOT_MERGED.items():
        ids = [nid for nid, s in statuses.items() if s == status]
        if ids:
            parts.append(f"{why}: {', '.join(ids)}")
    rest = [nid for nid, s in statuses.items() if s != NodeStatus.done and s not in NOT_MERGED]
    if rest:
        parts.append(f"not merged: {', '.join(rest)}")
    return (
        "; ".join(parts) + " — the other nodes' work is merged on the job branch; "
        "`director retry <node>` then `director run` finishes the rest"
    )


def finish(core: RunCore, outcome: Outcome, message: str) -> RunOutcome:
    """Write the final state and metrics, emit ``RunFinished``, release the run's threads."""
    wall = time.monotonic() - core.started
    state, plan = core.state, core.plan
    state.finished_at = time.time()
    if outcome == "stopped":
        state.stopped_reason = core.stop_reason
    core.save(durable=True)
    core.writer.flush()
    core.writer.close()
    core.git_pool.shutdown(wait=False)
    record = run_record(
        plan, state, core.config, outcome=outcome, wall_secs=wall, scripted=core.ctx.scripted
    )
    write_run_metrics(core.store, plan, state, record)
    core.ctx.bus.emit(
        RunFinished(job_id=plan.job_id, outcome=outcome, message=message, cost_usd=state.cost_usd)
    )

    def by(status: NodeStatus) -> list[str]:
        return [nid for nid in plan.ids if state.nodes[nid].status == status]

    return RunOutcome(
        job_id=plan.job_id,
        outcome=outcome,
        message=message,
        n_nodes=len(plan.nodes),
        done=by(NodeStatus.done),
        failed=by(NodeStatus.failed),
        blocked=by(NodeStatus.blocked),
        skipped=by(NodeStatus.skipped),
        pending=by(NodeStatus.pending),
        escalated=[nid for nid in plan.ids if state.nodes[nid].escalated],
        executor_tier_pct=record["executor_tier_pct"],
        stage_two_trigger_rate=record["stage_two_trigger_rate"],
        escalation_rate=record["escalation_rate"],
        integration=state.integration,
        integration_ok=bool(record["integration_ok"]),
        integration_report=state.integration_report,
        cost_total=state.cost_usd,
        wall_secs=wall,
        recovered=list(state.recovered),
    )
