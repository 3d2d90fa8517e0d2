"""Token counts: one model behind the agent result, costs.jsonl, state.json and metrics.jsonl,
whose on-disk keys stay what they always were."""

from __future__ import annotations

import json

from director_tui.engine.agents.base import TokenUsage
from director_tui.engine.cost import CostRecord
from director_tui.engine.models import RoleUsage

COUNTS = {
    "input_tokens": 5,
    "output_tokens": 6,
    "reasoning_tokens": 7,
    "cache_read_tokens": 8,
    "cache_write_tokens": 9,
}


def test_costs_jsonl_keys_keep_their_names_and_order() -> None:
    record = CostRecord(ts=1.0, call_id="c", role="executor", tier="t", attempt=2, **COUNTS)
    assert list(record.model_dump()) == [
        "ts", "call_id", "role", "tier", "node_id", "attempt", *COUNTS, "cost_usd", "priced",
        "cost_source", "exit_reason", "scripted", "duration_secs",
    ]  # fmt: skip
    line = json.dumps(record.model_dump(mode="json"))
    assert CostRecord.model_validate_json(line) == record


def test_role_usage_adds_a_call_and_keeps_state_json_keys() -> None:
    usage = RoleUsage()
    usage.add(CostRecord(ts=1.0, call_id="c", role="executor", tier="t", **COUNTS))
    usage.add(TokenUsage(input_tokens=1))
    assert usage.counts() == {**COUNTS, "input_tokens": 6}
    assert usage.tokens == 6 + 6 + 7  # input, output, reasoning: cache traffic is not counted
    assert list(usage.model_dump()) == [*COUNTS, "cost_usd", "calls", "unpriced_calls"]


def test_scripts_name_the_counts_without_the_suffix() -> None:
    # the scripted provider's scripts (and director-cli's ledgers) say {"input": 100}
    assert TokenUsage.model_validate({"input": 100, "output": 20}).total == 120
    both = TokenUsage.model_validate({"input": 1, "input_tokens": 2})
    assert both.input_tokens == 2
