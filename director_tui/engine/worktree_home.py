"""Where director's worktrees live: outside the user's checkout, one folder per repository.

A worktree inside the checkout is part of the user's tree for every tool that walks it:
``node --test``, jest, vitest, pytest, eslint, tsc and file watchers would all pick up the
job's and the nodes' copies of the code. So every worktree (the job's, each node's, a run's
slots, the tests stage's scratch ones) lives under

    <base>/<repo-name>-<hash of the repository's real path>/

where ``<base>`` is ``$DIRECTOR_WORKTREE_ROOT`` when set, else
``$XDG_STATE_HOME/director/worktrees`` (``~/.local/state/director/worktrees``).
``.director/`` keeps state only. Two markers tie the two places together: the repository's
``.director/worktree-root`` names its worktree folder, and that folder's ``.director-repo``
names the repository — checked against the folder's hash, so a rewritten marker can point
nowhere but the repository itself (director's git trusts it to pick the git directory).

A bench's isolated store (``Store(repo, root=.director/bench/…)``) keeps its worktrees
apart from the job's, under ``_stores/<its path below .director>``: names starting with
``_`` are never node ids.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

ROOT_ENV = "DIRECTOR_WORKTREE_ROOT"
REPO_MARKER = ".director-repo"  # in a repository's worktree folder: the repository's path
LOCATION_MARKER = "worktree-root"  # in a store's folder (.director/): its worktree folder
LEGACY_FOLDER = "worktrees"  # .director/worktrees: where worktrees lived before
STORES_FOLDER = "_stores"
_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def state_home() -> Path:
    """Director's state folder for the user: ``$XDG_STATE_HOME/director``, else
    ``~/.local/state/director``."""
    state = os.environ.get("XDG_STATE_HOME", "").strip()
    # The XDG spec: a relative value is invalid and must be ignored.
    home = Path(state) if os.path.isabs(state) else Path.home() / ".local" / "state"
    return home / "director"


def base() -> Path:
    """The folder holding every repository's worktree folder (absolute, not resolved)."""
    override = os.environ.get(ROOT_ENV, "").strip()
    if override:
        return Path(os.path.abspath(os.path.expanduser(override)))
    return state_home() / "worktrees"


def inside_checkout(repo: Path) -> bool:
    """Is the base inside the repository's checkout? A relative ``DIRECTOR_WORKTREE_ROOT``
    run from the checkout, or ``~/.local/state`` for a repository kept in the home folder
    (dotfiles): the worktrees would be in the user's tree again, for every tool that
    walks it — and untracked files that stop every ``plan``."""
    return Path(os.path.realpath(base())).is_relative_to(os.path.realpath(repo))


def repo_key(repo: Path) -> str:
    """``<name>-<hash>``: readable, and unique per real path (two clones named alike)."""
    real = os.path.realpath(repo)
    name = _NAME_CHARS.sub("_", os.path.basename(real))[:40].lstrip(".") or "repo"
    digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:12]
    return f"{name}-{digest}"


def repo_root(repo: Path) -> Path:
    """The repository's worktree folder."""
    return base() / repo_key(repo)


def store_worktrees(repo: Path, state_root: Path) -> Path:
    """Where the worktrees of the store kept in ``state_root`` go: the repository's
    worktree folder for its own ``.director/``, a folder inside it for any other store."""
    own = Path(os.path.realpath(repo)) / ".director"
    state_root = Path(os.path.realpath(state_root))
    root = repo_root(repo)
    if state_root == own:
        return root
    if state_root.is_relative_to(own):
        return root / STORES_FOLDER / state_root.relative_to(own)
    digest = hashlib.sha256(os.fsencode(str(state_root))).hexdigest()[:12]
    return root / STORES_FOLDER / digest


def legacy_worktrees(state_root: Path) -> Path:
    """Where a store's worktrees lived in the layout before this one."""
    return state_root / LEGACY_FOLDER


def write_markers(repo: Path, state_root: Path, worktrees: Path, *, moved: bool = False) -> None:
    """Each side names the other. The store's marker keeps naming an earlier place until
    the worktrees there were moved (``moved``): ``worktree_moves.relocate`` reads it."""
    write_repo_marker(repo)
    marker = state_root / LOCATION_MARKER
    if moved or not marker.exists():
        _write_if_changed(marker, str(worktrees) + "\n")


def write_repo_marker(repo: Path) -> None:
    _write_if_changed(repo_root(repo) / REPO_MARKER, os.path.realpath(repo) + "\n")


def recorded_location(state_root: Path) -> Path | None:
    """The worktree folder a store's marker names (where an earlier director put them),
    or None when it names no folder director makes: the marker is a plain file in
    ``.director/`` (anything may rewrite it), and what it names is where
    ``worktree_moves.relocate`` takes worktrees from — a marker naming ``/`` or the
    folder of the user's own worktrees must not move those."""
    try:
        text = (state_root / LOCATION_MARKER).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text or not os.path.isabs(text):
        return None
    folder = Path(text)
    return folder if _is_repo_folder(folder) else None


# A repository's worktree folder's name (repo_key): the repository's may have changed
# since (a renamed checkout), so any such name counts, not only the current one.
_KEY_NAME = re.compile(r"^[A-Za-z0-9._-]*-[0-9a-f]{12}$")


def _is_repo_folder(folder: Path) -> bool:
    """``<any base>/<name>-<hash>`` or a store's folder below it (``<key>/_stores/…``)."""
    parts = folder.parts
    keys = [i for i, part in enumerate(parts) if _KEY_NAME.match(part)]
    if not keys:
        return False
    below = parts[keys[-1] + 1 :]
    return not below or below[0] == STORES_FOLDER


def _write_if_changed(path: Path, text: str) -> None:
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def key_folder(path: Path) -> Path | None:
    """The repository worktree folder (``<base>/<key>``, real path) that ``path`` is in,
    or None when ``path`` is not below the base."""
    real_base = Path(os.path.realpath(base()))
    here = Path(os.path.realpath(path))
    if here == real_base or not here.is_relative_to(real_base):
        return None
    return real_base / here.relative_to(real_base).parts[0]


# The repositories this process works on (a Store was made for each): their worktree
# folders are known by name, whatever the marker in them says now — an executor with the
# sandbox off can rewrite it, and director's own git then failed closed on every command
# of the run (its node's commit, the merge queue's write-tree).
_OPENED: dict[str, Path] = {}


def remember(repo: Path) -> None:
    real = Path(os.path.realpath(repo))
    _OPENED[repo_key(real)] = real


def owning_repo(folder: Path) -> Path | None:
    """The repository a worktree folder (:func:`key_folder`) belongs to, or None when
    that cannot be trusted: one this process works on (:func:`remember`), else the one
    its marker names when the marker hashes to the folder's name (a rewritten marker can
    only name the repository itself)."""
    opened = _OPENED.get(folder.name)
    if opened is not None:
        return opened
    try:
        named = (folder / REPO_MARKER).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not named or not os.path.isabs(named) or repo_key(Path(named)) != folder.name:
        return None
    repo = Path(os.path.realpath(named))
    return repo if (repo / ".git").exists() else None
