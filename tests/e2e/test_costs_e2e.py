"""Cost accounting with the REAL OpenCode binary: each finished step's usage arrives live
(the run board moves with it), and a call cancelled after a finished step is charged
that step in costs.jsonl."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import OpenCodeEnv

from director_tui.engine.context import EngineContext
from director_tui.engine.events import AgentActivity, AgentFinished, EventBase
from director_tui.engine.store import Store, read_jsonl

pytestmark = pytest.mark.e2e


async def test_a_cancelled_call_is_charged_the_steps_it_finished(
    opencode_env: OpenCodeEnv, git_repo: Path
) -> None:
    setup = opencode_env(
        {
            "executor": [
                {
                    "tool_calls": [
                        {"name": "bash", "arguments": {"command": "echo hi", "description": "x"}}
                    ],
                    "usage": {"input": 1000, "output": 100},
                },
                {"text": "thinking it over " * 3, "hang_after": 2},
            ]
        }
    )
    ctx = EngineContext.open(Store(git_repo), setup.config)
    seen: list[EventBase] = []
    ctx.bus.subscribe(seen.append)
    call = asyncio.create_task(ctx.call_agent("executor", "do it", git_repo, node_id="n"))
    while not any(isinstance(e, AgentActivity) and e.usage for e in seen):
        assert not call.done(), call
        await asyncio.sleep(0.1)
    step = next(e for e in seen if isinstance(e, AgentActivity) and e.usage)
    # Live: the step's usage came while the call was still running.
    assert step.usage is not None and step.usage.input_tokens == 1000 and step.cost_usd > 0
    assert not any(isinstance(e, AgentFinished) for e in seen)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    record = read_jsonl(ctx.store.costs)[-1]
    assert record["exit_reason"] == "cancelled"
    assert record["input_tokens"] == 1000 and record["output_tokens"] == 100
    assert record["cost_usd"] == pytest.approx(step.cost_usd) and record["cost"] > 0
    finished = [e for e in seen if isinstance(e, AgentFinished)]
    assert finished and finished[-1].exit_reason == "cancelled"
