"""Real git through subprocess. The user's checkout, index and files are never touched:
everything here works on named branches and on director's worktrees (:mod:`worktree_home`)."""

from __future__ import annotations

import functools
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from director_tui.engine import worktree_home
from director_tui.engine.errors import GitError, NotAGitRepoError, UsageError

# Commits made by director carry a stable identity so they never depend on the user's.
_IDENTITY = {
    "GIT_AUTHOR_NAME": "director",
    "GIT_AUTHOR_EMAIL": "director@localhost",
    "GIT_COMMITTER_NAME": "director",
    "GIT_COMMITTER_EMAIL": "director@localhost",
}


# `git worktree add/remove/list/prune` edit .git/worktrees/ without a lock: two at once can
# read a half-made entry ("failed to read …/commondir"). One process-wide lock serialises them.
_WORKTREE_ADMIN = threading.Lock()


def git(
    args: list[str],
    cwd: Path,
    *,
    check: bool = True,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    if shutil.which("git") is None:
        raise UsageError("git is not installed or not on PATH", hint="install git and retry")
    if args and args[0] == "worktree":
        with _WORKTREE_ADMIN:
            proc = _run_git(args, cwd, env, input_text)
    else:
        proc = _run_git(args, cwd, env, input_text)
    if check and proc.returncode != 0:
        raise GitError(
            f"git {' '.join(args)} failed in {cwd}: {proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc


# Config git would otherwise run through the shell, switched off on every command: a hook
# or an fsmonitor planted in the shared git directory (or a config the agent pointed its
# worktree at) must never run as director. The repo's checks run as the gates, on purpose.
_SAFE_CONFIG = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.pager=cat",
    "core.editor=true",
    "commit.gpgsign=false",  # a signing prompt must not fail a node's merge
)
_SAFE_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "GIT_EDITOR": "true"}


def _run_git(
    args: list[str], cwd: Path, env: dict[str, str] | None, input_text: str | None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _careful_command(args, cwd),
        cwd=str(cwd),
        capture_output=True,
        text=True,
        # File names are bytes to git: one that is not UTF-8 (latin-1 'café.txt') must
        # neither crash the decode nor change on its way back to git or the filesystem,
        # which both accept surrogate-escaped str (os.fsencode).
        encoding="utf-8",
        errors="surrogateescape",
        env={**os.environ, **_IDENTITY, **_SAFE_ENV, **(env or {})},
        input=input_text,
        check=False,
    )


def _careful_command(args: list[str], cwd: Path) -> list[str]:
    config = [part for item in _SAFE_CONFIG for part in ("-c", item)]
    return ["git", *config, *_explicit_git_dir(cwd), *args]


def _explicit_git_dir(cwd: Path) -> list[str]:
    """``--git-dir``/``--work-tree`` for a command in a worktree director made (under the
    worktree base, :mod:`worktree_home`, or an older version's ``.director/``), from git's
    records in the shared git directory, never from the worktree's ``.git`` file: an agent
    can point that file at a git directory it made, whose config (``core.fsmonitor``,
    filters) git would run. A folder there that git's records do not know fails closed."""
    here = _real_folder(cwd)
    top = worktree_home.key_folder(here)
    if top is not None:
        repo = worktree_home.owning_repo(top)
    elif ".director" in here.parts:
        top = repo = Path(*here.parts[: here.parts.index(".director")])
        if not (repo / ".git").exists():
            return []
    else:
        return []
    known = _registered_worktrees(repo) if repo is not None else {}
    for folder in (here, *here.parents):
        if folder == top:
            break
        admin = known.get(folder)
        if admin is not None:
            return [f"--git-dir={admin}", f"--work-tree={folder}"]
    return [f"--git-dir={here / '.not-a-director-worktree'}"]


def _registered_worktrees(repo: Path) -> dict[Path, Path]:
    """worktree folder → its admin folder, read from ``<common>/worktrees/*/gitdir``."""
    try:
        admins = list((common_git_dir(repo) / "worktrees").iterdir())
    except (OSError, GitError):
        return {}
    known: dict[Path, Path] = {}
    for admin in admins:
        try:
            link = Path((admin / "gitdir").read_text(encoding="utf-8").strip())
        except (OSError, UnicodeDecodeError):
            continue
        if link.name == ".git" and link.is_absolute():
            known[_real_folder(link.parent)] = admin
    return known


