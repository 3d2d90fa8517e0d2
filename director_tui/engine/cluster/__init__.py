"""Node attempts on a Ray cluster (``[cluster] engine = "ray"``, docs/cluster.md).

``ray_backend`` is the only module that imports Ray, and only this package imports it
(lazily): a local run needs no Ray installed. ``worker`` is what runs on a worker (the
local attempt code in a clone of its own), ``verify`` what the head re-checks before it
merges a worker's commit, ``packs`` the git objects on the wire, ``wire`` the messages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from director_tui.engine.config import Cluster
from director_tui.engine.errors import UsageError

if TYPE_CHECKING:
    from director_tui.engine.cluster.ray_backend import RayExecutorFactory
    from director_tui.engine.cluster.status import ClusterReport
    from director_tui.engine.store import Store

RAY_MISSING_HINT = (
    "install it with `pip install 'director-tui[ray]'`, or set [cluster] engine = \"local\""
)


def require_ray() -> None:
    """A ``UsageError`` (exit 2) naming the fix when Ray is not installed."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise UsageError(
            '[cluster] engine = "ray" needs Ray, which is not installed', hint=RAY_MISSING_HINT
        )


def executor_factory(cluster: Cluster) -> RayExecutorFactory:
    """The run's executor factory for ``run_job(executor=...)``; it has ``close()``."""
    require_ray()
    from director_tui.engine.cluster.ray_backend import RayExecutorFactory

    return RayExecutorFactory(cluster)


def cluster_status(store: Store, address: str) -> ClusterReport:
    """The cluster at ``address`` (else ``RAY_ADDRESS``, else the one running here) and the
    job's attempts in flight; a ``UsageError`` when there is no cluster to ask."""
    require_ray()
    from director_tui.engine.cluster.ray_backend import cluster_nodes
    from director_tui.engine.cluster.status import ClusterReport, in_flight

    where, nodes = cluster_nodes(address)
    return ClusterReport(address=where, nodes=nodes, in_flight=in_flight(store))
