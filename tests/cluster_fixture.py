"""A real multi-node Ray cluster on this machine for the cluster tests: a head with no
CPU of its own (attempts go to the workers) and worker nodes of one CPU each, so two
attempts at once are on two nodes. Ray's logs stay in its session folder."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

WORKERS = 3


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(WORKERS):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
