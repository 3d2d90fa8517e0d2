"""Deterministic gates: what decides, by exit codes and hashes alone, whether work merges.

* :func:`node_gate` — one node attempt: every test file's blob in the attempt's commit
  byte-identical to its frozen hash (the hash of the blob frozen at plan time: what
  merges, not the worktree's copy) with its mode unchanged, the change inside the
  allowlist (plus ``[repository] ignore`` globs; a file outside it is never staged, so
  its blob never reaches the object store), no new symlink pointing out of the
  worktree, the attempt's commit built on its base (no history rewritten under it),
  then ``test_cmd`` passes on a clean checkout of the commit (the tests written afresh
  from its blobs, and left unchanged by the run); on a pass, flake control re-runs
  ``test_cmd`` (on a clean checkout again) until it has run ``flake_runs`` times in all
  (1 disables it) and any failure marks the attempt flaky.

What is tested is what merges. The job branch and the integration gate see only
committed files, so the node's tests must too: once the attempt is committed, its
worktree is reset to that commit and every untracked or ignored file is removed
(``git clean -ffdx``) before each test run. A conftest.py that a new ``.gitignore`` hides,
a ``calc/add.pyc`` standing in for a deleted ``calc/add.py`` (``*.pyc`` is in
``[repository] ignore``), a ``node_modules/`` the agent installed: none of them is in the
commit, so none of them is there when the tests run. A new ignore rule is neutralised
that way rather than refused (tools write self-ignoring folders all the time:
``.pytest_cache/``, ``.mypy_cache/``, a Python 3.13 venv); when the tests then fail, the
message names the ignore rules and the files the commit left out.
* :func:`integration_gate` — after every node merged: the repo's ``[gates]`` commands in
  declaration order on the job branch; a failure names the command, its exit code, the
  tail of its output and the node(s) whose change most likely caused it.

The cheap structural checks run first so a rejected attempt never costs a test run.

Two more rejections come from the run engine, not from here: ``worktree`` (the attempt
broke its worktree's ``.git`` link) and ``outside_worktree`` (files in the user's
checkout or the job worktree changed during the executor call or these tests — see
``sandbox_watch``).
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import posixpath
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from director_tui.engine import git
from director_tui.engine.dag import normalise_path
from director_tui.engine.errors import GitError
from director_tui.engine.models import Node
from director_tui.engine.proc import CommandResult, run_command
from director_tui.engine.sandbox import SandboxSpec

OUTPUT_TAIL_LINES = 40
# Threads for the gate's git processes that run side by side (commit_attempt); shared by
# every gate of the process, each using two at most.
_BESIDE = futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="gate-git")


@dataclass
class GateOutcome:
    passed: bool
    check: str  # hashes | allowlist | symlink | history | tests | flake | passed
    # (the engine adds: worktree | outside_worktree)
    message: str = ""
    output_tail: str = ""
    changed_files: list[str] = field(default_factory=list)
    flaky: bool = False
    test_runs: int = 0
    test_secs: float = 0.0
    commit: str = ""  # the attempt's commit the tests passed on: exactly what may merge
    timed_out: bool = False  # a test run was killed at the gate timeout

    def feedback(self) -> str:
        """What the next attempt is told about this one."""
        text = (
            f"The deterministic gate rejected the previous attempt ({self.check}): {self.message}"
        )
        if self.output_tail:
            text += f"\n\nOutput (last lines):\n{self.output_tail}"
        return text


def ignored(path: str, globs: Sequence[str]) -> bool:
    """True when ``path`` matches one of the ``[repository] ignore`` globs.

    ``fnmatch``'s ``*`` already crosses ``/``; a leading ``**/`` also matches at the top
    level, and a glob without ``/`` matches the file name anywhere (like .gitignore)."""
    name = posixpath.basename(path)
    for glob in globs:
        if fnmatch.fnmatchcase(path, glob):
            return True
        if glob.startswith("**/") and fnmatch.fnmatchcase(path, glob[3:]):
            return True
        if "/" not in glob and fnmatch.fnmatchcase(name, glob):
            return True
    return False


def allowed(path: str, allowlist: Sequence[str]) -> bool:
    """An allowlist entry is a file, or a folder when it ends with ``/``."""
    norm = normalise_path(path)
    for entry in allowlist:
        entry = normalise_path(entry)
        if norm == entry or (entry.endswith("/") and norm.startswith(entry)):
            return True
    return False


def frozen_hash(data: bytes) -> str:
    """The hash a test is frozen by: sha256 of its committed blob."""
    return hashlib.sha256(data).hexdigest()


def _frozen_by_an_older_plan(data: bytes, recorded: str) -> bool:
    """A plan frozen before hashes were taken from blobs hashed the author's worktree
    copy, which ``core.autocrlf=true`` wrote with CRLF: ``data`` (a blob without CRLF)
    in that form. Accepted only for the very blob on the attempt's base."""
    return b"\r\n" not in data and frozen_hash(data.replace(b"\n", b"\r\n")) == recorded


