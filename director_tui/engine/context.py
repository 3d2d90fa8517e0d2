"""What every pipeline step needs: the repo, its store, the config, the event bus — and
the one way to call an agent, so every call is streamed, timed, priced and recorded."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from director_tui.engine import cost
from director_tui.engine.agents import provider_for
from director_tui.engine.agents.base import AgentCall, AgentResult
from director_tui.engine.config import Config, split_tier
from director_tui.engine.cost import CostRecord
from director_tui.engine.events import AgentActivity, AgentFinished, AgentStarted, EventBus
from director_tui.engine.store import Store


@dataclass
class EngineContext:
    store: Store
    config: Config
    bus: EventBus = field(default_factory=EventBus)

    @property
    def repo(self) -> Path:
        return self.store.repo

    @classmethod
    def open(cls, store: Store, config: Config) -> EngineContext:
        store.ensure()
        return cls(store=store, config=config, bus=EventBus(store.events))

    @property
    def scripted(self) -> bool:
        return "scripted" in self.config.providers_used()

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
    ) -> tuple[AgentResult, CostRecord]:
        tier = tier or self.config.tier_for(role)
        provider = provider_for(tier, self.config, self.repo)
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

        def on_activity(activity: AgentActivity) -> None:
            self.bus.emit(activity)

        result = await provider.run(call, on_activity)
        entry = cost.record(self.store.costs, result, self.config, node_id=node_id, attempt=attempt)
        self.bus.emit(
            AgentFinished(
                call_id=call.call_id,
                role=role,
                tier=tier,
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
        return result, entry
