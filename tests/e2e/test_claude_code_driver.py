"""The Claude Code driver against the real Claude Code 2.1.332 and the fake Anthropic
Messages endpoint of the project's fake model server."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from fake_model_server import FakeModelServer, Script

from director_tui.engine import sandbox
from director_tui.engine.agents.base import AgentCall, ExitReason
from director_tui.engine.agents.claude_code import ClaudeCodeProvider
from director_tui.engine.config import ROLES, Config
from director_tui.engine.context import EngineContext
from director_tui.engine.events import AgentActivity
from director_tui.engine.store import Store

pytestmark = pytest.mark.e2e
ClaudeEnv = Callable[[Script], FakeModelServer]


def make_call(role: str, cwd: Path, tmp_path: Path) -> AgentCall:
    return AgentCall(
        role=role,
        tier="claude-code/fake-model",
        prompt="-p looks like a flag but is the prompt",
        cwd=cwd,
        log_dir=tmp_path / "logs",
        idle_timeout_secs=60,
        timeout_secs=120,
    )


async def test_executor_writes_runs_and_reports_live(
    claude_env: ClaudeEnv, git_repo: Path, tmp_path: Path
) -> None:
    server = claude_env(
        {
            "fake-model": [
                {
                    "text": "Writing it.",
                    "tool_calls": [
                        {
                            "name": "Write",
                            "arguments": {"file_path": "{cwd}/hello.txt", "content": "hi\n"},
                        }
                    ],
                    "usage": {"input": 100, "output": 10},
                },
                {
                    "tool_calls": [
                        {
                            "name": "Bash",
                            "arguments": {
                                "command": "cat hello.txt > copy.txt",
                                "description": "c",
                            },
                        }
                    ],
                    "usage": {"input": 200, "output": 20},
                },
                {"text": "Both done.", "usage": {"input": 300, "output": 30}},
            ]
        }
    )
    seen: list[tuple[float, AgentActivity]] = []
    result = await ClaudeCodeProvider().run(
        make_call("executor", git_repo, tmp_path), lambda a: seen.append((time.monotonic(), a))
    )
    done = time.monotonic()

    assert result.exit_reason == ExitReason.ok, result.message
    assert (git_repo / "hello.txt").read_text() == "hi\n"
    assert (git_repo / "copy.txt").read_text() == "hi\n"
    assert [(c.tool, c.status) for c in result.tool_calls] == [
        ("write", "completed"),
        ("bash", "completed"),
    ]
    assert result.text == "Both done."
    assert (result.tokens.input_tokens, result.tokens.output_tokens) == (600, 60)
    assert result.cost_usd is not None and result.cost_usd > 0
    tools = [t for t, a in seen if a.kind == "tool"]
    assert tools and tools[0] < done
    system = str(server.requests[0].body.get("system"))
    assert "Role: executor" in system


async def test_read_only_role_cannot_write(
    claude_env: ClaudeEnv, git_repo: Path, tmp_path: Path
) -> None:
    claude_env(
        {
            "fake-model": [
                {
                    "tool_calls": [
                        {
                            "name": "Write",
                            "arguments": {"file_path": "{cwd}/pwned.txt", "content": "x\n"},
                        }
                    ],
                    "usage": {"input": 10, "output": 5},
                },
                {
                    "tool_calls": [
                        {
                            "name": "Bash",
                            "arguments": {"command": "touch pwned2.txt", "description": "t"},
                        }
                    ],
                    "usage": {"input": 10, "output": 5},
                },
                {"text": "Could not.", "usage": {"input": 10, "output": 5}},
            ]
        }
    )
    result = await ClaudeCodeProvider().run(
        make_call("explorer", git_repo, tmp_path), lambda a: None
    )

    assert not (git_repo / "pwned.txt").exists()
    assert not (git_repo / "pwned2.txt").exists()
    assert [c.status for c in result.tool_calls] == ["error", "error"]
    assert result.text == "Could not."


async def test_an_executor_in_directors_sandbox_writes_its_worktree_and_nothing_else(
    claude_env: ClaudeEnv, git_repo: Path
) -> None:
    """Through EngineContext, as a run calls it, with director's sandbox on: the Bash
    tool writes the worktree; its writes to /tmp and the home land in the sandbox's own
    empty ones and /etc is read-only (Claude Code's own sandbox stays off)."""
    available = sandbox.probe()
    assert available.ok, f"this test needs bwrap (make test installs it): {available.reason}"
    marker = f"director-claude-{uuid.uuid4().hex[:8]}"
    escape = (
        f'echo hi > made.txt; echo x > /tmp/{marker}; echo x > "$HOME/{marker}"; '
        f"E=/et; touch ${{E}}c/{marker} 2>&1; echo tried"
    )
    bash = {"name": "Bash", "arguments": {"command": escape, "description": "d"}}
    claude_env(
        {
            "fake-model": [
                {"tool_calls": [bash], "usage": {"input": 100, "output": 10}},
                {"text": "Done.", "usage": {"input": 200, "output": 10}},
            ]
        }
    )
    config = Config.model_validate({"tiers": dict.fromkeys(ROLES, "claude-code/fake-model")})
    ctx = EngineContext.open(Store(git_repo), config)
    try:
        result, _ = await ctx.call_agent("executor", "make made.txt", git_repo)
    finally:
        Path("/etc", marker).unlink(missing_ok=True)
    assert ctx.sandbox.enabled
    assert result.exit_reason == ExitReason.ok, result.message
    assert (git_repo / "made.txt").read_text() == "hi\n"
    assert not Path("/tmp", marker).exists()
    assert not (Path(os.environ["DIRECTOR_AGENT_HOME"]) / marker).exists()
    assert not Path("/etc", marker).exists()
    assert "Read-only file system" in result.tool_calls[0].output
