"""Harness overhead per node, next to the bare git floor, measured side by side.

Overhead of a node = its wall time minus the time inside the agent call and the test
commands (``NodeState.wall_secs - agent_secs - test_secs``), with the scripted provider
(the agent does nothing but write one file) on independent nodes, ``--parallel 1``.

The floor is what any worktree-per-node harness must pay, measured in the same run on a
copy of the same repository: ``git worktree add`` + a diff + a commit + ``git merge
--no-ff`` per node. Goal: median overhead < 0.25 s and within 2× the floor.

    .venv/bin/python bench/overhead.py [--nodes 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._sample import JOB_ID, build, git
from director_tui.engine.config import load_config
from director_tui.engine.context import EngineContext
from director_tui.engine.models import RunState
from director_tui.engine.run import run_job


def floor(root: Path, n: int) -> list[float]:
    """Per node: worktree add + write + diff + commit + merge --no-ff, nothing else."""
    repo = root / "floor"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "b@localhost")
    git(repo, "config", "user.name", "b")
    (repo / "README.md").write_text("x\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "init")
    job = root / "floor-job"
    git(repo, "worktree", "add", "-q", "-b", "job", str(job))
    times = []
    for i in range(n):
        started = time.perf_counter()
        wt = root / f"floor-wt-{i}"
        git(repo, "worktree", "add", "-q", "-b", f"n{i}", str(wt), "job")
        (wt / f"f{i}.txt").write_text("done\n")
        git(wt, "add", "-A")
        git(wt, "diff", "--cached", "--stat", "job")
        git(wt, "commit", "-q", "-m", f"n{i}")
        git(job, "merge", "-q", "--no-ff", "--no-edit", f"n{i}")
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="director-bench-") as tmp:
        root = Path(tmp)
        deps: dict[str, list[str]] = {f"n{i:03d}": [] for i in range(args.nodes)}
        store = build(root / "job", deps, {})
        ctx = EngineContext.open(store, load_config(store.repo))
        outcome = asyncio.run(run_job(ctx, parallel=1))
        assert outcome.success, outcome.message
        state = store.read_model(store.state, RunState)
        assert state is not None and state.job_id == JOB_ID
        overhead = [st.wall_secs - st.agent_secs - st.test_secs for st in state.nodes.values()]
        agent = [st.agent_secs for st in state.nodes.values()]
        tests = [st.test_secs for st in state.nodes.values()]
        bare = floor(root, args.nodes)
    med_over, med_floor = statistics.median(overhead), statistics.median(bare)
    print(f"nodes: {args.nodes} (scripted agent, parallel 1, flake_runs 1)")
    print(f"median node wall - agent - tests (harness overhead): {med_over:.3f} s")
    print(f"  p90 overhead: {sorted(overhead)[int(0.9 * (len(overhead) - 1))]:.3f} s")
    print(
        f"  median agent call: {statistics.median(agent):.3f} s, test run: {statistics.median(tests):.3f} s"
    )
    print(f"median bare floor (worktree add + diff + commit + merge): {med_floor:.3f} s")
    print(f"overhead / floor: {med_over / med_floor:.2f}x  (goal: < 0.25 s and <= 2x)")
    print(f"whole run: {outcome.wall_secs:.2f} s")
    print(
        f"machine load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
