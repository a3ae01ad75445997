"""What runs on the hub, for `clusterset up` (the embedded fleet) and `clusterset hub` alike.

A feature adds what it needs on the hub here, once: its preparation to `start_hub`, its controllers to
`hub_controllers`.
"""

from __future__ import annotations

from dataclasses import dataclass

from clusterset.client import ClusterClient, Forbidden
from clusterset.inventory.controllers import profile_controller
from clusterset.inventory.profile_status import AccessProvider
from clusterset.inventory.profiles import ProfileManager
from clusterset.inventory.registration import prepare_hub
from clusterset.mcs.hub import merge_controller
from clusterset.placement.controller import placement_controller
from clusterset.placement.hub import prepare_placement
from clusterset.runtime import Controller, Manager
from clusterset.workset.controller import workset_controller

HUB = "hub"  # the name a hub Manager engages the hub cluster under


class HubNotInstalled(Exception):
    """The hub misses what the hub controllers need (CRDs, roles) and they may not install it themselves."""


@dataclass(frozen=True)
class HubOptions:
    clusterset: str = "clusterset"  # the ClusterSet's name, and its namespace on the hub
    grace: float = 40.0  # seconds without a report before a member's health is Unknown
    access_providers: tuple[AccessProvider, ...] = ()  # advertised on every ClusterProfile
    bind_namespaces: tuple[str, ...] = ()  # namespaces bound to the ClusterSet at start, unless bound already


def hub_controllers(hub: ClusterClient, options: HubOptions) -> list[Controller]:
    """The hub's controllers, for a Manager that engages `hub` as HUB."""
    profiles = ProfileManager(hub, options.clusterset, grace_seconds=options.grace,
                              providers=options.access_providers)
    return [profile_controller(profiles, HUB), merge_controller(options.clusterset, HUB),
            placement_controller(HUB), workset_controller(HUB)]


async def start_hub(manager: Manager, hub: ClusterClient, options: HubOptions) -> None:
    """Prepares the hub (CRDs, the ClusterSet's namespace, placement's roles and bindings), then starts `manager`
    with the hub controllers and `hub` engaged as HUB. The caller stops the manager and closes `hub`."""
    try:
        await prepare_hub(hub, options.clusterset)
        await prepare_placement(hub, options.clusterset, options.bind_namespaces)
    except Forbidden as exc:
        raise HubNotInstalled(
            f"the hub lacks this version's CRDs, ClusterSet namespace or roles, and this identity may not install "
            f"them ({exc.message}); apply this version's manifests first: kubectl apply -k deploy/hub, or "
            f"clusterset manifests hub | kubectl apply -f -") from None
    for controller in hub_controllers(hub, options):
        manager.add(controller)
    await manager.add_cluster(HUB, hub, owned=False)
    await manager.start()
