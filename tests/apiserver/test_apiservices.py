"""`apiregistration.k8s.io/v1` APIServices: Local ones for what the cluster serves (built-in and CRD group
versions), aggregated ones stored but reported unavailable with the reason, upstream's validation and columns."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from clusterset.api.resources import Resource
from clusterset.apiserver import Apiserver
from clusterset.client import NotFound
from clusterset.fleet.embedded import member_crds
from clusterset.testing import ClusterInfo
from tests.apiserver.test_bad_input import CRD_BODY, Raw
from tests.conftest import Kubectl
from tests.helpers import wait_until
from tests.inventory.test_member_crds import client_of

APISERVICES = "/apis/apiregistration.k8s.io/v1/apiservices"
APISERVICE_RES = Resource("apiregistration.k8s.io", "v1", "apiservices", "APIService", namespaced=False)
METRICS = {
    "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "v1beta1.metrics.k8s.io"},
    "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100, "versionPriority": 100,
             "insecureSkipTLSVerify": True, "service": {"namespace": "kube-system", "name": "metrics-server"}},
}


def apiservice(raw: Raw, name: str) -> dict[str, Any] | None:
    status, body = raw("GET", f"{APISERVICES}/{name}")
    return body if status == 200 else None


def available(raw: Raw, name: str) -> dict[str, Any] | None:
    found = apiservice(raw, name)
    conditions = (found or {}).get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == "Available"), None)


def test_discovery_lists_the_group_and_its_status_subresource(cluster: ClusterInfo) -> None:
    raw = Raw(cluster)
    _, groups = raw("GET", "/apis")
    assert "apiregistration.k8s.io" in [g["name"] for g in groups["groups"]]
    _, resources = raw("GET", "/apis/apiregistration.k8s.io/v1")
    by_name = {r["name"]: r for r in resources["resources"]}
    assert by_name["apiservices"]["kind"] == "APIService" and by_name["apiservices"]["namespaced"] is False
    assert by_name["apiservices"]["categories"] == ["api-extensions"]
    assert by_name["apiservices/status"]["verbs"] == ["get", "patch", "update"]


def test_every_served_builtin_group_version_has_a_local_apiservice(cluster: ClusterInfo) -> None:
    raw = Raw(cluster)
    core = wait_until(lambda: apiservice(raw, "v1."), message="the v1. APIService")
    assert core["spec"] == {"group": "", "version": "v1", "groupPriorityMinimum": 18000, "versionPriority": 1}
    assert core["metadata"]["labels"] == {"kube-aggregator.kubernetes.io/automanaged": "onstart"}
    condition = available(raw, "v1.")
    assert condition is not None
    assert (condition["status"], condition["reason"]) == ("True", "Local")
    assert condition["message"] == "Local APIServices are always available"
    apps = wait_until(lambda: apiservice(raw, "v1.apps"), message="the v1.apps APIService")
    assert apps["spec"]["groupPriorityMinimum"] == 17800 and apps["spec"]["versionPriority"] == 15
    _, listed = raw("GET", APISERVICES)
    names = {item["metadata"]["name"] for item in listed["items"]}
    assert {"v1.", "v1.apps", "v1.batch", "v1.rbac.authorization.k8s.io", "v1.apiextensions.k8s.io"} <= names


def test_a_crd_group_version_gets_a_local_apiservice_while_served(cluster: ClusterInfo) -> None:
    raw = Raw(cluster)
    status, _ = raw("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json.dumps(CRD_BODY))
    assert status == 201
    made = wait_until(lambda: apiservice(raw, "v1.example.com"), message="the CRD's APIService")
    assert made["spec"] == {"group": "example.com", "version": "v1", "groupPriorityMinimum": 1000,
                            "versionPriority": 100}
    assert made["metadata"]["labels"] == {"kube-aggregator.kubernetes.io/automanaged": "true"}
    assert (available(raw, "v1.example.com") or {}).get("status") == "True"
    status, _ = raw("DELETE", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.example.com")
    assert status == 200
    wait_until(lambda: apiservice(raw, "v1.example.com") is None, message="the CRD's APIService to go")


def test_an_aggregated_apiservice_is_stored_but_unavailable_with_the_reason(cluster: ClusterInfo) -> None:
    raw = Raw(cluster)
    status, created = raw("POST", APISERVICES, json.dumps(METRICS))
    assert status == 201, created
    assert created["spec"]["service"]["port"] == 443  # defaulted
    missing = wait_until(lambda: available(raw, METRICS["metadata"]["name"]), message="an Available condition")
    assert (missing["status"], missing["reason"]) == ("False", "ServiceNotFound")
    assert missing["message"].startswith('service/metrics-server in "kube-system" is not present; ')
    assert "does not proxy to aggregated API servers" in missing["message"]
    service = {"metadata": {"name": "metrics-server"}, "spec": {"ports": [{"port": 443, "targetPort": 4443}]}}
    status, _ = raw("POST", "/api/v1/namespaces/kube-system/services", json.dumps(service))
    assert status == 201
    failing = wait_until(lambda: (c := available(raw, "v1beta1.metrics.k8s.io")) and c["reason"] != "ServiceNotFound"
                         and c, message="FailedDiscoveryCheck")
    assert (failing["status"], failing["reason"]) == ("False", "FailedDiscoveryCheck")
    assert failing["message"].startswith(
        "failing or missing response from https://metrics-server.kube-system.svc:443/apis/metrics.k8s.io/v1beta1: ")
    status, _ = raw("DELETE", "/api/v1/namespaces/kube-system/services/metrics-server", None)
    assert status == 200
    wait_until(lambda: (c := available(raw, "v1beta1.metrics.k8s.io")) and c["reason"] == "ServiceNotFound",
               message="ServiceNotFound again once its Service is gone")


def test_validation_as_upstream(cluster: ClusterInfo) -> None:
    api = client.ApiregistrationV1Api(cluster.api_client())

    def refused(body: dict[str, Any]) -> str:
        try:
            api.create_api_service(body)
        except ApiException as err:
            assert err.status == 422, err.body
            return str(json.loads(err.body)["message"])
        raise AssertionError("created")

    wrong_name = {**METRICS, "metadata": {"name": "metrics"}}
    assert refused(wrong_name) == ('APIService.apiregistration.k8s.io "metrics" is invalid: metadata.name: Invalid '
                                   'value: "metrics": must be `spec.version+"."+spec.group`: "v1beta1.metrics.k8s.io"')
    both = {**METRICS, "spec": {**METRICS["spec"], "caBundle": "Y2E="}}
    assert "spec.insecureSkipTLSVerify: Invalid value: true: may not be true if caBundle is present" in refused(both)
    local = {**METRICS, "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100,
                                 "versionPriority": 100, "caBundle": "Y2E="}}
    assert 'spec.caBundle: Invalid value: "2 bytes": local APIServices may not have a caBundle' in refused(local)
    no_priority = {**METRICS, "spec": {**METRICS["spec"], "groupPriorityMinimum": 0}}
    assert "spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000" in refused(no_priority)


def test_kubectl_get_apiservices(kubectl: Kubectl) -> None:
    raw = Raw(kubectl.info)
    wait_until(lambda: available(raw, "v1.apps"), message="v1.apps to be available")
    status, _ = raw("POST", APISERVICES, json.dumps(METRICS))
    assert status == 201
    wait_until(lambda: available(raw, "v1beta1.metrics.k8s.io"), message="the metrics APIService's condition")
    lines = kubectl("get", "apiservices").splitlines()
    assert lines[0].split() == ["NAME", "SERVICE", "AVAILABLE", "AGE"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows["v1."][:2] == ["Local", "True"]
    assert rows["v1.apps"][:2] == ["Local", "True"]
    assert rows["v1beta1.metrics.k8s.io"][:3] == ["kube-system/metrics-server", "False", "(ServiceNotFound)"]


async def test_apiservices_as_wanted_are_left_alone_and_the_rest_put_right_across_a_restart(
        tmp_path: Path, session: aiohttp.ClientSession) -> None:
    """A new cluster is born with its Local APIServices (its CRDs' versions' too); one changed by hand is put back at
    once, a built-in one deleted comes back at the next start (upstream's "onstart"), and a restart looks at none of
    the ones stored as wanted."""
    state = tmp_path / "state"
    server = Apiserver(state)
    try:
        await server.add_cluster("m", crds=member_crds())
        await server.start()
        m = client_of(server, "m", session)
        crd_made = await m.get(APISERVICE_RES, "v1beta1.multicluster.x-k8s.io")
        assert crd_made["metadata"]["labels"] == {"kube-aggregator.kubernetes.io/automanaged": "true"}
        assert server.reconcile_count("apiservices") == 0  # born as wanted: nothing to look at
        await m.patch(APISERVICE_RES, "v1beta1.multicluster.x-k8s.io", {"spec": {"versionPriority": 7}})

        async def put_back() -> bool:
            found = await m.get(APISERVICE_RES, "v1beta1.multicluster.x-k8s.io")
            return bool(found["spec"]["versionPriority"] == crd_made["spec"]["versionPriority"])

        await wait_for(put_back, "the changed APIService put back")
        await m.delete(APISERVICE_RES, "v1.apps")
        await asyncio.wait_for(server.wait_idle(), 10)  # an "onstart" one is not made again while the server runs
        with pytest.raises(NotFound):
            await m.get(APISERVICE_RES, "v1.apps")
    finally:
        await server.stop()
    again = Apiserver(state)
    try:
        await again.start()
        m = client_of(again, "m", session)

        async def back() -> bool:
            try:
                return bool(await m.get(APISERVICE_RES, "v1.apps"))
            except NotFound:
                return False

        await wait_for(back, "v1.apps back after the restart")
        await asyncio.wait_for(again.wait_idle(), 10)
        assert again.reconcile_count("apiservices") == 1  # that one only
    finally:
        await again.stop()


async def wait_for(predicate: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
