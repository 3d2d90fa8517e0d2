"""Director's worktrees found where they no longer belong, and the ones ``clean`` removes.

:func:`relocate` moves the worktrees an older version left inside the checkout
(``.director/worktrees/``, a bench's ``.director/bench/…/worktrees/``), or under a
worktree base the repository's ``.director/worktree-root`` names but that is no longer
the one in use, to where :mod:`worktree_home` puts them now — with ``git worktree move``,
so git's records follow. ``move`` only renames: across filesystems it fails, and then a
worktree with nothing uncommitted is removed and added again at its new place (its commits
are on its branch), a slot's or ``land``'s scratch worktree is removed (made again when
needed), and one with uncommitted work is left where it is, and said so: never lost.

:func:`clean_worktrees` removes, for ``director clean``, the worktrees whose work is
safe elsewhere: nothing uncommitted, and their commit already in a branch that stays
(the caller says which: a job's and a node's by the same rule as their branches), then
the repository's worktree folder once nothing is left in it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from director_tui.engine import git, worktree_home
from director_tui.engine.errors import GitError
from director_tui.engine.store import Store

# Director's own branches: a worktree on any other branch is the user's, never moved or removed.
DIRECTOR_BRANCHES = "director/"
# Worktrees whose content is director's scratch: a slot's (re-pointed and cleaned before
# each attempt) and land's throw-away one.
SCRATCH_PREFIXES = ("_slot-", "_land")


@dataclass(frozen=True)
class Worktree:
    path: Path
    head: str
    branch: str | None  # None: detached HEAD


def registered(repo: Path) -> list[Worktree]:
    """The repository's linked worktrees, as git's records have them (the main one not)."""
    found: list[Worktree] = []
    path, head, branch = None, "", None
    lines = git.out(["worktree", "list", "--porcelain"], repo).splitlines()
    for line in [*lines, ""]:
        if line.startswith("worktree "):
            path = Path(line[len("worktree ") :])
        elif line.startswith("HEAD "):
            head = line[len("HEAD ") :]
        elif line.startswith("branch refs/heads/"):
            branch = line[len("branch refs/heads/") :]
        elif not line and path is not None:
            if _real(path) != _real(repo):
                found.append(Worktree(path, head, branch))
            path, head, branch = None, "", None
    return found


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _new_place(store: Store, path: Path, old_base: Path | None) -> Path | None:
    """Where a worktree at ``path`` belongs now, or None when it is where it belongs (or
    not director's). Inside ``.director/``: a store's ``worktrees/`` folder maps to that
    store's worktree folder; under ``old_base``: the same place below the current one."""
    here = _real(path)
    state = _real(store.root)
    if here.is_relative_to(state):
        parts = here.relative_to(state).parts
        if worktree_home.LEGACY_FOLDER in parts[:-1]:
            cut = parts.index(worktree_home.LEGACY_FOLDER)
            owner = state.joinpath(*parts[:cut])
            return worktree_home.store_worktrees(store.repo, owner).joinpath(*parts[cut + 1 :])
        return None
    current = _real(store.worktrees)
    if old_base is not None and here.is_relative_to(old_base) and old_base != current:
        return current / here.relative_to(old_base)
    return None


def relocate(store: Store) -> list[str]:
    """Move this repository's worktrees to where they belong now; what was done, and
    what was left and why (those lines start with "left"), for the user (empty when all
    was in place). Called under the run lock, by ``plan``, ``run`` and ``clean``."""
    old_base = worktree_home.recorded_location(store.root)
    old_base = _real(old_base) if old_base is not None else None
    notes: list[str] = []
    for tree in registered(store.repo):
        if not is_directors(tree):
            continue
        dest = _new_place(store, tree.path, old_base)
        if dest is not None and tree.path.exists():
            notes.append(_move(store.repo, tree, dest))
    git.git(["worktree", "prune"], store.repo, check=False)
    notes += _leftovers(store.legacy_worktrees)
    worktree_home.write_markers(store.repo, store.root, store.worktrees, moved=True)
    return notes


def is_directors(tree: Worktree) -> bool:
    """On one of director's branches, or detached (a slot's, land's): a worktree on any
    other branch is the user's own, wherever it is."""
    return tree.branch is None or tree.branch.startswith(DIRECTOR_BRANCHES)


def _move(repo: Path, tree: Worktree, dest: Path) -> str:
    if dest.exists():
        return f"left the worktree {tree.path} where it is: {dest} is taken"
    dest.parent.mkdir(parents=True, exist_ok=True)
    moved = git.git(["worktree", "move", str(tree.path), str(dest)], repo, check=False)
    if moved.returncode == 0:
        return f"moved the worktree {tree.path} to {dest}"
    # `git worktree move` only renames: another filesystem (or a lock) refuses it.
    why = (moved.stderr.strip().splitlines() or ["git refused"])[-1]
    scratch = dest.name.startswith(SCRATCH_PREFIXES)
    if not scratch and (has_local_changes(tree.path) or not _reachable(repo, tree)):
        return (
            f"left the worktree {tree.path} where it is: it could not be moved ({why}) and "
            "has work that is not committed on a branch; commit or copy it, then remove "
            f"it (`git worktree remove {tree.path}`) and run director again"
        )
    removed = git.git(["worktree", "remove", "--force", str(tree.path)], repo, check=False)
    if removed.returncode != 0:  # a locked worktree, say: the user's doing
        return f"left the worktree {tree.path} where it is: it could not be moved ({why})"
    if scratch:
        return f"removed the scratch worktree {tree.path} (made again where it belongs)"
    try:
        if tree.branch is not None:
            git.add_worktree(repo, dest, tree.branch)
        else:
            git.git(["worktree", "add", "-q", "--detach", str(dest), tree.head], repo)
    except GitError as exc:  # its commits are on its branch: made again when needed
        return f"removed the worktree {tree.path} (nothing uncommitted); not made again: {exc}"
    return f"made the worktree {tree.path} again at {dest} (it could not be moved: {why})"


def has_local_changes(worktree: Path) -> bool:
    """Anything uncommitted in it: changes, staged or not, and untracked files (ignored
    ones, build output, are not work)."""
    status = git.git(["status", "--porcelain"], worktree, check=False)
    return status.returncode != 0 or bool(status.stdout.strip())


def _reachable(repo: Path, tree: Worktree) -> bool:
    """Is the worktree's commit on some branch (a detached HEAD may be on none)?"""
    if tree.branch is not None:
        return True
    refs = ["for-each-ref", "--count=1", "--contains", tree.head, "refs/heads/"]
    return bool(git.git(refs, repo, check=False).stdout.strip())


def _leftovers(legacy: Path) -> list[str]:
    """Empty folders of the old place removed; anything else named (a folder an older
    version moved aside, ``_job.broken-…``): the user's tools still see it."""
    if not legacy.is_dir():
        return []
    for folder in sorted(legacy.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not folder.is_symlink():
            _rmdir_if_empty(folder)
    _rmdir_if_empty(legacy)
    if not legacy.exists():
        return []
    left = sorted(p.name for p in legacy.iterdir())
    return [
        f"left {', '.join(left[:5])}{', …' if len(left) > 5 else ''} in {legacy}: not "
        "worktrees git knows (copies an older director moved aside); your tools see them "
        "until you delete them"
    ]


def _rmdir_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


@dataclass
class WorktreeCleanup:
    removed: list[str]
    kept: list[tuple[str, str]]  # (worktree, why)


def clean_worktrees(store: Store, merged_home: Callable[[str], str | None]) -> WorktreeCleanup:
    """Remove this repository's director worktrees whose work is safe elsewhere:
    nothing uncommitted, and their commit in a branch that stays (``merged_home`` of
    their branch names it, or any branch holds a detached one's commit). The rest is
    kept and said why. The repository's worktree folder goes once it is empty."""
    result = WorktreeCleanup([], [])
    root = _real(worktree_home.repo_root(store.repo))
    for tree in registered(store.repo):
        if not _real(tree.path).is_relative_to(root) or not is_directors(tree):
            continue
        if not tree.path.exists():
            continue  # pruned below
        if has_local_changes(tree.path):
            result.kept.append((str(tree.path), "has uncommitted changes"))
            continue
        if tree.branch is not None:
            home = merged_home(tree.branch)
            if home is None:
                why = f"its branch {tree.branch} has work not merged anywhere else"
                result.kept.append((str(tree.path), why))
                continue
            said = f"{tree.branch} is merged into {home}"
        elif _reachable(store.repo, tree):
            said = "detached at a commit a branch holds"
        else:
            result.kept.append((str(tree.path), "its commit is on no branch"))
            continue
        git.git(["worktree", "remove", "--force", str(tree.path)], store.repo)
        result.removed.append(f"worktree {tree.path} ({said})")
    git.git(["worktree", "prune"], store.repo, check=False)
    _remove_if_only_markers(root)
    return result


def _remove_if_only_markers(root: Path) -> None:
    """The repository's worktree folder, once it holds nothing but empty folders and its
    marker."""
    if not root.is_dir():
        return
    for folder in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not folder.is_symlink():
            _rmdir_if_empty(folder)
    if [p.name for p in root.iterdir()] == [worktree_home.REPO_MARKER]:
        shutil.rmtree(root, ignore_errors=True)
