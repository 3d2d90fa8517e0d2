"""Driver pieces without a model: the stream loop on real shell processes, the parsers
on lines in each CLI's recorded format, the config merge, the verdicts."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import psutil
import pytest

from director_tui.engine.agents import provider_for
from director_tui.engine.agents.base import AgentCall, ExitReason
from director_tui.engine.agents.claude_code import ClaudeCodeParser, permission_flags
from director_tui.engine.agents.codex import CodexParser
from director_tui.engine.agents.codex import build_argv as codex_argv
from director_tui.engine.agents.collect import Collector, agent_env
from director_tui.engine.agents.opencode import (
    OpenCodeParser,
    OpenCodeProvider,
    agent_name,
    merged_config_content,
)
from director_tui.engine.agents.stream import StreamOutcome, run_streaming
from director_tui.engine.config import Config
from director_tui.engine.events import AgentActivity
from director_tui.engine.prompts import permissions_for, role_prompt


def call_for(role: str, tmp_path: Path, **kw: object) -> AgentCall:
    return AgentCall(
        role=role,
        tier="opencode/fake/m",
        prompt="task",
        cwd=tmp_path,
        log_dir=tmp_path / "logs",
        **kw,  # type: ignore[arg-type]
    )


def ok_outcome() -> StreamOutcome:
    return StreamOutcome(exit_code=0, fired=None, duration_secs=1.0, stderr_tail="", lines=1)


# ── the stream loop ───────────────────────────────────────────────────────────────


async def test_lines_arrive_while_the_process_runs(tmp_path: Path) -> None:
    seen: list[tuple[float, str]] = []
    started = time.monotonic()
    outcome = await run_streaming(
        ["sh", "-c", "echo one; sleep 1; echo two"],
        cwd=tmp_path,
        env=os.environ,
        transcript_path=tmp_path / "t.jsonl",
        stderr_path=tmp_path / "t.stderr",
        timeout_secs=20,
        idle_timeout_secs=10,
        on_line=lambda line, cut: seen.append((time.monotonic() - started, line)),
    )
    assert outcome.exit_code == 0 and outcome.fired is None
    assert [line for _, line in seen] == ["one", "two"]
    assert seen[1][0] - seen[0][0] > 0.8  # the first line was delivered before the sleep
    assert (tmp_path / "t.jsonl").read_text() == "one\ntwo\n"


async def test_idle_watchdog_kills_the_tree_including_a_detached_child(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    # A child in a session of its own (like a tool's detached command) is out of the
    # process group but still a descendant: it must die too.
    script = f"echo start; setsid sleep 300 & echo $! > {pid_file}; sleep 300"
    outcome = await run_streaming(
        ["sh", "-c", script],
        cwd=tmp_path,
        env=os.environ,
        transcript_path=tmp_path / "t.jsonl",
        stderr_path=tmp_path / "t.stderr",
        timeout_secs=60,
        idle_timeout_secs=1.5,
        on_line=lambda line, cut: None,
        kill_grace_secs=1.0,
    )
    assert outcome.fired == "idle"
    assert outcome.exit_code is None
    child = int(pid_file.read_text())
    assert not alive(child)


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as dead)."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            return False
        time.sleep(0.1)
    return True


async def test_overall_timeout_fires_even_with_steady_output(tmp_path: Path) -> None:
    outcome = await run_streaming(
        ["sh", "-c", "while true; do echo tick; sleep 0.2; done"],
        cwd=tmp_path,
        env=os.environ,
        transcript_path=tmp_path / "t.jsonl",
        stderr_path=tmp_path / "t.stderr",
        timeout_secs=1.5,
        idle_timeout_secs=10,
        on_line=lambda line, cut: None,
        kill_grace_secs=1.0,
    )
    assert outcome.fired == "timeout"


async def test_a_huge_line_is_cut_in_memory_but_whole_on_disk(tmp_path: Path) -> None:
    got: list[tuple[int, int]] = []
    code = "import sys; sys.stdout.write('a' * 3_000_000 + '\\nshort\\n')"
    await run_streaming(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=os.environ,
        transcript_path=tmp_path / "t.jsonl",
        stderr_path=tmp_path / "t.stderr",
        timeout_secs=20,
        idle_timeout_secs=10,
        on_line=lambda line, cut: got.append((len(line), cut)),
        max_line_bytes=1000,
    )
    assert got == [(1000, 3_000_000 - 1000), (5, 0)]
    assert (tmp_path / "t.jsonl").stat().st_size == 3_000_007


async def test_missing_binary_is_reported_with_an_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIRECTOR_OPENCODE_BIN", str(tmp_path / "nope" / "opencode"))
    result = await OpenCodeProvider().run(call_for("executor", tmp_path), lambda a: None)
    assert result.exit_reason == ExitReason.binary_missing
    assert "npm install -g opencode-ai@" in result.message


async def test_too_old_binary_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "opencode"
    fake.write_text("#!/bin/sh\necho 1.2.3\n")
    fake.chmod(0o755)
    result = await OpenCodeProvider(str(fake)).run(call_for("executor", tmp_path), lambda a: None)
    assert result.exit_reason == ExitReason.binary_missing
    assert "1.2.3 is too old" in result.message


async def test_a_cli_that_prints_nothing_is_empty_output_and_a_crash_is_crashed(
    tmp_path: Path,
) -> None:
    quiet = tmp_path / "quiet"
    quiet.write_text('#!/bin/sh\n[ "$1" = --version ] && echo 1.18.33 && exit 0\nexit 0\n')
    quiet.chmod(0o755)
    result = await OpenCodeProvider(str(quiet)).run(call_for("executor", tmp_path), lambda a: None)
    assert result.exit_reason == ExitReason.empty_output
    crash = tmp_path / "crash"
    crash.write_text(
        '#!/bin/sh\n[ "$1" = --version ] && echo 1.18.33 && exit 0\n'
        "echo 'not json at all'\necho 'segfault-ish' >&2\nexit 3\n"
    )
    crash.chmod(0o755)
    result = await OpenCodeProvider(str(crash)).run(call_for("executor", tmp_path), lambda a: None)
    assert result.exit_reason == ExitReason.crashed
    assert "code 3" in result.message and "segfault-ish" in result.message
    assert "1 non-JSON line" in result.message


async def test_an_idle_kill_names_the_provider_error_the_cli_logged(tmp_path: Path) -> None:
    """A CLI stuck retrying HTTP 500s prints nothing on stdout; the error it logged on
    stderr (OpenCode with --print-logs) is what tells the user why it went idle."""
    retrying = tmp_path / "retrying"
    retrying.write_text(
        '#!/bin/sh\n[ "$1" = --version ] && echo 1.18.33 && exit 0\n'
        'case "$*" in *--print-logs*) ;; *) echo "no --print-logs" >&2; exit 9;; esac\n'
        'echo \'timestamp=x level=ERROR message="stream error" providerID=fake '
        'error.error="AI_APICallError: upstream exploded"\' >&2\n'
        "sleep 30\n"
    )
    retrying.chmod(0o755)
    call = call_for("executor", tmp_path, idle_timeout_secs=1.0)
    result = await OpenCodeProvider(str(retrying)).run(call, lambda a: None)
    assert result.exit_reason == ExitReason.idle
    assert result.message.endswith("last error on its stderr: AI_APICallError: upstream exploded")


# ── OpenCode ──────────────────────────────────────────────────────────────────────


def test_config_merges_over_the_users_value_without_replacing_it(tmp_path: Path) -> None:
    user = {"provider": {"mine": {"npm": "x"}}, "agent": {"theirs": {"prompt": "p"}}}
    merged = json.loads(merged_config_content(call_for("explorer", tmp_path), json.dumps(user)))
    assert merged["provider"] == user["provider"]
    assert merged["agent"]["theirs"] == {"prompt": "p"}
    ours = merged["agent"][agent_name("explorer")]
    assert merged["snapshot"] is False
    assert ours["permission"]["edit"] == "deny" and ours["permission"]["bash"] == "deny"
    assert ours["prompt"] == role_prompt("explorer")
    executor = json.loads(merged_config_content(call_for("executor", tmp_path), None))
    perms = executor["agent"][agent_name("executor")]["permission"]
    assert (perms["edit"], perms["bash"], perms["webfetch"]) == ("allow", "allow", "deny")


async def test_a_broken_user_config_value_is_a_clear_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    version_ok = tmp_path / "oc"
    version_ok.write_text("#!/bin/sh\necho 1.18.33\n")
    version_ok.chmod(0o755)
    monkeypatch.setenv("OPENCODE_CONFIG_CONTENT", "{not json")
    result = await OpenCodeProvider(str(version_ok)).run(
        call_for("executor", tmp_path), lambda a: None
    )
    assert result.exit_reason == ExitReason.crashed
    assert "OPENCODE_CONFIG_CONTENT is not valid JSON" in result.message


def feed_all(parser: OpenCodeParser | ClaudeCodeParser | CodexParser, lines: list[str]) -> None:
    for line in lines:
        parser.feed(line, 0)


def test_opencode_parser_sums_steps_and_reads_errors(tmp_path: Path) -> None:
    seen: list[AgentActivity] = []
    collector = Collector(call_for("executor", tmp_path), seen.append)
    step = {"type": "step_finish", "part": {"tokens": {"input": 10, "output": 2, "reasoning": 1,
            "cache": {"read": 4, "write": 0}}, "cost": 0.5}}  # fmt: skip
    feed_all(
        OpenCodeParser(collector),
        [
            json.dumps({"type": "step_start", "part": {}}),
            json.dumps({"type": "text", "part": {"text": "hello"}}),
            json.dumps(step),
            json.dumps(step),
            "a warning that is not JSON",
            json.dumps(
                {
                    "type": "error",
                    "error": {
                        "name": "APIError",
                        "data": {"message": "quota gone", "statusCode": 402},
                    },
                }
            ),
        ],
    )
    assert (
        collector.tokens.input_tokens,
        collector.tokens.reasoning_tokens,
        collector.tokens.cache_read_tokens,
    ) == (
        20,
        2,
        8,
    )
    assert collector.cost == pytest.approx(1.0)
    result = collector.result(
        ok_outcome(), transcript=tmp_path / "t", stderr=tmp_path / "e", install_hint=""
    )
    assert result.exit_reason == ExitReason.api_error
    assert "quota gone" in result.message and "402" in result.message
    assert [a.kind for a in seen] == ["step", "text", "step", "step", "raw", "error"]


def test_zero_cost_with_tokens_is_unknown_not_free(tmp_path: Path) -> None:
    collector = Collector(call_for("executor", tmp_path), lambda a: None)
    feed_all(
        OpenCodeParser(collector),
        [
            json.dumps({"type": "text", "part": {"text": "hi"}}),
            json.dumps({"type": "step_finish", "part": {"tokens": {"input": 5}, "cost": 0}}),
        ],
    )
    result = collector.result(
        ok_outcome(), transcript=tmp_path / "t", stderr=tmp_path / "e", install_hint=""
    )
    assert result.ok and result.cost_usd is None  # so [pricing] or "unpriced" decides


# ── Claude Code (lines in the format Claude Code 2.1.332 printed against the fake server)


def test_claude_parser_pairs_tool_uses_with_results(tmp_path: Path) -> None:
    collector = Collector(call_for("executor", tmp_path), lambda a: None)
    lines = [
        {"type": "system", "subtype": "init", "model": "m"},
        {"type": "assistant", "message": {"id": "a", "model": "m", "content": [
            {"type": "text", "text": "Writing."},
            {"type": "tool_use", "id": "t1", "name": "Write",
             "input": {"file_path": "/w/x", "content": "c"}}]}},
        {"type": "user", "message": {"content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "File created"}]}},
        {"type": "assistant", "message": {"id": "b", "model": "m", "content": [
            {"type": "tool_use", "id": "t2", "name": "Bash", "input": {"command": "false"}}]}},
        {"type": "user", "message": {"content": [
            {"type": "tool_result", "tool_use_id": "t2", "content": "Exit code 1",
             "is_error": True}]}},
        {"type": "result", "subtype": "success", "is_error": False, "result": "Done.",
         "total_cost_usd": 0.25, "usage": {"input_tokens": 600, "output_tokens": 60,
                                           "cache_read_input_tokens": 7}},
    ]  # fmt: skip
    feed_all(ClaudeCodeParser(collector), [json.dumps(x) for x in lines])
    result = collector.result(
        ok_outcome(), transcript=tmp_path / "t", stderr=tmp_path / "e", install_hint=""
    )
    assert result.ok
    assert [(c.tool, c.status) for c in result.tool_calls] == [
        ("write", "completed"),
        ("bash", "error"),
    ]
    assert result.text == "Done."
    assert (
        result.tokens.input_tokens,
        result.tokens.output_tokens,
        result.tokens.cache_read_tokens,
    ) == (600, 60, 7)
    assert result.cost_usd == pytest.approx(0.25)


def test_claude_parser_reads_a_synthetic_api_error(tmp_path: Path) -> None:
    collector = Collector(call_for("executor", tmp_path), lambda a: None)
    lines = [
        {"type": "assistant", "message": {"id": "x", "model": "<synthetic>", "content": [
            {"type": "text", "text": "API Error: 400 model not found"}]}},
        {"type": "result", "subtype": "success", "is_error": True, "result": "API Error: 400",
         "terminal_reason": "api_error", "total_cost_usd": 0, "usage": {}},
    ]  # fmt: skip
    feed_all(ClaudeCodeParser(collector), [json.dumps(x) for x in lines])
    result = collector.result(
        ok_outcome(), transcript=tmp_path / "t", stderr=tmp_path / "e", install_hint=""
    )
    assert result.exit_reason == ExitReason.api_error
    assert "model not found" in result.message


def test_claude_permission_flags_follow_the_role_table() -> None:
    read_only = permission_flags(permissions_for("reviewer"))
    allowed = read_only[read_only.index("--allowedTools") + 1].split(",")
    denied = read_only[read_only.index("--disallowedTools") + 1].split(",")
    assert "Write" in denied and "Bash" in denied and "WebFetch" in denied
    assert "Write" not in allowed and "Read" in allowed
    writer = permission_flags(permissions_for("test-author"))
    allowed = writer[writer.index("--allowedTools") + 1].split(",")
    assert {"Write", "Edit", "Bash"} <= set(allowed) and "WebFetch" not in allowed


# ── Codex (lines written in the documented ``codex exec --json`` format) ──────────


def test_codex_parser_reads_items_and_usage(tmp_path: Path) -> None:
    collector = Collector(call_for("executor", tmp_path), lambda a: None)
    lines = [
        {"type": "thread.started", "thread_id": "th_1"},
        {"type": "turn.started"},
        {"type": "item.started", "item": {"id": "i1", "type": "command_execution",
                                          "command": "bash -lc ls", "status": "in_progress"}},
        {"type": "item.completed", "item": {"id": "i1", "type": "command_execution",
                                            "command": "bash -lc ls", "aggregated_output": "a\n",
                                            "exit_code": 0, "status": "completed"}},
        {"type": "item.completed", "item": {"id": "i2", "type": "file_change", "status": "completed",
                                            "changes": [{"path": "/w/a.py", "kind": "add"}]}},
        {"type": "item.completed", "item": {"id": "i3", "type": "agent_message", "text": "Done."}},
        {"type": "turn.completed", "usage": {"input_tokens": 1000, "cached_input_tokens": 400,
                                             "output_tokens": 50}},
    ]  # fmt: skip
    feed_all(CodexParser(collector), [json.dumps(x) for x in lines])
    result = collector.result(
        ok_outcome(), transcript=tmp_path / "t", stderr=tmp_path / "e", install_hint=""
    )
    assert result.ok
    assert [c.tool for c in result.tool_calls] == ["bash", "edit"]
    assert (
        result.tokens.input_tokens,
        result.tokens.cache_read_tokens,
        result.tokens.output_tokens,
    ) == (600, 400, 50)
    assert result.cost_usd is None  # Codex reports no cost: [pricing] prices it
    assert result.text == "Done."


def test_codex_turn_failed_is_an_api_error(tmp_path: Path) -> None:
    collector = Collector(call_for("executor", tmp_path), lambda a: None)
    feed_all(
        CodexParser(collector),
        [json.dumps({"type": "turn.failed", "error": {"message": "401 Unauthorized"}})],
    )
    result = collector.result(
        StreamOutcome(exit_code=1, fired=None, duration_secs=1, stderr_tail="", lines=1),
        transcript=tmp_path / "t",
        stderr=tmp_path / "e",
        install_hint="",
    )
    assert result.exit_reason == ExitReason.api_error
    assert "401 Unauthorized" in result.message


def test_codex_sandbox_follows_the_role_table(tmp_path: Path) -> None:
    def sandbox(role: str) -> str:
        argv = codex_argv("codex", call_for(role, tmp_path), prompt_in_argv=True)
        return argv[argv.index("--sandbox") + 1]

    assert sandbox("planner") == "read-only"
    assert sandbox("executor") == "workspace-write"
    argv = codex_argv("codex", call_for("executor", tmp_path), prompt_in_argv=True)
    assert argv[-2] == "--" and argv[-1].endswith("task")


def test_provider_for_picks_each_driver(tmp_path: Path) -> None:
    config = Config()
    assert provider_for("opencode/a/b", config, tmp_path).name == "opencode"
    assert provider_for("claude-code/opus", config, tmp_path).name == "claude-code"
    assert provider_for("codex/gpt-5-codex", config, tmp_path).name == "codex"


@pytest.mark.parametrize("parser_class", [OpenCodeParser, ClaudeCodeParser, CodexParser])
def test_every_parser_keeps_non_object_lines_as_raw(
    tmp_path: Path, parser_class: type[OpenCodeParser | ClaudeCodeParser | CodexParser]
) -> None:
    seen: list[AgentActivity] = []
    collector = Collector(call_for("executor", tmp_path), seen.append)
    feed_all(parser_class(collector), ["a warning, not JSON", "[1, 2]", '"text"', ""])
    assert [a.summary for a in seen if a.kind == "raw"] == [
        "a warning, not JSON",
        "[1, 2]",
        '"text"',
    ]
    assert collector.raw_lines == 3


def fake_opencode(path: Path, body: str) -> Path:
    """A stand-in `opencode` (a shell script) that answers --version and then runs body."""
    path.write_text('#!/bin/sh\n[ "$1" = --version ] && echo 1.18.33 && exit 0\n' + body)
    path.chmod(0o755)
    return path


async def test_an_idle_kill_does_not_quote_harmless_stderr_as_its_error(tmp_path: Path) -> None:
    """A banner or a deprecation notice on stderr is not why the agent went idle: the
    watchdog's message says there was no error output instead of quoting it."""
    chatty = fake_opencode(
        tmp_path / "chatty",
        "echo 'opencode v1.18.33 — using the project config' >&2\n"
        "echo '(node:42) DeprecationWarning: punycode is deprecated' >&2\nsleep 30\n",
    )
    call = call_for("executor", tmp_path, idle_timeout_secs=1.0)
    result = await OpenCodeProvider(str(chatty)).run(call, lambda a: None)
    assert result.exit_reason == ExitReason.idle
    assert "no error output on its stderr" in result.message
    assert "punycode" not in result.message and "project config" not in result.message