def committed_test_hashes(cwd: Path, treeish: str, tests: Sequence[str]) -> dict[str, str]:
    """test → frozen hash of its blob in ``treeish``; GitError naming a test that is not
    committed there as a regular file (a symlink's target would not be frozen with it)."""
    entries = git.tree_entries(cwd, treeish, list(tests))
    hashes: dict[str, str] = {}
    for test in tests:
        entry = entries.get(test)
        if entry is None:
            raise GitError(f"the test {test} is not committed at {treeish[:12]}")
        if not entry.regular_file:
            raise GitError(
                f"the test {test} is committed as {entry.described}: a frozen test must be a "
                "regular file (what a symlink points to would not be frozen with it)"
            )
    contents = git.blobs(cwd, [entries[test].oid for test in tests])
    for test in tests:
        found = contents[entries[test].oid]
        if found is None:
            raise GitError(f"the test {test} cannot be read at {treeish[:12]}")
        hashes[test] = frozen_hash(found[1])
    return hashes


def check_committed_tests(
    node: Node, cwd: Path, base: str, commit: str
) -> tuple[str | None, dict[str, bytes]]:
    """Why a test in ``commit`` is not the frozen one (None: it is), and the tests'
    committed bytes — judged on the committed blobs, exactly what merges, never on the
    worktree's copies: an eol rule or a ``.gitattributes`` filter (the agent's own, in a
    folder it may write) can make a worktree file match its frozen hash while the blob
    ``git add`` made of it differs. One git process (both commits' blobs in one batch);
    a mode change is in the attempt's changes (:func:`_tests_touched`)."""
    tests = list(node.tests)
    found = git.blobs(cwd, [f"{rev}:{test}" for rev in (commit, base) for test in tests])
    contents: dict[str, bytes] = {}
    for test in tests:
        now, was = found[f"{commit}:{test}"], found[f"{base}:{test}"]
        if now is None:
            return f"test file {test} was deleted or replaced", contents
        oid, data = now
        recorded = node.test_hashes.get(test)
        if recorded is None:
            # No recorded hash: the committed version on the node's base is the contract.
            if was is None or was[0] != oid:
                return f"test file {test} differs from the committed version", contents
        else:
            actual = frozen_hash(data)
            unchanged = was is not None and was[0] == oid
            if actual != recorded and not (unchanged and _frozen_by_an_older_plan(data, recorded)):
                return (
                    f"test file {test} was modified (sha256 {actual[:12]}… ≠ frozen "
                    f"{recorded[:12]}…)",
                    contents,
                )
        contents[test] = data
    return None, contents


def _tests_touched(node: Node, changes: Sequence[git.Change]) -> str | None:
    tests = {normalise_path(t) for t in node.tests}
    for change in changes:
        for path in change.paths:
            if normalise_path(path) not in tests:
                continue
            if change.status == "D":
                return f"test file {path} was deleted"
            if change.status in "MT" and change.old_mode != change.new_mode:
                if change.new_mode == "120000":
                    return f"test file {path} was replaced by a symlink"
                return f"test file {path} changed mode ({change.old_mode} → {change.new_mode})"
            moved = path == change.old_path and change.status == "R"
            return f"test file {path} was {'moved' if moved else 'modified'}"
    return None


