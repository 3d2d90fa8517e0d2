"""The small files outside any worktree that steer director or git: an executor must not
change them, and when one does, its change is undone.

An executor has bash in ``<worktrees>/<node>`` (outside the checkout, ``worktree_home``)
and, with the sandbox off, reaches by absolute path the files that hold the frozen contract (``plan.json``: test commands, hashes; ``plan_stage.json``: the
approvals; ``config.toml`` and ``profiles/``: gates, limits, tiers; ``worktree-root``: where
``worktree_moves`` takes worktrees from) and next to the git
directory every worktree shares (``config``: ``core.hooksPath``, ``core.fsmonitor`` — a
command git itself runs —; ``hooks/``; ``info/exclude`` and ``info/attributes``). A change
to any of them survives the attempt: the next run would read a rewritten test command, the
user's next commit would run a planted hook.

``snapshot()`` reads them all (a few kilobytes: read whole, no cache); ``sandbox_watch``
puts their digests in the checkout fingerprint, so a change fails the attempt like any
other write outside the worktree. ``restore()`` then puts back the bytes of the last
snapshot: the agent's version is kept beside as ``<name>.director-rejected`` (out of
``hooks/``'s reach: git runs only hooks named exactly), a file it created is moved there.
Only changes made while an executor ran are undone; between windows the user's own edits
become the new baseline.

Git state outside the worktree is guarded the same way. Files: the main checkout's
``HEAD`` (an agent's ``git checkout`` or ``symbolic-ref`` there), ``info/grafts`` and
``shallow`` (both rewrite what the user's history shows), ``info/sparse-checkout``, and
``logs/refs/stash`` (the entries ``git stash list`` shows). Refs (:class:`GuardedRefs`):
every ref outside director's own ``refs/heads/director/`` — the user's branches, tags,
remotes, ``refs/stash``, ``refs/replace/*``, ``refs/notes/*`` — compared by name and value
(``git for-each-ref``: loose, packed or reftable alike, so a ``git pack-refs`` or a
``gc --auto`` is no change) and put back with compare-and-swap ``update-ref``: a moved ref
back where it was, a created one deleted, a deleted one re-created. The refs go back
before the files, so the stash's reflog ends byte for byte as it was.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from director_tui.engine import git, worktree_home

REJECTED_SUFFIX = ".director-rejected"
# Read whole; a larger file is fingerprinted by size and mtime and never restored.
MAX_BYTES = 1024 * 1024
DIRECTOR_FILES = ("plan.json", "plan_stage.json", "config.toml", "worktree-root")
GIT_FILES = (
    "config",
    "config.worktree",
    "info/exclude",
    "info/attributes",
    "info/grafts",
    "info/sparse-checkout",
    "shallow",
    "HEAD",
    "logs/refs/stash",
)
# Director's own branches (the job branch, node branches): the run engine watches those.
DIRECTOR_REFS = "refs/heads/director/"
REF_SUFFIX = " (git ref)"
ZERO_OID = "0" * 40

Snapshot = Mapping[str, bytes | str | None]  # display key → bytes, a stat line, or missing


class GuardedFiles:
    def __init__(self, repo: Path, director_root: Path) -> None:
        self.repo = repo
        self.director_root = director_root
        common = git.git(["rev-parse", "--git-common-dir"], repo, check=False).stdout.strip()
        self.git_dir = (repo / common).resolve() if common else repo / ".git"

    def paths(self) -> dict[str, Path]:
        """Display key (repo-relative where it can be) → path, for every guarded file that
        exists now or may be created."""
        out = [self.director_root / name for name in DIRECTOR_FILES]
        # The repository's worktree folder's marker: what director's git trusts to pick
        # the git directory in a process that has not opened the repository itself.
        out.append(worktree_home.repo_root(self.repo) / worktree_home.REPO_MARKER)
        out += sorted(self._listing(self.director_root / "profiles"))
        out += [self.git_dir / name for name in GIT_FILES]
        out += sorted(self._listing(self.git_dir / "hooks"))
        return {self._key(p): p for p in out}

    def snapshot(self) -> dict[str, bytes | str | None]:
        return {key: _read(path) for key, path in self.paths().items()}

    def restore(self, baseline: Snapshot, now: Snapshot) -> list[str]:
        """Put every guarded file that differs from ``baseline`` back; what was done."""
        done: list[str] = []
        paths = self.paths()
        for key in sorted(baseline.keys() | now.keys()):
            before, after = baseline.get(key), now.get(key)
            if before == after:
                continue
            path = paths.get(key) or self._path_of(key)
            if isinstance(before, str):
                done.append(f"{key} changed and cannot be put back ({before}): check it by hand")
                continue
            kept = path.with_name(path.name + REJECTED_SUFFIX)
            try:
                # (a deleted ref takes its reflog with it: gone already)
                if after is not None and os.path.lexists(path):
                    os.replace(path, kept)
                if before is not None:
                    _write(path, before)
            except OSError as exc:
                done.append(f"could not put {key} back: {exc.strerror}")
                continue
            if before is None:
                done.append(f"moved the new {key} aside to {kept.name}")
            elif after is None:
                done.append(f"restored the deleted {key}")
            else:
                done.append(f"restored {key} (the changed one is kept as {kept.name})")
        return done

    def _listing(self, folder: Path) -> list[Path]:
        try:
            entries = list(folder.iterdir())
        except OSError:
            return []
        # git never runs a *.sample hook: renaming one to its real name is a new file
        skip = (REJECTED_SUFFIX, ".sample")
        return [p for p in entries if not p.name.endswith(skip) and not p.is_dir()]

    def _key(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.repo))
        except ValueError:
            return str(path)

    def _path_of(self, key: str) -> Path:
        path = Path(key)
        return path if path.is_absolute() else self.repo / path


def digests(snapshot: Snapshot) -> dict[str, str]:
    """What the fingerprint compares: a digest per file that exists."""
    out = {}
    for key, content in snapshot.items():
        if content is None:
            continue
        out[key] = (
            content if isinstance(content, str) else "sha256:" + hashlib.sha256(content).hexdigest()
        )
    return out


def _read(path: Path) -> bytes | str | None:
    try:
        st = path.lstat()
        if st.st_size > MAX_BYTES:
            return f"stat:{st.st_size}:{st.st_mtime_ns}"
        if os.path.islink(path):
            return f"link:{os.readlink(path)}"
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


def _write(path: Path, content: bytes) -> None:
    """Atomic, with the mode git expects of a hook kept executable."""
    tmp = path.with_name(f".{path.name}.director-tmp")
    tmp.write_bytes(content)
    if path.parent.name == "hooks":
        tmp.chmod(0o755)
    os.replace(tmp, path)


RefSnapshot = Mapping[str, str]  # ref name → object id, or "ref: <target>" when symbolic


class GuardedRefs:
    """The repository's refs outside ``refs/heads/director/`` (see the module docstring)."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo

    def snapshot(self) -> dict[str, str]:
        proc = git.git(
            ["for-each-ref", "--format=%(refname)%00%(objectname)%00%(symref)"],
            self.repo,
            check=False,
            env={"GIT_OPTIONAL_LOCKS": "0"},
        )
        refs: dict[str, str] = {}
        for line in proc.stdout.splitlines():
            name, _, rest = line.partition("\0")
            oid, _, target = rest.partition("\0")
            if name and not name.startswith(DIRECTOR_REFS):
                refs[name] = f"ref: {target}" if target else oid
        return refs

    def restore(self, baseline: RefSnapshot, now: RefSnapshot) -> list[str]:
        """Put every ref that differs from ``baseline`` back; what was done."""
        done: list[str] = []
        for name in sorted(baseline.keys() | now.keys()):
            before, after = baseline.get(name), now.get(name)
            if before == after:
                continue
            # The value it has now as the old value: a compare-and-swap, never a blind write.
            expected = after if after is not None and not after.startswith("ref: ") else None
            if before is None:
                args = ["update-ref", "--no-deref", "-d", name, *([expected] if expected else [])]
                what = f"deleted the new ref {name} (it pointed at {after})"
            elif before.startswith("ref: "):
                args = ["symbolic-ref", name, before.removeprefix("ref: ")]
                what = f"pointed {name} back at {before.removeprefix('ref: ')}"
            else:
                old = expected or (ZERO_OID if after is None else None)
                args = ["update-ref", "--no-deref", name, before, *([old] if old else [])]
                what = (
                    f"re-created the deleted ref {name} at {before[:10]}"
                    if after is None
                    else f"put {name} back at {before[:10]} (it had been moved to {after})"
                )
            proc = git.git(args, self.repo, check=False)
            if proc.returncode == 0:
                done.append(what)
            else:
                done.append(f"could not put the ref {name} back: {proc.stderr.strip()[:200]}")
        return done


def ref_digests(refs: RefSnapshot) -> dict[str, str]:
    """What the fingerprint compares: one key per ref, marked as a ref for the message."""
    return {name + REF_SUFFIX: value for name, value in refs.items()}
