"""Git objects across the wire as packs: what a bundle carries, without its refs.

The head never writes a ref for the cluster (every ref outside ``refs/heads/director/``
is guarded by ``guarded_files``), so objects go both ways as ``git pack-objects``
output and land with ``git index-pack``: the worker's cache of the job's commits is fed
only what it lacks (``--not`` the commits it has), and a worker's result is one commit on
its base."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from director_tui.engine import git
from director_tui.engine.errors import GitError

# A worker's identity when its machine has none: the commit is re-made on the head anyway.
WORKER_IDENTITY = {
    "GIT_AUTHOR_NAME": "director",
    "GIT_AUTHOR_EMAIL": "director@localhost",
    "GIT_COMMITTER_NAME": "director",
    "GIT_COMMITTER_EMAIL": "director@localhost",
}


def has_commit(repo: Path, commit: str) -> bool:
    found = git.git(["cat-file", "-e", f"{commit}^{{commit}}"], repo, check=False)
    return found.returncode == 0


def make_pack(repo: Path, want: str, haves: Sequence[str]) -> bytes:
    """The objects of ``want`` that the ``haves`` (commits the receiver has) lack."""
    known = [h for h in haves if has_commit(repo, h)]
    revs = "".join(f"{line}\n" for line in [want, *(f"^{h}" for h in known)])
    done = subprocess.run(
        ["git", "pack-objects", "--stdout", "--revs", "--thin", "-q"],
        cwd=repo,
        input=revs.encode(),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise GitError(f"git pack-objects {want[:10]}: {done.stderr.decode(errors='replace')}")
    return done.stdout


def apply_pack(repo: Path, pack: bytes) -> None:
    """Store a pack's objects in ``repo`` (checked by index-pack: every object is hashed,
    a thin pack completed from what ``repo`` has). No ref is written."""
    done = subprocess.run(
        ["git", "index-pack", "--stdin", "--fix-thin", "--strict"],
        cwd=repo,
        input=pack,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise GitError(f"git index-pack: {done.stderr.decode(errors='replace').strip()}")


def parents(repo: Path, commit: str) -> list[str] | None:
    """The commit's parents; None when ``repo`` has no such commit."""
    listed = git.git(
        ["rev-list", "--parents", "-n", "1", f"{commit}^{{commit}}", "--"], repo, check=False
    )
    if listed.returncode != 0:
        return None
    return listed.stdout.split()[1:]


def squash_onto(repo: Path, commit: str, base: str, message: str) -> str:
    """One commit on ``base`` with ``commit``'s tree: what a worker returns (the head
    refuses any other history)."""
    tree = git.git(["rev-parse", f"{commit}^{{tree}}"], repo).stdout.strip()
    done = subprocess.run(
        ["git", "commit-tree", tree, "-p", base, "-m", message],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **WORKER_IDENTITY},
    )
    if done.returncode != 0:
        raise GitError(f"git commit-tree: {done.stderr.strip()}")
    return done.stdout.strip()
