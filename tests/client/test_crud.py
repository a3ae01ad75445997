"""ClusterClient against the embedded server: every verb, patch types, paging, raw requests."""

from __future__ import annotations

import pytest

from clusterset.api.resources import CONFIG_MAPS, DEPLOYMENTS, NAMESPACES, Resource
from clusterset.client import ClusterClient, Conflict, ConnectionFailed, NotFound

DEPLOYMENT = {
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "app", "image": "nginx:1"}]}},
    },
}


async def test_create_get_update_delete(client: ClusterClient) -> None:
    created = await client.create(CONFIG_MAPS, {"metadata": {"name": "a", "namespace": "default"}, "data": {"k": "1"}},
                                  field_manager="tester")
    assert created["metadata"]["uid"] and created["metadata"]["namespace"] == "default"
    assert created["metadata"]["managedFields"][0]["manager"] == "tester"
    got = await client.get(CONFIG_MAPS, "a", namespace="default")
    assert got["data"] == {"k": "1"}
    got["data"]["k"] = "2"
    updated = await client.update(CONFIG_MAPS, got)
    assert updated["data"] == {"k": "2"}
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    deleted = await client.delete(CONFIG_MAPS, "a", namespace="default")
    assert deleted is not None and deleted["kind"] == "Status" and deleted["details"]["name"] == "a"
    with pytest.raises(NotFound):
        await client.get(CONFIG_MAPS, "a", namespace="default")


async def test_cluster_scoped_and_explicit_namespace(client: ClusterClient) -> None:
    ns = await client.create(NAMESPACES, {"metadata": {"name": "team-a"}})
    assert ns["metadata"]["name"] == "team-a"
    await client.create(CONFIG_MAPS, {"metadata": {"name": "x"}}, namespace="team-a")
    assert (await client.get(CONFIG_MAPS, "x", namespace="team-a"))["metadata"]["namespace"] == "team-a"
    names = {n["metadata"]["name"] for n in (await client.list(NAMESPACES))["items"]}
    assert {"default", "kube-system", "team-a"} <= names
    with pytest.raises(ValueError, match="needs a namespace"):
        await client.create(CONFIG_MAPS, {"metadata": {"name": "nowhere"}})


async def test_dry_run_persists_nothing(client: ClusterClient) -> None:
    out = await client.create(CONFIG_MAPS, {"metadata": {"name": "dry", "namespace": "default"}}, dry_run=True)
    assert out["metadata"]["name"] == "dry"
    with pytest.raises(NotFound):
        await client.get(CONFIG_MAPS, "dry", namespace="default")


async def test_patch_types(client: ClusterClient) -> None:
    await client.create(DEPLOYMENTS, DEPLOYMENT)
    merged = await client.patch(DEPLOYMENTS, "web", {"metadata": {"labels": {"tier": "front"}}}, namespace="default")
    assert merged["metadata"]["labels"] == {"tier": "front"}
    # strategic: the containers list merges by name, a merge patch would replace it
    strategic = await client.patch(
        DEPLOYMENTS, "web", {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox"}]}}}},
        namespace="default", patch_type="strategic")
    assert [c["name"] for c in strategic["spec"]["template"]["spec"]["containers"]] == ["side", "app"]
    jsonp = await client.patch(DEPLOYMENTS, "web", [{"op": "replace", "path": "/spec/replicas", "value": 3}],
                               namespace="default", patch_type="json")
    assert jsonp["spec"]["replicas"] == 3
    scale = await client.get(DEPLOYMENTS, "web", namespace="default", subresource="scale")
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 3
    scaled = await client.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 5}}, namespace="default",
                                subresource="scale")
    assert scaled["spec"]["replicas"] == 5
    with pytest.raises(ValueError, match="patch_type"):
        await client.patch(DEPLOYMENTS, "web", {}, namespace="default", patch_type="yaml")


async def test_server_side_apply(client: ClusterClient) -> None:
    cm = {"metadata": {"name": "ssa", "namespace": "default"}, "data": {"owned": "by-a"}}
    out = await client.apply(CONFIG_MAPS, cm, field_manager="a")
    assert out["data"] == {"owned": "by-a"}
    assert [m["manager"] for m in out["metadata"]["managedFields"]] == ["a"]
    contested = {"metadata": {"name": "ssa", "namespace": "default"}, "data": {"owned": "by-b"}}
    with pytest.raises(Conflict) as exc:
        await client.apply(CONFIG_MAPS, contested, field_manager="b", force=False)
    assert exc.value.status == 409 and "conflict" in exc.value.message.lower()
    forced = await client.apply(CONFIG_MAPS, contested, field_manager="b")  # force=True by default
    assert forced["data"] == {"owned": "by-b"}


async def test_status_subresource_update(client: ClusterClient) -> None:
    created = await client.create(DEPLOYMENTS, DEPLOYMENT)
    created["status"] = {"observedGeneration": 1, "replicas": 1}
    created["spec"]["replicas"] = 9  # ignored by the status subresource
    out = await client.update(DEPLOYMENTS, created, subresource="status")
    assert out["status"]["observedGeneration"] == 1
    assert out["spec"]["replicas"] == 1


async def test_list_paging_and_selectors(client: ClusterClient) -> None:
    for i in range(7):
        await client.create(CONFIG_MAPS, {"metadata": {"name": f"c{i}", "namespace": "default",
                                                       "labels": {"parity": "odd" if i % 2 else "even"}}})
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page = await client.list(CONFIG_MAPS, namespace="default", limit=3, continue_=token,
                                 label_selector="parity in (odd,even)")
        pages += 1
        assert len(page["items"]) <= 3
        seen += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
    assert pages == 3 and seen == [f"c{i}" for i in range(7)]
    odd = await client.list(CONFIG_MAPS, namespace="default", label_selector="parity=odd")
    assert [i["metadata"]["name"] for i in odd["items"]] == ["c1", "c3", "c5"]
    one = await client.list(CONFIG_MAPS, namespace="default", field_selector="metadata.name=c4")
    assert [i["metadata"]["name"] for i in one["items"]] == ["c4"]
    assert one["kind"] == "ConfigMapList" and one["metadata"]["resourceVersion"]


async def test_raw_requests(client: ClusterClient) -> None:
    version = await client.request("GET", "/version")
    assert isinstance(version, dict) and version["major"] == "1"
    ready = await client.request("GET", "/readyz")
    assert isinstance(ready, str) and ready.strip() == "ok"
    bogus = Resource("example.com", "v1", "widgets", "Widget")
    with pytest.raises(NotFound):
        await client.list(bogus, namespace="default")


async def test_client_identity(client: ClusterClient, cluster: object) -> None:
    from clusterset.testing import ClusterInfo

    assert isinstance(cluster, ClusterInfo)
    assert client.server == cluster.server and client.name == cluster.name
    assert client.namespace == "default"


async def test_a_closed_client_refuses_instead_of_reconnecting(client: ClusterClient) -> None:
    await client.get(NAMESPACES, "default")
    await client.close()
    with pytest.raises(ConnectionFailed, match="is closed"):
        await client.get(NAMESPACES, "default")
    with pytest.raises(ConnectionFailed, match="is closed"):
        async for _ in client.watch(NAMESPACES):
            pass
