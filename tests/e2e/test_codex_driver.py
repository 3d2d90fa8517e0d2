"""The Codex driver against the real Codex 0.171.0 and the fake OpenAI Responses endpoint
of the project's fake model server (``POST /v1/responses``).

For a model without metadata Codex offers the model ``exec_command`` (``{"cmd": ...}``)
as its one way to act, so most scripted turns edit files with shell commands. For a
model in its bundled catalog (``gpt-5.5`` in 0.171.0; ``codex debug models`` lists
them) it also offers the freeform ``apply_patch`` tool, which reports ``file_change``
items."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from fake_model_server import FakeModelServer
from gitrepo import run_git

from director_tui.engine import sandbox
from director_tui.engine.agents.base import AgentCall, AgentResult, ExitReason
from director_tui.engine.agents.codex import CodexProvider
from director_tui.engine.config import ROLES, Config
from director_tui.engine.context import EngineContext
from director_tui.engine.events import AgentActivity
from director_tui.engine.store import Store, read_jsonl

pytestmark = pytest.mark.e2e
CodexEnv = Callable[..., FakeModelServer]
PROMPT = "--help a prompt that starts with dashes, has 'quotes', $VARS and\nlines"


def make_call(
    role: str,
    cwd: Path,
    tmp_path: Path,
    *,
    prompt: str = PROMPT,
    model: str = "fake-model",
    idle: float = 60,
    timeout: float = 120,
) -> AgentCall:
    return AgentCall(
        role=role,
        tier=f"codex/{model}",
        prompt=prompt,
        cwd=cwd,
        log_dir=tmp_path / "logs",
        idle_timeout_secs=idle,
        timeout_secs=timeout,
    )


def shell(cmd: str) -> dict[str, Any]:
    """One scripted ``exec_command`` tool call."""
    return {"name": "exec_command", "arguments": {"cmd": cmd}}


class Recorder:
    """Collects activity with the time it arrived, and the process groups of the codex
    processes running in ``cwd`` (the npm wrapper and the native binary it starts)."""

    def __init__(self, cwd: Path) -> None:
        self.items: list[tuple[float, AgentActivity]] = []
        self.pgids: set[int] = set()
        self.cwd = str(cwd)

    def __call__(self, activity: AgentActivity) -> None:
        self.items.append((time.monotonic(), activity))
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info.get("cmdline") or []
            if "exec" in cmdline and self.cwd in cmdline:
                try:
                    self.pgids.add(os.getpgid(proc.pid))
                except ProcessLookupError:
                    pass

    def of_kind(self, kind: str) -> list[tuple[float, AgentActivity]]:
        return [(t, a) for t, a in self.items if a.kind == kind]


async def run(call: AgentCall, recorder: Recorder) -> tuple[AgentResult, float]:
    result = await CodexProvider().run(call, recorder)
    return result, time.monotonic()


def input_messages(server: FakeModelServer, index: int, role: str) -> list[str]:
    """The texts of the ``role`` messages in the ``index``-th request's ``input``."""
    texts: list[str] = []
    for item in server.requests[index].body["input"]:
        if item.get("type") == "message" and item.get("role") == role:
            texts += [str(part.get("text", "")) for part in item["content"]]
    return texts


