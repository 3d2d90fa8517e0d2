"""plan.json: a planner's answer parsed into a plan, reading it, and the snapshot of the
plan as director last produced it (``plan.generated.json``, to see human edits at Gate 2)."""

from __future__ import annotations

from pydantic import ValidationError

from director_tui.engine import dag
from director_tui.engine.errors import UsageError
from director_tui.engine.jsonextract import JsonExtractError, extract_json_object
from director_tui.engine.models import Plan
from director_tui.engine.plan.common import read_text
from director_tui.engine.store import Store, atomic_write_text

PLAN_GENERATED = "plan.generated.json"
# The human's edited plan, kept when the critic revised it (put back by restore_edited_plan).
PLAN_EDITED = "plan.edited.json"


def parse_plan(text: str) -> tuple[Plan | None, list[str]]:
    """A plan from a planner's answer and every reason it cannot run (empty when valid)."""
    try:
        data = extract_json_object(text, ("nodes",))
    except JsonExtractError as exc:
        return None, [str(exc)]
    try:
        plan = Plan.model_validate({"nodes": data.get("nodes")})
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            errors.append(f"{loc}: {err['msg']}")
        return None, errors
    for node in plan.nodes:
        # Hashes and red output are facts director establishes, never a model's claims.
        node.test_hashes = {}
        node.red_output = ""
    return plan, dag.validate(plan)


def read_plan(store: Store) -> Plan:
    plan = store.read_model(store.plan, Plan)
    if plan is None:
        raise UsageError(
            ".director/plan.json is missing", hint="`director plan --continue` re-plans"
        )
    return plan


def snapshot_plan(store: Store) -> None:
    atomic_write_text(store.root / PLAN_GENERATED, read_text(store.plan))
