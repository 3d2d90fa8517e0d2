"""The project's own fake model server: scripted streams for the real agent CLIs.

It speaks three wire formats on 127.0.0.1 (port chosen by the OS):

* OpenAI-compatible ``POST /chat/completions`` (and ``/v1/chat/completions``) with SSE
  streaming, including ``tool_calls`` deltas: what OpenCode's ``@ai-sdk/openai-compatible``
  provider and other OpenAI-style clients call.
* Anthropic-Messages-compatible ``POST /v1/messages`` (SSE ``message_start`` …
  ``message_stop`` with ``tool_use`` blocks): what Claude Code calls via
  ``ANTHROPIC_BASE_URL``.
* OpenAI-Responses-compatible ``POST /v1/responses`` (and ``/responses``) with SSE
  ``response.created`` … ``response.completed`` (usage in the last event), text as
  ``message`` output items and tool calls as ``function_call`` items (``call_id``,
  ``name``, ``arguments``): what Codex CLI calls through a ``model_providers`` entry with
  ``wire_api = "responses"``. Tool results come back as ``function_call_output`` input
  items. A tool call scripted with ``"input": "<text>"`` instead of ``arguments`` is a
  freeform ``custom_tool_call`` (Codex's ``apply_patch`` for the models it knows).

A *script* maps a model id to the list of turns the server plays, one turn per request
for that model, in order. A turn is a dict (JSON-able, so a script can also be a file)::

    {"text": "final words",                          # assistant text, streamed in pieces
     "tool_calls": [{"name": "write",                # tool calls the model "makes"
                     "arguments": {"filePath": "{cwd}/hello.txt", "content": "hi\\n"}}],
     "usage": {"input": 120, "output": 30},          # tokens reported in the last chunk
                                                     # (Responses also "cached": N of input)
     "status": 400, "error": "bad request: ...",      # answer with an HTTP error instead
     "hang_after": 2,                                 # send N chunks, then go silent
     "repeat_text": {"chunk": "x" * 1000, "count": 10000},  # huge output, made lazily
     "delay": 0.2,                                    # seconds between chunks
     "latency": 3.0}                                  # seconds before the answer starts

Turns keyed ``"<model>|<needle>"`` are played only to a request of that model whose first
user message (the call's prompt) contains ``needle``, before the model's plain queue: so
parallel calls of one model (nodes running side by side) each get their own turns.

``{cwd}`` in any string argument is replaced by the working directory the client put in
its system prompt (OpenCode: ``Working directory: <path>``, Claude Code: ``Primary working
directory: <path>``, Codex: ``<cwd><path></cwd>`` in its environment context), so file
tools get
absolute paths inside the test's worktree. A model whose turns are used up, or a model
with no script, gets HTTP 400 "fake server: no scripted turn left for model X" — loud,
fast (a 400 is not retried), and visible in the test's failure.

Every request is recorded in ``server.requests`` (model, path, last user text, tool
results) for assertions. Use :func:`start_fake_server` (or the ``fake_server`` pytest
fixture in ``tests/e2e/conftest.py``); run this file directly to serve a JSON script file
by hand: ``python tests/fake_model_server.py script.json``.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Turn = dict[str, Any]
Script = dict[str, list[Turn]]

_CWD_PATTERNS = (
    re.compile(r"[Ww]orking directory:[ \t]*([^\n]+?)[ \t]*$", re.MULTILINE),  # spaces allowed
    re.compile(r"<cwd>([^<]+)</cwd>"),  # Codex's <environment_context>
)
# Text is streamed in pieces this long, so clients see many deltas like from a real model.
_TEXT_PIECE = 40


@dataclass
class RecordedRequest:
    path: str
    model: str
    body: dict[str, Any]
    cwd: str = ""
    at: float = field(default_factory=time.time)

    @property
    def tool_results(self) -> list[str]:
        """Tool outputs the client sent back (OpenAI ``role: tool`` messages)."""
        out: list[str] = []
        for message in self.body.get("messages", []):
            if message.get("role") == "tool":
                out.append(_content_text(message.get("content")))
            elif isinstance(message.get("content"), list):  # Anthropic tool_result blocks
                for block in message["content"]:
                    if isinstance(block, dict) and block.get("type") == "tool_result":
                        out.append(_content_text(block.get("content")))
        for item in _input_items(self.body):  # Responses function_call_output items
            if item.get("type") in ("function_call_output", "custom_tool_call_output"):
                out.append(_content_text(item.get("output")))
        return out


def _input_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The Responses API's ``input`` (a string, or a list of items)."""
    items = body.get("input")
    if isinstance(items, str):
        return [{"type": "message", "role": "user", "content": items}]
    return [item for item in items or [] if isinstance(item, dict)]


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _find_cwd(body: dict[str, Any]) -> str:
    texts: list[str] = [_content_text(body.get("system")), _content_text(body.get("instructions"))]
    texts += [_content_text(m.get("content")) for m in body.get("messages", [])]
    texts += [_content_text(item.get("content")) for item in _input_items(body)]
    for text in texts:
        for pattern in _CWD_PATTERNS:
            match = pattern.search(text)
            if match:
                return match.group(1).strip()
    return ""


