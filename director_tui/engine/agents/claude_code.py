"""The Claude Code driver: ``claude -p --output-format stream-json --verbose`` parsed live.

Permissions are command-line flags: read-only roles get only the read/search tools
(``--allowedTools`` plus every writing tool in ``--disallowedTools``); writer roles get
edits accepted and Bash allowed, never the web. ``--dangerously-skip-permissions`` is
never used (Claude Code refuses it as root anyway). The role prompt is appended to
Claude Code's own system prompt. Verified against Claude Code 2.1.332 with the project's
fake Anthropic-Messages server (``ANTHROPIC_BASE_URL``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from director_tui.engine.agents.base import (
    AgentCall,
    TokenUsage,
)
from director_tui.engine.agents.cli_driver import CliDriver
from director_tui.engine.agents.collect import (
    MAX_TEXT_CHARS,
    Collector,
    clip,
    tool_summary,
)
from director_tui.engine.prompts import RolePermissions, permissions_for, role_prompt

PINNED_VERSION = "2.1.332"
MIN_VERSION = (1, 0, 0)  # stream-json with system/assistant/user/result events
BINARY_ENV = "DIRECTOR_CLAUDE_BIN"
INSTALL_HINT = (
    f"install it with `npm install -g @anthropic-ai/claude-code@{PINNED_VERSION}` "
    f"(or point {BINARY_ENV} at a claude binary)"
)
READ_TOOLS = ("Read", "Glob", "Grep", "LS", "TodoWrite")
EDIT_TOOLS = ("Edit", "MultiEdit", "Write", "NotebookEdit")
WEB_TOOLS = ("WebFetch", "WebSearch")
# Tools that would let an agent escape its one call (sub-agents, schedules, worktrees).
NEVER_TOOLS = ("Task", "CronCreate", "ScheduleWakeup", "EnterWorktree", "Workflow")


def permission_flags(perms: RolePermissions) -> list[str]:
    allowed = list(READ_TOOLS)
    denied = list(NEVER_TOOLS)
    (allowed if perms.edit else denied).extend(EDIT_TOOLS)
    (allowed if perms.bash else denied).append("Bash")
    (allowed if perms.web else denied).extend(WEB_TOOLS)
    flags = ["--allowedTools", ",".join(allowed), "--disallowedTools", ",".join(denied)]
    # acceptEdits: edits in the working directory need no prompt (there is nobody to ask).
    flags += ["--permission-mode", "acceptEdits" if perms.edit else "default"]
    return flags


def build_argv(binary: str, call: AgentCall, *, prompt_in_argv: bool) -> list[str]:
    argv = [
        binary,
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--model",
        call.model,
        "--append-system-prompt",
        role_prompt(call.role),
        *permission_flags(permissions_for(call.role)),
    ]
    if prompt_in_argv:
        argv += ["--", call.prompt]
    return argv


class ClaudeCodeParser:
    """One stream-json line → activity + accumulated result."""

    def __init__(self, collector: Collector) -> None:
        self.c = collector
        self.pending: dict[str, tuple[str, dict[str, Any]]] = {}  # tool_use id → (name, input)
        self.message_ids: set[str] = set()
        self.final_text: str | None = None

    def feed(self, line: str, cut: int) -> None:
        event = self.c.json_event(line, cut)
        if event is None:
            return
        kind = event.get("type")
        if kind == "assistant":
            self._assistant(_dict(event.get("message")))
        elif kind == "user":
            self._user(_dict(event.get("message")))
        elif kind == "result":
            self._result(event)
        elif kind == "system":
            self.c.emit("step", status=str(event.get("subtype", "system")))
        else:
            self.c.emit("raw", summary=f"{kind}: {line}")

    def _assistant(self, message: dict[str, Any]) -> None:
        ident = str(message.get("id", ""))
        if ident and ident not in self.message_ids:
            self.message_ids.add(ident)
            self.c.emit("step", status="start")
        synthetic = message.get("model") == "<synthetic>"
        for block in _blocks(message.get("content")):
            btype = block.get("type")
            if btype == "text":
                text = str(block.get("text", ""))
                if synthetic and text.startswith("API Error"):
                    self.c.add_error(text)  # Claude Code's own report of a failed request
                else:
                    self.c.add_text(text)
            elif btype == "thinking":
                self.c.add_reasoning(str(block.get("thinking", "")))
            elif btype == "tool_use":
                name = str(block.get("name", ""))
                tool_input = _dict(block.get("input"))
                self.pending[str(block.get("id", ""))] = (name, tool_input)
                self.c.emit(
                    "tool", tool=name.lower(), status="running", summary=tool_summary(tool_input)
                )

    def _user(self, message: dict[str, Any]) -> None:
        for block in _blocks(message.get("content")):
            if block.get("type") != "tool_result":
                continue
            name, tool_input = self.pending.pop(str(block.get("tool_use_id", "")), ("tool", {}))
            output = _text_of(block.get("content"))
            status = "error" if block.get("is_error") else "completed"
            self.c.add_tool(name.lower(), status, tool_input, output)

    def _result(self, event: dict[str, Any]) -> None:
        usage = _dict(event.get("usage"))
        tokens = TokenUsage(
            input_tokens=_int(usage.get("input_tokens")),
            output_tokens=_int(usage.get("output_tokens")),
            cache_read_tokens=_int(usage.get("cache_read_input_tokens")),
            cache_write_tokens=_int(usage.get("cache_creation_input_tokens")),
        )
        cost = event.get("total_cost_usd")
        self.c.add_step(tokens, float(cost) if isinstance(cost, int | float) else None)
        for denial in event.get("permission_denials") or []:
            if isinstance(denial, dict):
                self.c.permission_rejections.append(str(denial.get("tool_name", "tool")))
        result_text = event.get("result")
        if event.get("is_error") or event.get("terminal_reason") == "api_error":
            if not self.c.api_errors:
                self.c.add_error(str(result_text or event.get("subtype") or "Claude Code error"))
        elif isinstance(result_text, str) and result_text.strip():
            # The result is the agent's answer (the last text block, already streamed).
            if self.c.text_seen:
                self.c.text = clip(result_text, MAX_TEXT_CHARS)
            else:
                self.c.add_text(result_text)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _blocks(content: object) -> list[dict[str, Any]]:
    if isinstance(content, list):
        return [b for b in content if isinstance(b, dict)]
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return []


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    return "".join(str(b.get("text", "")) for b in _blocks(content))


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) else 0


class ClaudeCodeProvider(CliDriver):
    name = "claude-code"
    binary_name = "claude"
    binary_env = BINARY_ENV
    install_hint = INSTALL_HINT
    min_version = MIN_VERSION
    pinned_version = PINNED_VERSION
    parser_class = ClaudeCodeParser

    def build_argv(self, binary: str, call: AgentCall, *, prompt_in_argv: bool) -> list[str]:
        return build_argv(binary, call, prompt_in_argv=prompt_in_argv)

    def sandbox_writable_dirs(self, env: Mapping[str, str]) -> list[Path]:
        config = env.get("CLAUDE_CONFIG_DIR")
        return [Path(config) if config else _home(env) / ".claude"]

    def sandbox_writable_files(self, env: Mapping[str, str]) -> list[Path]:
        return [] if env.get("CLAUDE_CONFIG_DIR") else [_home(env) / ".claude.json"]


def _home(env: Mapping[str, str]) -> Path:
    return Path(env.get("HOME", "~")).expanduser()
