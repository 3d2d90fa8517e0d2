"""OpenCode through its persistent server (``opencode serve``), against the real OpenCode
1.18.33 binary and the fake model server: sessions over the HTTP API edit the worktree,
report the same tokens, cost and transcript lines as ``opencode run``, answer permission
requests at once, abort on cancel and on the idle watchdog, and survive a killed server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from conftest import OpenCodeEnv

from director_tui.engine.agents import opencode, opencode_session
from director_tui.engine.agents.base import AgentCall, AgentResult, ExitReason
from director_tui.engine.agents.collect import NO_ERROR_OUTPUT
from director_tui.engine.agents.local_http import request
from director_tui.engine.agents.opencode_server import OpenCodeServer
from director_tui.engine.agents.opencode_session import OpenCodeServerProvider
from director_tui.engine.events import AgentActivity

pytestmark = pytest.mark.e2e


def make_call(role: str, cwd: Path, tmp_path: Path, *, idle: float = 60) -> AgentCall:
    return AgentCall(
        role=role,
        tier=f"opencode/fake/{role}",
        prompt="--help a prompt with 'quotes', $VARS and\nlines",
        cwd=cwd,
        log_dir=tmp_path / "logs",
        idle_timeout_secs=idle,
        timeout_secs=180,
    )


@pytest.fixture
async def server(opencode_env: OpenCodeEnv, tmp_path: Path) -> AsyncIterator[OpenCodeServer]:
    # Built lazily by the test's first call, after opencode_env set the environment.
    server = OpenCodeServer(
        str(opencode_env({}).binary), agents={}, log_dir=tmp_path / "server-logs"
    )
    try:
        yield server
    finally:
        await server.stop()


async def busy_sessions(server: OpenCodeServer, directory: Path) -> dict[str, Any]:
    assert server.endpoint is not None
    answer = await request(
        server.endpoint,
        "GET",
        f"/session/status?directory={quote(str(directory), safe='')}",
        timeout=10,
    )
    assert answer.status == 200
    statuses = answer.json()
    return {sid: s for sid, s in statuses.items() if s.get("type") != "idle"}


WRITE_THEN_ANSWER = [
    {
        "text": "Writing the module.",
        "tool_calls": [
            {
                "name": "write",
                "arguments": {"filePath": "{cwd}/src/hello.py", "content": "print('hello')\n"},
            }
        ],
        "usage": {"input": 1000, "output": 100},
    },
    {
        "tool_calls": [
            {
                "name": "bash",
                "arguments": {"command": "python3 src/hello.py > out.txt", "description": "run"},
            }
        ],
        "usage": {"input": 1500, "output": 50},
    },
    {"text": "Done: hello.py prints hello.", "usage": {"input": 2000, "output": 20}},
]


def assert_wrote_then_answered(result: AgentResult, repo: Path) -> None:
    """WRITE_THEN_ANSWER played out whole (at $3/$15 per million tokens): the files, the
    tools, the answer, tokens and cost, and the transcript `opencode run --format json`
    would have printed (each step once)."""
    assert result.exit_reason == ExitReason.ok, result.message
    assert (repo / "src" / "hello.py").read_text() == "print('hello')\n"
    assert (repo / "out.txt").read_text() == "hello\n"
    assert [(c.tool, c.status) for c in result.tool_calls] == [
        ("write", "completed"),
        ("bash", "completed"),
    ]
    assert result.text == "Done: hello.py prints hello."
    assert (result.tokens.input_tokens, result.tokens.output_tokens) == (4500, 170)
    assert result.cost_usd == pytest.approx(4500 * 3.0 / 1e6 + 170 * 15.0 / 1e6, rel=1e-9)
    assert result.transcript_path is not None
    kinds = [json.loads(line)["type"] for line in result.transcript_path.read_text().splitlines()]
    assert kinds.count("step_start") == 3 and kinds.count("step_finish") == 3
    assert kinds.count("tool_use") == 2 and "text" in kinds


async def test_a_session_edits_the_worktree_with_the_cli_drivers_tokens_cost_and_lines(
    opencode_env: OpenCodeEnv, server: OpenCodeServer, git_repo: Path, tmp_path: Path
) -> None:
    setup = opencode_env(
        {"executor": [*WRITE_THEN_ANSWER, {"text": "again", "usage": {"input": 7, "output": 3}}]},
        prices={"executor": (3.0, 15.0)},
    )
    activity: list[AgentActivity] = []
    provider = OpenCodeServerProvider(server)

    result = await provider.run(make_call("executor", git_repo, tmp_path), activity.append)

    assert_wrote_then_answered(result, git_repo)
    steps = [a for a in activity if a.kind == "step" and a.status == "finish"]
    assert len(steps) == 3
    assert [(a.tool, a.status) for a in activity if a.kind == "tool"] == [
        ("write", "completed"),
        ("bash", "completed"),
    ]
    # Our role agent (prompt from the role table) reached the model, with the prompt whole.
    first = setup.server.requests[0].body["messages"]
    assert "Role: executor" in str(first[0].get("content"))
    assert any("$VARS and\nlines" in str(m.get("content")) for m in first)

    # A second call is a new session on the same, still running server.
    again = await provider.run(make_call("executor", git_repo, tmp_path), lambda _a: None)
    assert again.exit_reason == ExitReason.ok, again.message
    assert again.text == "again"
    assert (again.tokens.input_tokens, again.tokens.output_tokens) == (7, 3)
    assert server.starts == 1
    # What one more server is weighed against (AgentServers.another_server_pays): its one
    # start and its two sessions, each timed.
    assert len(server.start_secs) == 1 and server.start_secs[0] > 0
    assert len(server.session_secs) == 2 and all(secs > 0 for secs in server.session_secs)
    assert server.sessions_since == []  # none under way


async def test_a_session_whose_end_the_event_stream_lost_is_read_from_the_api(
    opencode_env: OpenCodeEnv,
    server: OpenCodeServer,
    git_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Events can be lost on the way (a slow reader, a stream the server dropped and we
    did not notice): once the session's first tool has run, this stream passes nothing
    more of it, neither its last steps nor its end. The call still ends as soon as the
    quiet check asks the API, whole: the same tools, text, tokens and cost."""
    opencode_env({"executor": WRITE_THEN_ANSWER}, prices={"executor": (3.0, 15.0)})
    monkeypatch.setattr(opencode_session, "QUIET_CHECK_SECS", 2.0)
    pump = opencode_session._pump

    async def lossy_pump(stream: Any, queue: asyncio.Queue[dict[str, Any] | None]) -> str:
        class Lossy:
            lost = False

            def put_nowait(self, event: dict[str, Any] | None) -> None:
                part = ((event or {}).get("payload") or {}).get("properties", {}).get("part")
                if isinstance(part, dict) and part.get("tool") == "write":
                    self.lost = True  # this event is the last one passed on
                elif self.lost and event is not None:
                    return
                queue.put_nowait(event)

        return await pump(stream, Lossy())  # type: ignore[arg-type]

    monkeypatch.setattr(opencode_session, "_pump", lossy_pump)
    activity: list[AgentActivity] = []

    result = await OpenCodeServerProvider(server).run(
        make_call("executor", git_repo, tmp_path, idle=60), activity.append
    )

    # Each step once in the transcript, the steps seen live and those read again alike.
    assert_wrote_then_answered(result, git_repo)
    assert any("ended unseen by the event stream" in a.summary for a in activity)


