"""Runs through slot servers: the REAL OpenCode binary as one ``opencode serve`` per
parallel slot (``engine/run/slots.py``), against the fake model server.

Nodes run side by side here (``parallel=2``), so each node's turns are keyed by a needle
of its prompt (``"executor|Implement add in"``: see ``fake_model_server``). Every
executor call starts with a probe turn whose bash output (recorded by the fake server as
the tool result) says whether a stray file or a daemon of an earlier attempt is still
there."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import OpenCodeEnv
from test_run_e2e import solve_turns, start

from director_tui.engine.events import AgentActivity, EventBase, Notice
from director_tui.engine.models import RunState
from director_tui.engine.run import run_job
from director_tui.engine.store import read_jsonl
from tests.run_fixture import NodeSpec, build_job, job_file, sample_nodes

pytestmark = pytest.mark.e2e

DAEMON = "sleep 6001"  # a daemon an attempt leaves behind (unique enough to count)
# The daemons working in this very worktree (another slot's are not this slot's).
COUNT_DAEMONS = (
    'for p in /proc/[0-9]*; do [ "$(readlink $p/cwd 2>/dev/null)" = "$PWD" ] && '
    "tr '\\0' ' ' < $p/cmdline 2>/dev/null && echo; done | grep -c '^sleep 6001'"
)
PROBE = f'echo "probe stray=$(test -e stray.txt && echo yes || echo no) daemons=$({COUNT_DAEMONS})"'
SERVER_STARTED = re.compile(r"slot (\d+): OpenCode server started \(pid (\d+)")


def bash(command: str) -> dict[str, Any]:
    return {
        "tool_calls": [{"name": "bash", "arguments": {"command": command, "description": "x"}}],
        "usage": {"input": 900, "output": 40},
    }


def needle(spec: NodeSpec) -> str:
    return f"executor|Implement {spec.id} in"


def server_pids(events: list[EventBase]) -> dict[int, int]:
    """pid → slot, from the 'OpenCode server started' notices."""
    found: dict[int, int] = {}
    for event in events:
        if isinstance(event, Notice):
            match = SERVER_STARTED.search(event.message)
            if match:
                found[int(match.group(2))] = int(match.group(1))
    return found


def gone(pid: int, within: float = 30.0) -> bool:
    """Whether ``pid`` is gone (or a zombie) — waiting a little for a signal to land."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.2)
    return False


class Events:
    def __init__(self) -> None:
        self.events: list[EventBase] = []
        self.server_names: list[str] = []  # what each server's process is, as it starts

    def __call__(self, event: EventBase) -> None:
        self.events.append(event)
        match = SERVER_STARTED.search(event.message) if isinstance(event, Notice) else None
        if match:
            self.server_names.append(psutil.Process(int(match.group(2))).name())


# Two slot servers start at once here, in an empty HOME: their two first starts must take
# turns on OpenCode's database (first_start), and this is the server test that sees it.
@pytest.mark.fresh_agent_home
def test_three_nodes_at_parallel_two_use_two_servers_and_every_attempt_starts_clean(
    tmp_path: Path, opencode_env: OpenCodeEnv
) -> None:
    add, mul, power = sample_nodes()
    # $((1)): the command line of the shell running this must not match the daemon's.
    daemon = f'(nohup sleep 600$((1)) >/dev/null 2>&1 &) && sleep 0.5 && echo "started daemons=$({COUNT_DAEMONS})"'
    leak = f"echo stray > stray.txt && {daemon}"
    ctx, _rec, setup = start(
        tmp_path,
        opencode_env,
        {
            # mul's first attempt leaves a stray file and a daemon and solves nothing; every
            # other attempt leaves a daemon too, so whichever slot the next attempt gets
            # (that depends on which ends first), it is one an attempt left a daemon in.
            needle(mul): [
                bash(PROBE),
                bash(leak),
                {"text": "done", "usage": {"input": 900, "output": 5}},
                bash(PROBE),
                bash(daemon),
                *solve_turns(mul),
            ],
            needle(add): [bash(PROBE), bash(daemon), *solve_turns(add)],
            needle(power): [bash(PROBE), bash(daemon), *solve_turns(power)],
        },
        config={"review": {"stage_two": False}},
    )
    seen = Events()
    ctx.bus.subscribe(seen)
    outcome = asyncio.run(run_job(ctx, parallel=2))

    assert outcome.success, outcome.message
    for spec in (add, mul, power):
        assert job_file(ctx.store, spec.impl_path) == spec.solution
    assert job_file(ctx.store, "stray.txt") is None
    # Exactly one server per slot, for the whole run.
    servers = server_pids(seen.events)
    assert sorted(servers.values()) == [0, 1], servers
    # In the OS sandbox when it is on (the default where bwrap works), else bare.
    assert seen.server_names == ["bwrap" if ctx.sandbox.enabled else "opencode"] * 2
    # The leak really happened: the file was there and the daemon ran.
    # Each request's newest tool result (a request carries the whole session's history).
    results = [(r.cwd, r.tool_results[-1]) for r in setup.server.requests if r.tool_results]
    leaks = [(i, cwd) for i, (cwd, t) in enumerate(results) if "started daemons=1" in t]
    assert len(leaks) == 4, results  # add, mul twice, power
    assert all("_slot-" in cwd for _i, cwd in leaks), leaks
    # Every attempt's first look at its tree: no stray file, no daemon — at least two of
    # them (four attempts in two slots) in a slot an earlier attempt left a daemon in.
    probes = [(i, cwd, t) for i, (cwd, t) in enumerate(results) if "probe stray=" in t]
    assert len(probes) == 4, probes
    assert all("probe stray=no daemons=0" in t for _i, _cwd, t in probes), probes
    after_a_leak = [i for i, cwd, _t in probes if any(j < i and c == cwd for j, c in leaks)]
    assert len(after_a_leak) >= 2, (probes, leaks)
    # Node identity: costs, state and transcripts name the nodes, never the slots.
    costs = read_jsonl(ctx.store.costs)
    assert {c["node_id"] for c in costs} == {"add", "mul", "power"}
    state = ctx.store.read_model(ctx.store.state, RunState)
    assert state is not None and state.nodes["mul"].attempts == 2
    # After the run: the servers are gone, and so are the slot worktrees.
    assert all(gone(pid, within=5) for pid in servers), servers
    assert not list(ctx.store.worktrees.glob("_slot-*"))
    # And so are the daemons the attempts left (only this test starts `sleep 6001`).
    daemons = [
        p.pid for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == DAEMON.split()
    ]
    assert all(gone(pid, within=5) for pid in daemons), daemons


