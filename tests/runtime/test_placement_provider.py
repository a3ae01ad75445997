"""PlacementDecisionProvider on an embedded fleet: a Manager engages exactly the clusters a placement's
PlacementDecision slices name (written by hand here, as any scheduler would), through the profiles' access
providers, and a controller reconciles objects in just those clusters."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from clusterset.api.placement import DECISION_INDEX_LABEL, DECISION_KEY_LABEL, PLACEMENT_DECISIONS, decision_name
from clusterset.api.resources import CONFIG_MAPS, NAMESPACES
from clusterset.client import ClusterClient, NotFound
from clusterset.runtime import Controller, Manager, ObjectKey, PlacementDecisionProvider, Request, Watch
from clusterset.runtime.placements import decided_clusters
from clusterset.testing import FleetThread
from tests.mcs.fleet import fleet_options
from tests.runtime.util import MINE, client_of, cm, eventually

MEMBERS = ("member-1", "member-2", "member-3")
NS = "apps"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetThread]:
    fleet = FleetThread(fleet_options(Path(tmp_path_factory.mktemp("placement-provider")) / "fleet", dns=False))
    try:
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture
async def hub(fleet: FleetThread) -> AsyncIterator[ClusterClient]:
    client = client_of(fleet.info("hub"))
    yield client
    await client.close()


def slice_of(index: int, *refs: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": decision_name("web", index), "namespace": NS,
                         "labels": {DECISION_KEY_LABEL: "web", DECISION_INDEX_LABEL: str(index)}},
            "decisions": [{"clusterProfileRef": ref} for ref in refs]}


async def decide(hub: ClusterClient, index: int, *refs: dict[str, str]) -> None:
    body = slice_of(index, *refs)
    try:
        old = await hub.get(PLACEMENT_DECISIONS, body["metadata"]["name"], namespace=NS)
    except NotFound:
        await hub.create(PLACEMENT_DECISIONS, body)
    else:
        await hub.update(PLACEMENT_DECISIONS, {**old, "decisions": body["decisions"]})


def ref(name: str, namespace: str | None = "clusterset") -> dict[str, str]:
    return {"name": name, "namespace": namespace} if namespace else {"name": name}


def test_decided_clusters_join_slices_in_order_and_default_the_namespace() -> None:
    slices = [slice_of(1, ref("c"), ref("a")), slice_of(0, ref("b", None), ref("a")), slice_of(10, ref("d"))]
    assert decided_clusters(slices) == [ObjectKey(NS, "b"), ObjectKey("clusterset", "a"),
                                        ObjectKey("clusterset", "c"), ObjectKey("clusterset", "d")]
    assert decided_clusters([{"metadata": {"namespace": NS}, "decisions": [{"clusterProfileRef": {}}, None]}]) == []


async def test_a_manager_engages_exactly_the_decided_clusters(fleet: FleetThread, hub: ClusterClient,
                                                              tmp_path: Path) -> None:
    for member in MEMBERS:
        async with client_of(fleet.info(member)) as c:
            await c.create(CONFIG_MAPS, cm("hello"))
    await hub.create(NAMESPACES, {"metadata": {"name": NS}})
    provider_file = tmp_path / "providers.json"
    provider_file.write_text(json.dumps({"providers": [{"name": "clusterset-embedded", "execConfig": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
        "args": ["-m", "clusterset.cli.main", "credential-plugin", "embedded"], "provideClusterInfo": True}}]}))

    async def mark(req: Request) -> None:  # a controller that writes into the clusters it runs on
        await req.cluster.client.patch(CONFIG_MAPS, req.name, {"data": {"seen-by": "placement"}},
                                       namespace=req.namespace)

    provider = PlacementDecisionProvider(hub, NS, "web", provider_file=str(provider_file))
    manager = Manager(provider, name="placement-consumer")
    manager.add(Controller("mark", mark, [Watch(CONFIG_MAPS, namespace="default", label_selector=MINE)]))

    async def marked(member: str) -> bool:
        async with client_of(fleet.info(member)) as c:
            return ((await c.get(CONFIG_MAPS, "hello", namespace="default")).get("data") or {}).get("seen-by") \
                == "placement"

    async with manager:
        await decide(hub, 0, ref("member-1"), ref("member-2"))
        await eventually(lambda: set(manager.clusters) == {"member-1", "member-2"}, timeout=30,
                         message="the decided clusters engaged")
        await eventually(lambda: marked("member-1"), message="an object reconciled in member-1")
        await eventually(lambda: marked("member-2"), message="an object reconciled in member-2")
        assert not await marked("member-3")
        assert manager.cluster("member-1").client.config.exec is not None  # through the profile's access provider
        two = manager.cluster("member-2")

        # member-2 moves to another slice (not re-engaged), member-3 joins; member-1 is named without a
        # namespace, so in the slice's, where no such profile exists: disengaged
        await decide(hub, 1, ref("member-3"), ref("member-2"))
        await decide(hub, 0, ref("member-1", None))
        await eventually(lambda: set(manager.clusters) == {"member-2", "member-3"}, timeout=30,
                         message="the new decision")
        assert manager.cluster("member-2") is two
        assert [k.name for k in provider.decided] == ["member-1", "member-3", "member-2"]
        await eventually(lambda: marked("member-3"), message="an object reconciled in member-3")

        await hub.delete(PLACEMENT_DECISIONS, decision_name("web", 1), namespace=NS)
        await hub.delete(PLACEMENT_DECISIONS, decision_name("web", 0), namespace=NS)
        await eventually(lambda: not manager.clusters, message="every cluster disengaged")
        assert two.client._session is None  # its client closed
