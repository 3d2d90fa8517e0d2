"""The Codex driver: ``codex exec --json`` parsed live.

Permissions map onto Codex's sandbox: read-only roles run with ``--sandbox read-only``,
writer roles with ``--sandbox workspace-write`` (edits and commands inside the worktree,
no network); web search stays off. ``codex exec`` has no system-prompt flag, so the role
prompt leads the message. Codex reports tokens (``turn.completed``) but no cost: the
``[pricing]`` table prices it.

Parser verified on recorded-format lines (``tests/test_agents_parsers.py``), not against
the real binary: Codex 0.171 talks the OpenAI Responses API, which the project's fake
server does not serve.
"""

from __future__ import annotations

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
from director_tui.engine.prompts import permissions_for, role_prompt

PINNED_VERSION = "0.171.0"
MIN_VERSION = (0, 50, 0)  # exec --json with thread/turn/item events
BINARY_ENV = "DIRECTOR_CODEX_BIN"
INSTALL_HINT = (
    f"install it with `npm install -g @openai/codex@{PINNED_VERSION}` "
    f"(or point {BINARY_ENV} at a codex binary)"
)


def full_prompt(call: AgentCall) -> str:
    return f"{role_prompt(call.role)}\n\n---\n\n{call.prompt}"


def build_argv(binary: str, call: AgentCall, *, prompt_in_argv: bool) -> list[str]:
    perms = permissions_for(call.role)
    argv = [
        binary,
        "exec",
        "--json",
        "-m",
        call.model,
        "-C",
        str(call.cwd),
        "--skip-git-repo-check",
        "--sandbox",
        "workspace-write" if perms.edit or perms.bash else "read-only",
        "-c",
        f"tools.web_search={'true' if perms.web else 'false'}",
    ]
    if call.sampling.temperature is not None:
        argv += ["-c", f"model_temperature={call.sampling.temperature}"]
    argv += ["--", full_prompt(call)] if prompt_in_argv else ["-"]  # "-": read stdin
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
                    input=max(0, _int(usage.get("input_tokens")) - cached),
                    output=_int(usage.get("output_tokens")),
                    reasoning=_int(usage.get("reasoning_output_tokens")),
                    cache_read=cached,
                ),
                None,
            )
        elif kind == "turn.failed":
            self.c.add_error(str(_dict(event.get("error")).get("message") or "turn failed"))
        elif kind == "error":
            self.c.add_error(str(event.get("message") or "codex error"))
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

    def prompt_text(self, call: AgentCall) -> str:
        return full_prompt(call)

    def build_argv(self, binary: str, call: AgentCall, *, prompt_in_argv: bool) -> list[str]:
        return build_argv(binary, call, prompt_in_argv=prompt_in_argv)
