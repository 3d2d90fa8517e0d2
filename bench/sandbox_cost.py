"""What the OS sandbox (engine/sandbox.py) costs per attempt, side by side with it off.

Three measurements in one run, each alternating off/on so load drifts hit both alike:
1. one command (``true``) through ``proc.run_command``: the bare price of a bwrap;
2. whole nodes with the scripted provider, ``[sandbox] mode = "off"`` against
   ``"bwrap"``: each attempt runs one shell command (``run`` step), writes its file, and
   its gate runs the node's test command — three sandboxes per attempt when on;
3. with ``--opencode BIN``: ``opencode debug config`` (OpenCode's start-up, no model call)
   plain and inside the sandbox a real agent call gets.

    .venv/bin/python bench/sandbox_cost.py [--nodes 12] [--commands 30] [--opencode BIN]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._sample import build, git
from director_tui.engine import jobs, sandbox
from director_tui.engine.agents.opencode import OpenCodeProvider
from director_tui.engine.config import load_config
from director_tui.engine.context import EngineContext
from director_tui.engine.models import RunState
from director_tui.engine.proc import run_command
from director_tui.engine.run import run_job
from director_tui.engine.sandbox import SandboxSpec


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def command_cost(spec: SandboxSpec, cwd: Path, n: int) -> tuple[list[float], list[float]]:
    off: list[float] = []
    on: list[float] = []
    for _ in range(n):
        for bucket, box in ((off, None), (on, spec)):
            started = time.perf_counter()
            result = asyncio.run(run_command("true", cwd, timeout=30, sandbox=box))
            bucket.append(time.perf_counter() - started)
            assert result.ok, result.output
    return off, on


def node_costs(root: Path, mode: str, n: int) -> tuple[list[float], list[float], float]:
    """Per node: (agent call secs, gate test secs), and the whole run's wall time."""
    deps: dict[str, list[str]] = {f"n{i:03d}": [] for i in range(n)}
    store = build(root / mode, deps, {}, extra_config=f'[sandbox]\nmode = "{mode}"\n')
    script = store.root / "script.json"
    # One real shell command per attempt, as an agent's tool call would be.
    script.write_text(
        script.read_text().replace('"steps": [', '"steps": [{"run": "ls src > /dev/null"}, ')
    )
    ctx = EngineContext.open(store, load_config(store.repo))
    assert ctx.sandbox.enabled == (mode == "bwrap")
    outcome = asyncio.run(run_job(ctx, parallel=1))
    assert outcome.success, outcome.message
    state = store.read_model(store.state, RunState)
    assert state is not None
    agent = [st.agent_secs for st in state.nodes.values()]
    tests = [st.test_secs for st in state.nodes.values()]
    return agent, tests, outcome.wall_secs


def opencode_cost(binary: str, spec: SandboxSpec, home: Path, n: int) -> tuple[list[float], ...]:
    env = {
        **os.environ,
        "HOME": str(home),
        "OPENCODE_DISABLE_AUTOUPDATE": "1",
        "OPENCODE_DISABLE_MODELS_FETCH": "1",
    }
    provider = OpenCodeProvider(binary)
    folders = provider.sandbox_writable_dirs(env)
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    boxed = spec.plus(
        hide=[home],
        tools=sandbox.tool_folders(binary, env.get("PATH", ""), [*spec.hide, home]),
        writable=folders,
    )
    argv = [binary, "debug", "config"]
    subprocess.run(argv, env=env, cwd=spec.cwd, capture_output=True, check=True)  # warm
    off: list[float] = []
    on: list[float] = []
    for _ in range(n):
        for bucket, command in ((off, argv), (on, boxed.wrap(argv))):
            started = time.perf_counter()
            subprocess.run(command, env=env, cwd=spec.cwd, capture_output=True, check=True)
            bucket.append(time.perf_counter() - started)
    return off, on


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=12)
    parser.add_argument("--commands", type=int, default=30)
    parser.add_argument("--opencode", help="an opencode binary: also time its start-up")
    parser.add_argument("--opencode-runs", type=int, default=3)
    args = parser.parse_args()
    available = sandbox.probe()
    if not available.ok:
        print(f"sandbox unavailable: {available.reason}")
        return 2
    with tempfile.TemporaryDirectory(prefix="director-bench-") as tmp:
        root = Path(tmp)
        store = build(root / "cmd", {"only": []}, {})
        worktree = jobs.node_worktree(store, "only")
        git(store.repo, "worktree", "add", "-q", str(worktree), "-b", "bench-only")
        ctx = EngineContext.open(store, load_config(store.repo))
        spec = ctx.sandbox_spec(worktree)
        assert spec is not None
        off, on = command_cost(spec, worktree, args.commands)
        print(f"1. one command `true` through run_command, {args.commands}x each:")
        print(
            f"   off {median_ms(off):.1f} ms, on {median_ms(on):.1f} ms median: "
            f"+{median_ms(on) - median_ms(off):.1f} ms, {median_ms(on) / median_ms(off):.2f}x"
        )
        results = {}
        for mode in ("off", "bwrap"):
            results[mode] = node_costs(root, mode, args.nodes)
        (a_off, t_off, w_off), (a_on, t_on, w_on) = results["off"], results["bwrap"]
        print(f"2. {args.nodes} nodes, scripted executor (one `run` step + a write) and its gate:")
        print(
            f"   agent call: off {median_ms(a_off):.0f} ms, on {median_ms(a_on):.0f} ms "
            f"({median_ms(a_on) / median_ms(a_off):.2f}x)"
        )
        print(
            f"   gate tests: off {median_ms(t_off):.0f} ms, on {median_ms(t_on):.0f} ms "
            f"({median_ms(t_on) / median_ms(t_off):.2f}x)"
        )
        print(
            f"   whole run: off {w_off:.2f} s, on {w_on:.2f} s ({w_on / w_off:.2f}x; per node "
            f"+{(w_on - w_off) / args.nodes * 1000:.0f} ms)"
        )
        if args.opencode:
            home = root / "agent-home"
            home.mkdir()
            oc_off, oc_on = opencode_cost(args.opencode, spec, home, args.opencode_runs)
            print(f"3. `opencode debug config` (its start-up), {args.opencode_runs}x each:")
            print(
                f"   off {median_ms(oc_off):.0f} ms, on {median_ms(oc_on):.0f} ms "
                f"({median_ms(oc_on) / median_ms(oc_off):.2f}x)"
            )
    print(
        f"machine load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
