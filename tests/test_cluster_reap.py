"""A worker's reap of a cancelled attempt's folder (``cluster.worker.reap``), with no Ray:
the force-cancelled task's process dies when Ray gets to it, seconds later on a loaded
machine, and can write into the folder until then."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from director_tui.engine.cluster.worker import reap


def test_a_folder_the_cancelled_task_keeps_writing_into_is_gone_once_reap_returns(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "attempts" / "add--1--token"
    folder.mkdir(parents=True)
    stop = threading.Event()

    def still_writing() -> None:  # the cancelled task, until Ray kills it 2 s later
        ends = time.monotonic() + 2.0
        while time.monotonic() < ends and not stop.is_set():
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "progress.txt").write_text("still here\n")
            time.sleep(0.3)

    writer = threading.Thread(target=still_writing)
    writer.start()
    try:
        reap(folder)
        returned_while_writing = writer.is_alive()
    finally:
        writer.join()
    assert not returned_while_writing
    assert not folder.exists()


def test_reaping_a_folder_that_is_gone_returns_at_once_when_it_stays_gone(
    tmp_path: Path,
) -> None:
    began = time.monotonic()
    assert reap(tmp_path / "never-made") == []
    assert time.monotonic() - began < 5