def _real_folder(path: Path) -> Path:
    return Path(os.path.realpath(path))


def head_symref(worktree: Path) -> str | None:
    """The branch HEAD of a worktree director made is on (``refs/heads/…``), read from
    the HEAD file of its admin folder as git's records name it (never from the
    worktree's own ``.git`` file) — what ``git symbolic-ref HEAD`` reads there, without a
    git process. None when that file says anything else (a detached HEAD, another ref
    storage) or cannot be read, and for a folder not made by director: ask git then."""
    found = _explicit_git_dir(worktree)
    if not found or not found[0].startswith("--git-dir="):
        return None
    try:
        text = (Path(found[0].removeprefix("--git-dir=")) / "HEAD").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("ref: refs/heads/") or text.count("\n") != 1 or text[-1] != "\n":
        return None
    return text[len("ref: ") : -1]


def registered_admin_dir(repo: Path, worktree: Path) -> Path | None:
    """The admin folder git's records tie to ``worktree`` (None: not a worktree git
    knows), found without reading the worktree's own ``.git`` file."""
    return _registered_worktrees(repo).get(_real_folder(worktree))


def shown(path: str) -> str:
    """A path from git as a person should read it: bytes that are not UTF-8 (kept as
    surrogates so the path round-trips) shown as ``\\xe9`` escapes."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def out(args: list[str], cwd: Path, **kw: object) -> str:
    return git(args, cwd, **kw).stdout.strip()  # type: ignore[arg-type]


def repo_root(path: Path) -> Path:
    if not path.exists():
        raise NotAGitRepoError(f"{path} does not exist")
    if not path.is_dir():
        raise NotAGitRepoError(
            f"{path} is a file, not a folder", hint="pass --repo the repository's folder"
        )
    proc = git(["rev-parse", "--show-toplevel"], path, check=False)
    if proc.returncode != 0:
        where = git(
            ["rev-parse", "--is-bare-repository", "--is-inside-git-dir", "--absolute-git-dir"],
            path,
            check=False,
        ).stdout.split("\n")
        if len(where) >= 3 and "true" in where[:2]:
            if where[0] == "true":
                bare = where[2]
                raise NotAGitRepoError(
                    f"{bare} is a bare repository: director works in a checkout with files "
                    "(a working tree)",
                    hint=f"clone it (`git clone {shlex.quote(bare)} <folder>`) and run director there",
                )
            raise NotAGitRepoError(
                f"{path} is inside the .git folder of a repository: director works in the checkout",
                hint="run director in the repository's folder, or pass --repo PATH",
            )
        raise NotAGitRepoError(
            f"{path} is not inside a git repository",
            hint="run `git init` and make a first commit, or pass --repo PATH",
        )
    return Path(proc.stdout.strip()).resolve()


def has_commits(repo: Path) -> bool:
    return git(["rev-parse", "--verify", "-q", "HEAD"], repo, check=False).returncode == 0


def submodule_paths(repo: Path, ref: str = "HEAD") -> list[str]:
    """The submodules (gitlinks) committed at ``ref``."""
    listing = out(["ls-tree", "-r", "-z", ref], repo)
    return [
        shown(entry.split("\t", 1)[1])
        for entry in listing.split("\0")
        if entry.startswith("160000 ") and "\t" in entry
    ]


def current_branch(repo: Path) -> str | None:
    """The checked-out branch, or None on a detached HEAD."""
    proc = git(["symbolic-ref", "--short", "-q", "HEAD"], repo, check=False)
    return proc.stdout.strip() or None


# What git leaves in its directory while an operation waits for the user, and how to end it.
_IN_PROGRESS = (
    ("rebase-merge", "a rebase", "git rebase --continue, or git rebase --abort"),
    ("rebase-apply", "a rebase or git am", "git rebase --continue / git am --continue, or --abort"),
    ("MERGE_HEAD", "a merge", "commit it (git commit), or git merge --abort"),
    ("CHERRY_PICK_HEAD", "a cherry-pick", "git cherry-pick --continue, or --abort"),
    ("REVERT_HEAD", "a revert", "git revert --continue, or --abort"),
    ("BISECT_LOG", "a bisect", "git bisect reset"),
)


def operation_in_progress(repo: Path) -> tuple[str, str] | None:
    """(what, how to finish it) when a rebase, merge, cherry-pick, revert or bisect is
    under way in this checkout; None otherwise."""
    proc = git(["rev-parse", "--absolute-git-dir"], repo, check=False)
    if proc.returncode != 0:
        return None
    git_dir = Path(proc.stdout.strip())
    for marker, what, finish in _IN_PROGRESS:
        if (git_dir / marker).exists():
            return what, finish
    return None


def rev(repo: Path, ref: str = "HEAD") -> str:
    return out(["rev-parse", "--verify", f"{ref}^{{commit}}"], repo)


def revs(repo: Path, *refs: str) -> list[str]:
    """:func:`rev` of each of ``refs``, from one git process (``cat-file --batch-check``);
    ``GitError`` when one is not a commit."""
    proc = git(
        ["cat-file", "--batch-check=%(objectname)"],
        repo,
        input_text="".join(f"{ref}^{{commit}}\n" for ref in refs),
    )
    found = proc.stdout.splitlines()
    for ref, line in zip(refs, found, strict=False):
        if not _is_oid(line):
            raise GitError(f"{ref} is not a commit in {repo}: {line}")
    if len(found) != len(refs):
        raise GitError(f"git cat-file answered {len(found)} of {len(refs)} names in {repo}")
    return found


def rev_and_tree(repo: Path, ref: str) -> tuple[str, str]:
    """The commit ``ref`` names and that commit's tree, from one reading of ``ref`` (a
    ref that moves between two reads could pair a commit with another's tree)."""
    proc = git(["cat-file", "--batch"], repo, input_text=f"{ref}^{{commit}}\n")
    header, _, body = proc.stdout.partition("\n")
    oid, _, kind = header.partition(" ")
    tree = body.partition("\n")[0].removeprefix("tree ")
    if not kind.startswith("commit ") or not _is_oid(oid) or not _is_oid(tree):
        raise GitError(f"{ref} is not a commit in {repo}: {header}")
    return oid, tree


