"""An OpenCode call as a session on a persistent server (``opencode_server.py``).

``OpenCodeServerProvider`` runs one ``AgentCall`` as a session on an ``OpenCodeServer``:
it subscribes to the event stream, creates the session in the call's directory, sends the
prompt asynchronously and turns the session's events into exactly the lines
``opencode run --format json`` prints, so the transcript, the parser
(``OpenCodeParser``), the live ``AgentActivity`` and the verdict are the CLI driver's.
A permission request is answered at once by the role's rules (OpenCode never waits on
an "ask"), a question is refused. The timeout, the idle watchdog (fed by the session's
events) and a cancel abort the session through the API. An event stream can lose events:
after a quiet spell the session's state is asked of the API, and a session that ended
unseen is read from its messages instead of idling out. When the server dies under a
call, nothing the agent did is judged: the provider starts the server again and runs the
call again (not the agent's failure, so no attempt is spent); ``server_lost`` is the
exit reason only when it keeps dying.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from director_tui.engine.agents.base import AgentCall, AgentResult, ExitReason, OnActivity
from director_tui.engine.agents.collect import Collector, last_stderr_error, one_line
from director_tui.engine.agents.local_http import (
    EventStream,
    LocalHttpError,
    LocalServer,
    request,
)
from director_tui.engine.agents.opencode import (
    INSTALL_HINT,
    OpenCodeParser,
    UserConfigError,
    agent_definition,
    agent_name,
    permission_block,
)
from director_tui.engine.agents.opencode_server import (
    OpenCodeServer,
    ServerStartError,
    log_size,
    stderr_tail,
)
from director_tui.engine.agents.stream import DEFAULT_MAX_LINE_BYTES, StreamOutcome, Watchdog
from director_tui.engine.prompts import permissions_for

SUBSCRIBE_TIMEOUT_SECS = 30.0
# After this long with no event for the session, its state is asked of the API: an end
# the event stream never brought (a lost event) is then read from the session itself.
QUIET_CHECK_SECS = 10.0
ABORT_WAIT_SECS = 5.0  # after an abort, how long the session may take to go idle


def permission_reply(role: str, permission: str) -> str:
    """The answer to OpenCode's permission request: what the role's table allows, once;
    everything else (an unknown permission too) refused."""
    allowed = permission_block(permissions_for(role)).get(permission) == "allow"
    return "once" if allowed else "reject"


class _SessionEvents:
    """The session's server events → ``opencode run --format json`` lines."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.done_parts: set[str] = set()

    def line(self, kind: str, **fields: Any) -> str:
        event = {"type": kind, "timestamp": int(time.time() * 1000), "sessionID": self.session_id}
        return json.dumps(event | fields)

    def part_line(self, part: dict[str, Any]) -> str | None:
        kind = part.get("type")
        ident = str(part.get("id", ""))
        if kind == "step-start":  # once: a session's messages, read again, repeat it
            return self._once(ident, self.line("step_start", part=part))
        if kind == "step-finish":
            return self._once(ident, self.line("step_finish", part=part))
        if kind in ("text", "reasoning"):
            if not _dict(part.get("time")).get(
                "end"
            ):  # still streaming: `opencode run` prints it when done
                return None
            return self._once(ident, self.line(kind, part=part))
        if kind == "tool":
            if _dict(part.get("state")).get("status") not in ("completed", "error"):
                return None
            return self._once(ident, self.line("tool_use", part=part))
        return None

    def _once(self, ident: str, line: str) -> str | None:
        if ident in self.done_parts:
            return None
        self.done_parts.add(ident)
        return line


