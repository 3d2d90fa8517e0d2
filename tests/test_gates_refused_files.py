"""A file outside a node's allowlist is never staged: its blob never reaches the user's
object store (a 300 MB file an executor left used to grow ``.git`` by 300 MB per
attempt), yet the allowlist gate still rejects the attempt and names it."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from director_tui.engine import gates
from director_tui.engine.events import GateResult
from director_tui.engine.models import Node
from tests.conftest import make_repo, run_git
from tests.run_fixture import Recorder, build_job, job_file, run, sample_nodes, solve, write_script

PY = sys.executable
BIG_BYTES = 20_000_000


def _in_object_store(repo: Path, file: Path) -> bool:
    """Is ``file``'s blob in the repository? (hashed without ``-w``: asking writes nothing)"""
    blob = run_git(repo, "hash-object", "--", str(file))
    probe = subprocess.run(["git", "cat-file", "-e", blob], cwd=repo, check=False)
    return probe.returncode == 0


def _reachable_objects(repo: Path) -> set[str]:
    listing = run_git(repo, "rev-list", "--objects", "--all", "--reflog")
    return {line.split(" ", 1)[0] for line in listing.splitlines()}


def _node(repo: Path) -> Node:
    test = "tests/check_a.py"
    return Node(
        id="a",
        files=["src/a.py"],
        tests=[test],
        test_cmd=f"{PY} -c 'import sys; sys.path.insert(0, \".\"); import tests.check_a'",
        test_hashes={test: hashlib.sha256((repo / test).read_bytes()).hexdigest()},
    )


async def test_refused_files_are_named_and_never_hashed_into_the_repository(
    tmp_path: Path,
) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {
            "src/a.py": "A = 0\n",
            "src/__init__.py": "",
            "notes.md": "keep\n",
            "tests/check_a.py": "from src.a import A\nassert A == 1\n",
        },
    )
    base = run_git(repo, "rev-parse", "HEAD")
    worktree = tmp_path / "wt-a"
    run_git(repo, "worktree", "add", "-q", "-b", "job--a", str(worktree), base)
    (worktree / "src/a.py").write_text("A = 1\n")  # the allowed part of the work
    big = worktree / "data/dump.bin"
    big.parent.mkdir()
    with big.open("wb") as sparse:  # 20 MB on disk, never in memory
        sparse.truncate(BIG_BYTES)
    # One refused file the agent staged itself: its blob exists, but no commit may keep it.
    (worktree / "notes.md").write_text("rewritten by the agent\n")
    run_git(worktree, "add", "notes.md")
    staged_blob = run_git(worktree, "rev-parse", ":notes.md")
    (worktree / "gone.txt").write_text("")  # untracked and refused, small

    outcome = await gates.node_gate(
        _node(repo),
        worktree,
        base,
        ignore_globs=[],
        flake_runs=1,
        timeout=30,
        commit_message="node a",
        branch="job--a",
    )

    assert not outcome.passed and outcome.check == "allowlist", outcome
    assert "data/dump.bin (20.0 MB)" in outcome.message, outcome.message
    # Small files are named without a size.
    assert "notes.md, " in outcome.message and "gone.txt (allowed: " in outcome.message
    assert {"src/a.py", "data/dump.bin", "notes.md", "gone.txt"} <= set(outcome.changed_files)
    assert not _in_object_store(repo, big)
    # The attempt's commit holds the allowed file only; the refused files stay on disk.
    committed = run_git(repo, "show", "--name-only", "--format=", "job--a").split()
    assert committed == ["src/a.py"]
    assert staged_blob not in _reachable_objects(repo)
    assert big.stat().st_size == BIG_BYTES
    assert (worktree / "notes.md").read_text() == "rewritten by the agent\n"


async def test_a_refused_edit_hidden_by_skip_worktree_is_never_hashed_either(
    tmp_path: Path,
) -> None:
    """The gate lists the paths that differ from the base while it clears the index's
    marks: a diff taken while ``notes.md`` was skip-worktree does not see its edit, so
    the paths are listed again once the mark is gone — else ``add -A`` would hash it."""
    repo = make_repo(
        tmp_path / "repo",
        {
            "src/a.py": "A = 0\n",
            "src/__init__.py": "",
            "notes.md": "keep\n",
            "tests/check_a.py": "from src.a import A\nassert A == 1\n",
        },
    )
    base = run_git(repo, "rev-parse", "HEAD")
    worktree = tmp_path / "wt-a"
    run_git(repo, "worktree", "add", "-q", "-b", "job--a", str(worktree), base)
    (worktree / "src/a.py").write_text("A = 1\n")
    run_git(worktree, "update-index", "--skip-worktree", "notes.md")
    (worktree / "notes.md").write_text("rewritten behind a skip-worktree mark\n")

    outcome = await gates.node_gate(
        _node(repo),
        worktree,
        base,
        ignore_globs=[],
        flake_runs=1,
        timeout=30,
        commit_message="node a",
        branch="job--a",
    )

    assert not outcome.passed and outcome.check == "allowlist", outcome
    assert "notes.md" in outcome.message, outcome.message
    assert not _in_object_store(repo, worktree / "notes.md")
    committed = run_git(repo, "show", "--name-only", "--format=", "job--a").split()
    assert committed == ["src/a.py"]


def test_an_executor_leaving_a_large_file_fails_the_allowlist_without_growing_git(
    tmp_path: Path,
) -> None:
    nodes = sample_nodes()[:1]
    store = build_job(tmp_path, nodes)
    add = nodes[0]
    # Random bytes (a blob of them does not compress away), made outside the repository.
    # (in the shared git dir, where a sandboxed command can read it, unlike tmp_path)
    original = store.repo / ".git" / "dump.bin"
    subprocess.run(f"head -c {BIG_BYTES} /dev/urandom > {original}", shell=True, check=True)
    first = solve(add, attempt=1)
    first["steps"] = [*first["steps"], {"run": f"cp {original} data-dump.bin"}]
    write_script(store, [first, solve(add)])
    store_before = _object_store_kib(store.repo)
    rec = Recorder()

    outcome = run(store, rec)

    assert outcome.success, outcome.message  # attempt 2 left nothing extra and merged
    [refused] = [g for g in rec.of(GateResult) if g.attempt == 1]
    assert not refused.passed and refused.check == "allowlist"
    assert "data-dump.bin (20.0 MB)" in refused.message, refused.message
    assert job_file(store, add.impl_path) == add.solution
    assert not _in_object_store(store.repo, original)
    grown_kib = _object_store_kib(store.repo) - store_before
    assert grown_kib < BIG_BYTES // 1024 // 10, f"the object store grew by {grown_kib} KiB"


def _object_store_kib(repo: Path) -> int:
    counts = dict(line.split(": ", 1) for line in run_git(repo, "count-objects", "-v").splitlines())
    return int(counts["size"]) + int(counts["size-pack"])
