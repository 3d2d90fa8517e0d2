"""proc.run_command under cancellation (Ctrl-C on a run cancels the tests it runs)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from director_tui.engine import proc as proc_module
from director_tui.engine.proc import CREATE_TIME_SLACK_SECS, kill_orphans, run_command, wait_dead


def test_cancelled_command_is_killed_and_leaves_no_unretrieved_exception(tmp_path: Path) -> None:
    """Regression: cancelling the gather under wait_for left a '_GatheringFuture exception
    was never retrieved' traceback on stderr for every command running at Ctrl-C."""
    reported: list[dict[str, Any]] = []
    pid_file = tmp_path / "pid"
    script = (
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    )

    async def main() -> int:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, c: reported.append(c))
        task = asyncio.create_task(
            run_command(f"{sys.executable} -c {script!r}", tmp_path, timeout=30)
        )
        while not pid_file.exists() or not pid_file.read_text():
            await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        gc.collect()  # an unretrieved exception is reported when its future is collected
        await asyncio.sleep(0.05)
        return int(pid_file.read_text())

    pid = asyncio.run(main())
    assert reported == []
    assert _gone(pid)


def _gone(pid: int) -> bool:
    """Not running: no such process, or a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def test_kill_tree_still_kills_after_the_loops_executor_shut_down() -> None:
    """A kill shielded from Ctrl-C can run after asyncio.run shut its thread pool down:
    it must stop the agent anyway, not die with 'Executor shutdown has been called'."""
    from director_tui.engine.agents.stream import kill_tree

    proc = subprocess.Popen(["sleep", "100"], start_new_session=True)
    await asyncio.get_running_loop().shutdown_default_executor()
    await kill_tree(proc.pid, 0.5)
    assert proc.wait(timeout=5) == -signal.SIGTERM


def test_an_agent_cli_dies_with_director_after_kill_9(tmp_path: Path) -> None:
    """kill -9 of director must not leave its agent calling the model with no watchdog."""
    parent = tmp_path / "parent.py"
    parent.write_text(
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from director_tui.engine.agents.stream import run_streaming\n"
        "d = Path(sys.argv[1])\n"
        "asyncio.run(run_streaming(['sleep', '100'], cwd=d, env={'PATH': '/usr/bin:/bin'},\n"
        "    transcript_path=d / 't.jsonl', stderr_path=d / 'e.txt', timeout_secs=60,\n"
        "    idle_timeout_secs=60, on_line=lambda line, dropped: None))\n"
    )
    director = subprocess.Popen([sys.executable, str(parent), str(tmp_path)])
    try:
        agent = None
        for _ in range(100):
            children = psutil.Process(director.pid).children()
            if children:
                agent = children[0]
                break
            time.sleep(0.05)
        assert agent is not None, "the agent never started"
        director.kill()
        director.wait(5)
        agent.wait(5)  # psutil.TimeoutExpired if it outlived director (not our child: no code)
    finally:
        if director.poll() is None:
            director.kill()


# A daemon an agent left behind that ignores SIGTERM; on TERM it writes how many of its
# siblings (pids listed in argv[2]) are still alive then.
TERM_IGNORING_DAEMON = """
import os, pathlib, signal, sys, time
log, pids = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])

def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False

def on_term(*_):
    others = [int(p) for p in pids.read_text().split()]
    with open(log, "a") as out:
        out.write(f"{os.getpid()} {sum(alive(p) for p in others)}\\n")

signal.signal(signal.SIGTERM, on_term)
with open(sys.argv[3], "a") as ready:
    ready.write("ready\\n")
while True:
    time.sleep(1)
