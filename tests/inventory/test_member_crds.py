"""An embedded fleet's members are born with the member CRDs: installed and Established by the server as part of
the member's bootstrap (`ClusterCRDs`), the same objects a join would have created, so a member's join finds them
and writes none, and the CRD controllers have nothing to do for them."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from clusterset.api import crds as manifests
from clusterset.api.inventory import CLUSTER_ID_PROPERTY
from clusterset.api.objects import condition
from clusterset.api.resources import CLUSTER_PROPERTIES, CRDS, NAMESPACES, Resource
from clusterset.apiserver import Apiserver, ClusterCRDs
from clusterset.client import ClientConfig, ClusterClient, NotFound
from clusterset.fleet.embedded import EmbeddedFleet, FleetOptions, member_crds
from clusterset.inventory.registration import ensure_member_crds, member_crd_manifests

MEMBER_CRD_NAMES = sorted(crd["metadata"]["name"] for crd in member_crd_manifests())
SERVICE_EXPORTS = Resource("multicluster.x-k8s.io", "v1alpha1", "serviceexports", "ServiceExport")
APISERVICES = Resource("apiregistration.k8s.io", "v1", "apiservices", "APIService", namespaced=False)


@pytest.fixture
async def server() -> AsyncIterator[Apiserver]:
    apiserver = Apiserver(None)
    try:
        yield apiserver
    finally:
        await apiserver.stop()


def client_of(server: Apiserver, name: str, session: aiohttp.ClientSession) -> ClusterClient:
    return ClusterClient(ClientConfig(server=server.cluster_url(name), name=name, ca_data=server.ca_pem.encode(),
                                      token=server.cluster_token(name)), session, in_process=server.in_process(name))


def established(crd: dict[str, Any]) -> bool:
    conditions = (crd.get("status") or {}).get("conditions")
    return all((condition(conditions, t) or {}).get("status") == "True" for t in ("NamesAccepted", "Established"))


def normalized(obj: Any) -> Any:
    """What two clusters' copies of the same objects share: all but uids, times and resourceVersions."""
    text = json.dumps(obj)
    text = re.sub(r'"\d{4}-\d\d-\d\dT[0-9:.]+Z"', '"<time>"', text)
    text = re.sub(r'"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"', '"<uid>"', text)
    return json.loads(re.sub(r'"resourceVersion": "\d+"', '"resourceVersion": "<rv>"', text))


async def test_a_cluster_born_with_crds_has_what_their_creation_and_establishing_would_have_written(
        server: Apiserver, session: aiohttp.ClientSession) -> None:
    await server.add_cluster("born", crds=member_crds())
    await server.add_cluster("joined")
    await server.start()
    born, joined = client_of(server, "born", session), client_of(server, "joined", session)
    before = (await born.list(CRDS))["items"]
    await ensure_member_crds(born)  # what a join does first: it finds them current
    await server.wait_idle()
    assert (await born.list(CRDS))["items"] == before, "ensure_member_crds wrote to a member born with its CRDs"
    assert server.reconcile_count("crd-establishing") == 0
    await ensure_member_crds(joined)  # as a join installs them in a cluster without them (over HTTPS alike)
    await server.wait_idle()
    have = {name: (await c.list(CRDS))["items"] for name, c in (("born", born), ("joined", joined))}
    assert sorted(crd["metadata"]["name"] for crd in have["born"]) == MEMBER_CRD_NAMES
    assert all(established(crd) for crd in have["born"])
    assert normalized(have["born"]) == normalized(have["joined"])
    kube_system = await born.get(NAMESPACES, "kube-system")
    assert all(int(crd["metadata"]["resourceVersion"]) < int(kube_system["metadata"]["resourceVersion"])
               for crd in have["born"]), "the CRDs are part of the cluster's bootstrap"
    # their APIServices and discovery, as the controllers made them for the joined cluster
    services = {name: normalized([s for s in (await c.list(APISERVICES))["items"]
                                  if s["spec"]["group"] in ("about.k8s.io", "multicluster.x-k8s.io")])
                for name, c in (("born", born), ("joined", joined))}
    assert len(services["born"]) == 4 and services["born"] == services["joined"]
    for path in ("/apis", "/apis/multicluster.x-k8s.io/v1alpha1", "/apis/about.k8s.io/v1beta1"):
        assert await born.request("GET", path) == await joined.request("GET", path)
    # each cluster's own objects
    assert not {c["metadata"]["uid"] for c in have["born"]} & {c["metadata"]["uid"] for c in have["joined"]}


