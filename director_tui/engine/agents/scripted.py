"""The scripted provider: replays a script instead of calling a model.

It powers the demo and the fast tests, drives the same engine paths as a real agent
(files really change in the worktree, commands really run), and labels everything it
produces as scripted. A script is JSON::

    {"calls": [
      {"role": "executor", "node": "parse", "attempt": 1, "model": "cheap",
       "steps": [{"run": "pytest -q tests/test_parse.py"},
                 {"step_usage": {"input": 800, "output": 90}, "step_cost": 0.002},
                 {"write": "src/parse.py", "content": "..."},
                 {"sleep": 0.5}, {"text": "thinking out loud"}],
       "text": "final answer", "tokens": {"input": 1200, "output": 300},
       "cost": 0.004, "exit": "ok"}
    ]}

The first entry whose given keys (role, node, attempt, model, prompt_contains) all match
the call is played. ``"hang": true`` sleeps until a watchdog fires.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from director_tui.engine.agents.base import (
    AgentCall,
    AgentResult,
    ExitReason,
    OnActivity,
    ToolCall,
)
from director_tui.engine.control_channel import agent_marker
from director_tui.engine.proc import run_command
from director_tui.engine.prompts import READ_ONLY_ROLES
from director_tui.engine.usage import TokenUsage

# A command's output as the transcript keeps it (its last lines), as a CLI's would.
TRANSCRIPT_OUTPUT_LINES = 200


class ScriptStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    write: str | None = None
    content: str = ""
    delete: str | None = None
    run: str | None = None
    read: str | None = None
    text: str | None = None
    sleep: float | None = None
    # A model step that finished, billed: {"step_usage": {"input": 100}, "step_cost": 0.01}.
    step_usage: TokenUsage | None = None
    step_cost: float = 0.0


class ScriptEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str | None = None
    node: str | None = None
    attempt: int | None = None
    model: str | None = None
    prompt_contains: str | None = None
    steps: list[ScriptStep] = Field(default_factory=list)
    text: str = ""
    tokens: TokenUsage = Field(default_factory=TokenUsage)
    cost: float | None = None
    exit: ExitReason = ExitReason.ok
    message: str = ""
    hang: bool = False

    def matches(self, call: AgentCall) -> bool:
        role = call.role.replace("-", "_")
        return (
            (self.role is None or self.role.replace("-", "_") == role)
            and (self.node is None or self.node == call.node_id)
            and (self.attempt is None or self.attempt == call.attempt)
            and (self.model is None or self.model == call.model)
            and (self.prompt_contains is None or self.prompt_contains in call.prompt)
        )


class Script(BaseModel):
    model_config = ConfigDict(extra="forbid")

    calls: list[ScriptEntry] = Field(default_factory=list)

    def find(self, call: AgentCall) -> ScriptEntry | None:
        return next((entry for entry in self.calls if entry.matches(call)), None)


def load_script(path: Path) -> Script:
    return Script.model_validate_json(path.read_bytes())


class _Recording:
    """One played call's transcript and live activity, each marked scripted, and what
    its finished steps reported (a call that times out owes it)."""

    def __init__(self, call: AgentCall, on_activity: OnActivity) -> None:
        self.call, self.on_activity = call, on_activity
        self.started = time.monotonic()
        call.log_dir.mkdir(parents=True, exist_ok=True)
        self.transcript = call.log_dir / f"{call.call_id}.jsonl"
        self.records: list[dict[str, Any]] = []
        self.finished = TokenUsage()
        self.finished_cost: list[float] = []
        self.killed_a_command = False  # a command's timeout: its sandbox ends unwaited

    def emit(
        self, kind: str, tool: str = "", status: str = "", summary: str = "", **detail: Any
    ) -> None:
        """Live activity with ``summary``; the transcript record also keeps ``detail``
        (a tool's input and output, a command's exit code, the whole text), so the
        node's attempts read as a real agent's do."""
        self._add(kind, tool, status, summary, detail=detail)

    def step_finished(self, usage: TokenUsage, cost_usd: float) -> None:
        """A model step that finished, billed: a call stopped after it still owes it."""
        self.finished.add(usage)
        self.finished_cost.append(cost_usd)
        self._add("step", "", "finish", f"{usage.total} tokens", usage, cost_usd)

    def _add(
        self,
        kind: str,
        tool: str,
        status: str,
        summary: str,
        usage: TokenUsage | None = None,
        cost_usd: float = 0.0,
        detail: dict[str, Any] | None = None,
    ) -> None:
        record: dict[str, Any] = {
            "type": kind,
            "tool": tool,
            "status": status,
            "summary": summary,
            "timestamp": int(time.time() * 1000),
            "scripted": True,
        }
        if usage is not None:
            record["usage"] = usage.model_dump()
            record["cost"] = cost_usd
        self.records.append(record | (detail or {}))
        tokens = usage.total if usage else 0
        activity = self.call.activity(
            kind,
            tool=tool,
            status=status,
            summary=summary,
            tokens=tokens,
            cost_usd=cost_usd,
            usage=usage,
        )
        self.on_activity(activity)

    def result(self, reason: ExitReason, **kw: Any) -> AgentResult:
        self.transcript.write_text("".join(json.dumps(r) + "\n" for r in self.records))
        return AgentResult(
            call_id=self.call.call_id,
            role=self.call.role,
            tier=self.call.tier,
            exit_reason=reason,
            transcript_path=self.transcript,
            duration_secs=time.monotonic() - self.started,
            scripted=True,
            **kw,
        )


class ScriptedProvider:
    """Plays :class:`Script` entries. ``script_path`` is fixed, or found per call."""

    name = "scripted"

    def __init__(self, script_path: Path | None = None, script: Script | None = None) -> None:
        self.script_path = script_path
        self._script = script

    def _script_for(self, call: AgentCall) -> Script:
        if self._script is not None:
            return self._script
        path = self.script_path
        if path is None:
            raise FileNotFoundError("no script configured for the scripted provider")
        if not path.is_absolute() and call.repo is not None:
            path = call.repo / path
        return load_script(path)

    async def run(self, call: AgentCall, on_activity: OnActivity) -> AgentResult:
        record = _Recording(call, on_activity)
        emit, result = record.emit, record.result
        try:
            script = self._script_for(call)
        except (OSError, ValueError) as exc:
            return result(ExitReason.crashed, message=f"scripted provider: bad script: {exc}")
        entry = script.find(call)
        if entry is None:
            return result(
                ExitReason.crashed,
                message=(
                    f"scripted provider: no script entry for role={call.role} "
                    f"node={call.node_id} attempt={call.attempt} model={call.model}"
                ),
            )
        tool_calls: list[ToolCall] = []
        try:
            await asyncio.wait_for(
                self._play(call, entry, record, tool_calls), timeout=call.timeout_secs
            )
        except TimeoutError:
            emit("error", summary=f"timed out after {call.timeout_secs:g}s")
            return result(
                ExitReason.idle
                if entry.hang and call.idle_timeout_secs < call.timeout_secs
                else ExitReason.timeout,
                tool_calls=tool_calls,
                message="scripted agent hung",
                tokens=record.finished,
                cost_usd=sum(record.finished_cost) if record.finished_cost else None,
            )
        if entry.exit != ExitReason.ok:
            emit("error", summary=entry.message or entry.exit.value)
            return result(
                entry.exit,
                message=entry.message or f"scripted {entry.exit.value}",
                tokens=entry.tokens,
                cost_usd=entry.cost,
                tool_calls=tool_calls,
            )
        if entry.text:
            emit("text", summary=entry.text[:200], text=entry.text)
        emit("step", summary=f"{entry.tokens.total} tokens")
        return result(
            ExitReason.ok,
            text=entry.text,
            tokens=entry.tokens,
            cost_usd=entry.cost,
            tool_calls=tool_calls,
            # Its commands ran each in the sandbox to their own end (run_command waited
            # for each): what they started went with their PID namespaces.
            processes_ended=call.sandbox is not None and not record.killed_a_command,
        )

    async def _play(
        self,
        call: AgentCall,
        entry: ScriptEntry,
        record: _Recording,
        tool_calls: list[ToolCall],
    ) -> None:
        emit = record.emit
        read_only = call.role.replace("-", "_") in READ_ONLY_ROLES
        for step in entry.steps:
            if step.sleep is not None:
                await asyncio.sleep(step.sleep)
            if step.step_usage is not None:
                record.step_finished(step.step_usage, step.step_cost)
            if step.text is not None:
                emit("text", summary=step.text[:200], text=step.text)
            if step.read is not None:
                path = call.cwd / step.read
                ok = path.is_file()
                tool_calls.append(
                    ToolCall(
                        tool="read",
                        status="completed" if ok else "error",
                        input={"filePath": str(path)},
                        at=time.time(),
                    )
                )
                emit(
                    "tool",
                    "read",
                    "completed" if ok else "error",
                    step.read,
                    input={"filePath": step.read},
                )
            if step.write is not None:
                target = call.cwd / step.write
                if read_only or _sandbox_refuses(call, target):
                    status = "error"
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(step.content, encoding="utf-8")
                    status = "completed"
                tool_calls.append(
                    ToolCall(
                        tool="write", status=status, input={"filePath": str(target)}, at=time.time()
                    )
                )
                emit("tool", "write", status, step.write, input={"filePath": step.write})
            if step.delete is not None:
                refused = read_only or _sandbox_refuses(call, call.cwd / step.delete)
                status = "error" if refused else "completed"
                if not refused:
                    (call.cwd / step.delete).unlink(missing_ok=True)
                tool_calls.append(
                    ToolCall(
                        tool="bash",
                        status=status,
                        input={"command": f"rm {step.delete}"},
                        at=time.time(),
                    )
                )
                emit(
                    "tool",
                    "bash",
                    status,
                    f"rm {step.delete}",
                    input={"command": f"rm {step.delete}"},
                )
            if step.run is not None:
                if read_only:
                    tool_calls.append(
                        ToolCall(
                            tool="bash", status="error", input={"command": step.run}, at=time.time()
                        )
                    )
                    emit("tool", "bash", "error", step.run, input={"command": step.run})
                    continue
                outcome = await run_command(
                    step.run,
                    call.cwd,
                    timeout=call.timeout_secs,
                    env=agent_marker(call.call_id, call.node_id),
                    sandbox=call.sandbox,
                )
                record.killed_a_command |= outcome.timed_out
                tool_calls.append(
                    ToolCall(
                        tool="bash",
                        status="completed",
                        input={"command": step.run},
                        output=outcome.tail(20),
                        at=time.time(),
                    )
                )
                emit(
                    "tool",
                    "bash",
                    "completed",
                    f"{step.run} → exit {outcome.exit_code}",
                    input={"command": step.run},
                    output=outcome.tail(TRANSCRIPT_OUTPUT_LINES),
                    exit_code=outcome.exit_code,
                )
        if entry.hang:
            await asyncio.sleep(min(call.idle_timeout_secs, call.timeout_secs) + 3600)


def _sandbox_refuses(call: AgentCall, target: Path) -> bool:
    """A write or delete director does in-process for the script bypasses bwrap: with the
    sandbox on it is refused where a sandboxed process could not write (outside the
    worktree, its ``.git``), so scripted tests mean what real agents' do."""
    return call.sandbox is not None and not call.sandbox.allows_write(target)
