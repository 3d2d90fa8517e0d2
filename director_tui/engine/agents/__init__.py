"""Agent providers behind one protocol; the tier's first segment picks the provider."""

from __future__ import annotations

from pathlib import Path

from director_tui.engine.agents.base import AgentCall, AgentProvider, AgentResult, ExitReason
from director_tui.engine.config import Config, split_tier
from director_tui.engine.errors import ConfigError

__all__ = ["AgentCall", "AgentProvider", "AgentResult", "ExitReason", "provider_for"]


def provider_for(tier: str, config: Config, repo: Path) -> AgentProvider:
    """The provider that drives ``tier``. Imports lazily: each driver is its own module."""
    name, _ = split_tier(tier)
    if name == "scripted":
        from director_tui.engine.agents.scripted import ScriptedProvider

        path = Path(config.scripted.script)
        return ScriptedProvider(path if path.is_absolute() else repo / path)
    if name == "opencode":
        from director_tui.engine.agents.opencode import OpenCodeProvider

        return OpenCodeProvider()
    if name == "claude-code":
        from director_tui.engine.agents.claude_code import ClaudeCodeProvider

        return ClaudeCodeProvider()
    if name == "codex":
        from director_tui.engine.agents.codex import CodexProvider

        return CodexProvider()
    raise ConfigError(f"unknown provider {name!r} in tier {tier!r}")
