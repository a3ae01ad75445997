"""Metadata-only answers (`Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1`, and
`as=PartialObjectMetadataList` for lists), as kube-apiserver gives them to metadata informers and to a join's
digest check of its CRDs: over HTTPS, with the official client and with aiohttp, and in process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from kubernetes import client

from clusterset.api import crds
from clusterset.api.resources import CONFIG_MAPS, CRDS
from clusterset.apiserver import Apiserver
from clusterset.client import ClientConfig, ClusterClient, RetryPolicy
from clusterset.testing import ClusterInfo

META = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
META_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
# what client-go's metadata client sends: protobuf first (answered as JSON here, which it also decodes)
CLIENT_GO_LIST = ("application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
                  "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1")


def get(cluster: ClusterInfo, path: str, accept: str, query: dict[str, str] | None = None) -> tuple[int, Any]:
    """A GET through the official client's ApiClient, its Accept header as given: (status, decoded body)."""
    api = cluster.api_client()
    try:
        url = cluster.server + path + (f"?{urlencode(query)}" if query else "")
        resp = api.call_api("GET", url, header_params={"Accept": accept, "Authorization": f"Bearer {cluster.token}"})
        resp.read()
        return resp.status, json.loads(resp.data)
    finally:
        api.close()


def call(cluster: ClusterInfo, path: str, accept: str, query: dict[str, str] | None = None) -> Any:
    status, body = get(cluster, path, accept, query)
    assert status == 200, body
    return body


def refusal(cluster: ClusterInfo, path: str, accept: str) -> dict[str, Any]:
    code, status = get(cluster, path, accept)
    assert code == 406
    assert status["kind"] == "Status" and status["reason"] == "NotAcceptable" and status["code"] == 406
    return dict(status)