class OpenCodeServerProvider:
    """``AgentProvider`` over one ``OpenCodeServer``.

    A call the server died under is run again on the restarted server, up to
    ``server_retries`` times: not the agent's failure, so the caller never sees it as
    one (no attempt is spent), while its tokens and cost still count and its transcript
    is kept beside the call's as ``<call_id>.lost-<n>.jsonl``. ``before_retry`` puts the
    working directory back first (a slot's worktree is reset to its node's base). Only
    when the server keeps dying does the result say ``server_lost``."""

    name = "opencode"

    def __init__(
        self,
        server: OpenCodeServer,
        *,
        before_retry: Callable[[AgentCall], Awaitable[None]] | None = None,
        server_retries: int = 2,
    ) -> None:
        self.server = server
        self.before_retry = before_retry
        self.server_retries = server_retries

    async def run(self, call: AgentCall, on_activity: OnActivity) -> AgentResult:
        lost: list[AgentResult] = []
        while True:
            result = await self._run_once(call, on_activity)
            if result.exit_reason != ExitReason.server_lost or len(lost) >= self.server_retries:
                break
            lost.append(result)
            kept = call.log_dir / f"{call.call_id}.lost-{len(lost)}.jsonl"
            if result.transcript_path is not None and result.transcript_path.exists():
                result.transcript_path.replace(kept)
            on_activity(call.activity("error", summary=f"{result.message}: running it again"))
            if self.before_retry is not None:
                await self.before_retry(call)
        if not lost:
            return result
        for earlier in lost:
            result.tokens.add(earlier.tokens)
        costs = [r.cost_usd for r in [*lost, result] if r.cost_usd is not None]
        note = f"the OpenCode server died under this call {len(lost)} time(s); it ran again"
        return result.model_copy(
            update={
                "cost_usd": sum(costs) if costs else None,
                "duration_secs": result.duration_secs + sum(r.duration_secs for r in lost),
                "message": "; ".join(part for part in (result.message, note) if part),
            }
        )

    async def _run_once(self, call: AgentCall, on_activity: OnActivity) -> AgentResult:
        collector = Collector(call, on_activity)
        call.log_dir.mkdir(parents=True, exist_ok=True)
        transcript = call.log_dir / f"{call.call_id}.jsonl"
        started = time.monotonic()

        def early(reason: ExitReason, message: str, *, harness: bool = False) -> AgentResult:
            return collector.ended_early(
                reason,
                message,
                transcript=transcript,
                stderr=self.server.stderr_path,
                duration_secs=time.monotonic() - started,
                harness_error=harness,
            )

        try:
            await self.server.use_agent(agent_name(call.role), agent_definition(call))
            restarted = await self.server.ensure_running()
        except UserConfigError as exc:
            return early(ExitReason.crashed, f"{exc}; fix or unset it")
        except ServerStartError as exc:
            # The harness failed, not the agent: the attempt is given back (a few times).
            return early(ExitReason.crashed, str(exc), harness=True)
        if restarted and self.server.starts > 1:
            collector.emit("raw", summary=f"restarted the OpenCode server ({self.server.name})")
        session = _Session(self.server, call, collector, transcript)
        began = time.monotonic()
        self.server.sessions_since.append(began)
        try:
            outcome, lost = await session.run()
        finally:
            self.server.sessions_since.remove(began)
        self.server.session_secs.append(time.monotonic() - began)
        result = collector.result(
            outcome,
            transcript=transcript,
            stderr=self.server.stderr_path,
            install_hint=INSTALL_HINT,
        )
        if lost:
            return result.model_copy(
                update={
                    "exit_reason": ExitReason.server_lost,
                    "message": f"the OpenCode server died under the call ({lost})",
                }
            )
        return result


