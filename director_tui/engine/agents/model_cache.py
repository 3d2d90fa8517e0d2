"""Model checks that passed, remembered from one director process to the next.

``opencode models`` is a cold start of OpenCode (2.5 s on a quiet machine, 8.5 s under
load) in series before every ``plan``, ``run``, ``auto`` and bench. What it lists is
decided by OpenCode's binary, its config files (global, ``OPENCODE_CONFIG``,
``OPENCODE_CONFIG_DIR``, ``~/.opencode``, the project's), the inline config director
merges, its credentials file and the provider variables in the agents' environment. So
"tier T's model was listed" is kept under a fingerprint of all of those, in
``model-checks.json`` in director's state folder (``worktree_home.state_home``;
``$DIRECTOR_MODEL_CHECK_CACHE`` names another file, or ``off``).

Positive only: a tier with no entry under the current fingerprint is asked of the CLI,
so a fix is seen at once and a failure is never kept. An entry older than
``MAX_AGE_SECS`` is asked again too — what the fingerprint cannot see is a provider's
catalogue (models.dev, a local server's list) dropping a model. The file holds digests
and times only, never a value they were made from. ``director doctor`` never reads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from director_tui.engine import worktree_home
from director_tui.engine.store import atomic_write_json

PATH_ENV = "DIRECTOR_MODEL_CHECK_CACHE"
FILE_NAME = "model-checks.json"
VERSION = 1
MAX_AGE_SECS = 24 * 3600.0
MAX_FINGERPRINTS = 64  # a user switching configs back and forth; older ones are dropped

# Variables a provider may read its key, endpoint, region or project from (models.dev's
# provider `env` lists, AWS/Azure/Google SDK settings) and OpenCode's own settings. Only
# their values' digest goes into the fingerprint.
_PROVIDER_ENV = re.compile(
    r"^(HOME|XDG_(CONFIG|DATA|CACHE|STATE)_HOME|XDG_(CONFIG|DATA)_DIRS)$"
    r"|^(OPENCODE_|AWS_|AZURE_|GOOGLE_|GCLOUD_|CLOUDSDK_|VERTEX|OPENAI_|ANTHROPIC_)"
    r"|(_KEY|_TOKEN|_SECRET|_BASE_URL|_API_BASE|_ENDPOINT|_REGION|_PROJECT|_PROJECT_ID"
    r"|_ACCOUNT_ID|_RESOURCE_NAME|_PROFILE)$"
)
# `{env:NAME}` in an OpenCode config: whatever the name, its value decides the provider.
_ENV_REFERENCE = re.compile(r"\{env:([^}\s]+)\}")
_CONFIG_NAMES = ("config.json", "opencode.json", "opencode.jsonc")
# OpenCode writes `"$schema": "https://opencode.ai/config.json",` after the opening brace
# of a config file that has none, on its first read (1.18.33): without this, the check
# that read the file would be kept under a fingerprint the next command no longer has.
_SCHEMA = re.compile(rb'^(\s*\{)\s*"\$schema"\s*:\s*"[^"\\]*"\s*,?\s*')
_OPENING = re.compile(rb"^(\s*\{)\s*")
_PLUGIN_FOLDERS = ("plugin", "plugins")


def cache_path() -> Path | None:
    """The cache file, or None when ``$DIRECTOR_MODEL_CHECK_CACHE`` is ``off``."""
    configured = os.environ.get(PATH_ENV, "").strip()
    if configured.lower() in {"off", "0", "no", "false"}:
        return None
    if configured:
        return Path(os.path.abspath(os.path.expanduser(configured)))
    return worktree_home.state_home() / FILE_NAME


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:  # absent, a folder, unreadable: each reads as "not there"
        return None


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _folder_stats(folder: Path) -> list[tuple[str, int, int]]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []
    found = []
    for entry in entries:
        with contextlib.suppress(OSError):
            st = entry.stat()
            found.append((entry.name, st.st_size, st.st_mtime_ns))
    return found


def _config_dirs(repo: Path, env: Mapping[str, str]) -> list[Path]:
    """The folders OpenCode reads config and plugins from, as it finds them for an agent
    started in ``repo`` with ``env``."""
    home = Path(env.get("HOME") or "~").expanduser()
    config_home = env.get("XDG_CONFIG_HOME") or str(home / ".config")
    dirs = [Path(config_home) / "opencode", home / ".opencode", repo / ".opencode"]
    if env.get("OPENCODE_CONFIG_DIR"):
        dirs.append(_from(repo, env["OPENCODE_CONFIG_DIR"]))
    return dirs


def _from(repo: Path, named: str) -> Path:
    """A path from the environment as OpenCode, started in ``repo``, reads it."""
    return repo / Path(named).expanduser()


def fingerprint(binary: str, repo: Path, env: Mapping[str, str]) -> str:
    """A digest of everything that decides what ``opencode models`` lists when run in
    ``repo`` with ``env`` (the agents' environment, ``model_check.opencode_env``)."""
    real_binary = os.path.realpath(binary)
    real_repo = Path(os.path.realpath(repo))
    parts: list[Any] = [VERSION, real_binary, _stat(Path(real_binary)), str(real_repo)]
    texts: list[bytes] = [_bytes(env.get("OPENCODE_CONFIG_CONTENT", ""))]
    files = [real_repo / name for name in _CONFIG_NAMES[1:]]
    for folder in _config_dirs(real_repo, env):
        files += [folder / name for name in _CONFIG_NAMES]
        parts += [str(folder / sub) for sub in _PLUGIN_FOLDERS]
        parts += [_folder_stats(folder / sub) for sub in _PLUGIN_FOLDERS]
    if env.get("OPENCODE_CONFIG"):
        files.append(_from(real_repo, env["OPENCODE_CONFIG"]))
    for path in files:
        content = _read(path)
        parts.append([str(path), None if content is None else _digest(_unschema(content))])
        if content is not None:
            texts.append(content)
    home = Path(env.get("HOME") or "~").expanduser()
    data_home = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
    auth = data_home / "opencode" / "auth.json"
    parts.append([str(auth), _stat(auth)])
    names = {name for name in env if _PROVIDER_ENV.search(name)}
    for text in texts:
        names.update(m.group(1) for m in _ENV_REFERENCE.finditer(text.decode("utf-8", "replace")))
    parts.append([[name, _digest(_bytes(env[name]))] for name in sorted(names) if name in env])
    return _digest(json.dumps(parts, separators=(",", ":")).encode())


def _unschema(content: bytes) -> bytes:
    """A config file's text as it reads with or without the ``$schema`` OpenCode adds."""
    return _OPENING.sub(rb"\1", _SCHEMA.sub(rb"\1", content, count=1), count=1)


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")  # os.environ keeps undecodable bytes so


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _load(path: Path) -> dict[str, dict[str, float]]:
    """The file's entries; a missing, unreadable or malformed file is an empty cache."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return {}
    passed = data.get("passed")
    if not isinstance(passed, dict):
        return {}
    entries: dict[str, dict[str, float]] = {}
    for key, tiers in passed.items():
        if isinstance(key, str) and isinstance(tiers, dict):
            entries[key] = {
                tier: float(at)
                for tier, at in tiers.items()
                if isinstance(tier, str) and isinstance(at, int | float)
            }
    return entries


def passed_at(key: str, tier: str, now: float | None = None) -> float | None:
    """When ``tier``'s model was listed under fingerprint ``key``, if recently enough."""
    path = cache_path()
    if path is None:
        return None
    at = _load(path).get(key, {}).get(tier)
    now = time.time() if now is None else now
    # A time ahead of the clock (the clock was set back) is no evidence of anything.
    if at is None or not (now - MAX_AGE_SECS <= at <= now):
        return None
    return at


def remember(key: str, tiers: Iterable[str], now: float | None = None) -> None:
    """Keep the passes of ``tiers`` under ``key``; a cache that cannot be written is
    only a missed saving."""
    path = cache_path()
    tiers = list(tiers)
    if path is None or not tiers:
        return
    now = time.time() if now is None else now
    entries = _load(path)
    entries.setdefault(key, {}).update(dict.fromkeys(tiers, now))
    _save(path, _fresh(entries, now))


def forget(key: str, tiers: Iterable[str]) -> None:
    """Drop the passes of ``tiers`` under ``key`` (a fresh check no longer finds them);
    the file is written only when it held one."""
    path = cache_path()
    if path is None:
        return
    entries = _load(path)
    held = entries.get(key, {})
    gone = [tier for tier in tiers if tier in held]
    if not gone:
        return
    for tier in gone:
        del held[tier]
    _save(path, _fresh(entries, time.time()))


def _fresh(entries: dict[str, dict[str, float]], now: float) -> dict[str, dict[str, float]]:
    kept = {
        key: {tier: at for tier, at in tiers.items() if now - MAX_AGE_SECS <= at <= now}
        for key, tiers in entries.items()
    }
    kept = {key: tiers for key, tiers in kept.items() if tiers}
    newest = sorted(kept, key=lambda k: max(kept[k].values()), reverse=True)
    return {key: kept[key] for key in newest[:MAX_FINGERPRINTS]}


def _save(path: Path, entries: dict[str, dict[str, float]]) -> None:
    with contextlib.suppress(OSError):
        atomic_write_json(path, {"version": VERSION, "passed": entries})
