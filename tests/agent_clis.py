"""Install the pinned agent CLIs from npm, once, into a cache folder outside the repo.

``ensure_cli("opencode")`` returns the path of a working ``opencode`` binary, installing
``opencode-ai@<pinned>`` on first use (~10 s, ~350 MB) into
``$DIRECTOR_TUI_CACHE`` (default ``~/.cache/director-tui``)/``opencode-<version>``. The
install goes to a temporary folder that is renamed into place only when it worked, under
a file lock, so parallel test sessions and interrupted installs never see a half-install.
``ensure_cli("claude")`` and ``ensure_cli("codex")`` do the same for Claude Code and Codex
(``@openai/codex`` brings its native binary as an optional platform package, e.g.
``@openai/codex-linux-x64``, from the same registry).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PinnedCli:
    name: str  # our name for it (and the cache folder prefix)
    package: str  # npm package
    version: str
    binary: str  # name in node_modules/.bin


PINNED: dict[str, PinnedCli] = {
    "opencode": PinnedCli("opencode", "opencode-ai", "1.18.33", "opencode"),
    "claude": PinnedCli("claude", "@anthropic-ai/claude-code", "2.1.332", "claude"),
    "codex": PinnedCli("codex", "@openai/codex", "0.171.0", "codex"),
}


class CliUnavailable(RuntimeError):
    """npm is missing or the install failed; the message says why."""


def cache_root() -> Path:
    configured = os.environ.get("DIRECTOR_TUI_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "director-tui"


def ensure_cli(name: str, *, timeout: float = 600) -> Path:
    pinned = PINNED[name]
    folder = cache_root() / f"{pinned.name}-{pinned.version}"
    binary = folder / "node_modules" / ".bin" / pinned.binary
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        raise CliUnavailable(f"npm is not installed: cannot install {pinned.package}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with (folder.parent / f".{pinned.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists():  # another session installed it while we waited
            return binary
        staging = Path(tempfile.mkdtemp(prefix=f".{pinned.name}-", dir=folder.parent))
        try:
            (staging / "package.json").write_text('{"private": true}\n')
            done = subprocess.run(
                [
                    npm,
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                    f"{pinned.package}@{pinned.version}",
                ],
                cwd=staging,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            if done.returncode != 0:
                raise CliUnavailable(
                    f"npm install {pinned.package}@{pinned.version} failed:\n{done.stderr[-2000:]}"
                )
            if not (staging / "node_modules" / ".bin" / pinned.binary).exists():
                raise CliUnavailable(f"{pinned.package} installed no {pinned.binary} binary")
            if folder.exists():
                shutil.rmtree(folder)
            staging.rename(folder)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return binary
