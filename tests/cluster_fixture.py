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
# The GCS health-checks each node every 1 s and calls it dead after 3 failed checks
# (Ray's defaults: 3 s and 5). A killed node's checks fail at once (connection refused),
# so the test that kills a worker node waited ~14 s after its run for the GCS to stop
# counting it alive (wait_for_nodes, before its replacement is counted): ~2.5 s now. The
# run itself learns of the death from the lost task (NodeDiedError), not from the GCS. A
# live but loaded node still answers each check within Ray's 10 s timeout.
FAST_NODE_DEATH = {
    "_system_config": {"health_check_period_ms": 1000, "health_check_failure_threshold": 3}
}


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    # The workers' caches and clones in the test's temp folder (the nodes' processes
    # inherit this environment), not in the machine's /tmp/director-worker.
    saved = os.environ.get("DIRECTOR_WORKER_DIR")
    os.environ["DIRECTOR_WORKER_DIR"] = str(tmp_path_factory.mktemp("workers"))
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, **FAST_NODE_DEATH})
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