async def test_text_call_is_priced_from_the_pricing_table(
    codex_env: CodexEnv, git_repo: Path
) -> None:
    server = codex_env(
        {
            "fake-model": [
                {
                    "text": "Nothing to change.",
                    "usage": {"input": 1000, "cached": 400, "output": 50},
                }
            ]
        }
    )
    config = Config.model_validate(
        {
            "tiers": dict.fromkeys(ROLES, "codex/fake-model"),
            "pricing": {"codex/fake-model": {"input": 2.0, "output": 10.0}},
        }
    )
    ctx = EngineContext.open(Store(git_repo), config)
    result, entry = await ctx.call_agent("planner", PROMPT, git_repo)

    assert result.exit_reason == ExitReason.ok, result.message
    assert result.text == "Nothing to change."
    # Codex counts cached tokens inside input_tokens; the driver splits them out.
    assert (
        result.tokens.input_tokens,
        result.tokens.cache_read_tokens,
        result.tokens.output_tokens,
    ) == (600, 400, 50)
    assert result.cost_usd is None  # Codex reports no cost …
    assert entry.cost_source == "pricing"  # … so [pricing] prices all 1000 input tokens
    assert entry.cost_usd == pytest.approx(1000 * 2.0 / 1e6 + 50 * 10.0 / 1e6, rel=1e-9)
    assert result.transcript_path is not None
    transcript = read_jsonl(result.transcript_path)
    assert [e["type"] for e in transcript][-1] == "turn.completed"
    # The task is the user message, whole and alone; the role prompt is a developer message.
    assert len(server.requests) == 1
    assert input_messages(server, 0, "user")[-1] == PROMPT
    assert any(t.startswith("# Role: planner") for t in input_messages(server, 0, "developer"))
    # Off for every role: hosted web search, sub-agents, goals.
    tools = {str(t.get("name") or t.get("type")) for t in server.requests[0].body["tools"]}
    assert "exec_command" in tools
    assert not tools & {"web_search", "multi_agent_v1", "create_goal"}
    # Nothing landed in the repository, and --ephemeral left no session file.
    assert run_git(git_repo, "status", "--porcelain") == ""
    assert not (Path(os.environ["CODEX_HOME"]) / "sessions").exists()


async def test_executor_runs_commands_in_the_worktree_live(
    codex_env: CodexEnv, git_repo: Path, tmp_path: Path
) -> None:
    server = codex_env(
        {
            "fake-model": [
                {
                    "text": "Writing the module.",
                    "tool_calls": [
                        shell("mkdir -p src && printf 'print(\"hello\")\\n' > src/hello.py")
                    ],
                    "usage": {"input": 1000, "output": 100},
                },
                {
                    "tool_calls": [shell("python3 src/hello.py > out.txt; sleep 1")],
                    "usage": {"input": 1500, "output": 50},
                },
                {
                    "tool_calls": [shell("echo broken >&2; exit 3")],
                    "usage": {"input": 1600, "output": 10},
                },
                {"text": "Done: hello.py prints hello.", "usage": {"input": 2000, "output": 20}},
            ]
        }
    )
    recorder = Recorder(git_repo)
    result, finished_at = await run(make_call("executor", git_repo, tmp_path), recorder)

    assert result.exit_reason == ExitReason.ok, result.message
    assert (git_repo / "src" / "hello.py").read_text() == 'print("hello")\n'
    assert (git_repo / "out.txt").read_text() == "hello\n"
    assert [(c.tool, c.status) for c in result.tool_calls] == [
        ("bash", "completed"),
        ("bash", "completed"),
        ("bash", "error"),
    ]
    assert "broken" in result.tool_calls[2].output
    assert "python3 src/hello.py" in str(result.tool_calls[1].input["command"])
    # Each command's output went back to the model as a function_call_output.
    assert len(server.requests) == 4
    assert "broken" in server.requests[3].tool_results[-1]
    # Live: the first command was reported before the second (which sleeps 1 s) ended.
    finished = [(t, a) for t, a in recorder.of_kind("tool") if a.status != "running"]
    assert len(finished) == 3
    assert finished[1][0] - finished[0][0] > 0.8
    assert finished_at - finished[0][0] > 1.0
    assert result.text == "Done: hello.py prints hello."
    assert (result.tokens.input_tokens, result.tokens.output_tokens) == (6100, 180)
    assert result.cost_usd is None


def patch(*lines: str) -> dict[str, Any]:
    """One scripted freeform ``apply_patch`` call."""
    body = "".join(line + "\n" for line in lines)
    return {"name": "apply_patch", "input": f"*** Begin Patch\n{body}*** End Patch\n"}