async def test_crds_a_cluster_is_born_with_are_normal_objects(server: Apiserver,
                                                              session: aiohttp.ClientSession) -> None:
    crds = member_crds()
    await server.add_cluster("a", crds=crds)
    await server.add_cluster("b", crds=crds)
    await server.start()
    a, b = client_of(server, "a", session), client_of(server, "b", session)
    export = {"metadata": {"name": "web", "namespace": "default"}}
    await a.create(SERVICE_EXPORTS, export)  # served from the start
    crd = await a.get(CRDS, "serviceexports.multicluster.x-k8s.io")
    crd["metadata"].setdefault("labels", {})["changed"] = "yes"
    updated = await a.update(CRDS, crd)
    assert int(updated["metadata"]["resourceVersion"]) > int(crd["metadata"]["resourceVersion"])
    await a.delete(CRDS, "serviceexports.multicluster.x-k8s.io")  # its objects go, then the kind is not served

    async def gone() -> None:
        while True:
            try:
                await a.list(SERVICE_EXPORTS, "default")
            except NotFound:
                return
            await asyncio.sleep(0.02)

    await asyncio.wait_for(gone(), 10)
    with pytest.raises(NotFound):
        await a.get(CRDS, "serviceexports.multicluster.x-k8s.io")
    # the other cluster's copies are its own
    assert (await b.get(CRDS, "serviceexports.multicluster.x-k8s.io"))["metadata"].get("labels", {}).get(
        "changed") is None
    assert (await b.create(SERVICE_EXPORTS, export))["metadata"]["name"] == "web"


async def test_crds_that_cannot_be_created_leave_no_cluster_behind(server: Apiserver) -> None:
    bad = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "things.example.com"},
           "spec": {"group": "example.com", "scope": "Cluster", "names": {"plural": "widgets", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
    with pytest.raises(Exception, match=r"things\.example\.com") as refused:
        await server.add_cluster("a", crds=ClusterCRDs([bad], "test"))
    assert getattr(refused.value, "code", None) == 422  # as its create would be refused
    assert server.cluster_names() == []


async def test_fleet_members_keep_their_crds_across_a_restart_and_joins_write_none(tmp_path: Path) -> None:
    options = FleetOptions(tmp_path / "fleet", members=2, dns=False)
    fleet = EmbeddedFleet(options)
    await fleet.start()
    try:
        await fleet.wait_healthy()
        member = fleet.local_client("member-1")
        uids = {c["metadata"]["name"]: c["metadata"]["uid"] for c in (await member.list(CRDS))["items"]}
        assert sorted(uids) == MEMBER_CRD_NAMES
        await fleet.server.wait_idle()
        # the hub's CRDs (created, then their status written); the members' needed none
        assert fleet.server.reconcile_count("crd-establishing") <= 2 * len(manifests.HUB_CRDS)
        properties = (await member.list(CLUSTER_PROPERTIES))["items"]
        assert CLUSTER_ID_PROPERTY in {p["metadata"]["name"] for p in properties}
    finally:
        await fleet.stop()
    again = EmbeddedFleet(options)
    await again.start()
    try:
        await again.wait_healthy()
        member = again.local_client("member-1")
        items = (await member.list(CRDS))["items"]
        assert {c["metadata"]["name"]: c["metadata"]["uid"] for c in items} == uids
        assert all(established(c) for c in items)
        assert (await member.list(SERVICE_EXPORTS, "default"))["items"] == []
    finally:
        await again.stop()
