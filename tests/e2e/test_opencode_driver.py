"""The OpenCode driver against the real OpenCode 1.18.33 binary and the fake model server."""

from __future__ import annotations

import asyncio
import os
import time
import tracemalloc
from pathlib import Path

import psutil
import pytest
from conftest import OpenCodeEnv
from gitrepo import make_repo

from director_tui.engine.agents.base import AgentCall, AgentResult, ExitReason
from director_tui.engine.agents.first_start import DONE_NAME
from director_tui.engine.agents.opencode import OpenCodeProvider
from director_tui.engine.events import AgentActivity

pytestmark = pytest.mark.e2e
PROMPT = "--help a prompt that starts with dashes, has 'quotes', $VARS and\nlines"


def make_call(
    role: str, cwd: Path, tmp_path: Path, *, idle: float = 60, timeout: float = 120
) -> AgentCall:
    return AgentCall(
        role=role,
        tier=f"opencode/fake/{role}",
        prompt=PROMPT,
        cwd=cwd,
        log_dir=tmp_path / "logs",
        idle_timeout_secs=idle,
        timeout_secs=timeout,
    )


class Recorder:
    """Collects activity with the time it arrived, to prove it came while running."""

    def __init__(self) -> None:
        self.items: list[tuple[float, AgentActivity]] = []
        self.pgids: set[int] = set()
        self.dir_marker = ""

    def __call__(self, activity: AgentActivity) -> None:
        self.items.append((time.monotonic(), activity))
        # Remember the process group of the OpenCode process running this call.
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info.get("cmdline") or []
            if self.dir_marker and self.dir_marker in cmdline and "run" in cmdline:
                try:
                    self.pgids.add(os.getpgid(proc.pid))
                except ProcessLookupError:
                    pass

    def tools(self) -> list[tuple[float, AgentActivity]]:
        return [(t, a) for t, a in self.items if a.kind == "tool"]


async def run(call: AgentCall, recorder: Recorder) -> tuple[AgentResult, float]:
    recorder.dir_marker = str(call.cwd)
    result = await OpenCodeProvider().run(call, recorder)
    return result, time.monotonic()


def assert_group_gone(pgids: set[int]) -> None:
    for pgid in pgids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pgid, 0)


async def test_tool_calls_stream_live_and_totals_match_the_server(
    opencode_env: OpenCodeEnv, git_repo: Path, tmp_path: Path
) -> None:
    setup = opencode_env(
        {
            "executor": [
                {
                    "text": "Writing the module.",
                    "tool_calls": [
                        {
                            "name": "write",
                            "arguments": {
                                "filePath": "{cwd}/src/hello.py",
                                "content": "print('hello')\n",
                            },
                        }
                    ],
                    "usage": {"input": 1000, "output": 100},
                },
                {
                    "tool_calls": [
                        {
                            "name": "bash",
                            "arguments": {
                                "command": "python3 src/hello.py > out.txt; sleep 1",
                                "description": "run it",
                            },
                        }
                    ],
                    "usage": {"input": 1500, "output": 50},
                },
                {"text": "Done: hello.py prints hello.", "usage": {"input": 2000, "output": 20}},
            ]
        },
        prices={"executor": (3.0, 15.0)},
    )
    recorder = Recorder()
    result, finished_at = await run(make_call("executor", git_repo, tmp_path), recorder)

    assert result.exit_reason == ExitReason.ok, result.message
    assert (git_repo / "src" / "hello.py").read_text() == "print('hello')\n"
    assert (git_repo / "out.txt").read_text() == "hello\n"
    assert [(c.tool, c.status) for c in result.tool_calls] == [
        ("write", "completed"),
        ("bash", "completed"),
    ]
    tools = recorder.tools()
    assert [(a.tool, a.status) for _, a in tools] == [("write", "completed"), ("bash", "completed")]
    # Live: the write was reported before the bash command (which sleeps 1 s) finished,
    # and both well before the call returned.
    assert tools[1][0] - tools[0][0] > 0.8
    assert finished_at - tools[0][0] > 1.0
    assert result.text == "Done: hello.py prints hello."
    assert (result.tokens.input_tokens, result.tokens.output_tokens) == (4500, 170)
    expected_cost = 4500 * 3.0 / 1e6 + 170 * 15.0 / 1e6
    assert result.cost_usd == pytest.approx(expected_cost, rel=1e-9)
    step_costs = [
        a.cost_usd for _, a in recorder.items if a.kind == "step" and a.status == "finish"
    ]
    assert len(step_costs) == 3
    assert result.transcript_path is not None and result.transcript_path.stat().st_size > 0
    assert result.stderr_path is not None and result.stderr_path.exists()
    # The prompt reached the model whole, as one argument, and the role's system prompt
    # came from our agent definition.
    first = setup.server.requests[0].body["messages"]
    assert any(PROMPT in str(m.get("content")) for m in first if m.get("role") == "user")
    assert "Role: executor" in str(first[0].get("content"))