async def test_a_permission_request_is_answered_at_once_by_the_roles_rules(
    opencode_env: OpenCodeEnv,
    server: OpenCodeServer,
    git_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A configuration that leaves a permission at "ask" (here: every edit and command)
    must not hang a session: the executor may run commands, so its request is allowed;
    the reviewer may not edit, so its request is refused."""
    real_block = opencode.permission_block

    def asking(perms: Any) -> dict[str, str]:
        return real_block(perms) | {"bash": "ask", "edit": "ask"}

    monkeypatch.setattr(opencode, "permission_block", asking)
    opencode_env(
        {
            "executor": [
                {
                    "tool_calls": [
                        {
                            "name": "bash",
                            "arguments": {"command": "echo ran > ran.txt", "description": "x"},
                        }
                    ],
                    "usage": {"input": 10, "output": 5},
                },
                {"text": "ran it", "usage": {"input": 10, "output": 5}},
            ],
            "reviewer": [
                {
                    "tool_calls": [
                        {
                            "name": "write",
                            "arguments": {"filePath": "{cwd}/pwned.txt", "content": "x\n"},
                        }
                    ],
                    "usage": {"input": 10, "output": 5},
                },
                {"text": "could not write", "usage": {"input": 10, "output": 5}},
            ],
        }
    )
    provider = OpenCodeServerProvider(server)
    activity: list[AgentActivity] = []

    allowed = await provider.run(make_call("executor", git_repo, tmp_path), activity.append)
    refused = await provider.run(make_call("reviewer", git_repo, tmp_path), activity.append)

    assert allowed.exit_reason == ExitReason.ok, allowed.message
    assert (git_repo / "ran.txt").read_text() == "ran\n"
    assert refused.exit_reason == ExitReason.ok, refused.message
    assert not (git_repo / "pwned.txt").exists()
    assert [(c.tool, c.status) for c in refused.tool_calls] == [("write", "error")]
    assert "refused by permissions" in refused.message
    answers = [a.summary for a in activity if a.summary.startswith("permission ")]
    assert len(answers) == 2
    assert answers[0].startswith("permission bash") and answers[0].endswith(": once")
    assert answers[1].startswith("permission edit") and answers[1].endswith(": reject")


async def test_cancel_and_the_idle_watchdog_abort_the_session_through_the_api(
    opencode_env: OpenCodeEnv, server: OpenCodeServer, git_repo: Path, tmp_path: Path
) -> None:
    hanging = {"text": "thinking about it " * 5, "hang_after": 3}
    opencode_env(
        {"executor": [hanging, hanging, {"text": "fine", "usage": {"input": 1, "output": 1}}]}
    )
    provider = OpenCodeServerProvider(server)

    # Cancelled (a control request, a shutdown) once the model is streaming.
    streaming = asyncio.Event()

    def on_activity(activity: AgentActivity) -> None:
        if activity.kind == "step":
            streaming.set()

    task = asyncio.ensure_future(
        provider.run(make_call("executor", git_repo, tmp_path), on_activity)
    )
    await asyncio.wait_for(streaming.wait(), 120)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await busy_sessions(server, git_repo) == {}

    # The idle watchdog: no event from the session for 5 s.
    idle = await provider.run(make_call("executor", git_repo, tmp_path, idle=5), lambda _a: None)
    assert idle.exit_reason == ExitReason.idle, idle.message
    assert await busy_sessions(server, git_repo) == {}
    # Worded as the CLI driver words it: the server's log holds the earlier call's and
    # this call's own abort ("error=Aborted"), neither of them an error of this call.
    assert idle.message == f"no output for 5s: killed the agent's process tree; {NO_ERROR_OUTPUT}"

    # The server is still good for the next call.
    after = await provider.run(make_call("executor", git_repo, tmp_path), lambda _a: None)
    assert after.exit_reason == ExitReason.ok, after.message
    assert after.text == "fine"
    assert server.starts == 1


async def test_a_killed_server_is_restarted_and_the_call_it_broke_runs_again(
    opencode_env: OpenCodeEnv, server: OpenCodeServer, git_repo: Path, tmp_path: Path
) -> None:
    opencode_env(
        {
            "executor": [
                {"text": "halfway there " * 5, "hang_after": 3},
                {"text": "done the second time", "usage": {"input": 30, "output": 3}},
            ]
        }
    )
    resets: list[str] = []

    async def reset(call: AgentCall) -> None:
        resets.append(call.call_id)

    provider = OpenCodeServerProvider(server, before_retry=reset)
    activity: list[AgentActivity] = []
    killed: list[int] = []

    def on_activity(item: AgentActivity) -> None:
        activity.append(item)
        if item.kind == "step" and not killed and server.pid is not None:
            killed.append(server.pid)
            os.killpg(server.pid, signal.SIGKILL)

    call = make_call("executor", git_repo, tmp_path)
    result = await provider.run(call, on_activity)

    assert killed, "the model never started streaming"
    assert result.exit_reason == ExitReason.ok, result.message
    assert result.text == "done the second time"
    assert "died under this call 1 time(s)" in result.message
    assert server.starts == 2 and server.pid != killed[0]
    assert resets == [call.call_id]
    assert (tmp_path / "logs" / f"{call.call_id}.lost-1.jsonl").exists()
    assert any("died under the call" in a.summary for a in activity if a.kind == "error")


async def test_a_provider_opencode_keeps_retrying_trips_the_idle_watchdog_with_its_error(
    opencode_env: OpenCodeEnv, server: OpenCodeServer, git_repo: Path, tmp_path: Path
) -> None:
    """OpenCode retrying a failing provider (backing off 2, 4, 8, 17 s) prints nothing
    under ``opencode run``, so the idle watchdog fires after its time and quotes the
    error OpenCode logged. The session says "busy" at every retry: that is OpenCode's
    bookkeeping, not the agent's activity — counted as such, the watchdog fired only
    once a back-off outgrew it (here at ~15 s instead of ~8 s), and the message said
    "no error output" (the retry's message alone does not read as an error)."""
    overloaded = {"status": 500, "error": "upstream overloaded"}
    opencode_env({"executor": [overloaded] * 8})
    provider = OpenCodeServerProvider(server)
    await server.ensure_running()  # its start is not the call's idle time

    result = await provider.run(make_call("executor", git_repo, tmp_path, idle=5), lambda _a: None)

    assert result.exit_reason == ExitReason.idle, result.message
    assert result.message == (
        "no output for 5s: killed the agent's process tree; "
        "last error on its stderr: AI_APICallError: upstream overloaded"
    )
    assert result.duration_secs < 12, result.duration_secs