async def test_apply_patch_edits_are_reported_as_file_changes(
    codex_env: CodexEnv, git_repo: Path, tmp_path: Path
) -> None:
    server = codex_env(
        {
            "gpt-5.5": [
                {
                    "tool_calls": [patch("*** Add File: notes.txt", "+first")],
                    "usage": {"input": 100, "output": 10},
                },
                {
                    "tool_calls": [patch("*** Update File: notes.txt", "@@", "-first", "+second")],
                    "usage": {"input": 100, "output": 10},
                },
                {"text": "Patched.", "usage": {"input": 100, "output": 10}},
            ]
        }
    )
    recorder = Recorder(git_repo)
    result, _ = await run(make_call("executor", git_repo, tmp_path, model="gpt-5.5"), recorder)

    assert result.exit_reason == ExitReason.ok, result.message
    assert (git_repo / "notes.txt").read_text() == "second\n"
    assert [(c.tool, c.status, c.input["kinds"]) for c in result.tool_calls] == [
        ("edit", "completed", ["add"]),
        ("edit", "completed", ["update"]),
    ]
    assert result.tool_calls[0].input["path"] == [str(git_repo / "notes.txt")]
    assert "Success" in server.requests[1].tool_results[-1]
    assert [a.status for _, a in recorder.of_kind("tool")] == ["running", "completed"] * 2


async def test_read_only_role_cannot_write(
    codex_env: CodexEnv, git_repo: Path, tmp_path: Path
) -> None:
    server = codex_env(
        {
            "gpt-5.5": [
                {"tool_calls": [shell("touch pwned.txt")], "usage": {"input": 10, "output": 5}},
                {
                    "tool_calls": [patch("*** Add File: pwned2.txt", "+x")],
                    "usage": {"input": 10, "output": 5},
                },
                {"text": "I could not write.", "usage": {"input": 10, "output": 5}},
            ]
        }
    )
    call = make_call("explorer", git_repo, tmp_path, model="gpt-5.5")
    result, _ = await run(call, Recorder(git_repo))

    assert not (git_repo / "pwned.txt").exists()
    assert not (git_repo / "pwned2.txt").exists()
    assert "Read-only file system" in server.requests[1].tool_results[-1]
    assert "read-only sandbox" in server.requests[2].tool_results[-1]
    # Codex 0.171 mostly reports a command or patch its sandbox refused to the model only
    # (no item reaches --json; the patch refusal is logged on stderr); under load its
    # refused command sometimes does reach --json, as a failed call. Never a completed one.
    assert all(c.status == "error" for c in result.tool_calls), result.tool_calls
    assert result.exit_reason == ExitReason.ok, result.message
    assert result.text == "I could not write."


async def test_a_long_prompt_goes_through_stdin(
    codex_env: CodexEnv, git_repo: Path, tmp_path: Path
) -> None:
    server = codex_env(
        {"fake-model": [{"text": "Read it all.", "usage": {"input": 9, "output": 3}}]}
    )
    long_prompt = "--start\n" + "a line of the task that goes on\n" * 5000 + "the end"
    call = make_call("executor", git_repo, tmp_path, prompt=long_prompt)
    result, _ = await run(call, Recorder(git_repo))

    assert result.exit_reason == ExitReason.ok, result.message
    assert (tmp_path / "logs" / f"{call.call_id}.prompt.md").exists()  # not on argv
    assert input_messages(server, 0, "user")[-1] == long_prompt


async def test_http_400_is_an_api_error_with_the_servers_words(
    codex_env: CodexEnv, git_repo: Path, tmp_path: Path
) -> None:
    codex_env({"fake-model": [{"status": 400, "error": "model fake-model does not exist here"}]})
    recorder = Recorder(git_repo)
    result, _ = await run(make_call("executor", git_repo, tmp_path), recorder)

    assert result.exit_reason == ExitReason.api_error
    assert "model fake-model does not exist here" in result.message
    assert recorder.of_kind("error")


async def test_http_500_after_the_retry_is_an_api_error(
    codex_env: CodexEnv, git_repo: Path, tmp_path: Path
) -> None:
    server = codex_env(
        {"fake-model": [{"status": 500, "error": "upstream exploded"}] * 2}, stream_retries=1
    )
    recorder = Recorder(git_repo)
    result, _ = await run(make_call("executor", git_repo, tmp_path), recorder)

    assert result.exit_reason == ExitReason.api_error, result.message
    # Codex replaces a 5xx body with its own words ("We're currently experiencing high
    # demand ..."): the message is Codex's, and it is there.
    assert result.message
    assert len(server.requests) == 2  # the first try and the one reconnect
    assert any("Reconnecting" in a.summary for _, a in recorder.of_kind("error"))


