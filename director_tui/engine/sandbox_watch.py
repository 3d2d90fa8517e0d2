"""Notice an executor that changes files outside its own worktree.

Executors run with bash in ``<worktrees>/<node>``; nothing stops an agent (or a
test it wrote) from ``cd``-ing to the checkout or writing to an absolute path. Two places must never
change under an agent: the **user's checkout** (the repository's own working tree) and
the **job worktree** (``<worktrees>/_job``, where the job branch is checked out).
The run engine fingerprints both around every *watched window* — an executor call plus
the gate's test runs of that attempt (the agent's code runs there too) — and compares.

The fingerprint is cheap and exact:

* the user's checkout: ``git status --porcelain=v2 --branch -z --untracked-files=all
  --ignored=no`` (its HEAD, index and worktree state, with git's optional locks off so
  the user's own git commands never meet our ``index.lock``) plus a sha256 of the content
  of every file that differs from the index or is untracked (cached by stat, so an
  unchanged dirty file is hashed once); ``.director/`` is left out;
* the job worktree: the same status, reduced to what the engine never changes while
  agents run — its worktree-vs-index state, its index file, its HEAD and ``.git`` link —
  plus whether the job branch still points where the engine last put it. Merges move
  only the branch ref (``git merge-tree`` + ``update-ref``, under the engine's merge
  lock, which every fingerprint also takes), so an agent is never blamed for a merge.

Attribution. A fingerprint is taken whenever a window opens or closes, so between two
consecutive fingerprints the set of open windows is constant: a change found by one is
attributed to exactly the executors whose windows were open since the previous one.

Policy (what happens when something changed):

* **One executor running** — its attempt fails with the gate check ``outside_worktree``,
  the message names the paths, and it counts as an attempt.
* **Several executors running** — the change cannot be pinned on one of them, and code
  that writes outside its worktree must not be merged: every one of them is rejected
  (each message names all of them), but *none* is charged an attempt, and each runs its
  next window alone (no other executor starts while it runs), so a repeat is attributed
  exactly and charged then. An honest neighbour loses a little time, never an attempt.
* **No executor running** (the user edited their checkout, or committed onto the job
  branch, between windows) — nobody is blamed; the new state becomes the baseline.
* Every message ends with a hint: the user may be editing their own checkout during a
  long run; if they changed those files themselves the blame is wrong, and ``r`` /
  ``director retry <node>`` gives a node that ended failed fresh attempts.
* Nothing in the user's checkout is ever reverted or deleted. The job worktree is
  director's own: when it changed, it is cleaned back to the job branch head (``reset
  --hard`` + ``clean -fd``, or re-created when its ``.git`` link is broken) before the
  next merge, and a job branch an agent moved is put back (its commit stays reachable,
  named in the notice); a move while no executor ran is kept and built on.

Also watched: the few files outside any worktree that steer director or git —
``.director/plan.json``, ``plan_stage.json``, ``config.toml``, ``profiles/``, ``worktree-root`` and the
shared git dir's ``config``, ``hooks/``, ``info/``, ``HEAD``, ``shallow`` and the stash's
reflog — and every ref outside director's ``refs/heads/director/`` (the user's branches
and tags, ``refs/stash``, ``refs/replace/*``; ``guarded_files``). A change to them while
an executor ran fails the attempt like the rest, and is undone (a file's agent version
kept beside as ``*.director-rejected``, a ref put back by compare-and-swap): a rewritten
test command, a planted hook, a ``git replace`` or an agent's ``git stash`` must not
outlive the attempt.

Not covered here: another node's worktree (while both agents run, a write there looks
like that node's own work — ``sibling_watch`` attributes it from the agents' tool calls,
and the merge queue merges only the commit a node's gate judged), the rest of ``.director/`` (runtime state director
rewrites itself), files git ignores in the user's checkout (build output, caches and the
user's own tools rewrite them all the time: watching them would blame agents for the
user's editor) and anything outside the repository.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from director_tui.engine import git, guarded_files, jobs
from director_tui.engine.errors import DirectorError
from director_tui.engine.store import Store

CHECK = "outside_worktree"
# Files above this size are fingerprinted by their stat (size, mtime, ctime) instead of
# their bytes: a user's multi-gigabyte untracked dataset must not cost seconds per call.
HASH_LIMIT_BYTES = 64 * 1024 * 1024
SHOWN_PATHS = 12
DIRECTOR_DIR = ".director"
HEAD_KEY = "HEAD (branch/commit)"
INDEX_KEY = "index (git add/commit)"
LINK_KEY = ".git link"
JOB_BRANCH_KEY = "job branch"
_STATUS = [
    "status",
    "--porcelain=v2",
    "--branch",
    "--no-ahead-behind",
    "-z",
    "--untracked-files=all",
    "--ignored=no",
]
# Never take index.lock (no opportunistic index refresh): the user's own `git commit`
# must not fail because we looked at their checkout at that moment.
_NO_LOCKS = {"GIT_OPTIONAL_LOCKS": "0"}


@dataclass(frozen=True)
class Fingerprint:
    checkout: Mapping[str, str]
    job: Mapping[str, str]
    job_branch_oid: str | None  # where the job branch points (None: unreadable)
    # director's contract files and the shared git dir's config and hooks (guarded_files);
    # their digests are also in ``checkout``
    guarded: guarded_files.Snapshot = field(default_factory=dict)
    # the repository's refs outside director's namespace; also in ``checkout``
    refs: guarded_files.RefSnapshot = field(default_factory=dict)

    def touches_guarded(self, later: Fingerprint, changes: Changes) -> bool:
        """Did ``changes`` (between this and ``later``) reach a guarded file or ref?"""
        return any(
            k in self.guarded or k in later.guarded or k.endswith(guarded_files.REF_SUFFIX)
            for k in changes.checkout
        )


@dataclass(frozen=True)
class Changes:
    checkout: list[str]
    job: list[str]

    def __bool__(self) -> bool:
        return bool(self.checkout or self.job)


@dataclass(frozen=True)
class Incident:
    changes: Changes
    suspects: tuple[str, ...]  # node ids whose windows were open

    @property
    def ambiguous(self) -> bool:
        return len(self.suspects) > 1


def compare(before: Fingerprint, after: Fingerprint) -> Changes:
    def changed(a: Mapping[str, str], b: Mapping[str, str]) -> list[str]:
        return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))

    return Changes(changed(before.checkout, after.checkout), changed(before.job, after.job))


class Fingerprinter:
    """Takes fingerprints of one repository's checkout and job worktree (blocking git)."""

    def __init__(
        self, repo: Path, job_worktree: Path, job_branch: str, director_root: Path | None = None
    ) -> None:
        self.repo = repo
        self.job_worktree = job_worktree
        self.job_branch = job_branch
        self.guarded = guarded_files.GuardedFiles(repo, director_root or repo / DIRECTOR_DIR)
        self.refs = guarded_files.GuardedRefs(repo)
        self._digests: dict[tuple[str, int, int, int, int], str] = {}
        # The git calls run side by side: a fingerprint costs the slowest one.
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fingerprint")

    def take(self, expected_job_head: str) -> Fingerprint:
        job = self._pool.submit(self._job, expected_job_head)
        refs = self._pool.submit(self.refs.snapshot)
        checkout = self._checkout()
        guarded = self.guarded.snapshot()
        checkout.update(guarded_files.digests(guarded))
        checkout.update(guarded_files.ref_digests(refs.result()))
        job_state, oid = job.result()
        return Fingerprint(checkout, job_state, oid, guarded, refs.result())

    def restore_guarded(self, before: Fingerprint, now: Fingerprint) -> list[str]:
        """Put the guarded refs, then the guarded files, back as ``before`` had them (refs
        first: putting ``refs/stash`` back appends to its reflog, which the files then
        restore byte for byte)."""
        return self.refs.restore(before.refs, now.refs) + self.guarded.restore(
            before.guarded, now.guarded
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    # -- the user's checkout --------------------------------------------------------------
    def _checkout(self) -> dict[str, str]:
        proc = git.git(_STATUS, self.repo, check=False, env=_NO_LOCKS)
        if proc.returncode != 0:
            return {"git status": f"failed: {proc.stderr.strip()[:200]}"}
        headers, entries = _parse_status(proc.stdout)
        result = {HEAD_KEY: f"{headers.get('branch.head', '')} {headers.get('branch.oid', '')}"}
        for path, meta, worktree_differs in entries:
            if path == DIRECTOR_DIR or path.startswith(DIRECTOR_DIR + "/"):
                continue
            result[path] = meta + (" " + self._digest(self.repo / path) if worktree_differs else "")
        return result

    # -- the job worktree -----------------------------------------------------------------
    def _job(self, expected_head: str) -> tuple[dict[str, str], str | None]:
        wt = self.job_worktree
        link = wt / ".git"
        if not wt.is_dir():
            return {LINK_KEY: "the job worktree folder is gone"}, self._branch_oid()
        if link.is_symlink() or not link.is_file():
            return {LINK_KEY: "deleted or replaced"}, self._branch_oid()
        result = {LINK_KEY: _read_small(link)}
        proc = git.git(_STATUS, wt, check=False, env=_NO_LOCKS)
        if proc.returncode != 0:
            result["git status"] = f"failed: {proc.stderr.strip()[:200]}"
            return result, self._branch_oid()
        headers, entries = _parse_status(proc.stdout)
        head = headers.get("branch.head", "")
        result[HEAD_KEY] = (
            head if head == self.job_branch else f"{head} {headers.get('branch.oid')}"
        )
        oid = headers.get("branch.oid") if head == self.job_branch else self._branch_oid()
        result[JOB_BRANCH_KEY] = "director's head" if oid == expected_head else f"moved to {oid}"
        result[INDEX_KEY] = _stat_signature(_index_of(result[LINK_KEY], wt))
        for path, meta, worktree_differs in entries:
            # Index-vs-HEAD differences come from the engine's merges (they move HEAD,
            # not the index): only what differs from the index is the agent's doing.
            if worktree_differs and not path.startswith(DIRECTOR_DIR + "/"):
                result[path] = meta + " " + self._digest(wt / path)
        return result, oid

    def _branch_oid(self) -> str | None:
        proc = git.git(
            ["rev-parse", "-q", "--verify", f"refs/heads/{self.job_branch}"], self.repo, check=False
        )
        return proc.stdout.strip() or None

    # -- content ---------------------------------------------------------------------------
    def _digest(self, path: Path) -> str:
        try:
            st = path.lstat()
        except OSError:
            return "missing"
        if stat.S_ISLNK(st.st_mode):
            return "link:" + os.readlink(path)
        if stat.S_ISDIR(st.st_mode):
            return "dir"  # a nested repository: git lists it, not its files
        signature = f"stat:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
        if st.st_size > HASH_LIMIT_BYTES:
            return signature
        key = (str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        digest = self._digests.get(key)
        if digest is None:
            try:
                digest = git.sha256_file(path)
            except OSError:
                return signature
            if len(self._digests) > 10_000:
                self._digests.clear()
            self._digests[key] = digest
        return digest


def _parse_status(text: str) -> tuple[dict[str, str], list[tuple[str, str, bool]]]:
    """``git status --porcelain=v2 -z`` → (headers, [(path, metadata, worktree differs
    from the index)])."""
    headers: dict[str, str] = {}
    entries: list[tuple[str, str, bool]] = []
    fields = text.split("\0")
    i = 0
    while i < len(fields):
        record = fields[i]
        i += 1
        if not record:
            continue
        kind = record[0]
        if record.startswith("# "):
            key, _, value = record[2:].partition(" ")
            headers[key] = value
        elif kind == "1":  # 1 XY sub mH mI mW hH hI path
            parts = record.split(" ", 8)
            entries.append((parts[8], " ".join(parts[1:8]), parts[1][1] != "."))
        elif kind == "2":  # 2 XY sub mH mI mW hH hI Xscore path \0 origPath
            parts = record.split(" ", 9)
            origin = fields[i] if i < len(fields) else ""
            i += 1
            entries.append((parts[9], " ".join(parts[1:9]) + " from " + origin, parts[1][1] != "."))
        elif kind == "u":  # u XY sub m1 m2 m3 mW h1 h2 h3 path
            parts = record.split(" ", 10)
            entries.append((parts[10], " ".join(parts[1:10]), True))
        elif kind in "?!":
            entries.append((record[2:], kind, True))
    return headers, entries


def _index_of(link_text: str, worktree: Path) -> Path:
    """A linked worktree's index: ``<its admin folder>/index``, the admin folder read from
    its ``.git`` file (no git call)."""
    admin = Path(link_text.strip().removeprefix("gitdir:").strip())
    return (admin if admin.is_absolute() else worktree / admin) / "index"


def _stat_signature(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def _read_small(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[:1000]
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


# -- who was running --------------------------------------------------------------------------
@dataclass
class Ledger:
    """The open watched windows and the incidents each has collected."""

    open: dict[str, list[Incident]] = field(default_factory=dict)

    def begin(self, node_id: str) -> None:
        self.open[node_id] = []

    def end(self, node_id: str) -> list[Incident]:
        return self.open.pop(node_id, [])

    def is_open(self, node_id: str) -> bool:
        return node_id in self.open

    def running(self) -> tuple[str, ...]:
        return tuple(sorted(self.open))

    def record(self, changes: Changes) -> Incident | None:
        """Attribute ``changes`` to every open window; None when none is open."""
        if not self.open:
            return None
        incident = Incident(changes, self.running())
        for incidents in self.open.values():
            incidents.append(incident)
        return incident


class WindowGate:
    """Admission to watched windows: shared normally, exclusive for a node whose last
    incident was ambiguous (it runs alone, so a repeat is attributed exactly). Exclusive
    waiters go first, so they are never starved by a stream of shared ones."""

    def __init__(self) -> None:
        self._shared = 0
        self._exclusive = False
        self._exclusive_waiting = 0
        self._changed = asyncio.Event()

    async def acquire(self, exclusive: bool) -> None:
        if exclusive:
            self._exclusive_waiting += 1
        acquired = False
        try:
            while True:
                if not self._exclusive:
                    if exclusive and self._shared == 0:
                        self._exclusive = acquired = True
                        return
                    if not exclusive and self._exclusive_waiting == 0:
                        self._shared += 1
                        acquired = True
                        return
                self._changed.clear()
                await self._changed.wait()
        finally:
            if exclusive:
                self._exclusive_waiting -= 1
                if not acquired:
                    self._changed.set()  # shared waiters held back by us may go now

    def release(self, exclusive: bool) -> None:
        if exclusive:
            self._exclusive = False
        else:
            self._shared -= 1
        self._changed.set()


# -- what the user and the agent are told -------------------------------------------------------
def _listed(paths: list[str]) -> str:
    shown = ", ".join(paths[:SHOWN_PATHS])
    more = len(paths) - SHOWN_PATHS
    return shown + (f" (+{more} more)" if more > 0 else "")


def describe(node_id: str, incidents: list[Incident], repo: Path, job_worktree: Path) -> str:
    """The gate message of a node rejected for changes outside its worktree."""
    checkout: list[str] = []
    job: list[str] = []
    suspects: set[str] = set()
    for incident in incidents:
        checkout += [p for p in incident.changes.checkout if p not in checkout]
        job += [p for p in incident.changes.job if p not in job]
        suspects.update(incident.suspects)
    where = []
    if checkout:
        where.append(f"your checkout {repo}: {_listed(checkout)}")
    if job:
        where.append(f"the job worktree {job_worktree}: {_listed(job)}")
    text = "files changed outside the node's worktree while it ran — " + "; ".join(where)
    others = sorted(suspects - {node_id})
    if others:
        text += (
            f". Executors running at the time: {', '.join(sorted(suspects))} — which one did "
            "it cannot be told; each is rejected without losing an attempt and retried alone"
        )
    if job:
        text += ". The job worktree was cleaned back to the job branch head"
    return (
        text + f". If you changed these yourself, the blame is wrong: press r / run "
        f"`director retry {node_id}` if the node ends failed"
    )


def agent_feedback(incidents: list[Incident]) -> str:
    """What the node's next attempt is told (the user's hint is not for the agent)."""
    paths = [p for i in incidents for p in [*i.changes.checkout, *i.changes.job]]
    ambiguous = any(i.ambiguous for i in incidents)
    return (
        "Files outside your working directory changed while you worked: "
        + _listed(list(dict.fromkeys(paths)))
        + (" (another agent ran at the same time; it may not have been you)" if ambiguous else "")
        + ". Work only inside your current directory: never cd out of it, never write to "
        "absolute paths or parent folders, never run git in other folders."
    )


# -- putting director's own worktree back ------------------------------------------------------
def refresh_job_index(job_worktree: Path) -> None:
    """Refresh the job worktree's index stat data (it is director's own). Fingerprints
    never write an index, so entries left racily clean by a fresh checkout would make
    every later ``git status`` there re-read those files."""
    if (job_worktree / ".git").is_file():
        git.git(["update-index", "-q", "--refresh"], job_worktree, check=False)


def restore_job_worktree(
    store: Store, job_branch: str, job_head: str, *, put_branch_back: bool
) -> list[str]:
    """Clean the job worktree back to the job branch head (it is director's own; the
    user's checkout is never touched here). With ``put_branch_back``, a job branch that
    was moved is first reset to ``job_head`` (compare-and-swap; the moved-to commit is
    named so it can be recovered). Returns what was done, for the notice."""
    done: list[str] = []
    repo = store.repo
    current = git.git(
        ["rev-parse", "-q", "--verify", f"refs/heads/{job_branch}"], repo, check=False
    ).stdout.strip()
    if put_branch_back and not current:
        # Deleted (git update-ref -d): director knows where it was; the ref must not exist.
        created = git.git(
            ["update-ref", f"refs/heads/{job_branch}", job_head, "0" * len(job_head)],
            repo,
            check=False,
        )
        if created.returncode == 0:
            done.append(f"re-created the deleted job branch at {job_head[:10]}")
    elif put_branch_back and current and current != job_head:
        swapped = git.git(
            ["update-ref", f"refs/heads/{job_branch}", job_head, current], repo, check=False
        )
        if swapped.returncode == 0:
            done.append(
                f"put the job branch back from {current[:10]} to {job_head[:10]} (the commit "
                f"it had been moved to stays reachable: {current})"
            )
    wt = jobs.job_worktree(store)
    if not wt.is_dir() or not git.worktree_intact(repo, wt):
        try:
            jobs.ensure_job_worktree(store, job_branch)
        except DirectorError as exc:
            done.append(f"could not re-create the job worktree: {exc}")
            return done
        done.append("re-created the job worktree (a broken folder is moved aside, never deleted)")
        return done
    ref = f"refs/heads/{job_branch}"
    if git.git(["symbolic-ref", "-q", "HEAD"], wt, check=False).stdout.strip() != ref:
        git.git(["symbolic-ref", "HEAD", ref], wt, check=False)
    git.git(["merge", "--abort"], wt, check=False)
    git.git(["rebase", "--abort"], wt, check=False)
    reset = git.git(["reset", "-q", "--hard", "HEAD"], wt, check=False)
    git.git(["clean", "-q", "-fd"], wt, check=False)
    refresh_job_index(wt)
    if reset.returncode == 0:
        head = git.git(["rev-parse", "--short=10", "HEAD"], wt, check=False).stdout.strip()
        done.append(f"cleaned the job worktree back to the job branch head {head}")
    else:
        done.append(f"could not clean the job worktree: {reset.stderr.strip()[:200]}")
    return done
