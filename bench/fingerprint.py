"""What one outside-the-worktree fingerprint costs (engine/sandbox_watch.py).

A repository of ``--files`` committed files in nested folders, a job worktree beside it,
and a user in the middle of their work (a few modified and untracked files, one of them
large). Times ``Fingerprinter.take`` — the engine takes one when each watched window
opens and one when it closes — and prints the median and p90.

    .venv/bin/python bench/fingerprint.py [--files 2000] [--repeats 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from director_tui.engine import jobs, sandbox_watch
from director_tui.engine.sandbox_watch import Fingerprinter
from director_tui.engine.store import Store


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def build(root: Path, n_files: int) -> tuple[Store, str]:
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "b@localhost")
    git(repo, "config", "user.name", "b")
    for i in range(n_files):
        path = repo / f"pkg{i % 40}" / f"sub{i % 7}" / f"mod_{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"VALUE_{i} = {i}\n" * 20)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "init")
    store = Store(repo)
    store.ensure()
    branch = "director/job-bench"
    git(repo, "branch", branch)
    jobs.ensure_job_worktree(store, branch)
    # The user's own work in progress.
    for i in range(0, 50, 10):
        (repo / f"pkg{i % 40}" / f"sub{i % 7}" / f"mod_{i}.py").write_text("edited\n")
    for i in range(5):
        (repo / f"scratch_{i}.txt").write_text("notes\n" * 100)
    (repo / "dataset.bin").write_bytes(os.urandom(8 * 1024 * 1024))
    # As in a checkout the user has worked in: its index stat data is fresh (just after
    # `git commit` every file is racily clean, which no real checkout stays for long).
    time.sleep(1.1)
    git(repo, "status")
    sandbox_watch.refresh_job_index(jobs.job_worktree(store))
    return store, git(repo, "rev-parse", branch)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="director-bench-fp-") as tmp:
        store, head = build(Path(tmp), args.files)
        printer = Fingerprinter(store.repo, jobs.job_worktree(store), "director/job-bench")
        started = time.perf_counter()
        first = printer.take(head)
        cold = time.perf_counter() - started
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            again = printer.take(head)
            times.append(time.perf_counter() - started)
            assert again == first, "nothing changed: the fingerprint must not either"
    times.sort()
    print(f"repo: {args.files} files, 5 modified + 6 untracked (one of 8 MiB)")
    print(f"first fingerprint (hashes the dirty files): {cold * 1000:.1f} ms")
    print(f"median fingerprint: {statistics.median(times) * 1000:.1f} ms")
    print(f"  p90: {times[int(0.9 * (len(times) - 1))] * 1000:.1f} ms")
    print(
        f"machine load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