async def test_a_500_that_codex_retries_past_is_not_an_error(
    codex_env: CodexEnv, git_repo: Path, tmp_path: Path
) -> None:
    codex_env(
        {
            "fake-model": [
                {"status": 500, "error": "upstream hiccup"},
                {"text": "Recovered.", "usage": {"input": 5, "output": 5}},
            ]
        },
        stream_retries=1,
    )
    recorder = Recorder(git_repo)
    result, _ = await run(make_call("executor", git_repo, tmp_path), recorder)

    assert result.exit_reason == ExitReason.ok, result.message
    assert result.text == "Recovered."
    # The reconnect notice was shown live all the same.
    assert any("Reconnecting" in a.summary for _, a in recorder.of_kind("error"))


async def test_idle_watchdog_kills_the_whole_tree(
    codex_env: CodexEnv, git_repo: Path, tmp_path: Path
) -> None:
    server = codex_env(
        {"fake-model": [{"text": "I am starting to think about" * 5, "hang_after": 3}]}
    )
    recorder = Recorder(git_repo)
    # The watchdog must not fire before the model is asked: Codex asked it 0.5 s after
    # its start at load 1, so 5 s leaves a wide margin for a loaded 2-core machine (the
    # wait for the idle limit is most of this test's time).
    call = make_call("executor", git_repo, tmp_path, idle=5, timeout=120)

    async def watch_pgids() -> None:
        # Codex prints nothing while the stream hangs, so find its groups by polling.
        while True:
            recorder(AgentActivity(call_id="probe", role="executor", kind="raw"))
            await asyncio.sleep(0.5)

    watcher = asyncio.ensure_future(watch_pgids())
    try:
        result, _ = await run(call, recorder)
    finally:
        watcher.cancel()

    assert result.exit_reason == ExitReason.idle, result.message
    assert "no output for 5s" in result.message
    assert len(server.requests) == 1  # it really hung mid-stream, at the server
    assert recorder.pgids, "never saw the codex process"
    for pgid in recorder.pgids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pgid, 0)
    assert not [
        p for p in psutil.process_iter(["cmdline"]) if str(git_repo) in (p.info["cmdline"] or [])
    ]


async def test_an_executor_in_directors_sandbox_writes_its_worktree_and_nothing_else(
    codex_env: CodexEnv, git_repo: Path
) -> None:
    """Through EngineContext, as a run calls it: director's sandbox on, Codex's own off
    (``--sandbox danger-full-access``: a bwrap cannot start inside ours). The command
    writes the worktree; its writes to /tmp and the home land in the sandbox's own empty
    ones and /etc is read-only."""
    available = sandbox.probe()
    assert available.ok, f"this test needs bwrap (make test installs it): {available.reason}"
    marker = f"director-codex-{uuid.uuid4().hex[:8]}"
    escape = (
        f'echo hi > made.txt; echo x > /tmp/{marker}; echo x > "$HOME/{marker}"; '
        f"E=/et; touch ${{E}}c/{marker} 2>&1; echo tried"
    )
    codex_env(
        {
            "fake-model": [
                {"tool_calls": [shell(escape)], "usage": {"input": 1000, "output": 100}},
                {"text": "Done.", "usage": {"input": 1500, "output": 10}},
            ]
        }
    )
    config = Config.model_validate({"tiers": dict.fromkeys(ROLES, "codex/fake-model")})
    ctx = EngineContext.open(Store(git_repo), config)
    try:
        result, _ = await ctx.call_agent("executor", "make made.txt", git_repo)
    finally:
        Path("/etc", marker).unlink(missing_ok=True)
    assert ctx.sandbox.enabled
    assert result.exit_reason == ExitReason.ok, result.message
    assert (git_repo / "made.txt").read_text() == "hi\n"
    assert not Path("/tmp", marker).exists()
    assert not (Path(os.environ["DIRECTOR_AGENT_HOME"]) / marker).exists()
    assert not Path("/etc", marker).exists()
    assert "Read-only file system" in result.tool_calls[0].output
