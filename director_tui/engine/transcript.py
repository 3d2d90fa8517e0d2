"""An agent call's transcript read back as typed items: text, reasoning, tool calls,
shell commands with their output, finished steps with their tokens, errors.

A transcript (``.director/logs/<call_id>.jsonl``) is the CLI's own output, byte for
byte: OpenCode's ``--format json`` lines, Claude Code's ``stream-json``, Codex's
``exec --json``, or the scripted provider's records. Each is replayed through the same
parser the driver used live (so a view reads what the run judged), into a collector that
keeps every item in order and whole, where the live one keeps only a summary per line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from director_tui.engine.agents.base import AgentCall
from director_tui.engine.agents.cli_driver import LineParser
from director_tui.engine.agents.collect import Collector, clip, tool_summary
from director_tui.engine.usage import TokenUsage

ItemKind = Literal["text", "reasoning", "tool", "command", "step", "error", "raw"]
# Bounds per item: a transcript can hold megabytes (a file written whole, a test log).
MAX_ITEM_TEXT = 64 * 1024
MAX_ITEM_OUTPUT = 32 * 1024
MAX_LINE = 1024 * 1024  # a longer line is parsed as its head, as the live reader does
# The tools whose input is a shell command: shown as a command with its output.
SHELL_TOOLS = frozenset({"bash", "shell", "exec", "run", "command"})


class TranscriptItem(BaseModel):
    kind: ItemKind
    text: str = ""  # text, reasoning, an error, a raw line
    tool: str = ""
    status: str = ""  # completed | error
    args: str = ""  # the argument that says what a tool did: a path, a pattern
    command: str = ""  # a shell command
    output: str = ""  # a tool's or command's output
    exit_code: int | None = None
    tokens: TokenUsage | None = None  # a finished step's
    cost_usd: float | None = None


class Transcript(BaseModel):
    call_id: str
    provider: str  # the parser that read it: opencode, claude-code, codex, scripted, ""
    items: list[TranscriptItem] = Field(default_factory=list)
    found: bool = True  # False: no transcript file (a call that never started)

    @property
    def tokens(self) -> TokenUsage:
        total = TokenUsage()
        for item in self.items:
            if item.tokens is not None:
                total.add(item.tokens)
        return total


def read_transcript(path: Path, provider: str = "") -> Transcript:
    """The transcript at ``path`` as items, read by the parser of the CLI its lines show;
    ``provider`` (a tier's first segment) when they show none."""
    call_id = path.name.removesuffix(".jsonl")
    if not path.is_file():
        return Transcript(call_id=call_id, provider=provider, found=False)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    provider = sniff_provider(lines) or provider
    if provider == "scripted":
        return Transcript(call_id=call_id, provider=provider, items=_scripted_items(lines))
    parser_class = _parser_class(provider)
    collector = ItemCollector()
    if parser_class is None:
        for line in lines:
            if line.strip():
                collector.add_raw(line)
    else:
        parser = parser_class(collector)
        for line in lines:
            cut = max(0, len(line) - MAX_LINE)
            parser.feed(line[:MAX_LINE] if cut else line, cut)
    return Transcript(call_id=call_id, provider=provider, items=collector.items)


def sniff_provider(lines: list[str]) -> str:
    """Which CLI wrote these lines, from the first JSON object that tells."""
    for line in lines[:50]:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        kind = str(record.get("type", ""))
        if record.get("scripted") is True:
            return "scripted"
        if "part" in record or kind in ("step_start", "step_finish", "tool_use"):
            return "opencode"
        if kind in ("assistant", "user", "system", "result"):
            return "claude-code"
        if kind.startswith(("thread.", "turn.", "item.")):
            return "codex"
    return ""


def _parser_class(provider: str) -> type[LineParser] | None:
    # Imported here: each driver is its own module, and a view reads one kind at a time.
    if provider == "opencode":
        from director_tui.engine.agents.opencode import OpenCodeParser

        return OpenCodeParser
    if provider == "claude-code":
        from director_tui.engine.agents.claude_code import ClaudeCodeParser

        return ClaudeCodeParser
    if provider == "codex":
        from director_tui.engine.agents.codex import CodexParser

        return CodexParser
    return None


# The parsers need a call to describe; a transcript read back has none.
_READER_CALL = AgentCall(
    role="reader", tier="reader/transcript", prompt="", cwd=Path("."), log_dir=Path(".")
)


class ItemCollector(Collector):
    """A :class:`Collector` that keeps each parsed event as an item, in order and whole
    (bounded per item), and emits no live activity."""

    def __init__(self) -> None:
        super().__init__(call=_READER_CALL, on_activity=lambda _activity: None)
        self.items: list[TranscriptItem] = []

    def emit(self, kind: str, **_detail: Any) -> None:
        """Live activity: none when reading back."""

    def add_text(self, text: str, *, cut: int = 0) -> None:
        super().add_text(text, cut=cut)
        if text.strip() or cut:
            more = f"… [{cut} more bytes in the transcript]" if cut else ""
            self.items.append(TranscriptItem(kind="text", text=clip(text, MAX_ITEM_TEXT) + more))

    def add_reasoning(self, text: str) -> None:
        if text.strip():
            self.items.append(TranscriptItem(kind="reasoning", text=clip(text, MAX_ITEM_TEXT)))

    def add_tool(
        self,
        tool: str,
        status: str,
        tool_input: dict[str, Any] | None = None,
        output: str = "",
        summary: str = "",
    ) -> None:
        super().add_tool(tool, status, tool_input, output, summary)
        self.items.append(tool_item(tool, status, tool_input or {}, output, summary))

    def add_step(self, tokens: TokenUsage, cost: float | None) -> None:
        super().add_step(tokens, cost)
        self.items.append(TranscriptItem(kind="step", tokens=tokens, cost_usd=cost))

    def add_error(self, message: str) -> None:
        super().add_error(message)
        self.items.append(TranscriptItem(kind="error", text=clip(message, MAX_ITEM_TEXT)))

    def add_raw(self, line: str, *, cut: int = 0) -> None:
        super().add_raw(line, cut=cut)
        more = f" … [{cut} more bytes]" if cut else ""
        self.items.append(TranscriptItem(kind="raw", text=clip(line, MAX_ITEM_TEXT) + more))


def tool_item(
    tool: str,
    status: str,
    tool_input: dict[str, Any],
    output: str,
    summary: str = "",
    exit_code: int | None = None,
) -> TranscriptItem:
    """A tool call as an item: a shell command (with its output) or another tool."""
    command = tool_input.get("command") or tool_input.get("cmd")
    if isinstance(command, list):
        command = " ".join(str(part) for part in command)
    if tool.lower() in SHELL_TOOLS and isinstance(command, str) and command:
        return TranscriptItem(
            kind="command",
            tool=tool,
            status=status,
            command=command,
            output=clip(output, MAX_ITEM_OUTPUT),
            exit_code=exit_code,
        )
    return TranscriptItem(
        kind="tool",
        tool=tool,
        status=status,
        args=summary or tool_summary(tool_input),
        output=clip(output, MAX_ITEM_OUTPUT),
    )


def _scripted_items(lines: list[str]) -> list[TranscriptItem]:
    """The scripted provider's records (each marked scripted) as items."""
    items: list[TranscriptItem] = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            if line.strip():
                items.append(TranscriptItem(kind="raw", text=line))
            continue
        kind = str(record.get("type", ""))
        text = str(record.get("text") or record.get("summary") or "")
        if kind == "tool":
            tool_input = record.get("input")
            code = record.get("exit_code")
            summary = str(record.get("summary", ""))
            if not isinstance(tool_input, dict) and record.get("tool") == "bash":
                # a transcript from before records kept the command: "<command> → exit <n>"
                command, _, exit_text = summary.partition(" → exit ")
                tool_input = {"command": command}
                code = int(exit_text) if exit_text.lstrip("-").isdigit() else None
            items.append(
                tool_item(
                    str(record.get("tool", "")),
                    str(record.get("status", "")),
                    tool_input if isinstance(tool_input, dict) else {},
                    str(record.get("output", "")),
                    summary,
                    code if isinstance(code, int) else None,
                )
            )
        elif kind == "step" and isinstance(record.get("usage"), dict):
            cost = record.get("cost")
            items.append(
                TranscriptItem(
                    kind="step",
                    tokens=TokenUsage.model_validate(record["usage"]),
                    cost_usd=float(cost) if isinstance(cost, int | float) else None,
                )
            )
        elif kind in ("text", "reasoning", "error") and text:
            items.append(TranscriptItem(kind=kind, text=text))
    return items