def _is_oid(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


def branch_exists(repo: Path, name: str) -> bool:
    return (
        git(["rev-parse", "--verify", "-q", f"refs/heads/{name}"], repo, check=False).returncode
        == 0
    )


def create_branch(repo: Path, name: str, start: str, *, force: bool = False) -> None:
    """Create a branch without checking it out (the user's HEAD stays where it is)."""
    git(["branch", *(["-f"] if force else []), name, start], repo)


def delete_branch(repo: Path, name: str) -> None:
    git(["branch", "-D", name], repo, check=False)


def dirty_files(repo: Path) -> list[str]:
    """Tracked changes and untracked files, ignoring director's own state folder."""
    # Not out(): stripping would eat the status column of the first line.
    text = git(["status", "--porcelain=v1", "-z", "--untracked-files=all"], repo).stdout
    files = [entry[3:] for entry in text.split("\0") if len(entry) > 3 and entry[2] == " "]
    return [f for f in files if not f.startswith(".director/") and f != ".director"]


def add_worktree(repo: Path, path: Path, branch: str, start: str | None = None) -> None:
    """A worktree at ``path`` on ``branch`` (created from ``start`` when given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Only the admin entry is made under the worktree lock (--no-checkout); the files are
    # written after it, so parallel nodes starting do not queue behind each other's
    # checkouts (bench/makespan.py).
    if start is not None:
        git(["worktree", "add", "-q", "--no-checkout", "-B", branch, str(path), start], repo)
    else:
        git(["worktree", "add", "-q", "--no-checkout", str(path), branch], repo)
    full_checkout(path)
    git(["reset", "-q", "--hard"], path)


def full_checkout(worktree: Path) -> None:
    """Make a linked worktree of director's a full checkout, whatever sparse-checkout cone
    the user's checkout has, without touching the user's config.

    ``git worktree add`` run from a sparse checkout copies its ``info/sparse-checkout``
    patterns (and, with ``extensions.worktreeConfig``, its ``config.worktree``) into the
    new worktree's admin folder: the node's files outside the cone are never checked out
    and an agent's new file there is never staged, so the node merged an empty commit.
    Without the patterns file git checks out everything (with ``core.sparseCheckout`` set
    in the shared config, as old-style sparse checkouts have it, too); a copied
    ``config.worktree`` is also told ``core.sparseCheckout = false`` — written with
    ``--file`` into this worktree's own admin folder: ``git config --worktree`` would write
    the shared config when the repository has no per-worktree config."""
    admin = worktree_admin_dir(worktree)
    if admin is None:
        return
    patterns = admin / "info" / "sparse-checkout"
    if not patterns.exists():
        return
    patterns.unlink()
    own_config = admin / "config.worktree"
    if own_config.is_file():
        git(["config", "--file", str(own_config), "core.sparseCheckout", "false"], worktree)
    # An index made while the patterns applied keeps its skip-worktree bits through any
    # reset: the caller's `reset --hard` builds it afresh, every file checked out.
    (admin / "index").unlink(missing_ok=True)


def remove_worktree(repo: Path, path: Path) -> None:
    """Remove a linked worktree (director's own). A main working tree — a folder with a
    ``.git`` directory, such as the user's checkout — is refused, never deleted."""
    if (path / ".git").is_dir():
        raise GitError(f"{path} is a main working tree, not a worktree director made")
    git(["worktree", "remove", "--force", str(path)], repo, check=False)
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    git(["worktree", "prune"], repo, check=False)


def worktree_intact(repo: Path, worktree: Path) -> bool:
    """Is ``worktree`` still a linked worktree of ``repo`` with its own git link?

    An agent can delete or rewrite the ``.git`` file of its worktree: git run there would
    then work on whatever the file points at (or on an enclosing checkout). Intact: its
    ``.git`` is a plain file leading to an admin folder under ``repo``'s ``worktrees/``
    whose ``gitdir`` leads back to this very ``.git``."""
    # Read from the files git itself reads (two git processes per check cost a
    # measurable share of a node's overhead; bench/overhead.py).
    link = worktree / ".git"
    admin = worktree_admin_dir(worktree)
    if admin is None or not (admin / "HEAD").is_file():
        return False
    try:
        back = Path((admin / "gitdir").read_text(encoding="utf-8").strip())
    except OSError:
        return False
    return (
        admin.parent.resolve() == (common_git_dir(repo) / "worktrees").resolve()
        and back.resolve() == link.resolve()
    )


def worktree_admin_dir(worktree: Path) -> Path | None:
    """Where a linked worktree's ``.git`` file points (its admin folder), or None when
    ``.git`` is missing, a symlink, a folder, or not a ``gitdir:`` line."""
    link = worktree / ".git"
    if link.is_symlink() or not link.is_file():
        return None
    try:
        text = link.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith("gitdir:"):
        return None
    return (worktree / text.removeprefix("gitdir:").strip()).resolve()


@functools.cache
def common_git_dir(repo: Path) -> Path:
    """The repository's shared git folder (``.git`` of the main checkout)."""
    return (repo / out(["rev-parse", "--git-common-dir"], repo)).resolve()


def loose_ref(repo: Path, ref: str) -> str | None:
    """The object id a loose ref file ``<common git dir>/<ref>`` holds — what git reads
    for that name first — without a git process; None when there is no such file (a
    packed ref, another ref storage), it holds anything but an id (a symbolic ref) or
    cannot be read: ask git then."""
    parts = ref.split("/")
    if parts[0] != "refs" or any(part in ("", ".", "..") for part in parts):
        return None
    try:
        text = (common_git_dir(repo) / ref).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None
    oid = text.removesuffix("\n")
    return oid if _is_oid(oid) and text.endswith("\n") else None


def worktree_branches(repo: Path) -> dict[str, Path]:
    """branch name → worktree path, for every worktree that has a branch checked out."""
    result: dict[str, Path] = {}
    current: Path | None = None
    for line in out(["worktree", "list", "--porcelain"], repo).splitlines():
        if line.startswith("worktree "):
            current = Path(line[len("worktree ") :])
        elif line.startswith("branch ") and current is not None:
            result[line[len("branch refs/heads/") :]] = current
    return result


def worktrees_on(repo: Path, branch: str) -> list[Path]:
    """Every worktree that has ``branch`` checked out (more than one is possible: git's
    ``checkout --ignore-other-worktrees``), the main one included."""
    found: list[Path] = []
    current: Path | None = None
    for line in out(["worktree", "list", "--porcelain"], repo).splitlines():
        if line.startswith("worktree "):
            current = Path(line[len("worktree ") :])
        elif line == f"branch refs/heads/{branch}" and current is not None:
            found.append(current)
    return found


@dataclass(frozen=True)
class Change:
    """One changed path. ``path``/``old_path`` are for people, messages and state files
    (JSON, so UTF-8: a name that is not UTF-8 shows as ``\\xe9`` escapes); the ``raw_``
    forms are the exact names, for the filesystem and git."""

    path: str
    status: str  # A, M, D, R, T (type change), C
    old_path: str | None = None
    old_mode: str = ""
    new_mode: str = ""
    raw_path: str = ""
    raw_old_path: str | None = None

    @property
    def is_symlink(self) -> bool:
        return self.new_mode == "120000"

    @property
    def paths(self) -> list[str]:
        return [p for p in (self.old_path, self.path) if p]

    @property
    def raw_paths(self) -> list[str]:
        return [p for p in (self.raw_old_path, self.raw_path or self.path) if p]


def _change(path: str, status: str, old_path: str | None, old_mode: str, new_mode: str) -> Change:
    return Change(
        path=shown(path),
        status=status,
        old_path=shown(old_path) if old_path is not None else None,
        old_mode=old_mode,
        new_mode=new_mode,
        raw_path=path,
        raw_old_path=old_path,
    )


def snapshot_tree(worktree: Path) -> str:
    """The tree of the worktree as it is now (untracked files included), without
    touching its index: stage everything into a throw-away index and write a tree."""
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index"
        env = {"GIT_INDEX_FILE": str(index)}
        git(["read-tree", "HEAD"], worktree, env=env)
        git(["add", "-A", "."], worktree, env=env)
        return out(["write-tree"], worktree, env=env)


def changes(worktree: Path, base: str) -> list[Change]:
    """Every change in the worktree against ``base``: committed or not, tracked or not,
    deleted, renamed, mode changes and symlinks."""
    return changes_between(worktree, base, snapshot_tree(worktree))


def changes_between(cwd: Path, base: str, target: str) -> list[Change]:
    """Every change from ``base`` to ``target`` (commits or trees), as :class:`Change`."""
    return _raw_changes(git(["diff-tree", "-r", "-z", "-M", "--raw", base, target], cwd).stdout)


def staged_changes(worktree: Path, base: str) -> list[Change]:
    """:func:`changes_between` ``base`` and the tree ``write-tree`` makes of the index now
    (``diff-index --cached``: the same raw records), without waiting for that tree."""
    return _raw_changes(
        git(["diff-index", "--cached", "-r", "-z", "-M", "--raw", base, "--"], worktree).stdout
    )


def _raw_changes(raw: str) -> list[Change]:
    fields = raw.split("\0")
    result: list[Change] = []
    i = 0
    while i < len(fields):
        meta = fields[i]
        if not meta.startswith(":"):
            i += 1
            continue
        old_mode, new_mode, _, _, status = meta[1:].split(" ")
        kind = status[0]
        if kind in "RC":
            result.append(_change(fields[i + 2], kind, fields[i + 1], old_mode, new_mode))
            i += 3
        else:
            result.append(_change(fields[i + 1], kind, None, old_mode, new_mode))
            i += 2
    return result


def symlink_escapes(worktree: Path, change: Change) -> str | None:
    """The target of a new symlink that points outside the worktree, else None."""
    if not change.is_symlink:
        return None
    link = worktree / (change.raw_path or change.path)
    try:
        target = os.readlink(link)
    except OSError:
        return None
    resolved = (link.parent / target).resolve()
    root = worktree.resolve()
    if resolved != root and root not in resolved.parents:
        return target
    return None


def diff_text(worktree: Path, base: str, *, max_bytes: int = 200_000) -> str:
    tree = snapshot_tree(worktree)
    # For people and prompts: names and contents that are not UTF-8 show as \xNN.
    text = shown(out(["diff", "--stat", "-p", "-M", base, tree], worktree))
    return text if len(text) <= max_bytes else text[:max_bytes] + "\n[diff truncated]"


def commit_all(worktree: Path, message: str, *, exclude: list[str] | None = None) -> str:
    """Commit every change in a director-owned worktree; returns the new HEAD."""
    git(["add", "-A", "."], worktree)
    for path in exclude or []:
        git(["rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", path], worktree)
    if git(["diff", "--cached", "--quiet"], worktree, check=False).returncode != 0:
        git(["commit", "-q", "--no-verify", "-m", message], worktree)
    return rev(worktree)


@dataclass(frozen=True)
class IndexListing:
    untracked: list[str]  # raw paths ``git add -A`` would take (when asked for)
    cleared: bool  # a skip-worktree or assume-unchanged mark was found and dropped


def clear_index_marks(worktree: Path, *, untracked: bool = False) -> IndexListing:
    """Drop every skip-worktree and assume-unchanged mark from a director worktree's index.

    With either mark git neither stages the file (``add -A``) nor resets it (``reset
    --hard``): an agent's ``git update-index --skip-worktree calc/add.py`` then an edit
    would be tested but never committed. One ``ls-files`` finds the marks (none, almost
    always); each kind is cleared by its own ``update-index`` (one flag per call).

    With ``untracked`` the same ``ls-files`` also lists the untracked files ``git add
    -A`` would take (``-o --exclude-standard``, tagged ``?``), as raw paths: the gate
    needs both, and a git process is most of what either costs. (Clearing a mark adds
    or drops no index entry, so the untracked list stays true after it.)"""
    extra = ["-c", "-o", "--exclude-standard"] if untracked else []
    listing = git(["ls-files", "-v", *extra, "-z"], worktree).stdout
    skipped: list[str] = []
    assumed: list[str] = []
    others: list[str] = []
    for entry in listing.split("\0"):
        if len(entry) < 3:
            continue
        tag, path = entry[0], entry[2:]
        if tag == "?":
            others.append(path)
            continue
        if tag in "Ss":
            skipped.append(path)
        if tag.islower():
            assumed.append(path)
    for flag, paths in (("--no-skip-worktree", skipped), ("--no-assume-unchanged", assumed)):
        if paths:
            git(
                ["update-index", flag, "-z", "--stdin"],
                worktree,
                input_text="\0".join(paths) + "\0",
            )
    return IndexListing(others, cleared=bool(skipped or assumed))


def reset_clean(worktree: Path, ref: str = "HEAD") -> None:
    """Back to ``ref`` with nothing left over: a rejected attempt never leaks forward.
    A worktree made sparse (by an older director, or by the agent's own ``git
    sparse-checkout``) is made a full checkout again."""
    full_checkout(worktree)
    git(["reset", "-q", "--hard", ref], worktree)
    git(["clean", "-q", "-fdx", "-e", ".director"], worktree)


def merge_no_ff(worktree: Path, branch: str, message: str) -> bool:
    """Merge ``branch`` into the branch checked out at ``worktree``; False on conflict
    (the merge is aborted and the worktree left as it was)."""
    proc = git(
        ["merge", "-q", "--no-ff", "--no-edit", "-m", message, branch], worktree, check=False
    )
    if proc.returncode == 0:
        return True
    git(["merge", "--abort"], worktree, check=False)
    return False


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _git_bytes(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """Director's careful git (safe config, the git dir from git's records) with its
    output as the exact bytes."""
    command, env = _careful_command(args, cwd), os.environ | _SAFE_ENV
    return subprocess.run(command, cwd=str(cwd), capture_output=True, check=False, env=env)


def file_at(repo: Path, ref: str, path: str) -> bytes | None:
    # Careful: the gates compare frozen tests with it; a rewritten .git file picks nothing.
    proc = _git_bytes(["show", f"{ref}:{path}"], repo)
    return proc.stdout if proc.returncode == 0 else None


REGULAR_FILE_MODES = ("100644", "100755")


@dataclass(frozen=True)
class TreeEntry:
    """One path of a commit as git stores it: what merges, whatever the worktree shows."""

    mode: str  # 100644, 100755 (executable), 120000 (symlink), 160000 (gitlink), 040000
    kind: str  # blob, tree, commit
    oid: str

    @property
    def regular_file(self) -> bool:
        return self.kind == "blob" and self.mode in REGULAR_FILE_MODES

    @property
    def described(self) -> str:
        if self.mode == "120000":
            return "a symlink"
        if self.kind == "tree":
            return "a folder"
        if self.kind == "commit":
            return "a submodule"
        return "an executable file" if self.mode == "100755" else "a file"


def tree_entries(cwd: Path, treeish: str, paths: list[str]) -> dict[str, TreeEntry]:
    """The entries ``paths`` have in ``treeish`` (a path not there is left out), read from
    the object store: no worktree file, attribute or filter comes into it."""
    if not paths:
        return {}
    listing = git(["ls-tree", "-z", "--full-tree", treeish, "--", *paths], cwd).stdout
    found: dict[str, TreeEntry] = {}
    for record in listing.split("\0"):
        meta, tab, path = record.partition("\t")
        if tab:
            mode, kind, oid = meta.split(" ")
            found[path] = TreeEntry(mode, kind, oid)
    return found


def _git_bytes_in(args: list[str], cwd: Path, data: bytes) -> bytes:
    command, env = _careful_command(args, cwd), os.environ | _SAFE_ENV
    proc = subprocess.run(
        command, cwd=str(cwd), input=data, capture_output=True, check=False, env=env
    )
    if proc.returncode != 0:
        why = proc.stderr.decode("utf-8", "replace").strip()
        raise GitError(f"git {' '.join(args)} failed in {cwd}: {why}")
    return proc.stdout


def blobs(cwd: Path, names: list[str]) -> dict[str, tuple[str, bytes] | None]:
    """name (``<commit>:<path>``, ``<oid>``) → (object id, exact bytes) of each blob, from
    one git process (``cat-file --batch``): as committed, no eol conversion or filter.
    None for a name that is missing or not a blob."""
    if any("\n" in name for name in names):
        raise GitError("a name with a line break cannot be looked up in one batch")
    text = "".join(f"{name}\n" for name in names)
    out = _git_bytes_in(["cat-file", "--batch"], cwd, text.encode("utf-8", "surrogateescape"))
    found: dict[str, tuple[str, bytes] | None] = {}
    at = 0
    for name in names:
        end = out.index(b"\n", at)
        header = out[at:end].split(b" ")
        at = end + 1
        # "<oid> <type> <size>", else "<name> missing" / "<name> ambiguous" (a name
        # with spaces in it never reads as an object: its first word is no object id).
        if (
            len(header) == 3
            and _is_oid(header[0].decode("ascii", "replace"))
            and header[2].isdigit()
        ):
            size = int(header[2])
            body, at = out[at : at + size], at + size + 1  # the body ends with its own LF
            found[name] = (header[0].decode(), body) if header[1] == b"blob" else None
        else:
            found[name] = None  # "<name> missing" (or ambiguous)
    return found


def ensure_gitignore(repo: Path, lines: list[str]) -> bool:
    """Append the missing lines to the repo's .gitignore; True when it changed."""
    path = repo / ".gitignore"
    existing = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    missing = [line for line in lines if line not in existing]
    if not missing:
        return False
    prefix = "" if not existing or existing[-1] == "" else "\n"
    with path.open("a", encoding="utf-8") as fh:
        fh.write(prefix + "# director runtime state\n" + "\n".join(missing) + "\n")
    return True


# The parents of every commit this process made with :func:`commit_tree`. An object id
# names the object's content, its parent lines included: an entry is true for as long as
# the process lives, in any repository that has the commit, whatever refs do meanwhile.
_MADE_PARENTS: dict[str, tuple[str, ...]] = {}
_MADE_PARENTS_KEPT = 10_000


def commit_tree(cwd: Path, tree: str, parents: list[str], message: str) -> str:
    """``git commit-tree``: a commit of ``tree`` on ``parents``, its id (no ref moved).
    Its parents are remembered (see :func:`made_parents`)."""
    commit = out(
        ["commit-tree", tree, *(arg for p in parents for arg in ("-p", p)), "-m", message], cwd
    )
    if len(_MADE_PARENTS) >= _MADE_PARENTS_KEPT:
        _MADE_PARENTS.clear()
    _MADE_PARENTS[commit] = tuple(parents)
    return commit


def made_parents(commit: str) -> tuple[str, ...] | None:
    """The parents of ``commit`` when this process made it (:func:`commit_tree`), else
    None — never read from git."""
    return _MADE_PARENTS.get(commit)


class BranchMovedError(GitError):
    """The branch is not where the caller's last merge left it."""


def _merge_sides(
    repo: Path, branch: str, tip_branch: str, expected_head: str | None
) -> tuple[str, str]:
    """The commits a merge of ``tip_branch`` into ``branch`` joins; ``BranchMovedError``
    when ``branch`` is not at ``expected_head``, ``GitError`` when one is no commit."""
    head, tip = revs(repo, branch, tip_branch)
    if expected_head is not None and head != expected_head:
        raise BranchMovedError(f"{branch} moved to {head}")
    return head, tip


def merge_into_branch(
    repo: Path, branch: str, tip_branch: str, message: str, expected_head: str | None = None
) -> str | None:
    """Merge ``tip_branch`` into ``branch`` with git objects only (``merge-tree
    --write-tree`` + ``commit-tree`` + a compare-and-swap ``update-ref``): no checkout,
    so a merge costs a few milliseconds. Returns the merge commit, or None on a conflict.
    ``BranchMovedError`` when the branch is not at ``expected_head``, or moved between
    the read and the swap: that is no conflict, and the caller must not build on where
    it moved to before it knows who moved it."""
    # The merge queue's case — the head it expects, the judged commit by its id — reads
    # nothing first: a branch elsewhere fails the swap below, and before a conflict
    # (merge-tree also answers 1 for a name that is no commit) is believed the reading
    # is done after all. One git process less per merge.
    trusted = expected_head is not None and _is_oid(expected_head) and _is_oid(tip_branch)
    if trusted:
        head, tip = expected_head or "", tip_branch
    else:
        head, tip = _merge_sides(repo, branch, tip_branch, expected_head)
    if trusted and made_parents(tip) == (head,):
        # The tip is a commit director made right on the head (a node's attempt on the job
        # head it started from): the merge base is the head itself, so the three-way merge
        # is the tip's own tree, with nothing to merge from the head's side. One git
        # process (merge-tree) less in a row per merge.
        tree = f"{tip}^{{tree}}"
    else:
        proc = git(["merge-tree", "--write-tree", "--no-messages", head, tip], repo, check=False)
        if proc.returncode == 1:
            if trusted:
                _merge_sides(repo, branch, tip_branch, expected_head)
            return None
        if proc.returncode != 0:
            raise GitError(f"git merge-tree failed: {proc.stderr.strip()}")
        tree = proc.stdout.split("\n", 1)[0].strip()
    commit = commit_tree(repo, tree, [head, tip], message)
    # The old value makes this a compare-and-swap: a commit someone else put on the
    # branch meanwhile makes it fail instead of being overwritten.
    swapped = git(["update-ref", f"refs/heads/{branch}", commit, head], repo, check=False)
    if swapped.returncode != 0:
        now = git(["rev-parse", "-q", "--verify", f"refs/heads/{branch}"], repo, check=False)
        raise BranchMovedError(
            f"{branch} moved to {now.stdout.strip() or 'nothing'} while director merged into it"
        )
    return commit
