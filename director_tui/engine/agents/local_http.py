"""A small asyncio HTTP/1.1 client for a server on this machine (an agent CLI's own API
server on 127.0.0.1): one request per connection, JSON bodies, Basic auth, and a
Server-Sent Events reader. Nothing here speaks TLS or follows redirects — a local agent
server needs neither, and owning the sockets keeps cancellation exact (closing the
connection is the cancel)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# One SSE event's data can be a whole 10 MB answer: the reader's line limit is generous.
MAX_LINE_BYTES = 64 * 1024 * 1024


class LocalHttpError(Exception):
    """No connection, a dropped connection, or an answer that is not HTTP."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass(frozen=True)
class LocalServer:
    """Where the server listens and how to authenticate (HTTP Basic)."""

    url: str
    username: str = ""
    password: str = ""

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 80

    def headers(self) -> dict[str, str]:
        headers = {"Host": f"{self.host}:{self.port}", "Connection": "close"}
        if self.password:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return headers


async def _open(
    server: LocalServer, method: str, path: str, body: Any, accept: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int, dict[str, str]]:
    try:
        reader, writer = await asyncio.open_connection(
            server.host, server.port, limit=MAX_LINE_BYTES
        )
    except OSError as exc:
        raise LocalHttpError(f"cannot connect to {server.url}: {exc}") from exc
    data = b"" if body is None else json.dumps(body).encode()
    headers = server.headers() | {"Accept": accept, "Content-Length": str(len(data))}
    if body is not None:
        headers["Content-Type"] = "application/json"
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    try:
        writer.write(head.encode() + b"\r\n" + data)
        await writer.drain()
        status_line = await reader.readline()
        parts = status_line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise LocalHttpError(f"{method} {path}: not an HTTP answer: {status_line[:80]!r}")
        status = int(parts[1])
        response_headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            response_headers[name.strip().lower()] = value.strip()
    except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
        _close(writer)
        raise LocalHttpError(f"{method} {path}: connection lost: {exc}") from exc
    except BaseException:
        _close(writer)
        raise
    return reader, writer, status, response_headers


def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()


async def _body_chunks(
    reader: asyncio.StreamReader, headers: dict[str, str]
) -> AsyncIterator[bytes]:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size_line = await reader.readline()
            if not size_line:
                return
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                return
            chunk = await reader.readexactly(size)
            await reader.readexactly(2)  # the CRLF after each chunk
            yield chunk
    elif "content-length" in headers:
        remaining = int(headers["content-length"])
        while remaining > 0:
            chunk = await reader.read(min(remaining, 1 << 16))
            if not chunk:
                raise asyncio.IncompleteReadError(b"", remaining)
            remaining -= len(chunk)
            yield chunk
    else:
        while chunk := await reader.read(1 << 16):
            yield chunk


async def request(
    server: LocalServer, method: str, path: str, body: Any = None, *, timeout: float = 30
) -> Response:
    """One request, the whole answer read; ``LocalHttpError`` when the server is gone."""

    async def go() -> Response:
        reader, writer, status, headers = await _open(server, method, path, body, "*/*")
        try:
            data = b"".join([chunk async for chunk in _body_chunks(reader, headers)])
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            raise LocalHttpError(f"{method} {path}: connection lost: {exc}") from exc
        finally:
            _close(writer)
        return Response(status, data)

    try:
        async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel (3.11)
            return await go()
    except TimeoutError as exc:
        raise LocalHttpError(f"{method} {path}: no answer in {timeout:g}s") from exc


class EventStream:
    """``GET path`` as Server-Sent Events: ``async for data in stream`` yields each
    event's data (parsed JSON). Ends when the server closes the stream; ``close()`` from
    anywhere stops it."""

    def __init__(self, server: LocalServer, path: str) -> None:
        self.server = server
        self.path = path
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.StreamReader | None = None
        self._headers: dict[str, str] = {}

    async def open(self) -> None:
        reader, writer, status, headers = await _open(
            self.server, "GET", self.path, None, "text/event-stream"
        )
        if status != 200:
            _close(writer)
            raise LocalHttpError(f"GET {self.path}: HTTP {status}")
        self._reader, self._writer, self._headers = reader, writer, headers

    def close(self) -> None:
        if self._writer is not None:
            _close(self._writer)

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        assert self._reader is not None, "open() first"
        pending = b""
        data_lines: list[bytes] = []
        try:
            async for chunk in _body_chunks(self._reader, self._headers):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    line = raw.rstrip(b"\r")
                    if line.startswith(b"data:"):
                        data_lines.append(line[5:].removeprefix(b" "))
                    elif not line and data_lines:
                        payload = b"\n".join(data_lines)
                        data_lines = []
                        try:
                            event = json.loads(payload)
                        except ValueError:
                            continue
                        if isinstance(event, dict):
                            yield event
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            raise LocalHttpError(f"GET {self.path}: stream lost: {exc}") from exc
        finally:
            self.close()
