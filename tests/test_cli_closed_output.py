"""A reader that goes away (`director doctor | head -1`, a pager quit) is no error of
director's (found by outside-in QA): the commands that print plainly died with a
BrokenPipeError traceback on stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.run_fixture import build_job, sample_nodes


def _with_closed_stdout(*args: str) -> subprocess.CompletedProcess[str]:
    read, write = os.pipe()
    os.close(read)  # nobody reads: the first write fails with EPIPE
    try:
        return subprocess.run(
            [sys.executable, "-m", "director_tui", *args],
            stdout=write,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)


def test_commands_whose_reader_went_away_end_quietly(tmp_path: Path) -> None:
    store = build_job(tmp_path, sample_nodes()[:1])
    for args in (["doctor"], ["log", "add"], ["review", "add", "--json"], ["status"]):
        done = _with_closed_stdout(*args, "--repo", str(store.repo))
        assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, (
            args,
            done.stderr,
        )
        # 141 (SIGPIPE's) from a plain print; rich's console ends such output with 1.
        assert done.returncode in (1, 141), (args, done.returncode, done.stderr)
