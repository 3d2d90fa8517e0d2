"""The one ``run`` every CLI driver shares: find and version-check the binary, hand the
prompt over (argv, or a file on stdin when it is too big for argv), stream the output
through the driver's parser under the watchdogs, and judge the outcome.

A driver only says what differs: its binary, how to build the command line, which
environment it needs, and how to read its output."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar, Protocol

from director_tui.engine.agents.base import AgentCall, AgentResult, ExitReason, OnActivity
from director_tui.engine.agents.collect import (
    Collector,
    agent_env,
    binary_version,
    find_binary,
    version_text,
)
from director_tui.engine.agents.first_start import Release, first_start_turn
from director_tui.engine.agents.stream import StreamOutcome, run_streaming
from director_tui.engine.control_channel import agent_marker
from director_tui.engine.sandbox import tool_folders

# Linux refuses a single argv string over 128 KiB: longer prompts go through stdin.
MAX_ARGV_PROMPT_BYTES = 100_000


class DriverSetupError(Exception):
    """Something outside the agent stops the call before it starts (e.g. a user's own
    broken configuration); the message says what to fix."""


class LineParser(Protocol):
    def __init__(self, collector: Collector) -> None: ...

    def feed(self, line: str, cut: int) -> None:
        """One output line; ``cut`` is how many bytes of an over-long line were dropped."""


class CliDriver:
    name: str
    binary_name: ClassVar[str]
    binary_env: ClassVar[str]  # the environment variable that names a binary to use
    install_hint: ClassVar[str]
    min_version: ClassVar[tuple[int, ...]]
    pinned_version: ClassVar[str]
    parser_class: ClassVar[type[LineParser]]

    def __init__(self, binary: str | None = None) -> None:
        self._binary = binary

    # -- what a driver says ------------------------------------------------------------
    def prompt_text(self, call: AgentCall) -> str:
        return call.prompt

    def extra_env(self, call: AgentCall) -> dict[str, str]:
        """Environment for the CLI on top of the user's; may raise DriverSetupError."""
        return {}

    def build_argv(self, binary: str, call: AgentCall, *, prompt_in_argv: bool) -> list[str]:
        raise NotImplementedError

    def state_dir(self, env: dict[str, str]) -> Path | None:
        """Where the CLI keeps state it creates on its first start in a HOME (None: no
        such state, no first-start turn to wait for)."""
        return None

    def harness_crash(self, outcome: StreamOutcome, result: AgentResult) -> bool:
        """A crash of the CLI's own machinery (not of the agent's work): not charged."""
        return False

    def sandbox_writable_dirs(self, env: Mapping[str, str]) -> list[Path]:
        """The CLI's own config, data and cache folders under its HOME: kept writable
        inside the sandbox, which hides the rest of the home."""
        return []

    def sandbox_writable_files(self, env: Mapping[str, str]) -> list[Path]:
        """Single files of its state beside those folders (bound only when they exist)."""
        return []

    def sandboxed(
        self, argv: list[str], call: AgentCall, binary: str, env: Mapping[str, str]
    ) -> list[str]:
        """``argv`` wrapped in the call's sandbox (when on): the binary's install folder
        bound back read-only, its state writable (folders made first: bwrap binds only
        what exists)."""
        if call.sandbox is None:
            return argv
        folders = self.sandbox_writable_dirs(env)
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        spec = call.sandbox.plus(
            tools=tool_folders(binary, env.get("PATH", ""), call.sandbox.hide),
            writable=[*folders, *self.sandbox_writable_files(env)],
        )
        return spec.wrap(argv)

    # -- the shared run ----------------------------------------------------------------
    async def run(self, call: AgentCall, on_activity: OnActivity) -> AgentResult:
        collector = Collector(call, on_activity)
        call.log_dir.mkdir(parents=True, exist_ok=True)
        transcript = call.log_dir / f"{call.call_id}.jsonl"
        stderr = call.log_dir / f"{call.call_id}.stderr"

        def early(reason: ExitReason, message: str) -> AgentResult:
            kept = stderr if stderr.exists() else None
            return collector.ended_early(reason, message, transcript=transcript, stderr=kept)

        binary = self._binary or find_binary(self.binary_env, self.binary_name)
        if binary is None:
            return early(
                ExitReason.binary_missing,
                f"{self.binary_name} is not installed: {self.install_hint}",
            )
        version = await binary_version(binary)
        if version is None:
            return early(
                ExitReason.binary_missing,
                f"{binary} --version did not answer with a version: {self.install_hint}",
            )
        if version < self.min_version:
            return early(
                ExitReason.binary_missing,
                f"{self.binary_name} {version_text(version)} is too old (need "
                f"{version_text(self.min_version)}+, tested with {self.pinned_version}): "
                f"{self.install_hint}",
            )
        try:
            env = agent_env({**self.extra_env(call), **agent_marker(call.call_id, call.node_id)})
        except DriverSetupError as exc:
            return early(ExitReason.crashed, str(exc))
        prompt = self.prompt_text(call)
        prompt_in_argv = len(prompt.encode()) <= MAX_ARGV_PROMPT_BYTES
        prompt_file: Path | None = None
        if not prompt_in_argv:
            prompt_file = call.log_dir / f"{call.call_id}.prompt.md"
            prompt_file.write_text(prompt, encoding="utf-8")
        parser = type(self).parser_class(collector)
        state_dir = self.state_dir(env)
        release: Release = await first_start_turn(state_dir) if state_dir else (lambda _s: None)

        def on_line(line: str, cut: int) -> None:
            release(True)  # it printed: its first start went through, the next may go
            parser.feed(line, cut)

        try:
            argv = self.build_argv(binary, call, prompt_in_argv=prompt_in_argv)
            outcome = await run_streaming(
                self.sandboxed(argv, call, binary, env),
                cwd=call.cwd,
                env=env,
                transcript_path=transcript,
                stderr_path=stderr,
                timeout_secs=call.timeout_secs,
                idle_timeout_secs=call.idle_timeout_secs,
                on_line=on_line,
                stdin_path=prompt_file,
            )
        finally:
            release(False)
        result = collector.result(
            outcome, transcript=transcript, stderr=stderr, install_hint=self.install_hint
        )
        result.harness_error = self.harness_crash(outcome, result)
        # bwrap (the sandbox) exited on its own, not by our kill nor a signal: its PID
        # namespace, and whatever the agent started in it, had ended before.
        result.processes_ended = (
            call.sandbox is not None
            and outcome.fired is None
            and outcome.exit_code is not None
            and outcome.exit_code >= 0
        )
        return result
