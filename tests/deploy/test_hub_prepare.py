"""A hub controller never installs what the manifests install: where its identity may only read, a hub without
this version's CRDs and roles stops it with what to apply, not with a 403 deep in a watch."""

from __future__ import annotations

import pytest

from clusterset.client import ClientConfig, ClusterClient
from clusterset.fleet.hub import HubNotInstalled, HubOptions, start_hub
from clusterset.runtime import Manager
from clusterset.testing import ClusterInfo, ServerThread
from tests.helpers import core


async def test_a_read_only_hub_controller_names_the_manifests_to_apply(server: ServerThread,
                                                                         cluster: ClusterInfo) -> None:
    core(cluster).create_namespace({"metadata": {"name": "clusterset-system"}})
    core(cluster).create_namespaced_service_account("clusterset-system", {"metadata": {"name": "clusterset-hub"}})
    token, _ = server.server.mint_token(cluster.name, "clusterset-system", "clusterset-hub", 600)
    manager = Manager(name="hub")
    async with ClusterClient(ClientConfig(server=cluster.server, ca_file=cluster.ca_file, token=token)) as hub:
        with pytest.raises(HubNotInstalled, match=r"apply this version's manifests first: kubectl apply -k "
                                                  r"deploy/hub, or clusterset manifests hub \| kubectl apply -f -"):
            await start_hub(manager, hub, HubOptions())
    assert not manager.is_leader and manager.controllers == []  # nothing started
