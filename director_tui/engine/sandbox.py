"""The OS sandbox every agent process and gate test command runs in (bubblewrap, Linux).

Detection after the fact (``sandbox_watch.py``) cannot undo a write to ``~/.ssh``; this
prevents it. A sandboxed process sees the whole filesystem read-only, its own empty
``/tmp``, an empty home (only the agent CLI's own state folders and the folders holding
its tools bound back), the repository's checkout read-only wherever it lives (under
``/tmp`` or the home too) but no ``.director/`` in it (plan, state and control
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
# /run holds the sockets of servers that would run a command for the agent outside the
# sandbox (systemd's private socket and `systemd-run`, the D-Bus buses, screen, docker,
# an ssh-agent under /run/user): a read-only bind does not stop connect(), so it is
# hidden. Only the resolver's folder comes back (/etc/resolv.conf often links into it:
# agents must reach their model). Abstract sockets are not covered: the network is shared.
RUNTIME_DIR = Path("/run")
# Variables that point a client at such a server.
SERVER_ENV = ("SSH_AUTH_SOCK", "DBUS_SESSION_BUS_ADDRESS", "TMUX", "STY", "XDG_RUNTIME_DIR")


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
    """What one sandboxed process may see and write. After the whole tree read-only and
    a fresh ``/tmp``, the mounts go from the outermost path to the innermost, so the
    deeper rule wins: an empty tmpfs over each ``hide`` (the home, ``.director/``); each
    ``tools`` folder (and the checkout) bound back read-only; ``cwd`` (unless
    ``cwd_writable`` is off: then it is bound read-only) and each ``writable`` bound
    writable; each ``protect`` bound read-only (paths inside a writable folder). A
    repository under ``/tmp`` bound back whole still shows no ``.director/``, and a
    ``/tmp/x`` bound back for its ``bin`` shows no home at ``/tmp/x/home``. At one path,
    the order is hide, tools, writable, protect; a ``tools`` path that is itself hidden
    stays hidden (a checkout that is the home brings no home back)."""

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

    def mounts(self) -> list[tuple[str, Path]]:
        """The bwrap mount options after the base ones, outermost path first."""
        hide = [p for p in _existing(self.hide, directories=True) if p != Path("/")]
        # HOME=/ in some containers: hiding it would hide everything.
        hide += [p for p in _existing([RUNTIME_DIR], directories=True) if p not in hide]
        tools = [p for p in _existing([*self.tools, *_resolver_folders()]) if p not in hide]
        hide += _secrets_within(tools, hide)
        writable = (self.cwd, *self.writable) if self.cwd_writable else self.writable
        protect = self.protect if self.cwd_writable else (self.cwd, *self.protect)
        ordered = [
            *(("--tmpfs", p) for p in hide),
            *(("--ro-bind", p) for p in tools),
            *(("--bind", p) for p in _existing(writable)),
            *(("--ro-bind", p) for p in _existing(protect)),
        ]
        return sorted(ordered, key=lambda mount: len(mount[1].parts))  # stable: same depth

    def wrap(self, argv: Sequence[str], *, bwrap: str = "bwrap") -> list[str]:
        """``argv`` as the command line that runs it inside this sandbox."""
        out = [bwrap, *_BASE_MOUNTS]
        for option, path in self.mounts():
            out += [option, str(path)] if option == "--tmpfs" else [option, str(path), str(path)]
        out += ["--setenv", "TMPDIR", "/tmp"]
        for key in SERVER_ENV:
            out += ["--unsetenv", key]
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
    package folder, ``~/.opencode``; the folder the binary's symlinks lead to, too), and
    for each ``PATH`` entry there its top folder below the home (``~/.local``,
    ``~/.cargo``, ``~/.pyenv`` whose shims run ``~/.pyenv/libexec``, ``~/.nvm``) or,
    under ``/tmp``, its prefix (a venv's ``bin`` → the venv) — never a folder that holds
    secrets (:data:`SECRET_FOLDERS` are not bound whole, nor a folder around one)."""
    roots = _roots(hidden)
    candidates: list[Path] = []
    if binary:
        for path in {Path(os.path.abspath(binary)), Path(os.path.realpath(binary))}:
            candidates.append(_install_root(path.parent))
    for entry in path_env.split(os.pathsep):
        if not entry or not os.path.isabs(entry):
            continue
        for folder in {Path(os.path.abspath(entry)), Path(os.path.realpath(entry))}:
            inside = [r for r in roots if folder != r and folder.is_relative_to(r)]
            if not inside:
                continue
            root = max(inside, key=lambda r: len(r.parts))  # the home, not a /tmp it is in
            top = root / folder.relative_to(root).parts[0]
            whole_top = root not in ALWAYS_HIDDEN and top.name not in SECRET_FOLDERS
            candidates.append(top if whole_top else _install_root(folder))
            candidates.append(folder)  # its prefix may be a secret folder: the entry is not
    return _bindable(candidates, roots)


