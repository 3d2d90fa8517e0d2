"""Store: atomic writes survive kill -9, JSONL appends, the one-run-per-repo lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from director_tui.engine.errors import LockHeldError
from director_tui.engine.store import (
    Store,
    append_jsonl,
    append_jsonl_many,
    atomic_write_text,
    read_jsonl,
)

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from director_tui.engine.store import atomic_write_text
    path = Path(sys.argv[1])
    i = 0
    print("ready", flush=True)
    while True:
        i += 1
        # big enough that a non-atomic write would be caught half-way
        atomic_write_text(path, (str(i % 10) * 2_000_000) + "\\nEND\\n")
    """
)


def test_atomic_write_survives_a_process_killed_mid_write(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    old = "OLD" * 1000 + "\nEND\n"
    atomic_write_text(target, old)
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.15)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        content = target.read_text()
        assert content.endswith("\nEND\n"), "torn write"
        body = content[: -len("\nEND\n")]
        assert body == old[: -len("\nEND\n")] or len(set(body)) == 1
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    # a killed writer may leave its temp file, never a broken target
    assert all(p.name.startswith(".state.json.") for p in leftovers)


def test_jsonl_skips_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    append_jsonl(path, {"a": 1})
    append_jsonl(path, {"b": 2}, durable=False)
    with path.open("a") as fh:
        fh.write('{"c": ')  # what a kill mid-append leaves
    assert read_jsonl(path) == [{"a": 1}, {"b": 2}]


def test_jsonl_appends_make_a_missing_folder_and_keep_order(tmp_path: Path) -> None:
    """The folder is made only when the append finds it missing (deleted under a run
    too); a batch lands in one piece, after what was there."""
    path = tmp_path / "gone" / "metrics.jsonl"
    append_jsonl(path, {"a": 1})
    (tmp_path / "gone" / "metrics.jsonl").unlink()
    (tmp_path / "gone").rmdir()
    append_jsonl(path, {"b": 2})
    append_jsonl_many(path, [{"c": 3}, {"d": 4}])
    assert read_jsonl(path) == [{"b": 2}, {"c": 3}, {"d": 4}]


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from director_tui.engine.store import Store
    with Store(Path(sys.argv[1])).run_lock("run"):
        print("locked", flush=True)
        time.sleep(60)
    """
)


def _hold_lock(repo: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(repo)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_process_is_refused_with_the_holder_named(git_repo: Path) -> None:
    holder = _hold_lock(git_repo)
    try:
        store = Store(git_repo)
        with pytest.raises(LockHeldError) as info, store.run_lock("run"):
            pass
        assert f"pid {holder.pid}" in str(info.value)
        assert info.value.exit_code == 4
        assert store.lock_holder() is not None and store.lock_holder()["pid"] == holder.pid  # type: ignore[index]
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_of_a_killed_process_is_taken_over(git_repo: Path) -> None:
    holder = _hold_lock(git_repo)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    store = Store(git_repo)
    assert store.lock_holder() is None
    with store.run_lock("run") as note:
        assert note is not None and f"pid {holder.pid}" in note
        holder_now = store.lock_holder()
        assert holder_now is not None and holder_now["pid"] == os.getpid()
    with store.run_lock("run") as note:
        assert note is None  # a clean release leaves nothing stale