async def test_idle_watchdog_kills_the_whole_group(
    opencode_env: OpenCodeEnv, git_repo: Path, tmp_path: Path
) -> None:
    setup = opencode_env(
        {"executor": [{"text": "I am starting to think about" * 5, "hang_after": 3}]}
    )
    recorder = Recorder()
    # 15 s, not less: on a loaded 2-core machine OpenCode's silent start-up alone can
    # take 10 s, and the watchdog would then fire before the model was even asked.
    call = make_call("executor", git_repo, tmp_path, idle=15, timeout=120)

    async def watch_pgid() -> None:
        # OpenCode prints nothing while the stream hangs, so find its group by polling.
        while True:
            recorder(AgentActivity(call_id="probe", role="executor", kind="raw"))
            await asyncio.sleep(0.5)

    watcher = asyncio.ensure_future(watch_pgid())
    try:
        result, _ = await run(call, recorder)
    finally:
        watcher.cancel()

    assert result.exit_reason == ExitReason.idle, result.message
    assert "no output for 15s" in result.message
    assert len(setup.server.requests) == 1  # it really hung mid-stream, at the server
    assert recorder.pgids, "never saw the OpenCode process"
    assert_group_gone(recorder.pgids)


async def test_http_400_is_an_api_error_not_a_retry_loop(
    opencode_env: OpenCodeEnv, git_repo: Path, tmp_path: Path
) -> None:
    opencode_env(
        {"executor": [{"status": 400, "error": "model fake-executor does not exist here"}]}
    )
    recorder = Recorder()
    result, _ = await run(make_call("executor", git_repo, tmp_path), recorder)

    assert result.exit_reason == ExitReason.api_error
    assert "model fake-executor does not exist here" in result.message
    assert any(a.kind == "error" for _, a in recorder.items)


async def test_read_only_role_cannot_write(
    opencode_env: OpenCodeEnv, git_repo: Path, tmp_path: Path
) -> None:
    opencode_env(
        {
            "explorer": [
                {
                    "tool_calls": [
                        {
                            "name": "write",
                            "arguments": {"filePath": "{cwd}/pwned.txt", "content": "x\n"},
                        }
                    ],
                    "usage": {"input": 10, "output": 5},
                },
                {
                    "tool_calls": [
                        {
                            "name": "bash",
                            "arguments": {"command": "touch pwned2.txt", "description": "t"},
                        }
                    ],
                    "usage": {"input": 10, "output": 5},
                },
                {"text": "I could not write.", "usage": {"input": 10, "output": 5}},
            ]
        }
    )
    recorder = Recorder()
    result, _ = await run(make_call("explorer", git_repo, tmp_path), recorder)

    assert not (git_repo / "pwned.txt").exists()
    assert not (git_repo / "pwned2.txt").exists()
    assert [c.status for c in result.tool_calls] == ["error", "error"]
    assert "refused by permissions" in result.message
    assert result.text == "I could not write."


async def test_ten_megabytes_of_output_stream_with_bounded_memory(
    opencode_env: OpenCodeEnv, git_repo: Path, tmp_path: Path
) -> None:
    opencode_env(
        {
            "executor": [
                {
                    "repeat_text": {"chunk": "y" * 999 + "\n", "count": 10_000},
                    "usage": {"input": 10, "output": 30_000},
                }
            ]
        }
    )
    recorder = Recorder()
    tracemalloc.start()
    try:
        result, _ = await run(make_call("executor", git_repo, tmp_path), recorder)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert result.exit_reason == ExitReason.ok, result.message
    assert result.transcript_path is not None
    assert result.transcript_path.stat().st_size > 10_000_000  # all of it, on disk
    assert result.text.startswith("y" * 999 + "\n")
    assert len(result.text) < 300 * 1024  # the answer kept in memory is clipped
    assert "more bytes in the transcript" in result.text
    assert result.tokens.output_tokens == 30_000
    # Peak Python allocations during the call (driver + in-process fake server).
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


@pytest.mark.fresh_agent_home
async def test_two_first_starts_in_a_fresh_home_both_work(
    opencode_env: OpenCodeEnv, tmp_path: Path
) -> None:
    """Two OpenCode first starts at once in one HOME raced on its database (one died with
    'Failed query: CREATE TABLE …' two times in three, by hand): the first start in a HOME
    now goes alone until OpenCode has printed its first line."""
    opencode_env({"executor": [{"text": "done"}, {"text": "done"}]})
    repos = [make_repo(tmp_path / f"repo{i}") for i in (1, 2)]
    home = Path(os.environ["DIRECTOR_AGENT_HOME"])
    assert not (home / ".local" / "share" / "opencode").exists()  # a first start, truly
    results = await asyncio.gather(
        *(run(make_call("executor", repo, tmp_path / repo.name), Recorder()) for repo in repos)
    )
    for result, _ in results:
        assert result.ok, result.message
        assert not result.harness_error
    assert (home / ".local" / "share" / "opencode" / DONE_NAME).exists()


async def test_a_relative_agent_home_is_resolved_from_directors_directory(
    opencode_env: OpenCodeEnv,
    git_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`DIRECTOR_AGENT_HOME=agent-home` broke every attempt: the CLI starts in the
    worktree, where that relative HOME is not the folder the user meant."""
    opencode_env({"executor": [{"text": "done"}]})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIRECTOR_AGENT_HOME", "relative-home")
    result, _ = await run(make_call("executor", git_repo, tmp_path), Recorder())
    assert result.ok, result.message
    assert (tmp_path / "relative-home" / ".local" / "share" / "opencode" / "opencode.db").exists()
    assert not (git_repo / "relative-home").exists()
