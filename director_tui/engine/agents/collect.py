"""What the CLI drivers share besides the subprocess loop: finding and version-checking
the binary, turning parsed events into live activity, and deciding the exit reason from
what was seen (never from the exit code alone)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from director_tui.engine.agents.base import (
    AgentCall,
    AgentResult,
    ExitReason,
    OnActivity,
    TokenUsage,
    ToolCall,
)
from director_tui.engine.agents.stream import StreamOutcome

# Memory bounds: whatever an agent prints, a call keeps at most this much of it.
MAX_TEXT_CHARS = 256 * 1024  # the final answer
MAX_TOOL_OUTPUT_CHARS = 2000  # per tool call
MAX_TOOL_INPUT_CHARS = 2000  # per string argument of a tool call
MAX_TOOL_CALLS = 1000  # kept in the result; more are counted
SUMMARY_CHARS = 200
# Where users' agent CLIs live by default besides PATH.
EXTRA_BIN_DIRS = ("~/.opencode/bin", "~/.local/bin", "~/.npm-global/bin")
# Words that mean a tool was refused by the CLI's permission system.
_PERMISSION_WORDS = re.compile(
    r"permission|not allowed|rejected|denied|unavailable tool|invalid tool", re.IGNORECASE
)


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"… [{len(text) - limit} more chars]"


def clip_input(value: dict[str, Any]) -> dict[str, object]:
    """Tool inputs (a write's content can be megabytes) with every string clipped."""
    out: dict[str, object] = {}
    for key, item in value.items():
        out[key] = clip(item, MAX_TOOL_INPUT_CHARS) if isinstance(item, str) else item
    return out


def one_line(text: str, limit: int = SUMMARY_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def agent_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an agent CLI: ours, with ``DIRECTOR_AGENT_HOME`` as its HOME
    when set (tests and sandboxes; the product keeps the user's HOME, where their
    provider credentials live)."""
    env = dict(os.environ)
    agent_home = env.get("DIRECTOR_AGENT_HOME")
    if agent_home:
        # Absolute, from director's own working directory: the agent starts in a worktree,
        # where a relative HOME would name a folder that is not there.
        env["HOME"] = str(Path(agent_home).expanduser().absolute())
        # XDG folders would otherwise still point into the real home.
        for key in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
            env.pop(key, None)
    env.update(extra or {})
    return env


def find_binary(env_var: str, name: str) -> str | None:
    """``$<env_var>`` when set, else ``name`` on PATH or in the usual install folders."""
    configured = os.environ.get(env_var)
    if configured:
        path = Path(configured).expanduser()
        return str(path) if path.exists() else None
    found = shutil.which(name)
    if found:
        return found
    for folder in EXTRA_BIN_DIRS:
        candidate = Path(folder).expanduser() / name
        if candidate.exists() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


_VERSION_CACHE: dict[tuple[str, float], tuple[int, ...] | None] = {}
_VERSION_PATTERN = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def parse_version(text: str) -> tuple[int, ...] | None:
    match = _VERSION_PATTERN.search(text)
    return tuple(int(part) for part in match.groups()) if match else None


async def binary_version(binary: str) -> tuple[int, ...] | None:
    """``<binary> --version`` parsed, cached per binary file (it costs ~1 s for some)."""
    try:
        key = (binary, Path(binary).stat().st_mtime)
    except OSError:
        return None
    if key in _VERSION_CACHE:
        return _VERSION_CACHE[key]
    version: tuple[int, ...] | None = None
    try:
        proc = await asyncio.create_subprocess_exec(
            binary,
            "--version",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=agent_env(),
            start_new_session=True,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
            version = parse_version(out.decode("utf-8", errors="replace"))
        except TimeoutError:
            proc.kill()
            await proc.wait()
    except OSError:
        version = None
    _VERSION_CACHE[key] = version
    return version


def version_text(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version)


@dataclass
class Collector:
    """Accumulates one call's parsed events, emits each as live activity at once."""

    call: AgentCall
    on_activity: OnActivity
    started: float = field(default_factory=time.monotonic)
    text: str = ""
    text_seen: bool = False
    tokens: TokenUsage = field(default_factory=TokenUsage)
    cost: float = 0.0
    cost_reported: bool = False
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_count: int = 0
    tool_errors: int = 0
    permission_rejections: list[str] = field(default_factory=list)
    api_errors: list[str] = field(default_factory=list)
    raw_lines: int = 0

    def emit(
        self,
        kind: str,
        *,
        tool: str = "",
        status: str = "",
        summary: str = "",
        tokens: int = 0,
        cost_usd: float = 0.0,
        usage: TokenUsage | None = None,
    ) -> None:
        self.on_activity(
            self.call.activity(
                kind,
                tool=tool,
                status=status,
                summary=one_line(summary),
                tokens=tokens,
                cost_usd=cost_usd,
                usage=usage,
            )
        )

    def add_text(self, text: str, *, cut: int = 0) -> None:
        if not text.strip() and not cut:
            return
        self.text_seen = True
        self.text = clip(text, MAX_TEXT_CHARS)
        if cut:
            self.text += f"… [{cut} more bytes in the transcript]"
        self.emit("text", summary=text)

    def add_reasoning(self, text: str) -> None:
        self.emit("reasoning", summary=text)

    def add_tool(
        self,
        tool: str,
        status: str,
        tool_input: dict[str, Any] | None = None,
        output: str = "",
        summary: str = "",
    ) -> None:
        self.tool_count += 1
        if status == "error":
            self.tool_errors += 1
            if _PERMISSION_WORDS.search(output):
                self.permission_rejections.append(f"{tool}: {one_line(output, 160)}")
        if len(self.tool_calls) < MAX_TOOL_CALLS:
            self.tool_calls.append(
                ToolCall(
                    tool=tool,
                    status=status,
                    input=clip_input(tool_input or {}),
                    output=clip(output, MAX_TOOL_OUTPUT_CHARS),
                    at=time.time(),
                )
            )
        self.emit("tool", tool=tool, status=status, summary=summary or tool_summary(tool_input))

    def add_step(self, tokens: TokenUsage, cost: float | None) -> None:
        self.tokens.add(tokens)
        if cost is not None:
            self.cost += cost
            self.cost_reported = True
        self.emit(
            "step",
            status="finish",
            summary=f"{tokens.input_tokens} in / {tokens.output_tokens} out",
            tokens=tokens.total,
            cost_usd=cost or 0.0,
            usage=tokens,
        )

    def add_error(self, message: str) -> None:
        if len(self.api_errors) < 20:
            self.api_errors.append(one_line(message, 2000))
        self.emit("error", summary=message)

    def add_raw(self, line: str, *, cut: int = 0) -> None:
        """A line that is not an event (a warning, a stack trace): kept, never fatal."""
        self.raw_lines += 1
        suffix = f" … [{cut} more bytes]" if cut else ""
        self.emit("raw", summary=line + suffix)

    def json_event(self, line: str, cut: int = 0) -> dict[str, Any] | None:
        """The JSON object on one output line; any other line is kept with add_raw. A blank
        line is nothing; an over-long line (``cut`` bytes dropped) is kept only as a head."""
        if not line.strip():
            return None
        if cut:
            self.add_raw(line[:400], cut=cut + max(0, len(line) - 400))
            return None
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if isinstance(event, dict):
            return event
        self.add_raw(line)
        return None

    # ── the verdict ──────────────────────────────────────────────────────────────
    def ended_early(
        self,
        reason: ExitReason,
        message: str,
        *,
        transcript: Path,
        stderr: Path | None,
        duration_secs: float = 0.0,
        harness_error: bool = False,
    ) -> AgentResult:
        """The call stopped before its agent ran (no binary, a broken config, a server
        that would not start): an empty transcript, and the reason as live activity."""
        transcript.touch()
        self.emit("error", summary=message)
        return AgentResult(
            call_id=self.call.call_id,
            role=self.call.role,
            tier=self.call.tier,
            exit_reason=reason,
            message=message,
            transcript_path=transcript,
            stderr_path=stderr,
            duration_secs=duration_secs,
            harness_error=harness_error,
        )

    def result(
        self,
        outcome: StreamOutcome,
        *,
        transcript: Path,
        stderr: Path,
        install_hint: str,
    ) -> AgentResult:
        reason, message = self._verdict(outcome, install_hint)
        # A provider that reports tokens but a zero cost has no price for the model:
        # leave the cost unknown so the [pricing] table (or "unpriced") decides.
        cost = (
            self.cost if self.cost_reported and (self.cost > 0 or self.tokens.total == 0) else None
        )
        return AgentResult(
            call_id=self.call.call_id,
            role=self.call.role,
            tier=self.call.tier,
            exit_reason=reason,
            text=self.text,
            message=message,
            tokens=self.tokens,
            cost_usd=cost,
            tool_calls=self.tool_calls,
            transcript_path=transcript,
            stderr_path=stderr,
            duration_secs=outcome.duration_secs,
        )

    def _verdict(self, outcome: StreamOutcome, install_hint: str) -> tuple[ExitReason, str]:
        notes: list[str] = []
        if self.permission_rejections:
            notes.append(
                f"{len(self.permission_rejections)} tool call(s) refused by permissions: "
                + "; ".join(self.permission_rejections[:3])
            )
        if self.raw_lines:
            notes.append(f"{self.raw_lines} non-JSON line(s) on stdout (kept in the transcript)")
        if outcome.spawn_error:
            return ExitReason.binary_missing, f"cannot start {outcome.spawn_error}. {install_hint}"
        if outcome.fired is not None:
            # A CLI stuck retrying a failing provider says why only on stderr.
            last = last_stderr_error(outcome.stderr_tail)
            notes.insert(0, f"last error on its stderr: {last}" if last else NO_ERROR_OUTPUT)
        if outcome.fired == "idle":
            return ExitReason.idle, _join(
                f"no output for {self.call.idle_timeout_secs:g}s: killed the agent's process tree",
                notes,
            )
        if outcome.fired == "timeout":
            return ExitReason.timeout, _join(
                f"ran past the {self.call.timeout_secs:g}s limit: killed the agent's process tree",
                notes,
            )
        if self.api_errors:
            return ExitReason.api_error, _join(self.api_errors[-1], notes)
        if outcome.exit_code not in (0, None):
            how = (
                f"killed by signal {-outcome.exit_code}"
                if outcome.killed_by_signal
                else f"exited with code {outcome.exit_code}"
            )
            tail = one_line(outcome.stderr_tail[-600:], 600)
            return ExitReason.crashed, _join(
                f"the agent CLI {how}" + (f": {tail}" if tail else ""), notes
            )
        if not self.text_seen and self.tool_count == 0:
            tail = one_line(outcome.stderr_tail[-600:], 600)
            return ExitReason.empty_output, _join(
                "the agent produced no text and used no tool"
                + (f" (stderr: {tail})" if tail else ""),
                notes,
            )
        return ExitReason.ok, "; ".join(notes)


_LOGGED_ERROR = re.compile(r'error(?:\.error|\.message)?="((?:[^"\\]|\\.)*)"')
# A stderr line that reports a failure (a logged level, an exception, a refused request),
# not a banner, a progress line or a deprecation notice.
_LOOKS_LIKE_ERROR = re.compile(
    r"\b(?:level=(?:error|fatal)|error|exception|traceback|fatal|panic|failed|failure|"
    r"refused|denied|unauthori[sz]ed|forbidden|timed? ?out|ECONN\w*|ENOTFOUND|"
    r"[45]\d\d (?:[A-Z][a-z]+)|HTTP [45]\d\d)",
    re.IGNORECASE,
)
NO_ERROR_OUTPUT = "no error output on its stderr"


def last_stderr_error(stderr_tail: str, limit: int = 300) -> str:
    """The last error a CLI logged on stderr: a logfmt ``error="…"`` value when a line
    has one (OpenCode's ``--print-logs``), else the last line that reads as an error;
    "" when nothing does (a watchdog message must not quote a harmless notice as the
    cause)."""
    for line in reversed(stderr_tail.splitlines()):
        found = _LOGGED_ERROR.findall(line)
        if found:
            return one_line(found[-1], limit)
        if line.strip() and _LOOKS_LIKE_ERROR.search(line):
            return one_line(line, limit)
    return ""


def _join(head: str, notes: list[str]) -> str:
    return "; ".join([head, *notes])


def tool_summary(tool_input: dict[str, Any] | None) -> str:
    """The one argument that says what a tool call did (a path, a command, a pattern)."""
    if not tool_input:
        return ""
    for key in ("command", "cmd", "filePath", "file_path", "path", "pattern", "url", "query"):
        value = tool_input.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, list) and value:
            return " ".join(str(part) for part in value)
    return ""
