"""Scheduler efficiency: a random 200-node DAG at ``--parallel 8`` with scripted agents of
known durations.

    ratio = makespan ÷ max(critical path, total work ÷ parallel)

where the critical path and the total work are computed from the agents' known durations
alone, so every second the harness adds (git, gates, state writes, scheduling gaps) shows
up in the ratio. Goal: ≤ 1.05.

    .venv/bin/python bench/makespan.py [--nodes 200] [--parallel 8] [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._sample import build
from director_tui.engine import dag
from director_tui.engine.config import load_config
from director_tui.engine.context import EngineContext
from director_tui.engine.models import Plan, RunState
from director_tui.engine.run import run_job


def random_dag(n: int, rng: random.Random) -> dict[str, list[str]]:
    """Each node depends on 0–2 of the 25 nodes before it (a wide, moderately deep DAG)."""
    ids = [f"n{i:03d}" for i in range(n)]
    deps: dict[str, list[str]] = {}
    for i, nid in enumerate(ids):
        window = ids[max(0, i - 25) : i]
        k = min(len(window), rng.choice([0, 1, 1, 2]))
        deps[nid] = sorted(rng.sample(window, k))
    return deps


def simulated_makespan(plan: Plan, durations: dict[str, float], parallel: int) -> float:
    """The same scheduling rule as the engine (ready nodes by ``dag.chain_weights``, then plan
    order), with agents of the known durations and no harness cost at all: what the
    policy alone can reach. The bound below it is what no policy can beat."""
    chain = dag.chain_weights(plan)
    order = {n.id: i for i, n in enumerate(plan.nodes)}
    deps = {n.id: set(n.depends_on) for n in plan.nodes}
    done: set[str] = set()
    running: list[tuple[float, str]] = []  # (finish time, node)
    started: set[str] = set()
    now = 0.0
    while len(done) < len(deps):
        ready = sorted(
            (nid for nid in deps if nid not in started and deps[nid] <= done),
            key=lambda nid: (-chain[nid], order[nid]),
        )
        for nid in ready[: parallel - len(running)]:
            started.add(nid)
            heapq.heappush(running, (now + durations[nid], nid))
        now, finished = heapq.heappop(running)
        done.add(finished)
    return now


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--min-secs", type=float, default=1.0)
    parser.add_argument("--max-secs", type=float, default=3.0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    deps = random_dag(args.nodes, rng)
    durations = {nid: round(rng.uniform(args.min_secs, args.max_secs), 2) for nid in deps}
    with tempfile.TemporaryDirectory(prefix="director-makespan-") as tmp:
        store = build(Path(tmp), deps, durations)
        plan = store.read_model(store.plan, Plan)
        assert plan is not None
        critical, chain = dag.critical_path(plan, durations)
        work = sum(durations.values())
        bound = max(critical, work / args.parallel)
        policy = simulated_makespan(plan, durations, args.parallel)
        ctx = EngineContext.open(store, load_config(store.repo))
        started = time.perf_counter()
        outcome = asyncio.run(run_job(ctx, parallel=args.parallel))
        makespan = time.perf_counter() - started
        assert outcome.success, outcome.message
        state = store.read_model(store.state, RunState)
        assert state is not None
        overhead = statistics.median(
            st.wall_secs - st.agent_secs - st.test_secs for st in state.nodes.values()
        )
        tests = statistics.median(st.test_secs for st in state.nodes.values())
    print(f"nodes {args.nodes}, parallel {args.parallel}, seed {args.seed}")
    print(f"agent durations {args.min_secs}–{args.max_secs} s, total work {work:.1f} s")
    print(
        f"critical path {critical:.1f} s over {len(chain)} nodes; work/parallel {work / args.parallel:.1f} s"
    )
    print(f"lower bound {bound:.1f} s; makespan {makespan:.1f} s")
    print(f"ratio makespan / bound: {makespan / bound:.3f}  (goal: <= 1.05)")
    print(
        f"  the scheduling rule alone, simulated with zero harness cost: {policy:.1f} s "
        f"(ratio {policy / bound:.3f}); the harness's share: makespan / simulated "
        f"= {makespan / policy:.3f}"
    )
    print(
        f"per node at parallel {args.parallel}: median harness overhead {overhead:.3f} s, "
        f"test run {tests:.3f} s; slots busy with agent work "
        f"{work / (makespan * args.parallel):.0%} of the makespan"
    )
    print(
        f"machine load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