def checkout_tests(worktree: Path, commit: str, contents: dict[str, bytes]) -> dict[str, str]:
    """The node's tests on disk exactly as ``commit`` holds them (``contents``): a copy
    that is the blob, or git's CRLF checkout of it, is left; any other (what an eol rule
    or a filter made of it, or anything at all) is written afresh by git from the
    commit. Returns test → sha256 of the bytes there, which the test run must leave as
    they are. No git process when every copy is the blob (almost always)."""
    stale = [
        test
        for test, blob in contents.items()
        if not _is_checkout_of(blob, _bytes_on_disk(worktree / test))
    ]
    if stale:
        for test in stale:
            path = worktree / test
            if path.is_symlink() or path.is_file():
                path.unlink()
        _with_pathspecs(worktree, ["checkout", "-q", commit], [f":(literal){t}" for t in stale])
    return {test: _digest_on_disk(worktree / test) for test in contents}


def _bytes_on_disk(path: Path) -> bytes | None:
    if path.is_symlink() or not path.is_file():
        return None
    try:
        return path.read_bytes()
    except OSError:
        return None


def _is_checkout_of(blob: bytes, on_disk: bytes | None) -> bool:
    return on_disk is not None and _same_or_crlf_checkout(blob, on_disk)


def _digest_on_disk(path: Path) -> str:
    """sha256 of a regular file's bytes; "" for a symlink, a folder or nothing."""
    if path.is_symlink() or not path.is_file():
        return ""
    return git.sha256_file(path)


def _changed_by_the_run(worktree: Path, written: dict[str, str]) -> str | None:
    for test, digest in written.items():
        if _digest_on_disk(worktree / test) != digest:
            return (
                f"test file {test} was changed while the tests ran (the frozen tests must "
                "come out of a run as they went in)"
            )
    return None


def check_hashes(node: Node, worktree: Path, base: str) -> str | None:
    """Why a test file in the worktree (an attempt not committed) is not byte-identical
    to its frozen hash, or None."""
    for test in node.tests:
        path = worktree / test
        if not path.is_file() or path.is_symlink():
            return f"test file {test} was deleted or replaced"
        expected = node.test_hashes.get(test)
        actual = git.sha256_file(path)
        if expected is None:
            # No recorded hash: the committed version on the node's base is the contract.
            committed = git.file_at(worktree, base, test)
            if committed is None or not _same_or_crlf_checkout(committed, path.read_bytes()):
                return f"test file {test} differs from the committed version"
        elif actual != expected and not _crlf_checkout_of_frozen(worktree, base, test, expected):
            return (
                f"test file {test} was modified (sha256 {actual[:12]}… ≠ frozen {expected[:12]}…)"
            )
    return None


def _same_or_crlf_checkout(committed: bytes, on_disk: bytes) -> bool:
    """``on_disk`` is ``committed`` as git checks it out: as is, or with every LF turned
    into CRLF (``core.autocrlf=true``, ``eol=crlf`` attributes). Only that exact
    conversion counts — never a clean filter, which the agent could configure itself."""
    if on_disk == committed:
        return True
    return b"\r\n" not in committed and on_disk == committed.replace(b"\n", b"\r\n")


def _crlf_checkout_of_frozen(worktree: Path, base: str, test: str, expected: str) -> bool:
    """The frozen hash is of the committed bytes (LF); in a repo that checks text out
    with CRLF the worktree's copy differs byte for byte yet is the same test."""
    committed = git.file_at(worktree, base, test)
    if committed is None or hashlib.sha256(committed).hexdigest() != expected:
        return False
    return _same_or_crlf_checkout(committed, (worktree / test).read_bytes())


def reattach_branch(worktree: Path, branch: str) -> None:
    """Put the worktree's HEAD back on ``branch`` when the agent moved it elsewhere.

    An agent may run ``git checkout -b other`` or ``git switch --detach`` in its
    worktree: its work then sits on another branch (or none) while the merge queue
    merges ``branch`` by name — a passed gate would merge nothing. The node branch is
    moved to where HEAD is and HEAD pointed at it again; files and index stay as they
    are, so what the agent left is exactly what is judged and merged."""
    ref = f"refs/heads/{branch}"
    if git.head_symref(worktree) == ref:
        return  # read from the file git reads: a git process less in the gate's first step
    current = git.git(["symbolic-ref", "-q", "HEAD"], worktree, check=False).stdout.strip()
    if current == ref:
        return
    git.git(["update-ref", ref, "HEAD"], worktree)
    git.git(["symbolic-ref", "HEAD", ref], worktree)