def test_a_server_killed_mid_attempt_is_restarted_and_the_attempt_not_charged(
    tmp_path: Path, opencode_env: OpenCodeEnv
) -> None:
    add = sample_nodes()[0]
    ctx, _rec, _setup = start(
        tmp_path,
        opencode_env,
        {"executor": [{"text": "halfway there " * 5, "hang_after": 3}, *solve_turns(add)]},
        nodes=[add],
        config={"review": {"stage_two": False}},
    )
    seen = Events()
    killed: list[int] = []

    def kill_on_first_step(event: EventBase) -> None:
        seen(event)
        if isinstance(event, AgentActivity) and event.kind == "step" and not killed:
            pid = next(iter(server_pids(seen.events)))
            killed.append(pid)
            os.killpg(pid, signal.SIGKILL)

    ctx.bus.subscribe(kill_on_first_step)
    outcome = asyncio.run(run_job(ctx, parallel=2))

    assert killed, "the model never started streaming"
    assert outcome.success, outcome.message
    assert job_file(ctx.store, add.impl_path) == add.solution
    state = ctx.store.read_model(ctx.store.state, RunState)
    assert state is not None and state.nodes["add"].attempts == 1
    servers = server_pids(seen.events)
    assert len(servers) == 2 and killed[0] in servers  # started, then started again
    assert all(gone(pid, within=5) for pid in servers)


def test_kill_9_of_director_takes_the_slot_servers_with_it(
    tmp_path: Path, opencode_env: OpenCodeEnv
) -> None:
    add, mul = sample_nodes()[:2]
    store = build_job(tmp_path, [add, mul])
    setup = opencode_env(
        {
            needle(add): [{"text": "thinking " * 5, "hang_after": 2}],
            needle(mul): [{"text": "thinking " * 5, "hang_after": 2}],
        }
    )
    tiers = "".join(f'{role} = "opencode/fake/{role}"\n' for role in setup.config.tier_map())
    store.config.write_text(
        f"[tiers]\n{tiers}[limits]\nidle_timeout_secs = 120\nnode_timeout_secs = 300\n"
    )
    director = subprocess.Popen(
        [sys.executable, "-m", "director_tui", "run", "--repo", str(store.repo), "--no-tui"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **setup.env},
        start_new_session=True,
    )
    servers: dict[int, int] = {}
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and len(servers) < 2 and director.poll() is None:
            events = [json.loads(line) for line in _lines(store.events)]
            servers = {
                int(m.group(2)): int(m.group(1))
                for e in events
                if e.get("type") == "notice"
                for m in [SERVER_STARTED.search(e.get("message", ""))]
                if m
            }
            time.sleep(0.5)
        assert len(servers) == 2, f"two slot servers never started: {servers}"
        assert all(psutil.pid_exists(pid) for pid in servers)
        os.kill(director.pid, signal.SIGKILL)
        director.wait(10)
        assert all(gone(pid) for pid in servers), servers
    finally:
        if director.poll() is None:
            director.kill()
        for pid in servers:
            if psutil.pid_exists(pid):
                os.killpg(pid, signal.SIGKILL)


def _lines(path: Path) -> list[str]:
    try:
        return [line for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return []
