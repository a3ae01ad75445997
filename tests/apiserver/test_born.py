"""A new cluster's system namespaces, their `default` ServiceAccount and `kube-root-ca.crt`, and `default/kubernetes`:
the first cluster of each shape gets them through the API, the next ones a copy of what that wrote (`born.py`),
which must be the same objects, each cluster's own, and as normal as any other. Its simulated Nodes and their Leases
are the node controller's creates, laid over one dry run per shape: what the controller makes of them through the API
when they are deleted must be the same."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from clusterset.api.resources import CONFIG_MAPS, LEASES, NAMESPACES, NODES, SERVICE_ACCOUNTS, SERVICES
from clusterset.apiserver import Apiserver
from clusterset.apiserver import born as born_module
from clusterset.apiserver.controllers.workloads import nodes
from clusterset.client import ClusterClient, Invalid, NotFound
from tests.inventory.test_member_crds import client_of, normalized

SYSTEM = ["default", "kube-node-lease", "kube-public", "kube-system"]


async def born(client: ClusterClient) -> list[dict[str, Any]]:
    objects = (await client.list(NAMESPACES))["items"]
    for ns in SYSTEM:
        objects += [await client.get(SERVICE_ACCOUNTS, "default", ns),
                    await client.get(CONFIG_MAPS, "kube-root-ca.crt", ns)]
    return [*objects, await client.get(SERVICES, "kubernetes", "default")]


def first_service_ip(server: Apiserver, name: str) -> str:
    return str(ipaddress.ip_network(server.cluster_settings(name)["serviceCIDR"]).network_address + 1)


async def test_copied_clusters_are_born_with_what_the_api_made_in_the_first(tmp_path: Path,
                                                                           session: aiohttp.ClientSession) -> None:
    server = Apiserver(tmp_path / "state")
    try:
        for name in ("first", "copy", "copy2"):
            await server.add_cluster(name)
        await server.add_cluster("dual", dual_stack=True)  # another shape: through the API, then its own template
        await server.add_cluster("dual2", dual_stack=True)
        await server.start()
        clients = {n: client_of(server, n, session) for n in ("first", "copy", "copy2", "dual", "dual2")}
        objects = {n: await born(c) for n, c in clients.items()}
        assert [o["metadata"]["name"] for o in objects["copy"][:4]] == SYSTEM
        assert all(o["status"]["phase"] == "Active" for o in objects["copy"][:4])

        def without_addresses(items: list[dict[str, Any]]) -> Any:
            service = items[-1]["spec"]
            service.pop("clusterIP"), service.pop("clusterIPs")
            return normalized(items)

        for name in ("copy", "copy2", "dual", "dual2"):
            service = objects[name][-1]["spec"]
            assert service["clusterIP"] == first_service_ip(server, name) and service["clusterIPs"] == [
                service["clusterIP"]]
        uids = {n: {o["metadata"]["uid"] for o in items} for n, items in objects.items()}
        assert all(len(u) == 13 for u in uids.values())
        assert not set.intersection(*uids.values())  # each cluster's own (kube-system's uid is a cluster's identity)
        assert without_addresses(objects["copy"]) == without_addresses(objects["first"])
        assert without_addresses(objects["dual2"]) == without_addresses(objects["dual"])

        # the copy's Service address is taken, as one made through the API
        with pytest.raises(Invalid, match="already allocated"):
            await clients["copy"].create(SERVICES, {"metadata": {"name": "squat", "namespace": "default"}, "spec": {
                "clusterIP": first_service_ip(server, "copy"), "ports": [{"port": 80}]}})
        # and its namespaces are normal ones: one goes with what is in it, then is made again with its defaults
        copy = clients["copy"]
        listed = await copy.list(NAMESPACES)
        seen: list[dict[str, Any]] = []

        async def follow() -> None:
            async for event in copy.watch(NAMESPACES, resource_version=listed["metadata"]["resourceVersion"]):
                seen.append(event)
                if event["type"] == "DELETED":
                    return

        watching = asyncio.create_task(follow())
        await copy.delete(NAMESPACES, "kube-node-lease")
        await asyncio.wait_for(watching, 15)
        assert seen[-1]["object"]["metadata"]["name"] == "kube-node-lease"
        with pytest.raises(NotFound):
            await copy.get(CONFIG_MAPS, "kube-root-ca.crt", "kube-node-lease")
        await copy.create(NAMESPACES, {"metadata": {"name": "kube-node-lease"}})

        async def defaults() -> None:
            while True:
                try:
                    await copy.get(SERVICE_ACCOUNTS, "default", "kube-node-lease")
                    return
                except NotFound:
                    await asyncio.sleep(0.02)

        await asyncio.wait_for(defaults(), 10)
    finally:
        await server.stop()
    # and they are stored: a restart has them, with the same uids
    again = Apiserver(tmp_path / "state")
    try:
        await again.start()
        copy = client_of(again, "copy2", session)
        assert {o["metadata"]["uid"] for o in await born(copy)} == uids["copy2"]
    finally:
        await again.stop()


async def remade(client: ClusterClient, node: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The node and its Lease once the node controller has made them again (a new uid)."""
    name = node["metadata"]["name"]
    while True:
        with contextlib.suppress(NotFound):
            again = await client.get(NODES, name)
            if again["metadata"]["uid"] != node["metadata"]["uid"]:
                return again, await lease_of(client, again)
        await asyncio.sleep(0.02)


