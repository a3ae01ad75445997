"""The controllers of embedded clusters (see manager.py): the core set every cluster runs, and the set a
cluster's `controllers` setting switches (simulated nodes, scheduler and kubelets, workloads, endpoints)."""

from __future__ import annotations

from clusterset.apiserver.controllers.endpoints import endpoint_controllers
from clusterset.apiserver.controllers.manager import Controller
from clusterset.apiserver.controllers.workloads import workload_controllers


def cluster_controllers() -> list[Controller]:
    """Every switchable controller, in the order their queues are created."""
    return [*workload_controllers(), *endpoint_controllers()]
