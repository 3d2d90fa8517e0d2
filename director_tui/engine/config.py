"""Configuration: pydantic models of ``config.toml``, the user+repo merge, profiles.

Reads use ``tomllib``; ``tomlkit`` is imported only on the write path so that edits the
program makes keep the user's comments and layout.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from director_tui.engine.errors import ConfigError

PROVIDERS = ("opencode", "claude-code", "codex", "scripted")
ROLES = ("planner", "test_author", "executor", "explorer", "reviewer", "escalation")
# Roles that have no tier of their own borrow one: the spec writer and the critic think
# like the planner.
BORROWED_TIERS = {"brainstorm": "planner", "critic": "planner"}


class _Strict(BaseModel):
    # strict: TOML has real booleans and numbers, so `stage_two = "yes"` is a mistake to
    # report, not a string to coerce
    model_config = ConfigDict(extra="forbid", strict=True)


def split_tier(tier: str) -> tuple[str, str]:
    """``"opencode/anthropic/claude-opus"`` → ``("opencode", "anthropic/claude-opus")``."""
    provider, _, model = tier.partition("/")
    return provider, model


class Tiers(_Strict):
    planner: str = "opencode/anthropic/claude-opus-4-5"
    test_author: str = "opencode/anthropic/claude-opus-4-5"
    executor: str = "opencode/anthropic/claude-haiku-4-5"
    explorer: str = "opencode/anthropic/claude-haiku-4-5"
    reviewer: str = "opencode/anthropic/claude-sonnet-4-5"
    escalation: str = "opencode/anthropic/claude-sonnet-4-5"

    @field_validator("*")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        provider, model = split_tier(value)
        if provider not in PROVIDERS:
            raise ValueError(
                f"unknown provider {provider!r} in {value!r}; "
                f"a tier is '<provider>/<model>' with provider one of {', '.join(PROVIDERS)}"
            )
        if not model:
            raise ValueError(f"tier {value!r} names no model: write '{provider}/<model>'")
        return value


class Sampling(_Strict):
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=1)


class Repository(_Strict):
    ignore: list[str] = Field(
        default_factory=lambda: ["**/__pycache__/**", "*.pyc", ".pytest_cache/**"]
    )


class Price(_Strict):
    input: float = Field(ge=0)
    output: float = Field(ge=0)


class Limits(_Strict):
    node_timeout_secs: float = Field(default=900, gt=0)
    idle_timeout_secs: float = Field(default=300, gt=0)
    gate_timeout_secs: float = Field(default=600, gt=0)
    cost_ceiling_usd: float = Field(default=10, ge=0)
    on_ceiling: Literal["finish", "cancel"] = "finish"
    max_attempts: int = Field(default=3, ge=1)
    flake_runs: int = Field(default=2, ge=1)
    parallel: int = Field(default=2, ge=1)
    plan_retries: int = Field(default=2, ge=0)


class Review(_Strict):
    stage_two: bool = True
    stage_two_file_threshold: int = Field(default=3, ge=0)
    stage_one_llm: bool = False
    # Passing nodes held for the human before they merge (``awaiting_review``): never,
    # only those that needed the escalation tier to pass, or all of them.
    human: Literal["off", "on-escalation", "always"] = "off"


class Scripted(_Strict):
    """Where the scripted provider finds its script (repo-relative or absolute)."""

    script: str = ".director/script.json"


class Sandbox(_Strict):
    """The OS sandbox for agent processes and gate tests (``engine/sandbox.py``): "auto"
    uses bubblewrap where it works and says why not elsewhere; "bwrap" insists (exit 2
    when unavailable); "off" runs them unsandboxed (writes outside the worktree are then
    only detected)."""

    mode: Literal["auto", "bwrap", "off"] = "auto"


class Cluster(_Strict):
    """Where node attempts run: here (``local``) or as tasks on a Ray cluster (``ray``;
    ``pip install 'director-tui[ray]'``, see docs/cluster.md)."""

    engine: Literal["local", "ray"] = "local"
    # The Ray cluster to join ("ray://host:10001", "host:6379", "auto"); empty: the
    # RAY_ADDRESS environment variable, else a Ray started on this machine for the run.
    address: str = ""
    # Per role, the Ray resources one attempt asks for: {"executor" = {"local-llm" = 1}}
    # puts executor attempts only on nodes started with that custom resource. "CPU" is
    # the CPUs an attempt holds (default 1).
    resources: dict[str, dict[str, float]] = Field(default_factory=dict)
    max_in_flight: int = Field(default=8, ge=1)  # attempts submitted at once
    # The head runs each returned commit's test_cmd itself before merging (a worker is
    # never trusted); false leaves the tests to the worker for heavy suites (hashes,
    # allowlist, symlinks and the commit's parent are always checked on the head).
    verify_tests: bool = True

    @field_validator("resources")
    @classmethod
    def _role_resources(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for role, wanted in value.items():
            if role not in ("executor", "escalation"):
                raise ValueError(
                    f"[cluster.resources] {role}: only executor and escalation attempts run "
                    "on the cluster"
                )
            for name, amount in wanted.items():
                if amount < 0:
                    raise ValueError(f"[cluster.resources] {role}.{name}: must be >= 0")
        return value

    def resources_for(self, role: str) -> dict[str, float]:
        """An attempt's Ray resources; escalation borrows the executor's when unset."""
        return dict(self.resources.get(role) or self.resources.get("executor") or {})


# The run's flags (`director run --cluster ray --address …`) reach the app's engine worker
# through these, like RAY_ADDRESS reaches Ray.
CLUSTER_ENGINE_ENV = "DIRECTOR_CLUSTER_ENGINE"
CLUSTER_ADDRESS_ENV = "DIRECTOR_CLUSTER_ADDRESS"


class OpenCode(_Strict):
    """How runs drive OpenCode: ``server = true`` runs each parallel slot's agent calls as
    sessions on one ``opencode serve`` of its own (no cold start per call); ``false``
    starts a cold ``opencode run`` per call (the measured baseline, or an OpenCode
    whose server misbehaves)."""

    server: bool = True


ATTENTION_KINDS = (
    "gate_reached",
    "review_waiting",
    "node_failed",
    "ceiling_stopped",
    "job_finished",
)


class Notify(_Strict):
    """How director tells the human it needs them, or that the job finished
    (``engine/attention.py``, ``engine/notify.py``): the terminal's bell, a desktop
    notification escape, and a command of the user's."""

    # Run for each attention event with the event as JSON on stdin and in DIRECTOR_*
    # environment variables: a string (split like a shell would, no shell features) or
    # an argv list (["sh", "-c", "…"] for a shell). Empty: no command.
    command: str | list[str] = ""
    timeout_secs: float = Field(default=10, gt=0)
    # BEL on the terminal (tmux sets the window's bell flag; most terminals flash or beep).
    bell: bool = True
    # The desktop notification escape: OSC 9 (iTerm2, WezTerm, Ghostty, kitty, Windows
    # Terminal), OSC 777 (foot, urxvt, VTE-based, Ghostty, WezTerm) or both; a terminal
    # that reads both shows two.
    desktop: Literal["both", "osc9", "osc777", "off"] = "both"
    # Which kinds ring and run the command (all by default).
    events: list[str] = Field(default_factory=lambda: list(ATTENTION_KINDS))

    @field_validator("command")
    @classmethod
    def _splits(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str):
            import shlex

            try:
                shlex.split(value)
            except ValueError as exc:  # an unclosed quote
                raise ValueError(f"[notify] command {value!r} does not split: {exc}") from exc
        elif value and not value[0]:
            raise ValueError("[notify] command: the program (the first item) is empty")
        return value

    @field_validator("events")
    @classmethod
    def _known_kinds(cls, value: list[str]) -> list[str]:
        unknown = [kind for kind in value if kind not in ATTENTION_KINDS]
        if unknown:
            raise ValueError(
                f"[notify] events: unknown {', '.join(unknown)}; the kinds are "
                + ", ".join(ATTENTION_KINDS)
            )
        return value

    def argv(self) -> list[str]:
        """The command as an argv; [] when none is configured."""
        if isinstance(self.command, list):
            return list(self.command)
        import shlex

        return shlex.split(self.command)