async def lease_of(client: ClusterClient, node: dict[str, Any]) -> dict[str, Any]:
    """The node's Lease, once there is one that it owns."""
    while True:
        with contextlib.suppress(NotFound):
            lease = await client.get(LEASES, node["metadata"]["name"], "kube-node-lease")
            if lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]:
                return lease
        await asyncio.sleep(0.02)


def owned(lease: dict[str, Any], node: dict[str, Any]) -> Any:
    return json.loads(json.dumps(lease).replace(node["metadata"]["uid"], "<owner>"))


async def test_born_nodes_and_leases_are_what_the_node_controller_makes_through_the_api(
        tmp_path: Path, session: aiohttp.ClientSession) -> None:
    server = Apiserver(tmp_path / "state")
    shapes = {"single": {}, "single2": {}, "dual": {"dual_stack": True}, "two": {"nodes": 2}}
    try:
        for name, settings in shapes.items():
            await server.add_cluster(name, **settings)
        await server.add_cluster("bare", controllers=False)  # no node controller: no nodes
        await server.start()
        clients = {n: client_of(server, n, session) for n in shapes}
        born_uids = set()
        for name, client in clients.items():
            nodes = (await client.list(NODES))["items"]
            leases = (await client.list(LEASES, "kube-node-lease"))["items"]
            assert [n["metadata"]["name"] for n in nodes] == [f"{name}-node-{i}" for i in
                                                             range(1, 3 if name == "two" else 4)]
            assert [le["metadata"]["ownerReferences"][0]["uid"] for le in leases] == [
                n["metadata"]["uid"] for n in nodes]
            born_uids |= {o["metadata"]["uid"] for o in [*nodes, *leases]}
            # its first node, made again by the node controller through the API, and its Lease (the collector deletes
            # the old one with the node)
            node, lease = nodes[0], leases[0]
            await client.delete(NODES, node["metadata"]["name"])

            again, again_lease = await asyncio.wait_for(remade(client, node), 15)
            assert again["spec"]["podCIDRs"] == node["spec"]["podCIDRs"]
            assert again["status"]["addresses"] == node["status"]["addresses"]
            assert normalized(again) == normalized(node)
            # the owner's uid is also a key of its managedFields (`k:{"uid":...}`)
            assert normalized(owned(again_lease, again)) == normalized(owned(lease, node))
            # a node Lease deleted alone is registered again for its node, as a kubelet would
            await client.delete(LEASES, again_lease["metadata"]["name"], "kube-node-lease")
            back = await asyncio.wait_for(lease_of(client, again), 15)
            assert back["metadata"]["uid"] != again_lease["metadata"]["uid"]
        assert len(born_uids) == 2 * (3 + 3 + 3 + 2)  # each cluster's own
        assert (await client_of(server, "bare", session).list(NODES))["items"] == []
    finally:
        await server.stop()


async def test_a_node_the_pipeline_refuses_is_left_to_the_node_controller(
        tmp_path: Path, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(cluster: Any, i: int) -> dict[str, Any]:
        node = nodes.desired_node(cluster, i)
        node["metadata"]["labels"]["bad"] = "not a label value!"
        return node

    monkeypatch.setattr(born_module, "desired_node", refused)
    server = Apiserver(tmp_path / "state")
    try:
        await server.add_cluster("refused")  # born all the same, without nodes
        assert server.resource_version("refused") > 0
        await server.start()
        client = client_of(server, "refused", session)

        async def registered() -> list[dict[str, Any]]:
            while len(listed := (await client.list(NODES))["items"]) < 3:
                await asyncio.sleep(0.02)
            return listed

        listed = await asyncio.wait_for(registered(), 15)  # made by the node controller, through the API
        assert all("bad" not in n["metadata"]["labels"] for n in listed)
    finally:
        await server.stop()