def interpreter_folders(hidden: Iterable[Path]) -> list[Path]:
    """The Python director runs under, where it lives under a hidden path: its venv
    (``sys.prefix``, e.g. ``/tmp/ci/repo/.venv``), the interpreter the venv's
    ``pyvenv.cfg`` names and the one ``sys.executable`` resolves to (``~/.pyenv/versions/
    3.11.7``). A gate's ``python -m pytest`` (or ``.venv/bin/python``) then runs inside
    the sandbox wherever the checkout was cloned."""
    candidates = [Path(sys.prefix), Path(sys.base_prefix)]
    executable = Path(sys.executable) if sys.executable else None
    if executable is not None:
        candidates += [_install_root(executable.parent)]
        candidates += [_install_root(Path(os.path.realpath(executable)).parent)]
    config = Path(sys.prefix) / "pyvenv.cfg"
    try:
        lines = config.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "home" and os.path.isabs(value.strip()):
            home = Path(os.path.abspath(value.strip()))
            candidates += [_install_root(home), _install_root(Path(os.path.realpath(home)))]
    return _bindable(candidates, _roots(hidden))


def _resolver_folders() -> list[Path]:
    """The folder /etc/resolv.conf really lives in, when that is under /run (systemd-
    resolved's stub file): hiding /run must not take DNS away from the agent."""
    target = Path(os.path.realpath("/etc/resolv.conf")).parent
    return [target] if target.is_relative_to(RUNTIME_DIR) and target != RUNTIME_DIR else []


def _roots(hidden: Iterable[Path]) -> list[Path]:
    roots = [Path(os.path.abspath(h)) for h in (*ALWAYS_HIDDEN, *hidden)]
    return [r for r in roots if r != Path("/")]


def _bindable(candidates: Iterable[Path], roots: list[Path]) -> list[Path]:
    """The candidates strictly under a hidden root, none that is or holds a secret folder
    of a hidden home, and none already shown by a wider one (no hidden path between)."""
    return list(_bindable_of(tuple(candidates), tuple(roots)))


# Pure path arithmetic (nothing is read from disk), asked the same question by every
# sandbox spec: two per node attempt, ~8 ms of pathlib each (bench/overhead.py).
@functools.lru_cache(maxsize=64)
def _bindable_of(candidates: tuple[Path, ...], roots: tuple[Path, ...]) -> tuple[Path, ...]:
    secrets = [r / name for r in roots if r not in ALWAYS_HIDDEN for name in SECRET_FOLDERS]
    walls = [*roots, *secrets]
    allowed: list[Path] = []
    for c in candidates:
        if c in allowed or not any(c != r and c.is_relative_to(r) for r in roots):
            continue
        if not any(s.is_relative_to(c) for s in secrets):
            allowed.append(c)

    def shown_by(wider: Path, c: Path) -> bool:
        return (
            c != wider
            and c.is_relative_to(wider)
            and not any(
                w != wider and w.is_relative_to(wider) and c.is_relative_to(w) for w in walls
            )
        )

    return tuple(c for c in allowed if not any(shown_by(w, c) for w in allowed))


# Folders of a home never bound back whole, even when a PATH entry lies inside one.
SECRET_FOLDERS = frozenset(
    {".ssh", ".aws", ".azure", ".gcloud", ".gnupg", ".kube", ".docker", ".config", ".netrc"}
)
# Folders that hold secrets inside a folder of the home that may be bound back whole
# (``~/.local`` for ``~/.local/bin`` on PATH): hidden again on top of it.
NESTED_SECRETS = (Path(".local/share/keyrings"), Path(".password-store"))


def _secrets_within(tools: Iterable[Path], hidden: Iterable[Path]) -> list[Path]:
    """Secret folders of a hidden home that a folder bound back would show again."""
    tools = list(tools)
    names: tuple[str | Path, ...] = (*SECRET_FOLDERS, *NESTED_SECRETS)
    found: list[Path] = []
    for root in hidden:
        for name in names:
            secret = root / name
            if secret.is_dir() and any(secret.is_relative_to(t) for t in tools):
                found.append(secret)
    return found


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
