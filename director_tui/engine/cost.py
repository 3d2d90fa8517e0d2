"""Pricing and the cost ledger (``costs.jsonl``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from director_tui.engine.agents.base import AgentResult
from director_tui.engine.config import Config
from director_tui.engine.store import append_jsonl, read_jsonl
from director_tui.engine.usage import TokenUsage


class _CallKey(BaseModel):
    ts: float
    call_id: str
    role: str
    tier: str
    node_id: str | None = None
    attempt: int = 0


# pydantic orders fields base-last-in-MRO first: _CallKey's, then the token counts, then
# ours — the order of costs.jsonl's keys since the first version.
class CostRecord(TokenUsage, _CallKey):
    """One line of ``costs.jsonl``: one agent call, its token counts and its price."""

    cost_usd: float = 0.0
    priced: bool = True
    cost_source: str = "provider"  # provider | pricing | unpriced | scripted
    exit_reason: str = "ok"
    scripted: bool = False
    duration_secs: float = 0.0


def price(result: AgentResult, config: Config) -> tuple[float, bool, str]:
    """(cost, priced, source). The provider's own cost wins; then ``[pricing]``; a tier
    with neither is unpriced — reported as such, never silently $0."""
    if result.cost_usd is not None:
        return result.cost_usd, True, "scripted" if result.scripted else "provider"
    table = config.pricing.get(result.tier)
    if table is not None:
        tokens = result.tokens
        cost = (tokens.input_tokens + tokens.cache_read_tokens) * table.input / 1e6 + (
            tokens.output_tokens + tokens.reasoning_tokens
        ) * table.output / 1e6
        return cost, True, "pricing"
    if result.tokens.total == 0:
        return 0.0, True, "provider"  # nothing used, nothing owed
    return 0.0, False, "unpriced"


def cost_text(cost_usd: float, unpriced_calls: int = 0, digits: int = 4) -> str:
    """A cost as every view shows it: calls nobody priced are never shown as $0."""
    if unpriced_calls and cost_usd == 0:
        return "unpriced"
    text = f"${cost_usd:.{digits}f}"
    return f"{text} + {unpriced_calls} unpriced" if unpriced_calls else text


def record(
    ledger: Path,
    result: AgentResult,
    config: Config,
    *,
    node_id: str | None,
    attempt: int,
    append: Callable[[Path, dict[str, Any]], None] = append_jsonl,
) -> CostRecord:
    cost, priced, source = price(result, config)
    entry = CostRecord(
        ts=time.time(),
        call_id=result.call_id,
        role=result.role,
        tier=result.tier,
        node_id=node_id,
        attempt=attempt,
        **result.tokens.counts(),
        cost_usd=cost,
        priced=priced,
        cost_source=source,
        exit_reason=result.exit_reason.value,
        scripted=result.scripted,
        duration_secs=result.duration_secs,
    )
    append(ledger, entry.model_dump(mode="json") | director_cli_fields(entry))
    return entry


def director_cli_fields(entry: CostRecord) -> dict[str, object]:
    """director-cli's names for the same call (its ``CostEntry``: role, model, input,
    output, cost, node, ts), written beside ours so its users' scripts that read
    ``costs.jsonl`` keep working. Ours are never renamed; readers of ours ignore these."""
    return {
        "model": entry.tier.partition("/")[2] or entry.tier,
        "input": entry.input_tokens,
        "output": entry.output_tokens,
        "cost": entry.cost_usd,
        "node": entry.node_id,
    }


def total(ledger: Path) -> float:
    return sum(float(r.get("cost_usd") or 0.0) for r in read_jsonl(ledger))
