"""The ``.director/`` layout: the single source of truth every view reads.

File names and meanings match director-cli where both have them. Whole-file writes are
atomic (temp + fsync + rename) so a killed process leaves the old or the new content,
never a torn one; JSONL appends are flushed, and fsynced when durability matters.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import psutil
from pydantic import BaseModel, ValidationError

from director_tui.engine import worktree_home
from director_tui.engine.errors import LockHeldError, UsageError

M = TypeVar("M", bound=BaseModel)

# Everything under .director/ except the user's own config and profiles is runtime state
# and must never be committed to the user's repository.
RUNTIME_IGNORES = [
    ".director/*",
    "!.director/config.toml",
    "!.director/profiles/",
]


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def append_jsonl(path: Path, record: dict[str, Any], *, durable: bool = True) -> None:
    append_jsonl_many(path, [record], durable=durable)


def append_jsonl_many(path: Path, records: list[dict[str, Any]], *, durable: bool = True) -> None:
    """Append ``records`` in one write (and, when ``durable``, one fsync for them all)."""
    text = "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records)
    try:
        fh = path.open("a", encoding="utf-8")
    except FileNotFoundError:
        # The folder is made only when it is missing: a mkdir per append cost ~0.15 ms,
        # a dozen times per node on the run's event loop (every event is an append).
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = path.open("a", encoding="utf-8")
    with fh:
        fh.write(text)
        fh.flush()
        if durable:
            os.fsync(fh.fileno())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete record; a torn last line (killed mid-append) is skipped."""
    if not path.exists():
        return []
    records = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                records.append(value)
    return records


