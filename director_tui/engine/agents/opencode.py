"""The OpenCode driver: ``opencode run --format json`` parsed live.

The role's agent (our prompt, sampling and an explicit permission for every tool class)
goes inline through ``OPENCODE_CONFIG_CONTENT``, deep-merged over any value the user
already has there, so nothing is written into the user's repository and their own
providers keep working. OpenCode's exit code is not trusted: the verdict comes from the
events (API errors, permission refusals, no text and no tool use) and the watchdogs.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from director_tui.engine.agents.base import (
    AgentCall,
    AgentResult,
    ExitReason,
    TokenUsage,
)
from director_tui.engine.agents.cli_driver import CliDriver, DriverSetupError
from director_tui.engine.agents.collect import (
    Collector,
)
from director_tui.engine.agents.stream import StreamOutcome
from director_tui.engine.config import Sampling, deep_merge
from director_tui.engine.prompts import (
    RolePermissions,
    normalize_role,
    permissions_for,
    role_prompt,
)

PINNED_VERSION = "1.18.33"
MIN_VERSION = (1, 18, 0)  # the JSON event format this parser reads
BINARY_ENV = "DIRECTOR_OPENCODE_BIN"
INSTALL_HINT = (
    f"install it with `npm install -g opencode-ai@{PINNED_VERSION}` "
    f"(or point {BINARY_ENV} at an opencode binary)"
)


def permission_block(perms: RolePermissions) -> dict[str, str]:
    """Every permission spelled out: in ``opencode run`` an "ask" is a silent refusal
    (or a hang in some versions), so nothing may be left to a default."""

    def allow(flag: bool) -> str:
        return "allow" if flag else "deny"

    return {
        "read": "allow",
        "glob": "allow",
        "grep": "allow",
        "list": "allow",
        "edit": allow(perms.edit),
        "bash": allow(perms.bash),
        "webfetch": allow(perms.web),
        "websearch": allow(perms.web),
        "codesearch": allow(perms.web),
        "task": "deny",  # no sub-agents: one call, one agent, one bill
        "todowrite": "allow",
        "todoread": "allow",
        "external_directory": "deny",  # stay inside the worktree
        "doom_loop": "deny",
    }


def agent_definition(call: AgentCall) -> dict[str, Any]:
    return role_agent_definition(call.role, call.sampling)


def role_agent_definition(role: str, sampling: Sampling) -> dict[str, Any]:
    role = normalize_role(role)
    agent: dict[str, Any] = {
        "description": f"director-tui {role}",
        "mode": "primary",
        "prompt": role_prompt(role),
        "permission": permission_block(permissions_for(role)),
    }
    if sampling.temperature is not None:
        agent["temperature"] = sampling.temperature
    if sampling.top_p is not None:
        agent["top_p"] = sampling.top_p
    # top_k has no OpenCode agent key; it is not passed.
    return agent


def agent_name(role: str) -> str:
    return f"director-{normalize_role(role).replace('_', '-')}"


class UserConfigError(ValueError):
    pass


def merged_config_content(call: AgentCall, existing: str | None) -> str:
    """Our agent merged over the user's ``OPENCODE_CONFIG_CONTENT`` (never replacing it)."""
    return merged_agents_config({agent_name(call.role): agent_definition(call)}, existing)


