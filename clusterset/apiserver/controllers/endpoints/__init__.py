"""The EndpointSlice and legacy Endpoints controllers; their desired state is a pure function (`state.py`)."""

from __future__ import annotations

from clusterset.apiserver.controllers.endpoints.endpoints import EndpointsController
from clusterset.apiserver.controllers.endpoints.endpointslices import EndpointSliceController
from clusterset.apiserver.controllers.manager import Controller


def endpoint_controllers() -> list[Controller]:
    """The EndpointSlice controller and the legacy Endpoints controller."""
    return [EndpointSliceController(), EndpointsController()]
