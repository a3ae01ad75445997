"""clusterset's multi-cluster runtime: the Python counterpart of controller-runtime + multicluster-runtime.

A Manager engages clusters from providers; Controllers turn watch events into (cluster, key) items on
a coalescing, rate-limited work queue; reconcilers read caches and write through the cluster's
client. See docs/runtime.md.
"""

from clusterset.runtime.cache import Cache, ObjectKey
from clusterset.runtime.cluster import Cluster
from clusterset.runtime.controller import Controller, Request, Result, Watch
from clusterset.runtime.informer import Event, Informer
from clusterset.runtime.leader import LeaderElection
from clusterset.runtime.manager import ClusterSink, Manager, Provider
from clusterset.runtime.placements import PlacementDecisionProvider, decided_clusters
from clusterset.runtime.providers import ClusterProfileProvider, KubeconfigProvider, StaticProvider
from clusterset.runtime.workqueue import RateLimiter, WorkQueue

__all__ = [
    "Cache",
    "Cluster",
    "ClusterProfileProvider",
    "ClusterSink",
    "Controller",
    "Event",
    "Informer",
    "KubeconfigProvider",
    "LeaderElection",
    "Manager",
    "ObjectKey",
    "PlacementDecisionProvider",
    "Provider",
    "RateLimiter",
    "Request",
    "Result",
    "StaticProvider",
    "Watch",
    "WorkQueue",
    "decided_clusters",
]