@dataclass(frozen=True)
class AttemptCommit:
    """The commit director made of an attempt, known by its object id (never read back
    from a ref), and what changed since the base."""

    commit: str  # what the gate judges and the merge queue merges
    changes: list[git.Change]
    moved_to: str = ""  # the branch moved under director's swap: nothing was committed on it
    made_on: str = ""  # the one parent director gave ``commit`` ("" when it made none)

    def builds_on(self, base: str) -> bool:
        """``commit`` is ``base``, or director made it right on ``base`` (its one parent is
        known: no git needed). False says nothing: only git's history can tell then."""
        return base in (self.commit, self.made_on)


def commit_attempt(
    worktree: Path,
    base: str,
    ignore_globs: Sequence[str],
    message: str,
    branch: str | None = None,
    allowlist: Sequence[str] | None = None,
) -> AttemptCommit:
    """Commit what the attempt left in its worktree onto the node branch; return the
    commit and what changed since ``base`` — ignored byproducts taken back out of it.

    The gate judges this commit, and the merge queue merges it: one snapshot serves both
    (cheaper than a throw-away index per check, and what is judged is what merges).
    The commit object is made with ``write-tree`` + ``commit-tree``, so director knows
    its id without reading a ref: anything that moves the branch (an agent with the
    sandbox off, a sibling's ``git update-ref``) can neither have its own commit judged
    in place of this one nor be overwritten — the branch is moved by compare-and-swap,
    and when it moved since director read it nothing is committed (``moved_to``).
    With ``branch``, a HEAD the agent moved off the node branch is put back first
    (:func:`reattach_branch`). With ``allowlist``, a file the allowlist does not allow is
    never staged (see :func:`_stage_allowed`); it is returned as a change all the same,
    so the allowlist check rejects the attempt for it."""
    # Git processes that need nothing of each other run side by side (a git process is
    # most of what each step costs): HEAD put back on the node branch, the index's
    # marks and untracked files, the paths that differ from the base.
    reattached = _BESIDE.submit(reattach_branch, worktree, branch) if branch else None
    differs = _BESIDE.submit(_differs_from, worktree, base) if allowlist is not None else None
    try:
        # A skip-worktree file would be tested, never committed. The same listing names
        # the untracked files the allowlist check needs.
        listing = git.clear_index_marks(worktree, untracked=allowlist is not None)
    finally:
        _settle(reattached, differs)
    if reattached is not None:
        reattached.result()
    refused: list[git.Change] = []
    if allowlist is None:
        git.git(["add", "-A", "."], worktree)
    else:
        assert differs is not None
        # A marked file looked unchanged to that diff: once its mark is gone, ask again.
        differing = _differs_from(worktree, base) if listing.cleared else differs.result()
        left = _left_since(differing, listing.untracked)
        refused = _stage_allowed(worktree, left, allowlist, ignore_globs)
    ref = f"refs/heads/{branch}" if branch is not None else "HEAD"
    # The tree, what it changes since the base, the branch's commit and tree: side by side.
    parent_read = _BESIDE.submit(git.rev_and_tree, worktree, ref)
    staged = _BESIDE.submit(git.staged_changes, worktree, base)
    try:
        tree = git.out(["write-tree"], worktree)
    finally:
        _settle(parent_read, staged)
    changes = staged.result()
    byproducts = [p for c in changes for p in c.paths if ignored(p, ignore_globs)]
    if byproducts:
        git.git(["rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", *byproducts], worktree)
        tree = git.out(["write-tree"], worktree)
    parent, parent_tree = parent_read.result()
    commit = parent  # nothing to commit (an empty attempt, a re-gate after a rebase)
    made_on = ""
    if tree != parent_tree:
        commit = git.commit_tree(worktree, tree, [parent], message)
        made_on = parent
        swapped = git.git(["update-ref", ref, commit, parent], worktree, check=False)
        if swapped.returncode != 0:
            moved = git.git(["rev-parse", "-q", "--verify", ref], worktree, check=False)
            return AttemptCommit(commit, changes, moved_to=moved.stdout.strip() or "nothing")
    committed = {p for c in changes for p in c.paths}
    return AttemptCommit(
        commit, changes + [c for c in refused if c.path not in committed], made_on=made_on
    )


