"""The Codex driver: ``codex exec --json`` parsed live.

Permissions map onto Codex's sandbox: read-only roles run with ``--sandbox read-only``,
writer roles with ``--sandbox workspace-write`` (edits and commands inside the worktree,
no network); the hosted web search tool is off (``web_search="disabled"``) and so are
sub-agents and goals, which would let the agent outlive its one call. The role prompt
goes in as Codex's developer instructions (``-c developer_instructions=...``), the task
as the user message. ``--ephemeral``: each call leaves no session file in the user's
``CODEX_HOME`` (our transcript is the record). Codex has no temperature setting, so
``[sampling]`` does not apply to it. Codex reports tokens (``turn.completed``, summed
over the turn's model requests) but no cost: the ``[pricing]`` table prices it.

Verified against the real Codex 0.171.0 talking to the project's fake OpenAI Responses
endpoint (``tests/e2e/test_codex_driver.py``). Facts measured there that shape the
parser: a top-level ``error`` event is also Codex's notice that it is retrying
("Reconnecting... 1/5 (...)"), after which the call can still succeed, so only
``turn.failed`` is a failure; shell commands arrive as ``command_execution`` items and
``apply_patch`` edits as ``file_change`` items, but a command or patch the sandbox
refuses produces no item at all (only the model sees the refusal).
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
    Collector,
    tool_summary,
)
from director_tui.engine.prompts import RolePermissions, permissions_for, role_prompt

PINNED_VERSION = "0.171.0"
MIN_VERSION = (0, 50, 0)  # exec --json with thread/turn/item events
BINARY_ENV = "DIRECTOR_CODEX_BIN"
INSTALL_HINT = (
    f"install it with `npm install -g @openai/codex@{PINNED_VERSION}` "
    f"(or point {BINARY_ENV} at a codex binary)"
)


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string: ``-c key=value`` parses the value as TOML (and
    falls back to the raw text only when that fails, which a prompt must not rely on)."""
    out: list[str] = []
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def config_overrides(role: str, perms: RolePermissions) -> list[str]:
    settings = {
        "developer_instructions": toml_string(role_prompt(role)),
        "web_search": '"live"' if perms.web else '"disabled"',
        # Features, not --disable flags: an unknown --disable name is a fatal error, an
        # unknown features.<name> key is ignored, so a newer Codex still starts.
        "features.multi_agent": "false",
        "features.goals": "false",
    }
    argv: list[str] = []
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    return argv


def codex_sandbox(call: AgentCall) -> str:
    """Codex's own sandbox (bubblewrap on Linux) cannot start inside director's: a
    nested bwrap gets 'Creating new namespace failed: Operation not permitted' there
    (probed; ours drops every capability). So inside ours Codex runs its commands
    unsandboxed, and ours does the confining: the worktree writable (read-only for a
    read-only role), everything else read-only or hidden. Without ours, Codex's own."""
    writer = permissions_for(call.role).edit or permissions_for(call.role).bash
    if call.sandbox is not None:
        return "danger-full-access"
    return "workspace-write" if writer else "read-only"


def build_argv(binary: str, call: AgentCall, *, prompt_in_argv: bool) -> list[str]:
    perms = permissions_for(call.role)
    argv = [
        binary,
        "exec",
        "--json",
        "--ephemeral",
        "-m",
        call.model,
        "-C",
        str(call.cwd),
        "--skip-git-repo-check",
        "--sandbox",
        codex_sandbox(call),
        *config_overrides(call.role, perms),
    ]
    argv += ["--", call.prompt] if prompt_in_argv else ["-"]  # "-": read stdin
    return argv


class CodexParser:
    """One ``codex exec --json`` line → activity + accumulated result."""

    def __init__(self, collector: Collector) -> None:
        self.c = collector

    def feed(self, line: str, cut: int) -> None:
        event = self.c.json_event(line, cut)
        if event is None:
            return
        kind = str(event.get("type", ""))
        if kind == "item.started":
            item = _dict(event.get("item"))
            if item.get("type") in ("command_execution", "file_change", "mcp_tool_call"):
                tool, tool_input = _tool_of(item)
                self.c.emit("tool", tool=tool, status="running", summary=tool_summary(tool_input))
        elif kind == "item.completed":
            self._item(_dict(event.get("item")))
        elif kind == "turn.started":
            self.c.emit("step", status="start")
        elif kind == "turn.completed":
            usage = _dict(event.get("usage"))
            cached = _int(usage.get("cached_input_tokens"))
            self.c.add_step(
                TokenUsage(
                    # Codex counts cached tokens inside input_tokens: split them out.
                    input_tokens=max(0, _int(usage.get("input_tokens")) - cached),
                    output_tokens=_int(usage.get("output_tokens")),
                    reasoning_tokens=_int(usage.get("reasoning_output_tokens")),
                    cache_read_tokens=cached,
                    cache_write_tokens=_int(usage.get("cache_write_input_tokens")),
                ),
                None,
            )
        elif kind == "turn.failed":
            self.c.add_error(str(_dict(event.get("error")).get("message") or "turn failed"))
        elif kind == "error":
            # Also "Reconnecting... 1/5": shown live, but only turn.failed fails the call.
            self.c.emit("error", summary=str(event.get("message") or "codex error"))
        elif kind in ("thread.started", "item.updated"):
            self.c.emit("step", status=kind)
        else:
            self.c.emit("raw", summary=f"{kind}: {line}")

    def _item(self, item: dict[str, Any]) -> None:
        itype = item.get("type")
        if itype == "agent_message":
            self.c.add_text(str(item.get("text", "")))
        elif itype == "reasoning":
            self.c.add_reasoning(str(item.get("text", "")))
        elif itype in ("command_execution", "file_change", "mcp_tool_call", "web_search"):
            tool, tool_input = _tool_of(item)
            status = str(item.get("status", "completed"))
            exit_code = item.get("exit_code")
            failed = status in ("failed", "declined") or (
                isinstance(exit_code, int) and exit_code != 0
            )
            output = str(item.get("aggregated_output") or item.get("error") or "")
            if status == "declined":
                output = output or "declined by the sandbox policy (permission)"
            self.c.add_tool(tool, "error" if failed else "completed", tool_input, output)
        elif itype == "error":
            self.c.emit("error", summary=str(item.get("message", "")))
        elif itype == "todo_list":
            self.c.emit("step", status="todo")


def _tool_of(item: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    itype = item.get("type")
    if itype == "command_execution":
        return "bash", {"command": item.get("command", "")}
    if itype == "file_change":
        changes = [c for c in item.get("changes") or [] if isinstance(c, dict)]
        paths = [str(c.get("path", "")) for c in changes]
        return "edit", {"path": paths, "kinds": [str(c.get("kind", "")) for c in changes]}
    if itype == "web_search":
        return "websearch", {"query": item.get("query", "")}
    return str(item.get("tool") or "mcp"), _dict(item.get("arguments"))


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) else 0


class CodexProvider(CliDriver):
    name = "codex"
    binary_name = "codex"
    binary_env = BINARY_ENV
    install_hint = INSTALL_HINT
    min_version = MIN_VERSION
    pinned_version = PINNED_VERSION
    parser_class = CodexParser

    def build_argv(self, binary: str, call: AgentCall, *, prompt_in_argv: bool) -> list[str]:
        return build_argv(binary, call, prompt_in_argv=prompt_in_argv)

    def sandbox_writable_dirs(self, env: Mapping[str, str]) -> list[Path]:
        configured = env.get("CODEX_HOME")
        return [
            Path(configured) if configured else Path(env.get("HOME", "~")).expanduser() / ".codex"
        ]