class Store:
    """Paths and typed reads/writes of one repository's ``.director/`` folder."""

    def __init__(
        self, repo: Path, root: Path | None = None, *, worktrees: Path | None = None
    ) -> None:
        self.repo = repo.resolve()
        # A different root gives an isolated store over the same repository: the bench
        # keeps each profile run's state, ledger and worktrees apart from the user's job.
        self.root = root.resolve() if root is not None else self.repo / ".director"
        # Given for a repository that is director's own scratch clone (a cluster worker's):
        # its worktrees go with the clone when it is removed.
        self._worktrees = worktrees
        worktree_home.remember(self.repo)

    # -- layout -------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def spec(self) -> Path:
        return self.root / "spec.md"

    @property
    def spec_generated(self) -> Path:
        """The spec as the agent wrote it, so a view can show what the human changed."""
        return self.root / "spec.generated.md"

    @property
    def spec_edited(self) -> Path:
        """The human's edited spec, kept when an agent (critic, rewrite) replaced it."""
        return self.root / "spec.edited.md"

    @property
    def recon(self) -> Path:
        return self.root / "recon.md"

    @property
    def task(self) -> Path:
        return self.root / "task.md"

    @property
    def plan_stage(self) -> Path:
        return self.root / "plan_stage.json"

    @property
    def plan(self) -> Path:
        return self.root / "plan.json"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def costs(self) -> Path:
        return self.root / "costs.jsonl"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def bench(self) -> Path:
        return self.root / "bench"

    @property
    def worktrees(self) -> Path:
        """Outside the checkout (``worktree_home``): a worktree inside it would be part of
        the user's tree for their test runners, linters and watchers."""
        if self._worktrees is not None:
            return self._worktrees
        return worktree_home.store_worktrees(self.repo, self.root)

    @property
    def legacy_worktrees(self) -> Path:
        """Where this store's worktrees lived before (``.director/worktrees``)."""
        return worktree_home.legacy_worktrees(self.root)

    @property
    def control(self) -> Path:
        return self.root / "control"

    @property
    def jobs(self) -> Path:
        return self.root / "jobs"

    @property
    def profiles(self) -> Path:
        return self.root / "profiles"

    @property
    def lock_file(self) -> Path:
        return self.root / "run.lock"

    def ensure(self) -> None:
        if self._worktrees is None and worktree_home.inside_checkout(self.repo):
            raise UsageError(
                f"director's worktree folder {self.worktrees} would be inside the "
                f"repository {self.repo}: your test runners, linters and watchers would "
                "see the job's copies of your code",
                hint=f"set {worktree_home.ROOT_ENV} to an absolute path outside the checkout",
            )
        for folder in (self.root, self.logs, self.control):
            folder.mkdir(parents=True, exist_ok=True)
        try:
            self.worktrees.mkdir(parents=True, exist_ok=True)
            if self._worktrees is None:
                worktree_home.write_markers(self.repo, self.root, self.worktrees)
        except OSError as exc:
            raise UsageError(
                f"cannot make director's worktree folder {self.worktrees}: {exc.strerror or exc}",
                hint=f"set {worktree_home.ROOT_ENV} to a writable folder outside your checkout",
            ) from exc
        self._exclude_runtime_files()

    def _exclude_runtime_files(self) -> None:
        """Keep runtime state out of ``git status`` without editing a tracked file:
        ``.git/info/exclude`` is the repository's own, untracked ignore list."""
        git_dir = self.repo / ".git"
        if git_dir.is_file():  # the repo is itself a linked worktree
            text = git_dir.read_text(encoding="utf-8").strip()
            git_dir = Path(text.removeprefix("gitdir:").strip())
            common = git_dir / "commondir"
            if common.exists():
                git_dir = (git_dir / common.read_text(encoding="utf-8").strip()).resolve()
        if not git_dir.is_dir():
            return
        exclude = git_dir / "info" / "exclude"
        existing = exclude.read_text(encoding="utf-8").splitlines() if exclude.exists() else []
        missing = [line for line in RUNTIME_IGNORES if line not in existing]
        if missing:
            exclude.parent.mkdir(parents=True, exist_ok=True)
            with exclude.open("a", encoding="utf-8") as fh:
                fh.write("\n".join(["# director runtime state", *missing]) + "\n")

    # -- typed documents ----------------------------------------------------------------
    def read_model(self, path: Path, model: type[M]) -> M | None:
        if not path.exists():
            return None
        try:
            return model.model_validate_json(path.read_bytes())
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise UsageError(
                f"{path}: not a valid {model.__name__}: {loc}: {first['msg']}",
                hint="fix or delete the file",
            ) from exc

    def write_model(self, path: Path, value: BaseModel) -> None:
        atomic_write_text(path, value.model_dump_json(indent=2) + "\n")

    # -- the one-run-per-repo lock ------------------------------------------------------
    @contextlib.contextmanager
    def run_lock(self, purpose: str = "run") -> Iterator[str | None]:
        """Hold the repository's run lock; yields a note if a stale lock was taken over.

        ``flock`` is released by the kernel when its holder dies, so a lock left by a
        killed process is free again: the pid written inside tells us whom we replaced.
        """
        self.ensure()
        fh: IO[str] = self.lock_file.open("a+", encoding="utf-8")
        try:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise busy_error(self.repo, _read_holder_record(self.lock_file)) from None
            note = None
            previous = _read_holder_record(self.lock_file)
            if previous and previous.get("pid") != os.getpid():
                note = (
                    f"took over a stale lock left by pid {previous.get('pid')} "
                    f"({previous.get('purpose', '?')}, started {previous.get('started', '?')})"
                )
            fh.seek(0)
            fh.truncate()
            fh.write(
                json.dumps(
                    {
                        "pid": os.getpid(),
                        "create_time": psutil.Process().create_time(),
                        "purpose": purpose,
                        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    }
                )
            )
            fh.flush()
            try:
                yield note
            finally:
                fh.seek(0)
                fh.truncate()
                fh.flush()
        finally:
            fh.close()

    def check_free(self) -> None:
        """Raise :class:`LockHeldError` (exit 4) when another process holds the run lock.

        Commands call it first: a run or a new plan started while a `plan` holds the
        lock must say "busy", not fail a later check (no approved plan yet, a job that
        looks unfinished) with advice that does not apply."""
        holder = self.lock_holder()
        if holder is not None:
            raise busy_error(self.repo, holder)

    def lock_holder(self) -> dict[str, Any] | None:
        """Who holds the run lock right now, or None when nobody does."""
        if not self.lock_file.exists():
            return None
        with self.lock_file.open("a+", encoding="utf-8") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read_holder_record(self.lock_file) or {"pid": None}
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            return None


def _read_holder_record(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8") or "null")
    except (OSError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


# What to do about the lock, by what its holder is doing.
_BUSY_HINTS = {
    "run": "wait for it, attach with `director tui`, or stop it with `director cancel`",
    "plan": "wait for the planning to reach its gate (`director status` shows where it is), "
    "or stop it with Ctrl-C in its shell; `director plan --continue` picks it up again",
    "bench": "wait for the bench to finish, or stop it with Ctrl-C in its shell",
    "control": "a control request is being written: try again in a moment",
}


def busy_error(repo: Path, record: dict[str, Any] | None) -> LockHeldError:
    """The exit-4 error for a lock held by ``record``'s process, with advice for what it does."""
    purpose = str((record or {}).get("purpose") or "run")
    holder = (
        f"pid {record.get('pid')}, {purpose} since {record.get('started')}"
        if record and record.get("pid")
        else "pid unknown"
    )
    return LockHeldError(
        f"another director process is already working on {repo} ({holder})",
        hint=_BUSY_HINTS.get(purpose, _BUSY_HINTS["run"]),
    )
