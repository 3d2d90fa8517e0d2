"""Agent providers behind one protocol; the tier's first segment picks the provider."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from director_tui.engine.agents.base import AgentCall, AgentProvider, AgentResult, ExitReason
from director_tui.engine.config import Config, split_tier
from director_tui.engine.errors import ConfigError, UsageError

__all__ = [
    "AgentCall",
    "AgentProvider",
    "AgentResult",
    "ExitReason",
    "missing_binaries",
    "provider_for",
    "require_binaries",
]

# The roles each command calls (brainstorm and critic borrow the planner's tier).
PLAN_ROLES = ("explorer", "brainstorm", "planner", "critic", "test_author")


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


def _binaries() -> dict[str, tuple[str, str, str]]:
    """Per provider with a CLI: the env var that overrides its path, its name, install hint."""
    from director_tui.engine.agents import claude_code, codex, opencode

    return {
        "opencode": (opencode.BINARY_ENV, "opencode", opencode.INSTALL_HINT),
        "claude-code": (claude_code.BINARY_ENV, "claude", claude_code.INSTALL_HINT),
        "codex": (codex.BINARY_ENV, "codex", codex.INSTALL_HINT),
    }


def missing_binaries(config: Config, roles: Iterable[str] | None = None) -> list[str]:
    """A line per agent CLI that the tiers of ``roles`` (default: every role) need and that
    cannot be found — checked before a command writes anything, so a missing install is
    bad input, not a job that fails at its first call."""
    from director_tui.engine.agents.collect import find_binary

    tiers = config.tier_map() if roles is None else {r: config.tier_for(r) for r in roles}
    problems = []
    for provider in sorted({split_tier(t)[0] for t in tiers.values()}):
        known = _binaries().get(provider)
        if known is None:
            continue
        env_var, name, hint = known
        if find_binary(env_var, name) is None:
            used_by = sorted(r for r, t in tiers.items() if split_tier(t)[0] == provider)
            problems.append(f"{provider} (for {', '.join(used_by)}): `{name}` not found — {hint}")
    return problems


def run_roles(config: Config) -> tuple[str, ...]:
    """The roles a run calls: executor and escalation always, the rest when enabled."""
    roles = ["executor", "escalation"]
    if config.review.stage_two:
        roles.append("reviewer")
    if config.review.stage_one_llm:
        roles.append("explorer")
    return tuple(roles)


def require_binaries(config: Config, roles: Iterable[str], doing: str) -> None:
    """``UsageError`` (exit 2, nothing written yet) when an agent CLI ``roles`` need is
    missing."""
    missing = missing_binaries(config, roles)
    if missing:
        raise UsageError(
            f"{doing} needs an agent CLI that is not installed: " + "; ".join(missing),
            hint="install it, or give those roles another tier in .director/config.toml "
            "(`director doctor` checks every provider)",
        )