def _settle(*pending: futures.Future[Any] | None) -> None:
    """Wait until every one has ended (its failure is for its ``result()`` to raise)."""
    futures.wait([f for f in pending if f is not None])


def _stage_allowed(
    worktree: Path, left: dict[str, str], allowlist: Sequence[str], ignore_globs: Sequence[str]
) -> list[git.Change]:
    """Stage what the attempt left, except the paths the allowlist refuses; return those.

    ``git add`` writes a blob for every file it stages, and the node branch keeps it: an
    executor that left a 300 MB file would grow the user's ``.git`` by 300 MB per
    attempt, for a change the allowlist rejects anyway. So the refused paths are found
    with commands that hash nothing into the object store, and never staged; what the
    agent staged of them itself is unstaged, so no commit keeps its blob. An untracked
    file matching the ignore globs stays out as well (the commit would drop it again)."""
    refused: list[git.Change] = []
    never_stage: list[str] = []
    for raw, kind in left.items():
        path = git.shown(raw)
        if ignored(path, ignore_globs):
            if kind == "?":
                never_stage.append(raw)
        elif not allowed(path, allowlist):
            refused.append(git.Change(path=path, status="A" if kind == "?" else kind, raw_path=raw))
            never_stage.append(raw)
    # git refuses a pathspec "beyond a symbolic link" (a folder the agent replaced by a
    # link): such a path is a deletion of a tracked file, which writes no blob when
    # staged, and the symlink check names the link itself.
    refused_specs = [c.raw_path for c in refused if not _beyond_symlink(worktree, c.raw_path)]
    if refused_specs:
        _with_pathspecs(worktree, ["reset", "-q"], [f":(literal){r}" for r in refused_specs])
    excluded = [
        f":(exclude,literal){raw}" for raw in never_stage if not _beyond_symlink(worktree, raw)
    ]
    _with_pathspecs(worktree, ["add", "-A"], [".", *excluded])
    return refused


def _beyond_symlink(worktree: Path, raw: str) -> bool:
    """Does a folder on the way to ``raw`` (not ``raw`` itself) stand as a symlink?"""
    return any((worktree / parent).is_symlink() for parent in Path(raw).parents[:-1])


def _differs_from(worktree: Path, base: str) -> str:
    """``git diff --name-status`` of the worktree against ``base``. Hashes nothing into
    the object store, and takes no ``index.lock`` (``GIT_OPTIONAL_LOCKS=0``: no index
    refresh written), so it can run beside a command that writes the index."""
    return git.git(
        ["diff", "--name-status", "-z", "--no-renames", base, "--"],
        worktree,
        env={"GIT_OPTIONAL_LOCKS": "0"},
    ).stdout


def _left_since(diff: str, untracked: Sequence[str]) -> dict[str, str]:
    """Raw path → kind of every path in the worktree that differs from the base: ``A``,
    ``M``, ``D`` or ``T`` for what git tracks (``diff``: :func:`_differs_from`), ``?``
    for each of ``untracked`` (what ``git add -A`` would take: :func:`git.clear_index_marks`
    lists them)."""
    fields = diff.split("\0")
    found = {fields[i + 1]: fields[i][:1] for i in range(0, len(fields) - 1, 2)}
    for raw in untracked:
        found.setdefault(raw, "?")
    return found


def _with_pathspecs(worktree: Path, command: list[str], pathspecs: Sequence[str]) -> None:
    """``git <command>`` on ``pathspecs``, read from stdin: any number of them."""
    git.git(
        [*command, "--pathspec-from-file=-", "--pathspec-file-nul"],
        worktree,
        input_text="\0".join(pathspecs) + "\0",
    )


LARGE_FILE_BYTES = 1_000_000


def _size_note(path: Path) -> str:
    """`` (20.0 MB)`` for a large regular file, so the feedback says why it matters."""
    try:
        size = path.lstat().st_size if path.is_file() and not path.is_symlink() else 0
    except OSError:
        return ""
    return f" ({size / 1_000_000:.1f} MB)" if size >= LARGE_FILE_BYTES else ""