def merged_agents_config(agents: dict[str, dict[str, Any]], existing: str | None) -> str:
    """``agents`` (name → definition) merged over the user's ``OPENCODE_CONFIG_CONTENT``:
    one agent for an ``opencode run``, every role's for a server that serves them all."""
    user: dict[str, Any] = {}
    if existing and existing.strip():
        try:
            parsed = json.loads(existing)
        except ValueError as exc:
            raise UserConfigError(f"OPENCODE_CONFIG_CONTENT is not valid JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise UserConfigError("OPENCODE_CONFIG_CONTENT must be a JSON object")
        user = parsed
    ours = {"snapshot": False, "agent": agents}
    return json.dumps(deep_merge(user, ours))


def build_argv(binary: str, call: AgentCall, *, prompt_in_argv: bool) -> list[str]:
    argv = [
        binary,
        "run",
        "--dir",
        str(call.cwd),
        "--agent",
        agent_name(call.role),
        "--model",
        call.model,
        "--format",
        "json",
        "--title",
        call.title or f"director {call.role}",
        # Provider errors it retries (HTTP 5xx, 429, dropped streams) never reach the
        # JSON events; logged to stderr they can name the cause when a watchdog fires.
        "--print-logs",
        "--log-level",
        "ERROR",
    ]
    if prompt_in_argv:
        # ONE element, whatever it contains; after "--" so a prompt that starts with a
        # dash is never read as an option.
        argv += ["--", call.prompt]
    return argv


class OpenCodeParser:
    """One ``--format json`` line → activity + accumulated result."""

    def __init__(self, collector: Collector) -> None:
        self.c = collector

    def feed(self, line: str, cut: int) -> None:
        if not line.strip():
            return
        if cut:
            self._oversized(line, cut)
            return
        event = self.c.json_event(line)
        if event is None:
            return
        kind = event.get("type")
        part = event.get("part") if isinstance(event.get("part"), dict) else {}
        assert isinstance(part, dict)
        if kind == "text":
            self.c.add_text(str(part.get("text", "")))
        elif kind == "reasoning":
            self.c.add_reasoning(str(part.get("text", "")))
        elif kind == "tool_use":
            self._tool(part)
        elif kind == "step_start":
            self.c.emit("step", status="start")
        elif kind == "step_finish":
            self._step(part)
        elif kind == "error":
            self.c.add_error(_error_message(event))
        else:
            self.c.emit("raw", summary=f"{kind}: {line}")

    def _tool(self, part: dict[str, Any]) -> None:
        state = part.get("state") if isinstance(part.get("state"), dict) else {}
        assert isinstance(state, dict)
        tool_input = state.get("input") if isinstance(state.get("input"), dict) else {}
        assert isinstance(tool_input, dict)
        status = str(state.get("status", ""))
        output = state.get("output") if status != "error" else state.get("error")
        title = state.get("title")
        tool = str(part.get("tool", ""))
        if tool == "invalid" and isinstance(tool_input.get("tool"), str):
            # OpenCode answers a call to a tool the agent does not have (a denied edit
            # or bash) through its "invalid" tool, marked completed: it is a refusal.
            tool, status = str(tool_input["tool"]), "error"
            output = str(tool_input.get("error") or output or "unavailable tool")
            title = ""
        self.c.add_tool(
            tool,
            status,
            tool_input,
            str(output or ""),
            summary=str(title) if isinstance(title, str) and title else "",
        )

    def _step(self, part: dict[str, Any]) -> None:
        raw = part.get("tokens") if isinstance(part.get("tokens"), dict) else {}
        assert isinstance(raw, dict)
        cache = raw.get("cache") if isinstance(raw.get("cache"), dict) else {}
        assert isinstance(cache, dict)
        tokens = TokenUsage(
            input_tokens=_int(raw.get("input")),
            output_tokens=_int(raw.get("output")),
            reasoning_tokens=_int(raw.get("reasoning")),
            cache_read_tokens=_int(cache.get("read")),
            cache_write_tokens=_int(cache.get("write")),
        )
        cost = part.get("cost")
        self.c.add_step(tokens, float(cost) if isinstance(cost, int | float) else None)

    def _oversized(self, head: str, cut: int) -> None:
        """A line too long to keep (a 10 MB text part): keep its start, never parse it
        whole. The transcript has all of it."""
        if '"type":"text"' in head[:200]:
            marker = '"text":"'
            start = head.find(marker, head.find('"part"'))
            text = _decode_json_string_prefix(head[start + len(marker) :]) if start >= 0 else ""
            self.c.add_text(text, cut=cut)
        else:
            self.c.add_raw(head[:SUMMARY_HEAD], cut=cut + max(0, len(head) - SUMMARY_HEAD))


SUMMARY_HEAD = 400


def _decode_json_string_prefix(raw: str) -> str:
    """The readable text of the start of a JSON string cut anywhere (maybe mid-escape)."""
    for trim in range(0, 7):  # the longest escape is \uXXXX: at most 6 chars to drop
        candidate = raw[: len(raw) - trim] if trim else raw
        try:
            decoded = json.loads(f'"{candidate}"')
        except ValueError:
            continue
        return str(decoded)
    return raw


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _error_message(event: dict[str, Any]) -> str:
    error = event.get("error") if isinstance(event.get("error"), dict) else {}
    assert isinstance(error, dict)
    data = error.get("data") if isinstance(error.get("data"), dict) else {}
    assert isinstance(data, dict)
    message = data.get("message") or error.get("message") or error.get("name") or "unknown error"
    status = data.get("statusCode")
    name = error.get("name")
    prefix = f"{name}" + (f" (HTTP {status})" if status else "") if name else ""
    text = f"{prefix}: {message}" if prefix else str(message)
    if name == "UnknownError":
        # OpenCode says no more than this for a missing credential, an unknown model or
        # no route to the provider; point at the one command that shows the cause.
        text += (
            " — OpenCode gave no detail; try `opencode run --model <model> hi` in the repo, "
            "and `opencode auth login` if the provider needs a key"
        )
    return text


# OpenCode's own database failing (its first-start migration raced by another process,
# a locked or corrupt file): the CLI dies before the agent did anything.
_DATABASE_FAILURE = re.compile(
    r"Failed query:|SQLITE_\w+|SQLiteError|database is locked|database disk image", re.IGNORECASE
)


class OpenCodeProvider(CliDriver):
    name = "opencode"
    binary_name = "opencode"
    binary_env = BINARY_ENV
    install_hint = INSTALL_HINT
    min_version = MIN_VERSION
    pinned_version = PINNED_VERSION
    parser_class = OpenCodeParser

    def extra_env(self, call: AgentCall) -> dict[str, str]:
        try:
            content = merged_config_content(call, os.environ.get("OPENCODE_CONFIG_CONTENT"))
        except UserConfigError as exc:
            raise DriverSetupError(f"{exc}; fix or unset it") from exc
        return {"OPENCODE_CONFIG_CONTENT": content}

    def build_argv(self, binary: str, call: AgentCall, *, prompt_in_argv: bool) -> list[str]:
        return build_argv(binary, call, prompt_in_argv=prompt_in_argv)

    def state_dir(self, env: dict[str, str]) -> Path | None:
        data = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", "~")) / ".local" / "share")
        return Path(data).expanduser() / "opencode"

    def harness_crash(self, outcome: StreamOutcome, result: AgentResult) -> bool:
        return (
            result.exit_reason == ExitReason.crashed
            and outcome.lines == 0
            and bool(_DATABASE_FAILURE.search(outcome.stderr_tail))
        )

    def sandbox_writable_dirs(self, env: Mapping[str, str]) -> list[Path]:
        """The four folders OpenCode makes on first start (XDG, under its HOME)."""
        home = Path(env.get("HOME", "~")).expanduser()
        xdg = {
            "XDG_CONFIG_HOME": home / ".config",
            "XDG_DATA_HOME": home / ".local" / "share",
            "XDG_STATE_HOME": home / ".local" / "state",
            "XDG_CACHE_HOME": home / ".cache",
        }
        return [Path(env.get(key) or default) / "opencode" for key, default in xdg.items()]
