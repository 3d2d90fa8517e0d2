"""Does each tier's model exist for its agent CLI? Asked of the CLI itself.

A tier whose provider OpenCode has no credentials or config for, or whose model that
provider does not have, fails at its first call with OpenCode's "UnknownError:
Unexpected server error" — seconds or minutes into a job. ``opencode models`` lists
what OpenCode can call, with the very environment and project folder director gives an
agent (``DIRECTOR_AGENT_HOME``, ``OPENCODE_CONFIG_CONTENT`` merged with ours, the
repository's ``opencode.json``), so ``director doctor``, ``plan`` and ``run`` ask it
first. Claude Code and Codex have no command that lists their models: their tiers are
said to be "not checked", never "ok".

A listing that passed is remembered for the life of the process (one check per run,
not per call: ``director auto`` lists once for its plan and its run, whatever tiers
each uses); a failed one is asked again, so a fix is seen at once. Where a planning pass
has its OpenCode server at hand, the server answers (``list_served_models``). A pass is
also kept across processes (``model_cache``: under a fingerprint of OpenCode's binary,
config, credentials and provider variables, for a day), so from a user's second job on
``plan``/``run``/bench ask nothing; ``director doctor`` always asks (``fresh``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import quote

from director_tui.engine.agents import model_cache
from director_tui.engine.agents.collect import agent_env, find_binary
from director_tui.engine.agents.first_start import first_start_turn
from director_tui.engine.agents.local_http import LocalHttpError, request
from director_tui.engine.agents.opencode_server import OpenCodeServer, ServerStartError
from director_tui.engine.config import Config, split_tier
from director_tui.engine.errors import UsageError

LIST_TIMEOUT_SECS = 120.0  # a first start migrates OpenCode's database: seconds, not ms
PROVIDERS_DOC = "docs/providers.md"


class ModelStatus(StrEnum):
    ok = "ok"
    missing = "missing"  # the CLI listed its models and this one is not among them
    unchecked = "unchecked"  # no way to ask, or the CLI could not answer


@dataclass(frozen=True)
class TierCheck:
    tier: str
    roles: tuple[str, ...]
    status: ModelStatus
    detail: str  # one line: what was found and, when missing, the fix
    fingerprint: str = ""  # of what OpenCode's answer depends on (model_cache)
    listed: bool = False  # the verdict comes from a listing made in this process
    checked_at: float | None = None  # a pass kept from an earlier process: when it was listed

    def line(self) -> str:
        return f"tier {self.tier} (for {', '.join(self.roles)}): {self.detail}"


@dataclass(frozen=True)
class ModelListing:
    models: frozenset[str]  # "provider/model" as the CLI spells them
    error: str = ""  # why there is no listing


_PASSED: set[tuple[str, ...]] = set()
_LISTED: dict[tuple[str, ...], ModelListing] = {}  # listings that named models, by env


def _roles_by_tier(config: Config, roles: Iterable[str] | None) -> dict[str, tuple[str, ...]]:
    tiers = config.tier_map() if roles is None else {r: config.tier_for(r) for r in roles}
    by_tier: dict[str, list[str]] = {}
    for role, tier in tiers.items():
        by_tier.setdefault(tier, []).append(role)
    return {tier: tuple(sorted(rs)) for tier, rs in sorted(by_tier.items())}


def opencode_env() -> dict[str, str]:
    """The environment an OpenCode agent gets, minus the role agents (which do not change
    what models it has). A broken user ``OPENCODE_CONFIG_CONTENT`` raises ``UsageError``."""
    from director_tui.engine.agents.opencode import UserConfigError, merged_agents_config

    try:
        content = merged_agents_config({}, os.environ.get("OPENCODE_CONFIG_CONTENT"))
    except UserConfigError as exc:
        raise UsageError(str(exc), hint="fix or unset OPENCODE_CONFIG_CONTENT") from exc
    return agent_env({"OPENCODE_CONFIG_CONTENT": content})


async def list_opencode_models(binary: str, repo: Path, env: dict[str, str]) -> ModelListing:
    """``opencode models`` run in ``repo`` with ``env``: the models it can call."""
    from director_tui.engine.agents.opencode import OpenCodeProvider

    state_dir = OpenCodeProvider().state_dir(env)
    release = await first_start_turn(state_dir) if state_dir else None
    try:
        proc = await asyncio.create_subprocess_exec(
            binary,
            "models",
            cwd=str(repo),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        if release:
            release(False)
        return ModelListing(frozenset(), f"`{binary} models` did not start: {exc}")
    try:
        out, err = await asyncio.wait_for(proc.communicate(), LIST_TIMEOUT_SECS)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        await proc.wait()
        if release:
            release(False)
        return ModelListing(
            frozenset(), f"`opencode models` gave no answer in {LIST_TIMEOUT_SECS:g}s"
        )
    models = frozenset(
        line.strip()
        for line in out.decode("utf-8", "replace").splitlines()
        if "/" in line and " " not in line.strip()
    )
    if release:
        release(bool(models))
    if proc.returncode != 0 or not models:
        said = (err or out).decode("utf-8", "replace").strip().splitlines()
        last = said[-1][:200] if said else "no output"
        return ModelListing(
            frozenset(), f"`opencode models` listed no models (exit {proc.returncode}: {last})"
        )
    return ModelListing(models)


async def list_served_models(server: OpenCodeServer, directory: Path) -> ModelListing:
    """What ``opencode models`` lists, asked of a running ``opencode serve`` started with
    the agents' environment (its ``/config/providers`` for ``directory``, the one it
    serves: the same providers and models, checked against the CLI's listing for
    OpenCode 1.18.33) — no cold start of its own. Starts the server when it is not
    running."""
    try:
        await server.ensure_running()
        endpoint = server.endpoint
        if endpoint is None:
            raise ServerStartError("the server stopped")
        answer = await request(
            endpoint,
            "GET",
            f"/config/providers?directory={quote(str(directory), safe='')}",
            timeout=LIST_TIMEOUT_SECS,
        )
        providers = answer.json().get("providers", []) if answer.status == 200 else []
        models = frozenset(
            f"{provider['id']}/{model}"
            for provider in providers
            for model in provider.get("models", {})
        )
    except (ServerStartError, LocalHttpError, ValueError, KeyError, AttributeError) as exc:
        return ModelListing(frozenset(), f"the OpenCode server did not list its models: {exc}")
    if not models:
        return ModelListing(
            frozenset(), f"the OpenCode server listed no models (HTTP {answer.status})"
        )
    return ModelListing(models)


Lister = Callable[[], Awaitable[ModelListing]]

CONFIG_TIERS = "[tiers] of .director/config.toml"


def _opencode_verdict(
    ref: str, listing: ModelListing, where: str = CONFIG_TIERS
) -> tuple[ModelStatus, str]:
    if listing.error:
        return ModelStatus.unchecked, f"not checked — {listing.error}"
    if ref in listing.models:
        return ModelStatus.ok, "OpenCode has this model"
    provider = ref.split("/", 1)[0]
    same_provider = sorted(m for m in listing.models if m.startswith(provider + "/"))
    if not same_provider:
        return ModelStatus.missing, (
            f"OpenCode has no provider {provider!r} (no credentials, or not in its config) — "
            f"`opencode auth login` for a hosted provider, or add it to opencode.json or "
            f"OPENCODE_CONFIG_CONTENT ({PROVIDERS_DOC}); `opencode models` lists what it has"
        )
    shown = ", ".join(same_provider[:8]) + (", …" if len(same_provider) > 8 else "")
    return ModelStatus.missing, (
        f"OpenCode's provider {provider!r} has no model {ref.split('/', 1)[1]!r} — pick one "
        f"it has ({shown}) in {where}, or add the model to that "
        f"provider's config ({PROVIDERS_DOC})"
    )


async def check_tiers(
    config: Config,
    repo: Path,
    roles: Iterable[str] | None = None,
    where: str = CONFIG_TIERS,
    listings: dict[str, ModelListing] | None = None,
    *,
    lister: Lister | None = None,
    fresh: bool = False,
) -> list[TierCheck]:
    """One check per tier that ``roles`` (default: every role) use; ``where`` is the file
    the fix names (a bench profile's tiers are in its own file). ``listings`` shares one
    ``opencode models`` answer per binary between several calls (a bench's profiles).
    ``lister``: where the listing comes from instead of a cold ``opencode models`` (a
    running server); when it cannot answer, ``opencode models`` is asked after all.
    ``fresh``: ask the CLI now, whatever passed before in this process or an earlier one
    (``director doctor``). Passes are kept for later processes by ``keep_passes``."""
    checks: list[TierCheck] = []
    asked: dict[str, ModelListing] = {} if listings is None else listings
    fingerprints: dict[str, str] = {}
    for tier, tier_roles in _roles_by_tier(config, roles).items():
        provider, ref = split_tier(tier)
        if provider == "scripted":
            checks.append(TierCheck(tier, tier_roles, ModelStatus.ok, "scripted (no model)"))
            continue
        if provider != "opencode":
            cli = "Claude Code" if provider == "claude-code" else "Codex"
            checks.append(
                TierCheck(
                    tier,
                    tier_roles,
                    ModelStatus.unchecked,
                    f"model not checked — {cli} has no command that lists its models; "
                    "its first call says if the model or the login is wrong",
                )
            )
            continue
        binary = find_binary("DIRECTOR_OPENCODE_BIN", "opencode")
        if binary is None:
            detail = "not checked — opencode is not installed"
            checks.append(TierCheck(tier, tier_roles, ModelStatus.unchecked, detail))
            continue
        env = opencode_env()
        key = (binary, str(repo), tier, *(env.get(k, "") for k in _ENV_KEYS))
        if key in _PASSED and not fresh:
            checks.append(TierCheck(tier, tier_roles, ModelStatus.ok, "OpenCode has this model"))
            continue
        digest = fingerprints.get(binary)
        if digest is None:
            digest = fingerprints[binary] = model_cache.fingerprint(binary, repo, env)
        kept = None if fresh else model_cache.passed_at(digest, tier)
        if kept is not None:
            _PASSED.add(key)
            detail = f"OpenCode had this model {ago(kept)} (its config is unchanged)"
            checks.append(
                TierCheck(tier, tier_roles, ModelStatus.ok, detail, digest, checked_at=kept)
            )
            continue
        listing = asked.get(binary)
        if listing is None:
            listing = asked[binary] = await _listing(binary, repo, env, lister, fresh=fresh)
        status, detail = _opencode_verdict(ref, listing, where)
        if status == ModelStatus.ok:
            _PASSED.add(key)
        checks.append(TierCheck(tier, tier_roles, status, detail, digest, listed=True))
    return checks


def keep_passes(checks: Iterable[TierCheck]) -> None:
    """Keep the passes listed in this process for later ones (``model_cache``) — only
    when no tier is missing: a refused command writes nothing. A tier a fresh listing no
    longer has loses a pass kept for it (``director doctor`` found it gone)."""
    checks = list(checks)
    missing = [c for c in checks if c.status == ModelStatus.missing and c.fingerprint]
    for check in missing:
        model_cache.forget(check.fingerprint, [check.tier])
    if missing:
        return
    listed: dict[str, list[str]] = {}
    for check in checks:
        if check.status == ModelStatus.ok and check.listed and check.fingerprint:
            listed.setdefault(check.fingerprint, []).append(check.tier)
    for digest, tiers in listed.items():
        model_cache.remember(digest, tiers)


def ago(at: float, now: float | None = None) -> str:
    """``at`` (a time.time()) as "12 min ago", for a line a human reads."""
    secs = max(0.0, (time.time() if now is None else now) - at)
    if secs < 60:
        return "under a minute ago"
    if secs < 3600:
        return f"{int(secs // 60)} min ago"
    return f"{int(secs // 3600)} h ago"


def kept_note(checks: Iterable[TierCheck]) -> str:
    """One line for the job's notices when passes kept from an earlier process answered
    the check (nothing was asked), or "" when the CLI was asked."""
    kept = [c.checked_at for c in checks if c.checked_at is not None]
    if not kept:
        return ""
    return (
        f"models: as OpenCode listed them {ago(min(kept))} (its binary, config and "
        "credentials are unchanged; `director doctor` asks afresh)"
    )


async def _listing(
    binary: str, repo: Path, env: dict[str, str], lister: Lister | None, *, fresh: bool
) -> ModelListing:
    """The models OpenCode has: remembered from earlier in this process (unless
    ``fresh``), else from ``lister``, else a cold ``opencode models``."""
    key = (binary, str(repo), *(env.get(k, "") for k in _ENV_KEYS))
    listing = None if fresh else _LISTED.get(key)
    if listing is None and lister is not None:
        served = await lister()
        listing = None if served.error else served
    if listing is None:
        listing = await list_opencode_models(binary, repo, env)
    if listing.models and not listing.error:
        _LISTED[key] = listing
    return listing


# What decides OpenCode's answer besides its own files: a change re-checks.
_ENV_KEYS = ("HOME", "OPENCODE_CONFIG_CONTENT", "OPENCODE_CONFIG", "XDG_CONFIG_HOME")


async def require_models(
    config: Config, repo: Path, roles: Iterable[str], doing: str, *, lister: Lister | None = None
) -> str:
    """``UsageError`` (exit 2, nothing written yet) naming each tier whose model the agent
    CLI says it does not have. A CLI that cannot be asked does not stop the command.
    Returns ``kept_note``: the line to show when earlier passes answered."""
    checks = await check_tiers(config, repo, roles, lister=lister)
    missing = [c for c in checks if c.status == ModelStatus.missing]
    if missing:
        raise UsageError(
            f"{doing} would call a model the agent CLI does not have:\n"
            + "\n".join(f"  - {c.line()}" for c in missing),
            hint="`director doctor` checks every tier",
        )
    keep_passes(checks)
    return kept_note(checks)


async def require_profile_models(
    profiles: Mapping[str, tuple[Config, Iterable[str]]], repo: Path
) -> str:
    """``require_models`` for a bench: every profile's tiers for the roles it will call,
    checked before anything runs, one ``UsageError`` naming each profile, tier, roles and
    the fix in that profile's file. ``profiles`` maps a name to its config and roles.
    Returns ``kept_note``."""
    lines = []
    listings: dict[str, ModelListing] = {}
    checks: list[TierCheck] = []
    for name, (config, roles) in profiles.items():
        where = f"[tiers] of .director/profiles/{name}.toml"
        for check in await check_tiers(config, repo, roles, where, listings):
            checks.append(check)
            if check.status == ModelStatus.missing:
                lines.append(f"  - profile {name}: {check.line()}")
    if lines:
        raise UsageError(
            "the bench would call a model the agent CLI does not have:\n" + "\n".join(lines),
            hint="fix each profile's [tiers], then bench again; nothing was planned or run",
        )
    keep_passes(checks)
    return kept_note(checks)