def test_an_object_and_a_list_as_their_metadata(cluster: ClusterInfo) -> None:
    core = client.CoreV1Api(cluster.api_client())
    made = core.create_namespaced_config_map("default", {"metadata": {"name": "cfg", "labels": {"a": "b"},
                                                                      "annotations": {"x": "y"}},
                                                         "data": {"big": "z" * 10_000}})
    full = call(cluster, "/api/v1/namespaces/default/configmaps/cfg", "application/json")
    one = call(cluster, "/api/v1/namespaces/default/configmaps/cfg", META)
    assert one == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": full["metadata"]}
    assert one["metadata"]["resourceVersion"] == made.metadata.resource_version
    assert one["metadata"]["managedFields"][0]["manager"]  # the whole ObjectMeta, as upstream
    beta = call(cluster, "/api/v1/namespaces/default/configmaps/cfg", META.replace("v=v1", "v=v1beta1"))
    assert beta["apiVersion"] == "meta.k8s.io/v1beta1"

    core.create_namespaced_config_map("default", {"metadata": {"name": "other"}})
    listed = call(cluster, "/api/v1/namespaces/default/configmaps", CLIENT_GO_LIST, {"limit": "2"})
    assert listed["kind"] == "PartialObjectMetadataList" and listed["apiVersion"] == "meta.k8s.io/v1"
    assert [(i["kind"], i["apiVersion"]) for i in listed["items"]] == [("PartialObjectMetadata", "meta.k8s.io/v1")] * 2
    assert [i["metadata"]["name"] for i in listed["items"]] == ["cfg", "kube-root-ca.crt"]
    assert "data" not in listed["items"][0] and listed["metadata"]["continue"]
    assert int(listed["metadata"]["resourceVersion"]) >= int(made.metadata.resource_version)
    rest = call(cluster, "/api/v1/namespaces/default/configmaps", META_LIST,
                {"limit": "2", "continue": listed["metadata"]["continue"]})
    assert [i["metadata"]["name"] for i in rest["items"]] == ["other"]
    none = call(cluster, "/api/v1/namespaces/default/configmaps", META_LIST, {"labelSelector": "no=such"})
    assert none["items"] is None  # a nil slice in Go, as kube-apiserver writes it
    # a Table is still a Table, a plain Accept the object
    assert call(cluster, "/api/v1/namespaces/default/configmaps/cfg",
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json")["kind"] == "Table"
    assert call(cluster, "/api/v1/namespaces/default/configmaps/cfg", "*/*")["data"]["big"] == "z" * 10_000


def test_what_cannot_be_answered_is_406(cluster: ClusterInfo) -> None:
    client.CoreV1Api(cluster.api_client()).create_namespaced_config_map("default", {"metadata": {"name": "cfg"}})
    one, many = "/api/v1/namespaces/default/configmaps/cfg", "/api/v1/namespaces/default/configmaps"
    assert "the requested object is a list" in refusal(cluster, many, META)["message"]
    assert "the requested object is not a list" in refusal(cluster, one, META_LIST)["message"]
    # upstream negotiates the first clause it knows, then fails to transform: a fallback after it does not help
    refusal(cluster, many, META + ",application/json")
    # only transforms that do not exist: the media types it serves
    unknown = refusal(cluster, one, "application/json;as=Nothing;g=meta.k8s.io;v=v1,"
                                    "application/json;as=PartialObjectMetadata;g=apps;v=v1")
    assert unknown["message"].startswith("only the following media types are accepted: application/json")
    # a transform it does not know, then one it does: the one it does
    assert call(cluster, one, "application/json;as=Nothing;g=meta.k8s.io;v=v1," + META)["kind"] == \
        "PartialObjectMetadata"


def test_a_custom_resource_metadata_in_object_meta_order(member: ClusterInfo) -> None:
    custom = client.CustomObjectsApi(member.api_client())
    custom.create_cluster_custom_object("about.k8s.io", "v1beta1", "clusterproperties", {
        "apiVersion": "about.k8s.io/v1beta1", "kind": "ClusterProperty",
        "metadata": {"name": "cluster.clusterset.k8s.io", "labels": {"z": "1"}}, "spec": {"value": "m1"}})
    path = "/apis/about.k8s.io/v1beta1/clusterproperties/cluster.clusterset.k8s.io"
    stored = call(member, path, "application/json")["metadata"]
    partial = call(member, path, META)["metadata"]
    assert partial == stored
    assert list(stored) == sorted(stored)  # an unstructured object's keys, sorted
    assert list(partial)[:5] == ["name", "uid", "resourceVersion", "generation", "creationTimestamp"]


@pytest.fixture
async def local_server() -> AsyncIterator[Apiserver]:
    server = Apiserver(None)
    await server.add_cluster("one", controllers=False)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def clients(server: Apiserver) -> tuple[ClusterClient, ClusterClient]:
    """The same cluster in process (at a URL where nothing listens) and over HTTPS."""
    config = ClientConfig(server=server.cluster_url("one"), ca_data=server.ca_pem.encode(),
                          token=server.cluster_token("one"), retry=RetryPolicy(attempts=1))
    local = ClusterClient(ClientConfig(server="https://127.0.0.1:1/clusters/one", ca_data=config.ca_data,
                                       token=config.token, retry=config.retry), in_process=server.in_process("one"))
    return local, ClusterClient(config)


async def test_in_process_answers_as_https_and_watches_carry_metadata(local_server: Apiserver) -> None:
    server = local_server
    local, https = clients(server)
    try:
        for manifest in crds.member_crds():
            await local.create(CRDS, manifest)
        name = "serviceexports.multicluster.x-k8s.io"
        assert await local.get_metadata(CRDS, name) == await https.get_metadata(CRDS, name)
        got = await local.get_metadata(CRDS, name)
        assert got["metadata"] == (await https.get(CRDS, name))["metadata"] and "spec" not in got

        headers = {"Authorization": f"Bearer {server.cluster_token('one')}", "Accept": META}
        path = CONFIG_MAPS.path("default")
        params = {"watch": "1", "timeoutSeconds": "2", "allowWatchBookmarks": "true", "sendInitialEvents": "true",
                  "resourceVersionMatch": "NotOlderThan"}
        async with aiohttp.ClientSession() as session, session.get(
                server.cluster_url("one") + path, headers=headers, ssl=False, params=params) as resp:
            assert resp.status == 200
            await local.create(CONFIG_MAPS, {"metadata": {"name": "w", "namespace": "default"}, "data": {"k": "v"}})
            lines = [json.loads(line) async for line in resp.content if line.strip()]
        objects = {(e["type"], e["object"]["kind"], e["object"]["metadata"].get("name")) for e in lines}
        assert ("ADDED", "PartialObjectMetadata", "w") in objects
        assert ("ADDED", "PartialObjectMetadata", "kube-root-ca.crt") in objects
        assert ("BOOKMARK", "PartialObjectMetadata", None) in objects  # the end of the initial events
        assert all("data" not in e["object"] for e in lines)
    finally:
        await local.close()
        await https.close()