class Config(_Strict):
    tiers: Tiers = Field(default_factory=Tiers)
    sampling: dict[str, Sampling] = Field(default_factory=dict)
    gates: dict[str, str] = Field(default_factory=dict)
    repository: Repository = Field(default_factory=Repository)
    pricing: dict[str, Price] = Field(default_factory=dict)
    limits: Limits = Field(default_factory=Limits)
    review: Review = Field(default_factory=Review)
    scripted: Scripted = Field(default_factory=Scripted)
    sandbox: Sandbox = Field(default_factory=Sandbox)
    cluster: Cluster = Field(default_factory=Cluster)
    opencode: OpenCode = Field(default_factory=OpenCode)
    notify: Notify = Field(default_factory=Notify)

    @field_validator("sampling")
    @classmethod
    def _known_roles(cls, value: dict[str, Sampling]) -> dict[str, Sampling]:
        known = set(ROLES) | set(BORROWED_TIERS) | {"test-author"}
        for role in value:
            if role not in known:
                raise ValueError(f"[sampling.{role}]: unknown role; roles are {', '.join(ROLES)}")
        return value

    def tier_for(self, role: str) -> str:
        role = role.replace("-", "_")
        role = BORROWED_TIERS.get(role, role)
        tier: str = getattr(self.tiers, role)
        return tier

    def sampling_for(self, role: str) -> Sampling:
        return self.sampling.get(role) or self.sampling.get(role.replace("_", "-")) or Sampling()

    def gate_commands(self) -> list[tuple[str, str]]:
        """The integration gate, in declaration order; an empty command disables a gate."""
        return [(name, cmd) for name, cmd in self.gates.items() if cmd.strip()]

    def tier_map(self) -> dict[str, str]:
        return {role: self.tier_for(role) for role in ROLES}

    def providers_used(self) -> set[str]:
        return {split_tier(t)[0] for t in self.tier_map().values()}

    def scripted_label(self) -> str | None:
        """What every view shows when agents are replayed scripts, not models."""
        used = self.providers_used()
        if used == {"scripted"}:
            return "demo — scripted agents, no model calls"
        if "scripted" in used:
            scripted = sorted(r for r, t in self.tier_map().items() if t.startswith("scripted/"))
            return f"scripted: {', '.join(scripted)}"
        return None


