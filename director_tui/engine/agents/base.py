"""One protocol for every agent CLI.

``run(call, on_activity) -> AgentResult``: run a role with a tier, a prompt and a working
directory under watchdogs, streaming what the agent does to ``on_activity`` while it runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from director_tui.engine.config import Sampling
from director_tui.engine.events import AgentActivity
from director_tui.engine.sandbox import SandboxSpec
from director_tui.engine.usage import TokenUsage


class ExitReason(StrEnum):
    ok = "ok"
    timeout = "timeout"  # the overall node_timeout_secs fired
    idle = "idle"  # no event for idle_timeout_secs
    api_error = "api_error"  # the model API answered with an error
    empty_output = "empty_output"  # no text and no tool use: nothing happened
    crashed = "crashed"  # the CLI died or exited non-zero without an API error
    binary_missing = "binary_missing"  # the CLI is not installed or too old
    cancelled = "cancelled"  # a control request (or shutdown) stopped it
    # The agent server (OpenCode's `opencode serve`) died under the call: nothing the agent
    # did is judged; the call runs again on the restarted server, not counted as an attempt.
    server_lost = "server_lost"


class ToolCall(BaseModel):
    tool: str
    status: str = ""  # completed | error
    input: dict[str, object] = Field(default_factory=dict)
    output: str = ""  # truncated
    at: float = 0.0


def new_call_id(role: str) -> str:
    return f"{role}-{uuid.uuid4().hex[:10]}"


class AgentCall(BaseModel):
    role: str  # explorer, brainstorm, planner, critic, test_author, executor, reviewer
    tier: str  # "<provider>/<model-ref>"
    prompt: str
    cwd: Path
    log_dir: Path  # transcripts go to <log_dir>/<call_id>.jsonl (+ .stderr)
    timeout_secs: float = 900
    idle_timeout_secs: float = 300
    title: str = ""
    node_id: str | None = None
    attempt: int = 0
    call_id: str = ""
    sampling: Sampling = Field(default_factory=Sampling)
    # Repo root: where the scripted provider resolves its script, and where providers
    # may read user config. Never written to.
    repo: Path | None = None
    # Set when the OS sandbox is on: the driver runs its CLI (the scripted provider its
    # commands) inside it, and refuses its own writes outside ``cwd``.
    sandbox: SandboxSpec | None = None

    def model_post_init(self, _context: object) -> None:
        if not self.call_id:
            self.call_id = new_call_id(self.role)

    @property
    def provider(self) -> str:
        return self.tier.partition("/")[0]

    @property
    def model(self) -> str:
        return self.tier.partition("/")[2]

    def activity(self, kind: str, **detail: Any) -> AgentActivity:
        """Live activity of this call; ``detail``: the rest of :class:`AgentActivity`
        (tool, status, summary, tokens, cost_usd, usage)."""
        return AgentActivity(
            call_id=self.call_id, role=self.role, node_id=self.node_id, kind=kind, **detail
        )


# How many times one node's attempt may be run again, uncharged, because the agent CLI's
# own machinery crashed (harness_error): a CLI that always crashes still runs out.
MAX_HARNESS_CRASHES = 2


class AgentResult(BaseModel):
    call_id: str
    role: str
    tier: str
    exit_reason: ExitReason
    text: str = ""
    message: str = ""  # why it failed, in words a human can act on
    tokens: TokenUsage = Field(default_factory=TokenUsage)
    cost_usd: float | None = None  # None: the provider reported no cost
    tool_calls: list[ToolCall] = Field(default_factory=list)
    transcript_path: Path | None = None
    stderr_path: Path | None = None
    duration_secs: float = 0.0
    scripted: bool = False
    # The CLI's own machinery failed (OpenCode's database at its first start), not the
    # agent's work: the run does not charge the attempt.
    harness_error: bool = False
    # Every process the call started has ended with it: it ran in the sandbox's PID
    # namespace (bwrap --unshare-pid), which the kernel empties when the namespace's
    # first process ends, and that ended on its own before the call returned. False
    # whenever that is not known (no sandbox, a process killed by us, a server's session
    # whose tools live below the server): the run then looks for leftovers itself.
    processes_ended: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_reason == ExitReason.ok


OnActivity = Callable[[AgentActivity], None]


class AgentProvider(Protocol):
    name: str

    async def run(self, call: AgentCall, on_activity: OnActivity) -> AgentResult: ...