class _Session:
    """One call's session: subscribe, create, prompt, follow the events to idle."""

    def __init__(
        self, server: OpenCodeServer, call: AgentCall, collector: Collector, transcript: Path
    ) -> None:
        self.server = server
        self.call = call
        self.collector = collector
        self.transcript = transcript
        self.directory = quote(str(call.cwd), safe="")
        self.parser = OpenCodeParser(collector)
        self.session_id = ""
        self.lines = 0
        self.retry_note = ""  # the last provider error OpenCode said it is retrying

    def path(self, path: str) -> str:
        return f"{path}?directory={self.directory}"

    async def run(self) -> tuple[StreamOutcome, str]:
        """(the outcome, why the server was lost — empty when it was not)."""
        started = time.monotonic()
        endpoint = self.server.endpoint
        assert endpoint is not None
        fired: Watchdog | None = None
        lost = ""
        stream = EventStream(endpoint, "/global/event")
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        reader: asyncio.Task[str] | None = None
        # The server's log is every call's (and every start's) since it started: a
        # watchdog's message quotes only what this call's session logged, read before our
        # own abort logs "error=Aborted" there — as the CLI driver quotes its own stderr.
        log_start = log_size(self.server.stderr_path)
        tail = ""
        try:
            with self.transcript.open("w", encoding="utf-8") as out:
                try:
                    await stream.open()
                    reader = asyncio.ensure_future(_pump(stream, queue))
                    await self._wait_connected(queue)
                    self.session_id = await self._create_session(endpoint)
                    await self._prompt(endpoint)
                    fired, lost = await self._follow(queue, out, started, reader)
                except LocalHttpError as exc:
                    lost = str(exc) if not await self.server.healthy() else ""
                    if not lost:
                        self.collector.add_error(f"OpenCode server API: {exc}")
                if fired is not None:
                    # What the CLI driver quotes: the last error OpenCode logged; the
                    # retry's own message when it logged none.
                    logged = stderr_tail(self.server.stderr_path, since=log_start)
                    tail = logged if last_stderr_error(logged) else self.retry_note or logged
                    await self._abort(endpoint)
        except asyncio.CancelledError:
            await asyncio.shield(self._abort(endpoint))
            raise
        finally:
            stream.close()
            if reader is not None:
                reader.cancel()
                with contextlib.suppress(BaseException):
                    await reader
        if not lost and not self.server.alive:
            lost = "it exited"
        return (
            StreamOutcome(
                exit_code=None if fired else 0,
                fired=fired,
                duration_secs=time.monotonic() - started,
                stderr_tail=tail,
                lines=self.lines,
            ),
            lost,
        )

    async def _wait_connected(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        """The stream's first event says the subscription is live: from then on nothing
        the session does can be missed."""
        while True:
            try:
                async with asyncio.timeout(SUBSCRIBE_TIMEOUT_SECS):
                    event = await queue.get()
            except TimeoutError as exc:
                raise LocalHttpError("the event stream sent nothing") from exc
            if event is None:
                raise LocalHttpError("the event stream closed before it connected")
            if _payload(event).get("type") == "server.connected":
                return

    async def _create_session(self, endpoint: LocalServer) -> str:
        title = self.call.title or f"director {self.call.role}"
        answer = await request(endpoint, "POST", self.path("/session"), {"title": title})
        if answer.status != 200:
            raise LocalHttpError(f"POST /session: HTTP {answer.status}: {answer.body[:300]!r}")
        return str(answer.json()["id"])

    async def _prompt(self, endpoint: LocalServer) -> None:
        provider_id, _, model_id = self.call.model.partition("/")
        body = {
            "agent": agent_name(self.call.role),
            "model": {"providerID": provider_id, "modelID": model_id},
            "parts": [{"type": "text", "text": self.call.prompt}],
        }
        answer = await request(
            endpoint, "POST", self.path(f"/session/{self.session_id}/prompt_async"), body
        )
        if answer.status not in (200, 204):
            raise LocalHttpError(f"prompt: HTTP {answer.status}: {answer.body[:300]!r}")

    async def _follow(
        self,
        queue: asyncio.Queue[dict[str, Any] | None],
        out: Any,
        started: float,
        reader: asyncio.Task[str],
    ) -> tuple[Watchdog | None, str]:
        deadline = started + self.call.timeout_secs
        last_activity = last_event = time.monotonic()
        events = _SessionEvents(self.session_id)
        while True:
            now = time.monotonic()
            if now >= deadline:
                return "timeout", ""
            idle_left = self.call.idle_timeout_secs - (now - last_activity)
            if idle_left <= 0:
                return "idle", ""
            quiet_left = QUIET_CHECK_SECS - (now - last_event)
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a
                # cancel that arrives as the queue hands over an event (a busy stream).
                async with asyncio.timeout(max(0.0, min(deadline - now, idle_left, quiet_left))):
                    event = await queue.get()
            except TimeoutError:
                if time.monotonic() - last_event >= QUIET_CHECK_SECS:
                    last_event = time.monotonic()
                    if await self._ended_unseen(out, events):
                        return None, ""
                continue
            if event is None:  # the stream ended: the server is gone (or dropped us)
                return None, (await reader) or "its event stream ended"
            payload = _payload(event)
            props = payload.get("properties")
            if not isinstance(props, dict) or props.get("sessionID") != self.session_id:
                continue
            last_event = time.monotonic()
            kind = payload.get("type")
            if kind == "session.status":
                status = _dict(props.get("status"))
                if status.get("type") == "idle":
                    return None, ""
                if status.get("type") == "retry":  # OpenCode retrying a failing provider
                    self.retry_note = one_line(str(status.get("message", "")), 300)
                # Busy, retrying: OpenCode's bookkeeping, not the agent's activity (it says
                # "busy" at every retry of a failing provider, which `opencode run` never
                # prints): the idle watchdog runs on.
                continue
            if kind == "session.idle":
                return None, ""
            last_activity = time.monotonic()
            if kind == "message.part.updated" and isinstance(props.get("part"), dict):
                line = events.part_line(props["part"])
                if line is not None:
                    self._write(out, line)
            elif kind == "session.error":
                self._write(out, events.line("error", error=props.get("error") or {}))
            elif kind == "permission.asked":
                await self._answer_permission(props)
            elif kind == "question.asked":
                await self._refuse_question(props)

    async def _ended_unseen(self, out: Any, events: _SessionEvents) -> bool:
        """Whether the session ended without its end reaching the event stream (asked of
        the API after a quiet spell); if so, what the stream missed is written from the
        session's messages, so the transcript and the verdict are whole. A session the
        server still works on, or an API that does not answer, is left to the watchdogs."""
        endpoint = self.server.endpoint
        if endpoint is None:
            return False
        try:
            status = await request(endpoint, "GET", self.path("/session/status"), timeout=10)
            busy = status.json() if status.status == 200 else None
            if (
                not isinstance(busy, dict)
                or _dict(busy.get(self.session_id)).get("type", "idle") != "idle"
            ):
                return False
            answer = await request(
                endpoint, "GET", self.path(f"/session/{self.session_id}/message"), timeout=30
            )
            messages = answer.json() if answer.status == 200 else None
        except (LocalHttpError, ValueError):
            return False
        # Ended: not busy, and its last message is the model's, completed. (Before the
        # server takes the prompt up, under load seconds later, the session is not busy
        # either: its last message is then the prompt.)
        if not isinstance(messages, list) or not messages:
            return False
        last = _dict(_dict(messages[-1]).get("info"))
        if last.get("role") != "assistant" or not _dict(last.get("time")).get("completed"):
            return False
        for message in messages:
            for part in _dict(message).get("parts") or []:
                line = events.part_line(part) if isinstance(part, dict) else None
                if line is not None:
                    self._write(out, line)
        if last.get("error"):
            self._write(out, events.line("error", error=last["error"]))
        self.collector.emit(
            "raw", summary="the session ended unseen by the event stream: read from the API"
        )
        return True

    def _write(self, out: Any, line: str) -> None:
        out.write(line + "\n")
        out.flush()
        self.lines += 1
        data = line.encode()
        cut = max(0, len(data) - DEFAULT_MAX_LINE_BYTES)
        head = data[:DEFAULT_MAX_LINE_BYTES].decode("utf-8", errors="ignore") if cut else line
        self.parser.feed(head, cut)

    async def _answer_permission(self, props: dict[str, Any]) -> None:
        permission = str(props.get("permission", ""))
        reply = permission_reply(self.call.role, permission)
        body: dict[str, str] = {"reply": reply}
        if reply == "reject":
            body["message"] = (
                f"director-tui: {permission} is not allowed for the {self.call.role} role"
            )
        endpoint = self.server.endpoint
        if endpoint is not None:
            await request(endpoint, "POST", self.path(f"/permission/{props.get('id')}/reply"), body)
        self.collector.emit(
            "raw", summary=f"permission {permission} {props.get('patterns') or ''}: {reply}"
        )

    async def _refuse_question(self, props: dict[str, Any]) -> None:
        """Nobody is there to answer an agent's question: it is refused at once."""
        endpoint = self.server.endpoint
        if endpoint is not None:
            await request(endpoint, "POST", self.path(f"/question/{props.get('id')}/reject"))
        self.collector.emit("raw", summary="the agent asked a question: refused (no one to ask)")

    async def _abort(self, endpoint: LocalServer | None) -> None:
        if endpoint is None or not self.session_id:
            return
        with contextlib.suppress(LocalHttpError):
            await request(
                endpoint,
                "POST",
                self.path(f"/session/{self.session_id}/abort"),
                timeout=ABORT_WAIT_SECS,
            )


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _payload(event: dict[str, Any]) -> dict[str, Any]:
    """``/global/event`` wraps each event as ``{"directory", "payload"}``."""
    payload = event.get("payload")
    return payload if isinstance(payload, dict) else event


async def _pump(stream: EventStream, queue: asyncio.Queue[dict[str, Any] | None]) -> str:
    """Events into the queue, then ``None``; returns why the stream ended (if it broke)."""
    why = ""
    try:
        async for event in stream:
            queue.put_nowait(event)
    except LocalHttpError as exc:
        why = str(exc)
    finally:
        queue.put_nowait(None)
    return why
