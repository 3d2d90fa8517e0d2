"""The OpenCode server driver's pure parts (the real server is in tests/e2e/): permission
answers by the role table, server events → ``opencode run`` lines, and the local HTTP
client's Server-Sent Events reader on a real socket with a chunked body."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from director_tui.engine.agents.local_http import EventStream, LocalServer, request
from director_tui.engine.agents.opencode_server import OpenCodeServer, ServerStartError
from director_tui.engine.agents.opencode_session import _SessionEvents, permission_reply


def test_permission_answers_follow_the_role_table_and_fail_closed() -> None:
    assert permission_reply("executor", "bash") == "once"
    assert permission_reply("executor", "edit") == "once"
    assert permission_reply("test_author", "edit") == "once"
    assert permission_reply("reviewer", "edit") == "reject"
    assert permission_reply("explorer", "bash") == "reject"
    assert permission_reply("executor", "webfetch") == "reject"
    assert permission_reply("executor", "external_directory") == "reject"
    assert permission_reply("executor", "a-permission-we-never-heard-of") == "reject"
    assert permission_reply("no-such-role", "read") == "once"  # reading is harmless
    assert permission_reply("no-such-role", "edit") == "reject"


def test_session_events_become_the_lines_opencode_run_prints_once_each() -> None:
    events = _SessionEvents("ses_1")
    streaming = {"id": "p1", "type": "text", "text": "Wri", "time": {"start": 1}}
    finished = {"id": "p1", "type": "text", "text": "Writing.", "time": {"start": 1, "end": 2}}
    assert events.part_line(streaming) is None
    line = events.part_line(finished)
    assert line is not None
    parsed = json.loads(line)
    assert (parsed["type"], parsed["sessionID"], parsed["part"]["text"]) == (
        "text",
        "ses_1",
        "Writing.",
    )
    assert events.part_line(finished) is None  # the same part updated again: not twice

    tool = {"id": "p2", "type": "tool", "tool": "write", "state": {"status": "running"}}
    assert events.part_line(tool) is None
    done = tool | {"state": {"status": "error", "error": "denied"}}
    assert json.loads(events.part_line(done) or "{}")["type"] == "tool_use"
    step = {"id": "p3", "type": "step-finish", "tokens": {"input": 3}, "cost": 0.1}
    assert json.loads(events.part_line(step) or "{}")["type"] == "step_finish"
    assert json.loads(events.part_line({"id": "p4", "type": "step-start"}) or "{}")["type"] == (
        "step_start"
    )
    assert events.part_line({"id": "p5", "type": "patch"}) is None


async def test_event_stream_reads_chunked_sse_and_requests_send_basic_auth() -> None:
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head)
        if head.startswith(b"GET /events"):
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            body = b'data: {"type": "a"}\n\ndata: {"type":\ndata:  "b"}\n\n: comment\n\n'
            for piece in (body[:7], body[7:30], body[30:]):  # events split across chunks
                writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            writer.write(b"0\r\n\r\n")
        else:
            data = b'{"healthy": true}'
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    endpoint = LocalServer(f"http://127.0.0.1:{port}", "opencode", "s3cret")
    async with listener:
        answer = await request(endpoint, "GET", "/global/health")
        stream = EventStream(endpoint, "/events")
        await stream.open()
        events = [event async for event in stream]

    assert answer.status == 200 and answer.json() == {"healthy": True}
    assert events == [{"type": "a"}, {"type": "b"}]
    assert b"Authorization: Basic b3BlbmNvZGU6czNjcmV0" in seen[0]  # opencode:s3cret


async def test_a_server_that_never_listens_fails_its_start_and_stays_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The start gives up after its timeout and stops what it started: that stop ran under
    # the lock ensure_running holds (asyncio's is not re-entrant), so the start hung for
    # good, and with it the attempt, the slot's clearing and the run's end.
    binary = tmp_path / "opencode"
    binary.write_text("#!/bin/sh\nexec sleep 60\n")
    binary.chmod(0o755)
    monkeypatch.setenv("DIRECTOR_AGENT_HOME", str(tmp_path / "home"))  # not the user's
    server = OpenCodeServer(
        str(binary), agents={}, log_dir=tmp_path / "logs", startup_timeout_secs=0.5
    )
    with pytest.raises(ServerStartError, match=r"did not listen within 0\.5s"):
        async with asyncio.timeout(20):
            await server.ensure_running()
    assert not server.alive
    async with asyncio.timeout(5):  # the lock is free again
        async with server.settled():
            pass
