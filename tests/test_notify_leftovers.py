"""A ``[notify] command`` that leaves a process behind (found by outside-in QA): the
command itself ends at once, but a process it started in a session of its own kept its
output pipe open, and director waited for that process — past ``timeout_secs``, holding
``director auto`` 30 s after the job had ended — then called the command slow."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from director_tui.engine.attention import Attention
from director_tui.engine.config import Notify
from director_tui.engine.notify import run_notify_command

ITEM = Attention(
    kind="job_finished", level="finished", job_id="j", message="done", headline="finished"
)


def test_a_command_that_leaves_a_daemon_behind_returns_when_it_ends(tmp_path: Path) -> None:
    pid_file = tmp_path / "daemon.pid"
    daemon = f"setsid sh -c 'echo $$ > {pid_file}; exec sleep 30' & exit 0"
    notify = Notify(command=["sh", "-c", daemon], timeout_secs=20)
    started = time.monotonic()
    try:
        assert run_notify_command(notify, ITEM, tmp_path) == ""
        assert time.monotonic() - started < 10
    finally:
        for _ in range(50):
            if pid_file.exists() and pid_file.read_text().strip():
                break
            time.sleep(0.1)
        with contextlib.suppress(ValueError, OSError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_a_failing_commands_error_output_is_still_quoted(tmp_path: Path) -> None:
    notify = Notify(command=["sh", "-c", "echo 'no  display\nhere' >&2; exit 3"])
    assert run_notify_command(notify, ITEM, tmp_path) == "sh exited with 3: no display here"