async def test_an_error_line_before_harmless_ones_is_the_one_quoted(tmp_path: Path) -> None:
    failing = fake_opencode(
        tmp_path / "failing",
        "echo 'Error: connect ECONNREFUSED 127.0.0.1:9' >&2\necho 'retrying in 2s' >&2\nsleep 30\n",
    )
    call = call_for("executor", tmp_path, idle_timeout_secs=1.0)
    result = await OpenCodeProvider(str(failing)).run(call, lambda a: None)
    assert result.message.endswith(
        "last error on its stderr: Error: connect ECONNREFUSED 127.0.0.1:9"
    )


async def test_opencodes_database_failing_at_start_is_a_harness_crash(tmp_path: Path) -> None:
    """The stderr of the OpenCode that lost the first-start race (recorded by hand): the
    crash is OpenCode's, not the agent's, and the run does not charge the attempt."""
    raced = fake_opencode(
        tmp_path / "raced",
        "printf 'Error: Unexpected error\\n\\nFailed query: \\n        CREATE TABLE "
        "`workspace` (\\n          `id` text PRIMARY KEY\\n        );\\nparams: \\n' >&2\n"
        "exit 1\n",
    )
    result = await OpenCodeProvider(str(raced)).run(call_for("executor", tmp_path), lambda a: None)
    assert result.exit_reason == ExitReason.crashed
    assert result.harness_error
    plain = fake_opencode(tmp_path / "plain", "echo boom >&2\nexit 1\n")
    result = await OpenCodeProvider(str(plain)).run(call_for("executor", tmp_path), lambda a: None)
    assert result.exit_reason == ExitReason.crashed and not result.harness_error


def test_a_relative_agent_home_becomes_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIRECTOR_AGENT_HOME", "agent-home")
    assert agent_env()["HOME"] == str(tmp_path / "agent-home")
