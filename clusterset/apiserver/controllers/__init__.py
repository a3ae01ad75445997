"""Built-in controllers of embedded clusters (see manager.py)."""

from __future__ import annotations

from clusterset.apiserver.controllers.endpoints.endpointslices import endpoint_controllers
from clusterset.apiserver.controllers.manager import Controller
from clusterset.apiserver.controllers.workloads import workload_controllers


def default_controllers() -> list[Controller]:
    """Every built-in controller, in the order their queues are created."""
    return [*workload_controllers(), *endpoint_controllers()]
