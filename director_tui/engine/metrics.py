"""``metrics.jsonl`` records and what ``director status`` shows.

Every run (each ``director run`` invocation that gets to schedule) appends one
``kind: "node"`` record per node and one ``kind: "run"`` summary, with director-cli's
field names where it has them (``executor_tier_pct``, ``stage_two_trigger_rate``,
``cost_total``, ``integration_ok``, ``n_nodes``) and our own beside them
(``executor_tier_completion_rate``, ``escalation_rate``, ...). ``director status`` and
``director bench`` read the last run record.
"""

from __future__ import annotations

import time
from typing import Any

from director_tui.engine.config import Config, split_tier
from director_tui.engine.jobs import list_jobs
from director_tui.engine.models import NodeState, NodeStatus, Plan, PlanStage, RunState
from director_tui.engine.store import Store, append_jsonl_many, read_jsonl


def node_record(job_id: str, node_id: str, st: NodeState) -> dict[str, Any]:
    return {
        "kind": "node",
        "ts": time.time(),
        "job_id": job_id,
        "node": node_id,
        "node_id": node_id,
        "status": st.status.value,
        "tier": st.tier,
        "model": split_tier(st.tier)[1] if st.tier else "",
        "attempts": st.attempts,
        "escalated": st.escalated,
        "stage_two": st.stage_two,
        "review_blocking": bool(st.review and st.review.blocking),
        "review_error": st.review_error,
        "roles": {
            role: {
                **u.counts(),
                "tokens": u.tokens,
                "cost_usd": round(u.cost_usd, 6),
                "calls": u.calls,
                "unpriced_calls": u.unpriced_calls,
            }
            for role, u in st.usage.items()
        },
        "tokens": st.tokens,
        "cost_usd": round(st.cost_usd, 6),
        "wall_secs": round(st.wall_secs, 3),
        "agent_secs": round(st.agent_secs, 3),
        "test_secs": round(st.test_secs, 3),
        "watch_it_fail": st.watch_it_fail,
        "watch_it_fail_attempts": st.watch_it_fail_attempts,
        "flake": st.flake,
        "flaky": st.flaky,
        "conflicts": st.conflicts,
        "changed_files": st.changed_files,
    }


def run_record(
    plan: Plan,
    state: RunState,
    config: Config,
    *,
    outcome: str,
    wall_secs: float,
    scripted: bool,
) -> dict[str, Any]:
    nodes = [state.nodes.get(n.id, NodeState()) for n in plan.nodes]
    n = len(nodes) or 1
    done = [st for st in nodes if st.status == NodeStatus.done]
    on_executor_tier = [st for st in done if not st.escalated]
    escalated = [st for st in nodes if st.escalated]
    stage_two = [st for st in nodes if st.stage_two]
    completion = len(on_executor_tier) / n
    return {
        "kind": "run",
        "ts": time.time(),
        "job_id": state.job_id,
        "job_branch": state.job_branch,
        "outcome": outcome,
        "n_nodes": len(nodes),
        "done": len(done),
        "failed": sum(1 for st in nodes if st.status == NodeStatus.failed),
        "blocked": sum(1 for st in nodes if st.status == NodeStatus.blocked),
        "skipped": sum(1 for st in nodes if st.status == NodeStatus.skipped),
        "executor_tier_completion_rate": round(completion, 4),
        "executor_tier_pct": round(100 * completion, 1),
        "escalated": len(escalated),
        "escalation_rate": round(len(escalated) / n, 4),
        "stage_two_trigger_rate": round(len(stage_two) / n, 4),
        "watch_it_fail_observed": sum(1 for st in nodes if st.watch_it_fail == "observed"),
        "flaky_nodes": sum(1 for st in nodes if st.flaky),
        "integration": state.integration,
        "integration_ok": state.integration in ("passed", "skipped") and len(done) == len(nodes),
        "wall_secs": round(wall_secs, 3),
        "cost_usd": round(state.cost_usd, 6),
        "cost_total": round(state.cost_usd, 6),
        "tiers": config.tier_map(),
        "scripted": scripted,
    }


def write_run_metrics(store: Store, plan: Plan, state: RunState, record: dict[str, Any]) -> None:
    """Append the node records, then the run's (from :func:`run_record`): one write and
    one fsync for them all (one per record cost ~3 ms per node at the end of a run)."""
    nodes = [
        node_record(state.job_id, node.id, state.nodes.get(node.id, NodeState()))
        for node in plan.nodes
    ]
    append_jsonl_many(store.metrics, [*nodes, record])


def status_summary(store: Store) -> dict[str, Any]:
    stage = store.read_model(store.plan_stage, PlanStage)
    plan = store.read_model(store.plan, Plan)
    state = store.read_model(store.state, RunState)
    costs = read_jsonl(store.costs)
    metrics = read_jsonl(store.metrics)
    run_record = next((m for m in reversed(metrics) if m.get("kind") == "run"), None)
    nodes: list[dict[str, Any]] = []
    if plan is not None:
        for node in plan.nodes:
            # A node the run has not reached yet shows NodeState's defaults (pending, 0 …).
            st = (state.nodes.get(node.id) if state else None) or NodeState()
            nodes.append(
                {
                    "id": node.id,
                    "title": node.title,
                    "depends_on": node.depends_on,
                    "status": st.status.value,
                    "attempts": st.attempts,
                    "tier": st.tier,
                    "escalated": st.escalated,
                    "flaky": st.flaky,
                    "watch_it_fail": st.watch_it_fail,
                    "watch_it_fail_attempts": st.watch_it_fail_attempts,
                    "cost_usd": round(st.cost_usd, 6),
                    "unpriced_calls": sum(u.unpriced_calls for u in st.usage.values()),
                    "tokens": st.tokens,
                    "last_error": st.last_error,
                    "stage_two": st.stage_two,
                    "flake": st.flake,
                    "review": st.review.model_dump(mode="json") if st.review else None,
                    "review_error": st.review_error,
                    "wall_secs": round(st.wall_secs, 2),
                    "branch": st.branch,
                    "worktree": st.worktree,
                    "changed_files": st.changed_files,
                }
            )
    holder = store.lock_holder()
    return {
        "repo": str(store.repo),
        "job": stage.model_dump(mode="json") if stage else None,
        "plan": {"job_id": plan.job_id, "job_branch": plan.job_branch, "nodes": len(plan.nodes)}
        if plan
        else None,
        "run": {
            "paused": state.paused,
            "cancelled": state.cancelled,
            "stopped_reason": state.stopped_reason,
            "integration": state.integration,
            "integration_report": state.integration_report,
            "counts": state.counts(),
            "recovered": state.recovered,
            "finished": state.finished_at is not None,
            "cost_usd": round(state.cost_usd, 6),
            "controls": [c.model_dump(mode="json") for c in state.controls[-20:]],
            "started_at": state.started_at,  # the latest (re)start: older controls are history
        }
        if state
        else None,
        "nodes": nodes,
        "cost": {
            "total_usd": round(sum(float(c.get("cost_usd") or 0) for c in costs), 6),
            "calls": len(costs),
            "unpriced_calls": sum(1 for c in costs if not c.get("priced", True)),
        },
        "metrics": run_record,
        "running": holder,
        "jobs": [j.model_dump() for j in list_jobs(store)],
    }
