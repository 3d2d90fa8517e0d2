"""Attempts on a Ray cluster: throughput on 1 vs 4 vs 8 worker nodes, and the head's own
overhead per attempt.

A wide DAG (64 independent nodes by default) of scripted attempts that each take a fixed
time (``--secs``: the agent "thinks" by sleeping, then writes its file), run with
``[cluster] engine = "ray"`` on a local ``ray.cluster_utils.Cluster``: a head with no CPU
for attempts and N worker nodes of one CPU each (one attempt at a time per node). Every
attempt goes the whole way: the worker's commit cache, its clone, the agent, the worker's
gate; the head's re-check (hashes, allowlist, the test again) and the merge queue.

    throughput = attempts ÷ wall;  ratio = throughput(N) ÷ throughput(1)  (goal: 8 → ≥ 6×)
    head overhead per attempt = the head's time in the executor outside the wait for the
                                worker (submit, progress, re-check), ÷ attempts (goal ≤ 0.1 s)
    head CPU per attempt = this process's and its finished children's CPU seconds ÷ attempts

On a small machine the worker nodes share its cores: the ratio measures the cores too.

    .venv/bin/python bench/cluster.py [--nodes 64] [--secs 3] [--workers 1,4,8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ray
from ray.cluster_utils import Cluster

from bench._sample import build
from director_tui.engine.cluster.ray_backend import RayExecutorFactory
from director_tui.engine.config import load_config
from director_tui.engine.context import EngineContext
from director_tui.engine.run import run_job


def cpu_secs() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def one(workers: int, nodes: int, secs: float, verify_tests: bool) -> dict[str, float]:
    # The workers' caches and clones go with the bench's temporary folder.
    os.environ["DIRECTOR_WORKER_DIR"] = tempfile.mkdtemp(prefix="bench-cluster-workers-")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(workers):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
            deps: dict[str, list[str]] = {f"n{i:03d}": [] for i in range(nodes)}
            config = (
                f'[cluster]\nengine = "ray"\nmax_in_flight = {workers}\n'
                f"verify_tests = {str(verify_tests).lower()}\n"
            )
            store = build(Path(tmp), deps, dict.fromkeys(deps, secs), extra_config=config)
            ctx = EngineContext.open(store, load_config(store.repo))
            factory = RayExecutorFactory(ctx.config.cluster)
            cpu0, wall0 = cpu_secs(), time.monotonic()
            outcome = asyncio.run(run_job(ctx, executor=factory))
            wall, cpu = time.monotonic() - wall0, cpu_secs() - cpu0
            assert outcome.success, outcome.message
            assert factory.session is not None
            return {
                "wall": wall,
                "throughput": nodes / wall,
                "overhead": sum(factory.session.overhead.values()) / nodes,
                **{k: v / nodes for k, v in factory.session.overhead.items()},
                "cpu": cpu / nodes,
                "ideal": nodes * secs / workers,
            }
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(os.environ.pop("DIRECTOR_WORKER_DIR"), ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=64)
    parser.add_argument("--secs", type=float, default=3.0)
    parser.add_argument("--workers", default="1,4,8")
    parser.add_argument(
        "--no-verify-tests",
        action="store_true",
        help="[cluster] verify_tests = false: the head does not run the tests again",
    )
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    print(f"{args.nodes} attempts of {args.secs:g} s each; load before {os.getloadavg()}")
    rows = {}
    for workers in counts:
        rows[workers] = one(workers, args.nodes, args.secs, not args.no_verify_tests)
        row = rows[workers]
        print(
            f"{workers} worker(s): wall {row['wall']:.1f} s (floor {row['ideal']:.1f} s), "
            f"{row['throughput']:.2f} attempts/s, head overhead {row['overhead']:.3f} s/attempt, "
            f"(submit {row['submit']:.3f}, receive {row['receive']:.3f}, "
            f"verify {row['verify']:.3f}), head CPU {row['cpu']:.3f} s/attempt; "
            f"load {os.getloadavg()}",
            flush=True,
        )
    first = rows[counts[0]]["throughput"]
    for workers in counts[1:]:
        ratio = rows[workers]["throughput"] / first
        print(f"throughput {workers} ÷ {counts[0]} worker(s): {ratio:.2f}×")


if __name__ == "__main__":
    main()
