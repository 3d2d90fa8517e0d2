"""Where a bench lives and what its things are called: ids, branches, folders, files;
which profile names can be used (they become part of branch and folder names)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from director_tui.engine.errors import UsageError
from director_tui.engine.store import (
    Store,
)

# A profile name becomes part of a git branch name and a folder name.
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def new_bench_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]


def bench_branch(bench_id: str, profile: str, repeat: int) -> str:
    return f"director/bench-{bench_id}-{profile}-{repeat}"


def run_job_id(bench_id: str, profile: str, repeat: int) -> str:
    """The job id of one run: it names the run's node branches."""
    return f"bench-{bench_id}-{profile}-{repeat}"


def bench_dir(store: Store, bench_id: str) -> Path:
    return store.bench / bench_id


def plan_root(store: Store, bench_id: str) -> Path:
    return bench_dir(store, bench_id) / "plan"


def run_root(store: Store, bench_id: str, profile: str, repeat: int) -> Path:
    return bench_dir(store, bench_id) / "runs" / f"{profile}-{repeat}"


def events_path(store: Store) -> Path:
    """Where every bench's ``BenchProgress`` events go: the file a live view watches."""
    return store.bench / "events.jsonl"


def history_path(store: Store) -> Path:
    return store.bench / "history.jsonl"


def check_profile_names(profiles: Sequence[str]) -> list[str]:
    names = [p.strip() for p in profiles if p.strip()]
    if not names:
        raise UsageError("name at least one profile", hint="--profiles all-frontier,cheap-cloud")
    for name in names:
        # git refuses "..", a trailing "." and ".lock" in a ref name
        if not _PROFILE_NAME.match(name) or ".." in name or name.endswith((".", ".lock")):
            raise UsageError(
                f"{name!r} is not a usable profile name",
                hint="letters, digits, '.', '_' and '-' (it becomes part of a branch name)",
            )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(f"profile named twice: {', '.join(duplicates)}", hint="use --repeat N")
    return names