def _first_user_text(body: dict[str, Any]) -> str:
    """The call's prompt: what a ``"<model>|<needle>"`` queue is matched against."""
    for message in body.get("messages", []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_text(message.get("content"))
    for item in _input_items(body):
        if item.get("role") == "user":
            return _content_text(item.get("content"))
    return ""


def _substitute(value: Any, cwd: str) -> Any:
    if isinstance(value, str):
        return value.replace("{cwd}", cwd)
    if isinstance(value, dict):
        return {k: _substitute(v, cwd) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, cwd) for v in value]
    return value


def _text_pieces(turn: Turn) -> Iterator[str]:
    """The turn's text in small pieces; ``repeat_text`` is generated lazily (10 MB of it
    never sits in the server's memory)."""
    text = str(turn.get("text", ""))
    for start in range(0, len(text), _TEXT_PIECE):
        yield text[start : start + _TEXT_PIECE]
    repeat = turn.get("repeat_text")
    if repeat:
        chunk = str(repeat["chunk"])
        for _ in range(int(repeat["count"])):
            yield chunk


class FakeModelServer:
    """Scripted model server in a background thread. Thread-safe script queues."""

    def __init__(self, script: Script | None = None, host: str = "127.0.0.1") -> None:
        self._lock = threading.Lock()
        self._turns: dict[str, list[Turn]] = {}
        self.requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self.load(script or {})
        self._httpd = ThreadingHTTPServer((host, 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    # ── scripting ────────────────────────────────────────────────────────────────
    def load(self, script: Script) -> None:
        """Append turns per model (keeps what is already queued)."""
        with self._lock:
            for model, turns in script.items():
                self._turns.setdefault(model, []).extend(turns)

    def remaining(self, model: str) -> int:
        with self._lock:
            return len(self._turns.get(model, []))

    def _next_turn(self, model: str, prompt: str = "") -> Turn | None:
        with self._lock:
            # Clients prefix models differently ("fake/m", "m"): match on the last part.
            short = model.rsplit("/", 1)[-1]
            for key, turns in self._turns.items():
                name, sep, needle = key.partition("|")
                if sep and name in (model, short) and needle in prompt and turns:
                    return turns.pop(0)
            queue = self._turns.get(model)
            if queue is None:
                queue = self._turns.get(short)
            return queue.pop(0) if queue else None

    # ── lifecycle ────────────────────────────────────────────────────────────────
    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeModelServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases hanging handlers
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeModelServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # ── HTTP ─────────────────────────────────────────────────────────────────────
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                # Model listings some clients probe; answer with what is scripted.
                if self.path.rstrip("/").endswith("/models"):
                    with server._lock:
                        models = list(server._turns)
                    body = {
                        "object": "list",
                        "data": [{"id": m, "object": "model"} for m in models],
                    }
                    self._json(200, body)
                    return
                self._json(404, {"error": {"message": f"fake server: no GET {self.path}"}})

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    self._json(400, {"error": {"message": "fake server: body is not JSON"}})
                    return
                path = self.path.split("?", 1)[0]
                if path.endswith("/messages/count_tokens"):
                    self._json(200, {"input_tokens": 10})
                    return
                anthropic = path.endswith("/messages")
                responses = path.endswith("/responses")
                if not (anthropic or responses or path.endswith("/chat/completions")):
                    self._json(404, {"error": {"message": f"fake server: no POST {path}"}})
                    return
                model = str(body.get("model", ""))
                cwd = _find_cwd(body)
                with server._lock:
                    server.requests.append(RecordedRequest(path, model, body, cwd))
                turn = server._next_turn(model, _first_user_text(body))
                if turn is None:
                    self._error(
                        400, f"fake server: no scripted turn left for model {model}", anthropic
                    )
                    return
                turn = _substitute(turn, cwd)
                if "status" in turn:
                    self._error(int(turn["status"]), str(turn.get("error", "error")), anthropic)
                    return
                try:
                    if anthropic:
                        self._stream(self._anthropic_events(turn, model), turn)
                    elif responses:
                        self._stream(self._responses_events(turn, model), turn)
                    else:
                        self._stream(self._openai_events(turn, model), turn)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client went away (killed by a watchdog): fine

            # ── answers ──────────────────────────────────────────────────────────
            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, message: str, anthropic: bool) -> None:
                if anthropic:
                    kind = "invalid_request_error" if status < 500 else "api_error"
                    body = {"type": "error", "error": {"type": kind, "message": message}}
                else:
                    body = {"error": {"message": message, "type": "invalid_request_error"}}
                self._json(status, body)

            def _stream(self, events: Iterator[str], turn: Turn) -> None:
                latency = float(turn.get("latency", 0))
                if latency and server._stopping.wait(latency):  # a model thinking
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                hang_after = turn.get("hang_after")
                delay = float(turn.get("delay", 0))
                for sent, event in enumerate(events):
                    if hang_after is not None and sent >= int(hang_after):
                        # Go silent with the connection open, like a stuck upstream.
                        server._stopping.wait()
                        return
                    self.wfile.write(event.encode())
                    self.wfile.flush()
                    if delay:
                        time.sleep(delay)

            def _openai_events(self, turn: Turn, model: str) -> Iterator[str]:
                ident = f"chatcmpl-{uuid.uuid4().hex[:12]}"
                created = int(time.time())

                def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
                    body = {
                        "id": ident,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                    }
                    return f"data: {json.dumps(body)}\n\n"

                yield chunk({"role": "assistant", "content": ""})
                last_piece, last_event = None, ""
                for piece in _text_pieces(turn):
                    # repeat_text yields one string object again and again: encode it once
                    # (keeps a 10 MB stream cheap, even under tracemalloc).
                    if piece is not last_piece:
                        last_piece, last_event = piece, chunk({"content": piece})
                    yield last_event
                calls = turn.get("tool_calls") or []
                for index, call in enumerate(calls):
                    arguments = json.dumps(call.get("arguments", {}))
                    yield chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": index,
                                    "id": call.get("id") or f"call_{uuid.uuid4().hex[:8]}",
                                    "type": "function",
                                    "function": {"name": call["name"], "arguments": ""},
                                }
                            ]
                        }
                    )
                    # Arguments arrive in two halves, as real models stream them.
                    half = len(arguments) // 2
                    for part in (arguments[:half], arguments[half:]):
                        yield chunk(
                            {"tool_calls": [{"index": index, "function": {"arguments": part}}]}
                        )
                yield chunk({}, "tool_calls" if calls else "stop")
                usage = turn.get("usage") or {}
                prompt_tokens = int(usage.get("input", 0))
                completion_tokens = int(usage.get("output", 0))
                final = {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens,
                    },
                }
                yield f"data: {json.dumps(final)}\n\n"
                yield "data: [DONE]\n\n"

            def _anthropic_events(self, turn: Turn, model: str) -> Iterator[str]:
                def event(name: str, body: dict[str, Any]) -> str:
                    return f"event: {name}\ndata: {json.dumps({'type': name, **body})}\n\n"

                usage = turn.get("usage") or {}
                yield event(
                    "message_start",
                    {
                        "message": {
                            "id": f"msg_{uuid.uuid4().hex[:12]}",
                            "type": "message",
                            "role": "assistant",
                            "model": model,
                            "content": [],
                            "stop_reason": None,
                            "stop_sequence": None,
                            "usage": {
                                "input_tokens": int(usage.get("input", 0)),
                                "output_tokens": 1,
                            },
                        }
                    },
                )
                index = 0
                pieces = _text_pieces(turn)
                first = next(pieces, None)
                if first is not None:
                    yield event(
                        "content_block_start",
                        {"index": index, "content_block": {"type": "text", "text": ""}},
                    )
                    for piece in _chain(first, pieces):
                        yield event(
                            "content_block_delta",
                            {"index": index, "delta": {"type": "text_delta", "text": piece}},
                        )
                    yield event("content_block_stop", {"index": index})
                    index += 1
                calls = turn.get("tool_calls") or []
                for call in calls:
                    yield event(
                        "content_block_start",
                        {
                            "index": index,
                            "content_block": {
                                "type": "tool_use",
                                "id": call.get("id") or f"toolu_{uuid.uuid4().hex[:12]}",
                                "name": call["name"],
                                "input": {},
                            },
                        },
                    )
                    yield event(
                        "content_block_delta",
                        {
                            "index": index,
                            "delta": {
                                "type": "input_json_delta",
                                "partial_json": json.dumps(call.get("arguments", {})),
                            },
                        },
                    )
                    yield event("content_block_stop", {"index": index})
                    index += 1
                yield event(
                    "message_delta",
                    {
                        "delta": {
                            "stop_reason": "tool_use" if calls else "end_turn",
                            "stop_sequence": None,
                        },
                        "usage": {"output_tokens": int(usage.get("output", 0))},
                    },
                )
                yield event("message_stop", {})

            def _responses_events(self, turn: Turn, model: str) -> Iterator[str]:
                """OpenAI Responses API stream: every output item is announced
                (``output_item.added``), streamed (text or argument deltas) and closed
                (``output_item.done`` with the whole item, which is what clients keep)."""
                response_id = f"resp_{uuid.uuid4().hex[:12]}"
                sequence = iter(range(1_000_000_000))

                def event(name: str, body: dict[str, Any]) -> str:
                    data = {"type": name, "sequence_number": next(sequence), **body}
                    return f"event: {name}\ndata: {json.dumps(data)}\n\n"

                response: dict[str, Any] = {
                    "id": response_id,
                    "object": "response",
                    "created_at": int(time.time()),
                    "status": "in_progress",
                    "model": model,
                    "output": [],
                }
                yield event("response.created", {"response": response})
                yield event("response.in_progress", {"response": response})
                output: list[dict[str, Any]] = []
                pieces = _text_pieces(turn)
                first = next(pieces, None)
                if first is not None:
                    item_id = f"msg_{uuid.uuid4().hex[:12]}"
                    index = len(output)
                    item: dict[str, Any] = {
                        "id": item_id,
                        "type": "message",
                        "status": "in_progress",
                        "role": "assistant",
                        "content": [],
                    }
                    yield event("response.output_item.added", {"output_index": index, "item": item})
                    where = {"item_id": item_id, "output_index": index, "content_index": 0}
                    yield event(
                        "response.content_part.added",
                        {**where, "part": {"type": "output_text", "text": "", "annotations": []}},
                    )
                    text: list[str] = []
                    for piece in _chain(first, pieces):
                        text.append(piece)
                        yield event("response.output_text.delta", {**where, "delta": piece})
                    part = {"type": "output_text", "text": "".join(text), "annotations": []}
                    yield event("response.output_text.done", {**where, "text": part["text"]})
                    yield event("response.content_part.done", {**where, "part": part})
                    item = {**item, "status": "completed", "content": [part]}
                    output.append(item)
                    yield event("response.output_item.done", {"output_index": index, "item": item})
                for call in turn.get("tool_calls") or []:
                    index = len(output)
                    freeform = "input" in call
                    # What the model writes: JSON arguments, or a freeform tool's raw text.
                    written = (
                        str(call["input"]) if freeform else json.dumps(call.get("arguments", {}))
                    )
                    field = "input" if freeform else "arguments"
                    stream = "custom_tool_call_input" if freeform else "function_call_arguments"
                    item = {
                        "id": f"{'ctc' if freeform else 'fc'}_{uuid.uuid4().hex[:12]}",
                        "type": "custom_tool_call" if freeform else "function_call",
                        "status": "in_progress",
                        "call_id": call.get("id") or f"call_{uuid.uuid4().hex[:8]}",
                        "name": call["name"],
                        field: "",
                    }
                    yield event("response.output_item.added", {"output_index": index, "item": item})
                    where = {"item_id": item["id"], "output_index": index}
                    # Arguments arrive in two halves, as real models stream them.
                    half = len(written) // 2
                    for part_text in (written[:half], written[half:]):
                        yield event(f"response.{stream}.delta", {**where, "delta": part_text})
                    yield event(f"response.{stream}.done", {**where, field: written})
                    item = {**item, "status": "completed", field: written}
                    output.append(item)
                    yield event("response.output_item.done", {"output_index": index, "item": item})
                usage = turn.get("usage") or {}
                input_tokens = int(usage.get("input", 0))
                output_tokens = int(usage.get("output", 0))
                done = {
                    **response,
                    "status": "completed",
                    "output": output,
                    "usage": {
                        "input_tokens": input_tokens,
                        "input_tokens_details": {"cached_tokens": int(usage.get("cached", 0))},
                        "output_tokens": output_tokens,
                        "output_tokens_details": {"reasoning_tokens": 0},
                        "total_tokens": input_tokens + output_tokens,
                    },
                }
                yield event("response.completed", {"response": done})

        return Handler


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def start_fake_server(script: Script | None = None) -> FakeModelServer:
    return FakeModelServer(script).start()


if __name__ == "__main__":  # serve a script file by hand, for debugging a CLI
    loaded: Script = json.loads(Path(sys.argv[1]).read_text()) if len(sys.argv) > 1 else {}
    fake = start_fake_server(loaded)
    print(fake.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