"""


def test_orphan_daemons_get_term_together_then_kill_after_one_grace(tmp_path: Path) -> None:
    """Issue 17 item 6: 30 daemons that ignore TERM, each in its own process group, in a
    node worktree. Every one gets its TERM while all 30 still live (one shared grace,
    not one per group, which took ~1 s each), and all are gone afterwards."""
    worktree = tmp_path / "worktree"
    worktree.mkdir()
    log, pids, ready = tmp_path / "term.log", tmp_path / "pids", tmp_path / "ready"
    started = time.time() - CREATE_TIME_SLACK_SECS
    daemons = [
        subprocess.Popen(
            [sys.executable, "-c", TERM_IGNORING_DAEMON, str(log), str(pids), str(ready)],
            cwd=worktree,
            start_new_session=True,
        )
        for _ in range(30)
    ]
    try:
        pids.write_text(" ".join(str(d.pid) for d in daemons))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
            not ready.exists() or len(ready.read_text().split()) < len(daemons)
        ):
            time.sleep(0.05)
        killed = kill_orphans([worktree], started_after=started)
        assert len(killed) == 30 and all(k.startswith("process group") for k in killed)
        for daemon in daemons:
            daemon.wait(timeout=10)
        lines = log.read_text().split("\n")[:-1]
        assert sorted(int(line.split()[0]) for line in lines) == sorted(d.pid for d in daemons)
        assert {int(line.split()[1]) for line in lines} == {30}
    finally:
        for daemon in daemons:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(timeout=10)


# Our child forks a grandchild in a session of its own (a stray outside the group) that
# exits at once; the child never reaps it, so it stays a zombie that is not ours to reap.
ZOMBIE_PARENT = """
import os, sys, time
pid = os.fork()
if pid == 0:
    os.setsid()
    os._exit(0)
print(pid, flush=True)
time.sleep(100)
"""


def _zombie_grandchild() -> tuple[subprocess.Popen[str], psutil.Process]:
    parent = subprocess.Popen(
        [sys.executable, "-c", ZOMBIE_PARENT],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert parent.stdout is not None
    zombie = psutil.Process(int(parent.stdout.readline()))
    deadline = time.monotonic() + 10
    while zombie.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.02)
    assert zombie.status() == psutil.STATUS_ZOMBIE
    return parent, zombie


def test_wait_dead_counts_a_zombie_nobody_reaps_as_dead() -> None:
    """psutil.wait_procs waits its whole timeout for a zombie that is not our child (its
    reaping is up to its parent or init): stopping a server paid a second for it."""
    parent, zombie = _zombie_grandchild()
    try:
        began = time.monotonic()
        assert wait_dead([zombie], 5.0) == []
        assert time.monotonic() - began < 2.5
        sleeper = psutil.Process(parent.pid)
        began = time.monotonic()
        assert wait_dead([sleeper], 0.3) == [sleeper]  # a live one is waited for, then named
        assert time.monotonic() - began >= 0.3
    finally:
        parent.kill()
        parent.wait()


async def test_kill_tree_does_not_wait_for_a_stray_zombie() -> None:
    """A stray of the tree (out of its group) that is already a zombie: the tree is
    killed without waiting for someone to reap it (the parent is reaped by asyncio, as
    a server's is)."""
    from director_tui.engine.agents.stream import kill_tree

    parent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        ZOMBIE_PARENT,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert parent.stdout is not None
    zombie = psutil.Process(int(await parent.stdout.readline()))
    deadline = time.monotonic() + 10
    while zombie.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    began = time.monotonic()
    await kill_tree(parent.pid, 2.0)
    assert time.monotonic() - began < 0.9  # it waited 1 s for the zombie before
    assert await asyncio.wait_for(parent.wait(), 5) == -signal.SIGTERM
    assert _gone(zombie.pid)


def test_the_proc_prefilter_never_drops_a_process_psutil_counts_as_recent() -> None:
    """kill_orphans picks candidates from /proc/<pid>/stat before psutil looks at them:
    every process psutil dates at or after the cut-off must get through, the one born
    exactly at it included."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        born = psutil.Process(child.pid).create_time()
        assert child.pid in {p.pid for p in proc_module._created_since(born)}
        for cut in (born, time.time() - 3600, 0.0):
            before = _psutil_recent(cut)
            ours = {p.pid for p in proc_module._created_since(cut) if p.info["create_time"] >= cut}
            after = _psutil_recent(cut)
            assert before & after <= ours  # alive through all three scans: never missed
    finally:
        child.kill()
        child.wait(timeout=10)


def _psutil_recent(cut: float) -> set[int]:
    return {
        p.pid
        for p in psutil.process_iter(["create_time"])
        if p.info["create_time"] is not None and p.info["create_time"] >= cut
    }