def structural_check(
    node: Node,
    worktree: Path,
    base: str,
    ignore_globs: Sequence[str],
    changes: Sequence[git.Change] | None = None,
    *,
    commit: str | None = None,
) -> GateOutcome:
    """Hashes, allowlist and symlinks: no command runs here. ``changes`` defaults to the
    worktree's uncommitted state against ``base``. With ``commit`` (the attempt's, which
    ``changes`` describe) the tests are judged on its blobs, else on the worktree's files."""
    return _structural(node, worktree, base, ignore_globs, changes, commit)[0]


def _structural(
    node: Node,
    worktree: Path,
    base: str,
    ignore_globs: Sequence[str],
    changes: Sequence[git.Change] | None,
    commit: str | None,
) -> tuple[GateOutcome, dict[str, bytes]]:
    """:func:`structural_check`, and with ``commit`` the tests' committed bytes (empty
    unless they are the frozen tests)."""
    contents: dict[str, bytes] = {}
    if commit is None:
        broken = check_hashes(node, worktree, base)
        if changes is None:
            changes = git.changes(worktree, base)
    else:
        if changes is None:
            changes = git.changes_between(worktree, base, commit)
        # What the agent did to a test (a refused path is never staged, so the commit
        # may not show it) names it best; the commit's blobs are what decides.
        broken = _tests_touched(node, changes)
        if broken is None:
            broken, contents = check_committed_tests(node, worktree, base, commit)
    touched: list[str] = []
    outside: dict[str, str] = {}  # path → how the message names it
    escapes: list[str] = []
    for change in changes:
        raws = change.raw_paths if len(change.raw_paths) == len(change.paths) else change.paths
        for path, raw in zip(change.paths, raws, strict=True):
            if ignored(path, ignore_globs):
                continue
            if path not in touched:
                touched.append(path)
            if not allowed(path, node.files) and path not in outside:
                outside[path] = path + _size_note(worktree / raw)
        target = git.symlink_escapes(worktree, change)
        if target is not None:
            escapes.append(f"{change.path} → {target}")
    if broken:
        return GateOutcome(False, "hashes", broken, changed_files=touched), {}
    if outside:
        return GateOutcome(
            False,
            "allowlist",
            "changed files outside the allowlist: "
            + ", ".join(outside.values())
            + f" (allowed: {', '.join(node.files)})",
            changed_files=touched,
        ), {}
    if escapes:
        return GateOutcome(
            False,
            "symlink",
            "new symlink pointing outside the worktree: " + ", ".join(escapes),
            changed_files=touched,
        ), {}
    return GateOutcome(True, "structure", changed_files=touched), contents


