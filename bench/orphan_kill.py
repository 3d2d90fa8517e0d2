"""How long stopping what agents left running takes: N daemons that ignore SIGTERM, each
in its own process group, in one worktree, stopped by ``proc.kill_orphans`` (TERM to all,
one shared grace period, KILL the survivors). Before issue 17 item 6 each group had a
grace period of its own (~1 s × N).

    .venv/bin/python bench/orphan_kill.py [N ...]      # default: 10 30 100
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from director_tui.engine.proc import CREATE_TIME_SLACK_SECS, kill_orphans


def measure(n: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        worktree = Path(folder)
        started = time.time() - CREATE_TIME_SLACK_SECS
        daemons = [
            subprocess.Popen(
                ["sh", "-c", 'trap "" TERM; sleep 600'], cwd=worktree, start_new_session=True
            )
            for _ in range(n)
        ]
        time.sleep(0.5)  # let every shell install its trap
        began = time.monotonic()
        killed = kill_orphans([worktree], started_after=started)
        secs = time.monotonic() - began
        for daemon in daemons:
            daemon.wait(timeout=10)
        assert len(killed) == n, killed
        return secs


def main() -> None:
    for n in [int(a) for a in sys.argv[1:]] or [10, 30, 100]:
        print(f"{n:4d} TERM-ignoring daemons stopped in {measure(n):.2f} s")


if __name__ == "__main__":
    main()
