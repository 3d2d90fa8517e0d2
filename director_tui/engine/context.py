"""What every pipeline step needs: the repo, its store, the config, the event bus — and
the one way to call an agent, so every call is streamed, timed, priced and recorded."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from director_tui.engine import cost, git, sandbox, worktree_home
from director_tui.engine.agent_servers import AgentServers
from director_tui.engine.agents import provider_for
from director_tui.engine.agents.base import AgentCall, AgentProvider, AgentResult, ExitReason
from director_tui.engine.config import Config, split_tier
from director_tui.engine.cost import CostRecord
from director_tui.engine.events import (
    AgentActivity,
    AgentFinished,
    AgentStarted,
    EventBus,
    Notice,
)
from director_tui.engine.prompts import READ_ONLY_ROLES, normalize_role
from director_tui.engine.sandbox import SandboxSpec
from director_tui.engine.store import Store
from director_tui.engine.usage import TokenUsage


@dataclass
class EngineContext:
    store: Store
    config: Config
    bus: EventBus = field(default_factory=EventBus)
    _sandbox: sandbox.Decision | None = field(default=None, repr=False)
    _servers: AgentServers | None = field(default=None, repr=False)
    _tools: dict[tuple[str, tuple[Path, ...]], tuple[Path, ...]] = field(
        default_factory=dict, repr=False
    )

    @property
    def repo(self) -> Path:
        return self.store.repo

    @property
    def servers(self) -> AgentServers:
        """The process's persistent OpenCode servers, by the worktree each serves."""
        if self._servers is None:
            self._servers = AgentServers(self)
        return self._servers

    @classmethod
    def open(cls, store: Store, config: Config) -> EngineContext:
        store.ensure()
        return cls(store=store, config=config, bus=EventBus(store.events))

    @property
    def scripted(self) -> bool:
        return "scripted" in self.config.providers_used()

    @property
    def sandbox(self) -> sandbox.Decision:
        """Whether agents and gate tests run sandboxed (probed once per process); raises
        ``SandboxUnavailableError`` (exit 2) when ``mode = "bwrap"`` cannot be honoured."""
        if self._sandbox is None:
            self._sandbox = sandbox.decide(self.config.sandbox.mode, sandbox.probe())
        return self._sandbox

    def require_sandbox(self) -> None:
        """Before a command starts agents: exit 2 when the configured sandbox cannot be
        had, and one line saying so when ``auto`` finds none (never a silent fallback)."""
        decision = self.sandbox
        if not decision.enabled and decision.mode == "auto":
            self.bus.emit(Notice(level="warning", message=decision.line()))

    def sandbox_spec(self, cwd: Path, *, writable: bool = True) -> SandboxSpec | None:
        """The sandbox for a process working in ``cwd`` (a worktree director made; read-only
        unless ``writable``), or None when the sandbox is off. The checkout, the folders
        of ``PATH`` and director's own Python stay visible (read-only) even under a
        hidden folder: a clone in ``mktemp -d`` runs its gates' ``python -m pytest``."""
        if not self.sandbox.enabled:
            return None
        # Every repository's worktrees (siblings of cwd included) are hidden; cwd itself
        # is bound back below, so an attempt writes exactly its own worktree.
        hide = [Path.home(), self.repo / ".director", worktree_home.base()]
        agent_home = os.environ.get("DIRECTOR_AGENT_HOME")
        if agent_home:
            hide.append(Path(agent_home).expanduser())
        common = git.common_git_dir(self.repo)
        protect = sandbox.git_paths(cwd, common, git.registered_admin_dir(self.repo, cwd))
        return SandboxSpec(
            cwd=cwd,
            hide=tuple(hide),
            tools=self._tool_binds(hide),
            protect=tuple(protect),
            cwd_writable=writable,
        )

    def _tool_binds(self, hide: list[Path]) -> tuple[Path, ...]:
        """The checkout, ``PATH``'s tool folders and director's Python, to show under
        ``hide``: worked out once per ``PATH`` and hidden set. Each spec asked again — a
        realpath of every ``PATH`` entry and the interpreter, 3-10 ms, twice per node
        attempt (bench/overhead.py) — for folders that do not move while a run works,
        short of the user re-linking their tools. Which of them may be shown is path
        arithmetic on the hidden set (the key); whether each exists is asked again by
        every ``SandboxSpec.wrap`` (bwrap refuses a missing bind source)."""
        key = (os.environ.get("PATH", ""), tuple(hide))
        tools = self._tools.get(key)
        if tools is None:
            tools = self._tools[key] = (
                self.repo,
                *sandbox.tool_folders(None, key[0], hide),
                *sandbox.interpreter_folders(hide),
            )
        return tools

    async def call_agent(
        self,
        role: str,
        prompt: str,
        cwd: Path,
        *,
        node_id: str | None = None,
        attempt: int = 0,
        tier: str | None = None,
        title: str = "",
        on_cancelled: Callable[[AgentResult, CostRecord], None] | None = None,
        provider: AgentProvider | None = None,
    ) -> tuple[AgentResult, CostRecord]:
        """Run one agent call; its cost is recorded whether it ends or is cancelled
        (``on_cancelled`` then gets what was charged, before the cancel goes on).
        ``provider``: who runs it instead of the tier's own per-call driver; by default the
        OpenCode server that serves ``cwd`` when there is one (``agent_servers.py``)."""
        tier = tier or self.config.tier_for(role)
        provider = (
            provider
            or self.servers.provider(role, tier, cwd)
            or provider_for(tier, self.config, self.repo)
        )
        limits = self.config.limits
        call = AgentCall(
            role=role,
            tier=tier,
            prompt=prompt,
            cwd=cwd,
            log_dir=self.store.logs,
            timeout_secs=limits.node_timeout_secs,
            idle_timeout_secs=limits.idle_timeout_secs,
            title=title or f"director {role}" + (f" {node_id}" if node_id else ""),
            node_id=node_id,
            attempt=attempt,
            sampling=self.config.sampling_for(role),
            repo=self.repo,
            sandbox=self.sandbox_spec(cwd, writable=normalize_role(role) not in READ_ONLY_ROLES),
        )
        scripted = split_tier(tier)[0] == "scripted"
        self.bus.emit(
            AgentStarted(
                call_id=call.call_id,
                role=role,
                tier=tier,
                node_id=node_id,
                attempt=attempt,
                scripted=scripted,
            )
        )

        finished = _FinishedSteps()

        def on_activity(activity: AgentActivity) -> None:
            finished.add(activity)
            self.bus.emit(activity)

        started = time.monotonic()
        try:
            result = await provider.run(call, on_activity)
        except asyncio.CancelledError:
            # Stopped mid-call (a control request, the ceiling, Ctrl-C): the steps the
            # model finished were billed all the same, so they are charged and reported.
            partial = finished.result(call, time.monotonic() - started, scripted=scripted)
            entry = self._record(partial, node_id, attempt)
            if on_cancelled is not None:
                on_cancelled(partial, entry)
            raise
        return result, self._record(result, node_id, attempt)

    def _record(self, result: AgentResult, node_id: str | None, attempt: int) -> CostRecord:
        """Price the call, append it to ``costs.jsonl`` and say it ended."""
        entry = cost.record(
            self.store.costs,
            result,
            self.config,
            node_id=node_id,
            attempt=attempt,
            append=self.bus.append_durable,  # as durable as the events, group commit too
        )
        self.bus.emit(
            AgentFinished(
                call_id=result.call_id,
                role=result.role,
                tier=result.tier,
                node_id=node_id,
                exit_reason=result.exit_reason.value,
                message=result.message,
                input_tokens=result.tokens.input_tokens,
                output_tokens=result.tokens.output_tokens,
                cost_usd=entry.cost_usd,
                priced=entry.priced,
                duration_secs=result.duration_secs,
            )
        )
        return entry


@dataclass
class _FinishedSteps:
    """The usage of the steps a call finished, as its activity reported them."""

    tokens: TokenUsage = field(default_factory=TokenUsage)
    cost_usd: float = 0.0
    cost_reported: bool = False

    def add(self, activity: AgentActivity) -> None:
        if activity.kind == "step" and activity.status == "finish" and activity.usage:
            self.tokens.add(activity.usage)
            self.cost_usd += activity.cost_usd
            self.cost_reported = self.cost_reported or activity.cost_usd > 0

    def result(self, call: AgentCall, duration: float, *, scripted: bool) -> AgentResult:
        return AgentResult(
            call_id=call.call_id,
            role=call.role,
            tier=call.tier,
            exit_reason=ExitReason.cancelled,
            message="cancelled: the steps it finished are charged",
            tokens=self.tokens,
            # No cost reported: [pricing] prices the tokens (or they stay unpriced).
            cost_usd=self.cost_usd if self.cost_reported else None,
            duration_secs=duration,
            scripted=scripted,
        )
