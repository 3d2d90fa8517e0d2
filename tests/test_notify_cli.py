"""Headless `director plan` tells the human at each gate: the `[notify] command` runs with
the event, and stderr rings (BEL + OSC 9 + OSC 777) when it is a terminal — only then."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.cli import director_on
from tests.plan_helpers import base_entries, good_tests, make_sample
from tests.support.notify_recorder import notified, recording_command


def _plan_with_stderr_on_a_terminal(repo: Path, task: str) -> tuple[int, str]:
    """`director plan TASK` with stderr on a pseudo-terminal (stdin and stdout are not,
    so no app opens); its exit code and what reached the terminal."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "director_tui", "plan", task, "--repo", str(repo)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**os.environ, "TERM": "xterm-256color"},
    )
    os.close(slave)
    received = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the process closed its side
            break
        if not chunk:
            break
        received += chunk
    os.close(master)
    proc.communicate(timeout=120)
    return proc.returncode, received.decode(errors="replace")


def test_headless_plan_rings_at_gate1_and_runs_the_command_at_each_gate(tmp_path: Path) -> None:
    repo, _script = make_sample(tmp_path, [*base_entries(), *good_tests()])
    argv, out = recording_command(tmp_path)
    with (repo / ".director" / "config.toml").open("a") as fh:
        fh.write(f"\n[notify]\ncommand = {json.dumps(argv)}\n")

    code, terminal = _plan_with_stderr_on_a_terminal(repo, "add mul and div")
    assert code == 3  # stopped at a gate
    assert "\a" in terminal
    assert "\x1b]9;director: needs you: Gate 1 waits for you: review the spec" in terminal
    assert "\x1b]777;notify;director: needs you;Gate 1 waits for you" in terminal
    [gate1] = notified(out)
    stdin, env = gate1["stdin"], gate1["env"]
    assert isinstance(stdin, dict) and isinstance(env, dict)
    assert stdin["event"] == "gate_reached" and stdin["level"] == "needs_you"
    assert stdin["job"] and env["DIRECTOR_JOB"] == stdin["job"]
    assert env["DIRECTOR_EVENT"] == "gate_reached"
    assert gate1["cwd"] == str(repo)

    # Approve Gate 1 with stderr a pipe: the command runs at Gate 2, nothing rings.
    result = director_on(repo, "plan", "--continue")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "\a" not in result.stderr and "\x1b]" not in result.stderr
    later = notified(out)
    assert len(later) == 2
    second = later[1]["stdin"]
    assert isinstance(second, dict)
    assert second["event"] == "gate_reached" and "Gate 2" in str(second["message"])
