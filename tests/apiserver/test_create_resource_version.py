"""A create that carries metadata.resourceVersion, as kube-apiserver answers it: only a version the store could
have issued (a non-zero integer) is refused; anything else is dropped and the object created."""

from __future__ import annotations

import json

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from clusterset.testing import ClusterInfo

CM = "/api/v1/namespaces/default/configmaps"


def post(info: ClusterInfo, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    http = urllib3.PoolManager(ca_certs=info.ca_file)
    resp = http.request("POST", info.server + CM, body=json.dumps(body).encode(),
                        headers={"Authorization": f"Bearer {info.token}", "Content-Type": "application/json"})
    return resp.status, json.loads(resp.data)


@pytest.mark.parametrize("version", ["v1", "0", "-1", "", "1.5", "18446744073709551616"])
def test_a_version_the_store_never_issues_is_dropped(cluster: ClusterInfo, version: str) -> None:
    status, created = post(cluster, {"metadata": {"name": "cfg", "resourceVersion": version}})
    assert status == 201, created
    meta = created["metadata"]
    assert isinstance(meta, dict)
    assert meta["resourceVersion"] != version and int(meta["resourceVersion"]) > 0


@pytest.mark.parametrize("version", ["5", "007"])
def test_a_stored_version_is_refused_as_upstream(cluster: ClusterInfo, version: str) -> None:
    """etcd3's store returns a plain error, which kube-apiserver answers as a 500 without a reason."""
    status, result = post(cluster, {"metadata": {"name": "cfg", "resourceVersion": version}})
    assert status == 500
    assert result == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": "resourceVersion should not be set on objects to be created", "code": 500}


def test_the_official_client_creates_with_a_copied_non_numeric_version(cluster: ClusterInfo) -> None:
    api = client.CoreV1Api(cluster.api_client())
    created = api.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="copy", resource_version="v1")))
    assert int(created.metadata.resource_version) > 0
    with pytest.raises(ApiException) as exc:
        api.create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="again", resource_version="12")))
    assert exc.value.status == 500
    assert json.loads(exc.value.body)["message"] == "resourceVersion should not be set on objects to be created"
