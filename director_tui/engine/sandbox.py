"""The OS sandbox every agent process and gate test command runs in (bubblewrap, Linux).

Detection after the fact (``sandbox_watch.py``) cannot undo a write to ``~/.ssh``; this
prevents it. A sandboxed process sees the whole filesystem read-only, its own empty
``/tmp``, an empty home (only the agent CLI's own state folders and the folders holding
its tools bound back), no ``.director/`` of the repository (plan, state and control
requests are out of reach), and can write only its worktree. Inside the worktree the
``.git`` pointer file stays read-only, and so does the shared git directory: director
makes every commit itself, so an agent moves no ref and plants no hook or config. Its
processes live in their own PID namespace: when the call ends, whatever it started
(``nohup sleep 600 &``) dies with it. The network stays shared (agents reach their model).

Pure parts (the probe's verdict, :func:`decide`, :class:`SandboxSpec` and its argv) are
unit-tested; the launch points only call :meth:`SandboxSpec.wrap`.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from director_tui.engine.errors import UsageError

SandboxMode = Literal["auto", "bwrap", "off"]
INSTALL_HINT = "apt install bubblewrap"
PROBE_TIMEOUT_SECS = 20
# Everything read-only, a private /dev, /proc and /tmp.
_BASE_MOUNTS = ("--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp")
_ISOLATION = (
    # Root outside keeps every capability inside unless they are dropped: it could then
    # remount / read-write or unmount the tmpfs over the home (probed).
    "--cap-drop",
    "ALL",
    "--unshare-pid",  # what it starts dies with it, and it sees no other process
    "--die-with-parent",
    "--new-session",  # no TIOCSTI into director's terminal
)
ALWAYS_HIDDEN = (Path("/tmp"),)


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str  # why not, in words a person can act on ("" when ok)
    binary: str = ""


@functools.cache
def probe() -> Availability:
    """Can bubblewrap build a sandbox here? Asked once per process: the binary is there
    AND a trivial sandbox (the same namespaces an agent's gets) runs ``true``."""
    if not sys.platform.startswith("linux"):
        return Availability(False, f"bwrap is Linux-only (this is {sys.platform})")
    binary = shutil.which("bwrap")
    if binary is None:
        return Availability(False, f"bwrap not installed ({INSTALL_HINT})")
    true = shutil.which("true") or "/bin/true"
    argv = [binary, *_BASE_MOUNTS, *_ISOLATION, "--", true]
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_SECS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Availability(False, f"{binary} could not be run: {exc}")
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return Availability(
            False,
            f"bwrap cannot create a sandbox here ({detail}); unprivileged user namespaces "
            "may be disabled (sysctl kernel.unprivileged_userns_clone=1, or a container "
            "without them)",
        )
    return Availability(True, "", binary)


@dataclass(frozen=True)
class Decision:
    """Whether this command's agents run sandboxed, and the one line that says so."""

    enabled: bool
    mode: SandboxMode
    reason: str = ""

    def line(self) -> str:
        if self.enabled:
            return "sandbox: on (bwrap)"
        return f"sandbox: off — {self.reason}"


class SandboxUnavailableError(UsageError):
    pass


def decide(mode: SandboxMode, availability: Availability) -> Decision:
    """``auto`` uses the sandbox where it works and says why not elsewhere; ``bwrap``
    insists (exit 2, never a silent fallback); ``off`` is the user's choice."""
    if mode == "off":
        return Decision(False, mode, '[sandbox] mode = "off" in the config')
    if availability.ok:
        return Decision(True, mode)
    if mode == "bwrap":
        raise SandboxUnavailableError(
            f'[sandbox] mode = "bwrap" but the sandbox is unavailable: {availability.reason}',
            hint='install bubblewrap, or set [sandbox] mode = "auto" (or "off") in '
            ".director/config.toml; `director doctor` checks it",
        )
    return Decision(False, mode, availability.reason)


@dataclass(frozen=True)
class SandboxSpec:
    """What one sandboxed process may see and write. Mounts are applied in this order:
    the whole tree read-only; a fresh ``/tmp``; an empty tmpfs over each ``hide``; each
    ``tools`` folder bound back read-only; ``cwd`` (unless ``cwd_writable`` is off: then
    it is bound read-only) and each ``writable`` bound writable; each ``protect`` bound
    read-only again on top (paths inside a writable folder)."""

    cwd: Path
    hide: tuple[Path, ...] = ()
    tools: tuple[Path, ...] = ()
    writable: tuple[Path, ...] = ()
    protect: tuple[Path, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd_writable: bool = True  # False for a read-only role (explorer, reviewer, …)

    def plus(
        self,
        *,
        hide: Iterable[Path] = (),
        tools: Iterable[Path] = (),
        writable: Iterable[Path] = (),
        protect: Iterable[Path] = (),
    ) -> SandboxSpec:
        return replace(
            self,
            hide=(*self.hide, *hide),
            tools=(*self.tools, *tools),
            writable=(*self.writable, *writable),
            protect=(*self.protect, *protect),
        )

    def allows_write(self, path: Path) -> bool:
        """Could a process inside write ``path`` (symlinks resolved)? What an in-process
        write on an agent's behalf (the scripted provider's) must check itself."""
        target = Path(os.path.realpath(path))
        roots = (self.cwd, *self.writable) if self.cwd_writable else self.writable
        inside = any(target.is_relative_to(os.path.realpath(root)) for root in roots)
        protected = any(
            target == Path(os.path.realpath(p)) or target.is_relative_to(os.path.realpath(p))
            for p in (self.protect if self.cwd_writable else (self.cwd, *self.protect))
        )
        return inside and not protected

    def wrap(self, argv: Sequence[str], *, bwrap: str = "bwrap") -> list[str]:
        """``argv`` as the command line that runs it inside this sandbox."""
        out = [bwrap, *_BASE_MOUNTS]
        for path in _existing(self.hide, directories=True):
            if path != Path("/"):  # HOME=/ in some containers: hiding it would hide all
                out += ["--tmpfs", str(path)]
        for path in _existing(self.tools):
            out += ["--ro-bind", str(path), str(path)]
        writable = (self.cwd, *self.writable) if self.cwd_writable else self.writable
        for path in _existing(writable):
            out += ["--bind", str(path), str(path)]
        protect = self.protect if self.cwd_writable else (self.cwd, *self.protect)
        for path in _existing(protect):
            out += ["--ro-bind", str(path), str(path)]
        out += ["--setenv", "TMPDIR", "/tmp"]
        for key, value in self.env.items():
            out += ["--setenv", key, value]
        return [*out, *_ISOLATION, "--chdir", str(self.cwd), "--", *argv]


def _existing(paths: Iterable[Path], *, directories: bool = False) -> list[Path]:
    """Absolute, de-duplicated, existing paths (bwrap refuses a missing bind source)."""
    seen: set[Path] = set()
    found: list[Path] = []
    for path in paths:
        path = Path(os.path.abspath(path))
        if path in seen or not (path.is_dir() if directories else path.exists()):
            continue
        seen.add(path)
        found.append(path)
    return found


def tool_folders(binary: str | None, path_env: str, hidden: Iterable[Path]) -> list[Path]:
    """Folders under a hidden path (the home, ``/tmp``) that hold the tools a sandboxed
    command runs, to bind back read-only: the agent CLI's install (npm's prefix or
    package folder, ``~/.opencode``), and for each ``PATH`` entry there its top folder
    below the home (``~/.local``, ``~/.cargo``, ``~/.pyenv`` whose shims run
    ``~/.pyenv/libexec``, ``~/.nvm``) — never a folder that holds secrets."""
    roots = [Path(os.path.abspath(h)) for h in (*ALWAYS_HIDDEN, *hidden)]
    roots = [r for r in roots if r != Path("/")]
    candidates: list[Path] = []
    if binary:
        for path in {Path(os.path.abspath(binary)), Path(os.path.realpath(binary))}:
            candidates.append(_install_root(path.parent))
    for entry in path_env.split(os.pathsep):
        if not entry or not os.path.isabs(entry):
            continue
        folder = Path(os.path.abspath(entry))
        inside = [r for r in roots if folder != r and folder.is_relative_to(r)]
        if not inside:
            continue
        root = max(inside, key=lambda r: len(r.parts))  # the home, not a /tmp it is in
        top = root / folder.relative_to(root).parts[0]
        whole_top = root not in ALWAYS_HIDDEN and top.name not in SECRET_FOLDERS
        candidates.append(top if whole_top else _install_root(folder))
    found: list[Path] = []
    for c in candidates:
        if c not in found and any(c != r and c.is_relative_to(r) for r in roots):
            found.append(c)
    return found


# Folders of a home never bound back whole, even when a PATH entry lies inside one.
SECRET_FOLDERS = frozenset(
    {".ssh", ".aws", ".azure", ".gcloud", ".gnupg", ".kube", ".docker", ".config", ".netrc"}
)


def _install_root(folder: Path) -> Path:
    """``…/node_modules/.bin`` → the folder holding ``node_modules`` (a package's binary
    runs its siblings); ``<prefix>/bin`` → ``<prefix>``; otherwise the folder itself."""
    parts = folder.parts
    if "node_modules" in parts:
        return Path(*parts[: parts.index("node_modules")])
    return folder.parent if folder.name == "bin" else folder


def git_paths(worktree: Path, common_git_dir: Path, admin_dir: Path | None) -> list[Path]:
    """What must stay read-only for a process in a linked worktree: its ``.git`` pointer
    file, the admin folder it names, and the repository's shared git directory (hooks,
    config, refs and objects: director makes every commit itself)."""
    paths = [worktree / ".git", common_git_dir]
    if admin_dir is not None:
        paths.append(admin_dir)
    return paths