async def node_gate(
    node: Node,
    worktree: Path,
    base: str,
    *,
    ignore_globs: Sequence[str],
    flake_runs: int,
    timeout: float,
    on_line: Callable[[str], None] | None = None,
    commit_message: str | None = None,
    branch: str | None = None,
    sandbox: SandboxSpec | None = None,
) -> GateOutcome:
    """The whole deterministic gate of one attempt (see the module docstring).

    With ``commit_message`` the attempt is first committed on the node branch
    (:func:`commit_attempt`; ``branch`` names it) and that commit is what is judged;
    without it the worktree's uncommitted state is judged and nothing is written. The
    test command runs inside ``sandbox`` when given (the tests are the agent's code too)."""

    contents: dict[str, bytes] = {}  # the frozen tests' bytes in the judged commit
    # The worktree right after the commit, read beside the structural checks (they read
    # only git objects; nothing writes the worktree in between): one git process less
    # in a row, one wasted on an attempt the structure rejects.
    after_made: futures.Future[AfterCommit] | None = None

    def structure() -> GateOutcome:
        nonlocal contents, after_made
        if commit_message is None:
            return structural_check(node, worktree, base, ignore_globs)
        made = commit_attempt(
            worktree, base, ignore_globs, commit_message, branch, allowlist=node.files
        )
        if not made.moved_to:
            after_made = _BESIDE.submit(after_commit, worktree, made.commit)
        if made.moved_to:
            return GateOutcome(
                False,
                "history",
                f"the node branch moved to {made.moved_to[:10]} while director committed the "
                "attempt (something else writes to it): nothing was committed; leave the "
                "branches alone",
            )
        outcome, contents = _structural(
            node, worktree, base, ignore_globs, made.changes, made.commit
        )
        if outcome.passed and not (
            made.builds_on(base) or _descends_from(worktree, base, made.commit)
        ):
            # A three-way merge of a commit that does not build on the base (the agent
            # ran `git reset` below it) is not the tree that was judged.
            return GateOutcome(
                False,
                "history",
                f"the attempt's commit does not build on its base {base[:10]} (history was "
                "rewritten with git reset/rebase/checkout); leave the branch history alone",
                changed_files=outcome.changed_files,
            )
        outcome.commit = made.commit
        return outcome

    try:
        outcome = await asyncio.to_thread(structure)
    finally:
        if after_made is not None:
            await asyncio.wrap_future(after_made)  # its git process ends before the gate does
    if not outcome.passed:
        return outcome
    touched = outcome.changed_files
    # What the commit leaves out, named when the tests fail without it.
    after = after_made.result() if after_made is not None else None
    left_out = after.left_out if after else []
    runs, secs = 0, 0.0
    written: dict[str, str] = {}
    while True:
        if after is not None:
            # The first run cleans only what differs from the commit; a re-run starts
            # from a full clean checkout (the run before may have left anything).
            await asyncio.to_thread(
                checkout_commit_only, worktree, after.commit, after if runs == 0 else None
            )
            written = await asyncio.to_thread(checkout_tests, worktree, after.commit, contents)
        result = await run_command(
            node.test_cmd, worktree, timeout=timeout, on_line=on_line, sandbox=sandbox
        )
        runs += 1
        secs += result.duration_secs
        if not result.ok and runs == 1:
            return GateOutcome(
                False,
                "tests",
                _command_failure(node.test_cmd, result) + _left_out_note(left_out),
                output_tail=result.tail(OUTPUT_TAIL_LINES),
                changed_files=touched,
                test_runs=runs,
                test_secs=secs,
                timed_out=result.timed_out,
            )
        if not result.ok:
            return GateOutcome(
                False,
                "flake",
                f"`{node.test_cmd}` passed, then failed on re-run {runs} of {flake_runs}: "
                "the result is not stable (flaky)",
                output_tail=result.tail(OUTPUT_TAIL_LINES),
                changed_files=touched,
                flaky=True,
                test_runs=runs,
                test_secs=secs,
                timed_out=result.timed_out,
            )
        # A test run must not have touched the frozen tests (e.g. a fixture rewriting them).
        if after is not None:
            broken = await asyncio.to_thread(_changed_by_the_run, worktree, written)
        else:
            broken = await asyncio.to_thread(check_hashes, node, worktree, base)
        if broken:
            return GateOutcome(False, "hashes", broken, changed_files=touched, test_runs=runs)
        if runs >= max(1, flake_runs):
            return GateOutcome(
                True,
                "passed",
                output_tail=result.tail(OUTPUT_TAIL_LINES),  # a pass shows its output too
                changed_files=touched,
                test_runs=runs,
                test_secs=secs,
                commit=after.commit if after else "",
            )


SHOWN_LEFTOVERS = 12


@dataclass(frozen=True)
class AfterCommit:
    """The attempt's worktree right after its commit, from one ``git status``."""

    commit: str  # the commit the tests judge, as director made it (not read from HEAD)
    # What the commit leaves out: ``.gitignore`` files that differ from the committed
    # ones (new, changed, ignoring themselves) first, then every untracked or ignored
    # path (a folder git does not descend into shown once).
    left_out: list[str]
    # A tracked file differs from the commit (a byproduct taken out), or HEAD is not the
    # commit (the branch was moved since): the status says nothing about the commit then.
    tracked_differs: bool


def after_commit(worktree: Path, commit: str) -> AfterCommit:
    text = git.git(
        [
            "status",
            "--porcelain=v2",
            "--branch",
            "-z",
            "--untracked-files=normal",
            "--ignored=matching",
        ],
        worktree,
    ).stdout
    rules: list[str] = []
    others: list[str] = []
    tracked_differs = False
    for record in text.split("\0"):
        if record.startswith("# branch.oid "):
            tracked_differs |= record.removeprefix("# branch.oid ") != commit
        elif record[:2] in ("? ", "! "):
            path = git.shown(record[2:])
            if posixpath.basename(path.rstrip("/")) == ".gitignore":
                rules.append(path + " (an ignore rule)")
            else:
                others.append(path)
        elif record[:2] in ("1 ", "2 ", "u "):
            tracked_differs = True
    return AfterCommit(commit, rules + others, tracked_differs)


