"""A request without its `/clusters/<name>` prefix goes to the cluster its token was issued for: kubectl drops the
server URL's path for `get --raw` (client-go's RequestURI), so `kubectl get --raw /api/v1/...` arrives at the root."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from clusterset.testing import ClusterInfo, ServerThread
from tests.apiserver.test_tokens import assert_unauthorized, request, token_for
from tests.helpers import core

if TYPE_CHECKING:
    from tests.conftest import Kubectl


def at_root(info: ClusterInfo) -> ClusterInfo:
    """The same cluster and token, its server URL without the cluster's path."""
    parts = urlsplit(info.server)
    return ClusterInfo(info.name, urlunsplit((parts.scheme, parts.netloc, "", "", "")), info.token, info.ca_file,
                       info.kubeconfig)


def configmap(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}


def test_a_path_without_its_cluster_goes_to_the_cluster_of_the_token(server: ServerThread) -> None:
    one, two = server.add_cluster(controllers=False), server.add_cluster(controllers=False)
    core(one).create_namespaced_config_map("default", configmap("only-in-one"))
    path = "/api/v1/namespaces/default/configmaps/only-in-one"

    status, body = request(at_root(one), "GET", path)
    assert status == 200 and body["data"] == {"k": "v"}, body
    status, body = request(at_root(two), "GET", path)  # the other cluster's token: the other cluster's objects
    assert status == 404 and body["reason"] == "NotFound", body
    # a write too, and what `/` lists is the cluster's own document
    status, body = request(at_root(two), "POST", "/api/v1/namespaces/default/configmaps", configmap("made-at-root"))
    assert status == 201, body
    assert core(two).read_namespaced_config_map("made-at-root", "default").data == {"k": "v"}
    status, body = request(at_root(one), "GET", "/")
    assert status == 200 and "/api" in body["paths"], body


def test_at_the_root_a_token_is_held_to_its_own_rules(cluster: ClusterInfo) -> None:
    root = at_root(cluster)
    assert_unauthorized(*request(root, "GET", "/api/v1/namespaces", token=""))
    assert_unauthorized(*request(root, "GET", "/api/v1/namespaces", token="not-a-token"))
    assert_unauthorized(*request(root, "GET", "/api/v1/namespaces", token="a.b.c"))
    # a ServiceAccount's token (which may list nothing here) is the same user at the root as under its cluster
    token = token_for(cluster)
    for info in (root, cluster):
        status, body = request(info, "GET", "/api/v1/namespaces", token=token)
        assert status == 403 and body["reason"] == "Forbidden", body
        assert "system:serviceaccount:default:default" in body["message"], body
    status, body = request(root, "GET", "/apis/authentication.k8s.io/v1", token=token)  # discovery: any user may
    assert status == 200 and body["kind"] == "APIResourceList", body


def test_kubectl_get_raw(kubectl: Kubectl) -> None:
    core(kubectl.info).create_namespaced_config_map("default", configmap("raw"))
    got = json.loads(kubectl("get", "--raw", "/api/v1/namespaces/default/configmaps/raw"))
    assert got["metadata"]["name"] == "raw" and got["data"] == {"k": "v"}
    resources = json.loads(kubectl("get", "--raw", "/apis/apps/v1"))
    assert "deployments" in {r["name"] for r in resources["resources"]}