def user_config_path() -> Path:
    return Path(os.environ.get("DIRECTOR_HOME", Path.home() / ".director")) / "config.toml"


def repo_config_path(repo: Path) -> Path:
    return repo / ".director" / "config.toml"


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line L, column C)": keep it, name the file.
        raise ConfigError(f"{path}: broken TOML: {exc}", hint="fix the file and run again") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text", hint="fix the file and run again") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Tables merge key by key; scalars and arrays from ``over`` replace."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


_DOTTED_PART = re.compile(r"""\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*(?:\.|$)""")


def _dotted(text: str) -> tuple[str, ...] | None:
    """``a."b/c".d`` → ``("a", "b/c", "d")``; None when it is not a plain dotted key."""
    parts: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _DOTTED_PART.match(text, pos)
        if match is None or match.end() == pos:
            return None
        parts.append(next(g for g in match.groups() if g is not None))
        pos = match.end()
    return tuple(parts) or None


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Where each table and key of a TOML text is defined: dotted path → line number.

    Best effort, for error messages only (tomllib keeps no positions): table headers and
    ``key = value`` lines; inline tables and multi-line values are not looked into."""
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("[") and not line.startswith("[["):
            header = _dotted(line[1:].split("]", 1)[0])
            if header is not None:
                table = header
                found.setdefault(table, number)
            continue
        key, sep, _value = line.partition("=")
        path = _dotted(key) if sep and not line.startswith("#") else None
        if path is not None:
            found.setdefault(table + path, number)
    return found


def _format_validation(path: str, exc: ValidationError, text: str | None = None) -> str:
    where = key_lines(text) if text is not None else {}
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        line = where.get(tuple(str(p) for p in err["loc"]))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (see config.example.toml for the schema)"
        lines.append(f"  {f'line {line}: ' if line else ''}{loc}: {msg}")
    return f"{path}: invalid configuration\n" + "\n".join(lines)


def validate(data: dict[str, Any], source: str, *, text: str | None = None) -> Config:
    """A :class:`Config`, or a ConfigError naming ``source`` and each bad key (with its
    line when ``text``, the file's TOML, is given)."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(source, exc, text)) from exc


def validate_file(path: Path) -> dict[str, Any]:
    """The file's TOML, checked against the schema on its own: errors name this file and
    the line of each bad key."""
    data = read_toml(path)
    try:
        Config.model_validate(data)
    except ValidationError as exc:
        text = path.read_text(encoding="utf-8", errors="replace")
        raise ConfigError(
            _format_validation(str(path), exc, text), hint="fix the file and run again"
        ) from exc
    return data


def load_config(repo: Path, *, user_path: Path | None = None) -> Config:
    """User config, then the repo's over it. ``[gates]`` only ever comes from the repo."""
    user_path = user_path or user_config_path()
    # Each file is checked on its own first, so an error names the file that has it.
    user = validate_file(user_path) if user_path.is_file() else {}
    user.pop("gates", None)
    repo_path = repo_config_path(repo)
    repo_data = validate_file(repo_path) if repo_path.is_file() else {}
    config = validate(deep_merge(user, repo_data), f"{user_path} + {repo_path}")
    return with_cluster_flags(config)


def with_cluster_flags(config: Config) -> Config:
    """``config`` with ``director run --cluster/--address`` applied (they travel as
    ``DIRECTOR_CLUSTER_ENGINE``/``DIRECTOR_CLUSTER_ADDRESS`` to whichever thread runs)."""
    engine = os.environ.get(CLUSTER_ENGINE_ENV, "").strip()
    address = os.environ.get(CLUSTER_ADDRESS_ENV, "").strip()
    if not engine and not address:
        return config
    update: dict[str, Any] = {}
    if engine:
        if engine not in ("local", "ray"):
            raise ConfigError(f"{CLUSTER_ENGINE_ENV}={engine!r}: the engine is local or ray")
        update["engine"] = engine
    if address:
        update["address"] = address
    return config.model_copy(update={"cluster": config.cluster.model_copy(update=update)})


def profile_path(repo: Path, name: str) -> Path:
    return repo / ".director" / "profiles" / f"{name}.toml"


def load_profile(repo: Path, name: str) -> Config:
    """A bench profile is one whole file, loaded directly: no user merge."""
    path = profile_path(repo, name)
    if not path.is_file():
        raise ConfigError(
            f"profile {name!r} not found at {path}",
            hint="create it with `director init --profiles` or copy .director/config.toml there",
        )
    return validate(validate_file(path), str(path))


def example_config_text() -> str:
    from importlib.resources import files

    return files("director_tui").joinpath("config.example.toml").read_text(encoding="utf-8")


def prune_starter_config(path: Path, *, gates: dict[str, str] | None) -> None:
    """A config written from the example, fitted to the repository: ``gates`` (when given)
    replaces the example's [gates] table, and [pricing] keeps only the tiers in use."""
    import tomlkit

    from director_tui.engine.store import atomic_write_text

    doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    if gates is not None and "gates" in doc:
        table: Any = doc["gates"]
        for key in list(table):
            del table[key]
        for key, command in gates.items():
            table[key] = command
    used = set(validate(tomllib.loads(tomlkit.dumps(doc)), str(path)).tier_map().values())
    pricing: Any = doc.get("pricing")
    if pricing is not None:
        for tier in [t for t in pricing if t not in used]:
            del pricing[tier]
    text = tomlkit.dumps(doc)
    validate(tomllib.loads(text), str(path))
    atomic_write_text(path, text)


def set_values(path: Path, values: dict[str, Any]) -> None:
    """Set dotted keys (``"tiers.executor"``) in a TOML file, keeping comments and layout."""
    import tomlkit

    from director_tui.engine.store import atomic_write_text

    if path.exists():
        read_toml(path)  # a broken file is reported with its line and column, not patched
        doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    else:
        doc = tomlkit.document()
    for dotted, value in values.items():
        *tables, key = dotted.split(".")
        table: Any = doc
        for name in tables:
            if name not in table:
                table[name] = tomlkit.table()
            table = table[name]
        table[key] = value
    text = tomlkit.dumps(doc)
    validate(tomllib.loads(text), str(path))
    atomic_write_text(path, text)