def checkout_commit_only(worktree: Path, commit: str, known: AfterCommit | None = None) -> None:
    """The worktree as a fresh checkout of ``commit``: index and tracked files read from
    it (``read-tree --reset -u``: whatever the branch points to by now, and HEAD is not
    moved), every untracked and ignored file removed (``-ff``: nested repositories too), no
    index mark left that would keep a file from being reset. With ``known`` (the state
    just after the commit, whose staging cleared the marks) only what differs is cleaned."""
    if known is None:
        git.clear_index_marks(worktree)
    if known is None or known.tracked_differs:
        git.git(["read-tree", "-q", "--reset", "-u", commit], worktree)
    if known is None or known.left_out:
        git.git(["clean", "-q", "-ffdx"], worktree)


def _listed(paths: Sequence[str]) -> str:
    more = len(paths) - SHOWN_LEFTOVERS
    return ", ".join(paths[:SHOWN_LEFTOVERS]) + (f" (+{more} more)" if more > 0 else "")


def _left_out_note(left_out: Sequence[str]) -> str:
    if not left_out:
        return ""
    return (
        ". The tests ran on a clean checkout of the attempt's commit; not in it (untracked, "
        f"ignored by git or by [repository] ignore): {_listed(left_out)}"
    )


def _descends_from(worktree: Path, base: str, commit: str) -> bool:
    proc = git.git(["merge-base", "--is-ancestor", base, commit], worktree, check=False)
    return proc.returncode == 0


def _command_failure(command: str, result: CommandResult) -> str:
    if result.timed_out:
        return f"`{command}` did not finish within the gate timeout"
    return f"`{command}` exited with code {result.exit_code}"


# -- integration ----------------------------------------------------------------------------
@dataclass
class IntegrationOutcome:
    passed: bool
    name: str = ""
    command: str = ""
    exit_code: int | None = None
    output_tail: str = ""
    suspects: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)

    def report(self) -> str:
        if self.passed:
            return "integration gate passed" + (f" ({', '.join(self.ran)})" if self.ran else "")
        code = "timed out" if self.exit_code is None else f"exit code {self.exit_code}"
        lines = [f"integration gate {self.name!r} failed: `{self.command}` ({code})"]
        if self.suspects:
            lines.append("most likely caused by node(s): " + ", ".join(self.suspects))
        if self.output_tail:
            lines.append("output tail:\n" + self.output_tail)
        return "\n".join(lines)


def attribute(output: str, merged: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """The nodes whose changed files the failing output mentions (by path, then by file
    name or module name); failing that, the node merged last — the newest change is the
    likeliest culprit. ``merged`` is (node id, changed files) in merge order."""
    hits: list[str] = []
    for node_id, files in merged:
        for path in files:
            stem = posixpath.splitext(posixpath.basename(path))[0]
            module = posixpath.splitext(path)[0].replace("/", ".")
            if (
                path in output
                or posixpath.basename(path) in output
                or (len(stem) > 2 and module in output)
            ):
                hits.append(node_id)
                break
    if hits:
        return hits
    return [merged[-1][0]] if merged else []


async def integration_gate(
    commands: Sequence[tuple[str, str]],
    worktree: Path,
    merged: Sequence[tuple[str, Sequence[str]]],
    *,
    timeout: float,
    on_line: Callable[[str], None] | None = None,
    sandbox: SandboxSpec | None = None,
) -> IntegrationOutcome:
    ran: list[str] = []
    for name, command in commands:
        result = await run_command(
            command, worktree, timeout=timeout, on_line=on_line, sandbox=sandbox
        )
        ran.append(name)
        if not result.ok:
            tail = result.tail(OUTPUT_TAIL_LINES)
            return IntegrationOutcome(
                False,
                name=name,
                command=command,
                exit_code=result.exit_code,
                output_tail=tail,
                suspects=attribute(result.output, merged),
                ran=ran,
            )
    return IntegrationOutcome(True, ran=ran)
