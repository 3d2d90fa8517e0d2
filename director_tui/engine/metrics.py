"""What ``director status`` shows: one summary built from the store alone."""

from __future__ import annotations

from typing import Any

from director_tui.engine.jobs import list_jobs
from director_tui.engine.models import Plan, PlanStage, RunState
from director_tui.engine.store import Store, read_jsonl


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
            st = state.nodes.get(node.id) if state else None
            nodes.append(
                {
                    "id": node.id,
                    "title": node.title,
                    "depends_on": node.depends_on,
                    "status": st.status.value if st else "pending",
                    "attempts": st.attempts if st else 0,
                    "tier": st.tier if st else "",
                    "escalated": st.escalated if st else False,
                    "flaky": st.flaky if st else False,
                    "watch_it_fail": st.watch_it_fail if st else "unknown",
                    "cost_usd": round(st.cost_usd, 6) if st else 0.0,
                    "tokens": st.tokens if st else 0,
                    "last_error": st.last_error if st else "",
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
