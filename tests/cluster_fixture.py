"""A real multi-node Ray cluster on this machine for the cluster tests: a head with no
CPU of its own (attempts go to the workers) and worker nodes of one CPU each, so two
attempts at once are on two nodes. Ray's logs stay in its session folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

WORKERS = 3


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    # The workers' caches and clones in the test's temp folder (the nodes' processes
    # inherit this environment), not in the machine's /tmp/director-worker.
    saved = os.environ.get("DIRECTOR_WORKER_DIR")
    os.environ["DIRECTOR_WORKER_DIR"] = str(tmp_path_factory.mktemp("workers"))
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    # Ray's Cluster names itself in the machine's Ray address file, which an address-less
    # ray.init() anywhere here (another test's run, another checkout's) would then join:
    # this cluster is the tests' alone.
    ray._common.utils.reset_ray_address()
    for _ in range(WORKERS):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        if saved is None:
            os.environ.pop("DIRECTOR_WORKER_DIR", None)
        else:
            os.environ["DIRECTOR_WORKER_DIR"] = saved
