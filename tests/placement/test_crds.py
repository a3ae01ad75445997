"""The Placement and Work CRDs as the embedded server serves them: upstream's PlacementDecision, Work and
AppliedWork shapes, clusterset's Placement, ClusterSetBinding and WorkSet, each refusing bad input by field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from clusterset.api import crds
from clusterset.testing import ClusterInfo
from tests.helpers import core, custom, install

UPSTREAM = "multicluster.x-k8s.io"
OURS = "clusterset.io"


@pytest.fixture
def hub(cluster: ClusterInfo) -> ClusterInfo:
    install(cluster, crds.hub_crds())
    core(cluster).create_namespace({"metadata": {"name": "apps"}})
    return cluster


def refused_fields(call: Any) -> list[str]:
    with pytest.raises(ApiException) as caught:
        call()
    assert caught.value.status == 422, caught.value.body
    body = json.loads(caught.value.body)
    return [c.get("field", "") for c in body["details"]["causes"]]


def test_placement_decision_is_upstreams_data_only_shape(hub: ClusterInfo) -> None:
    api = custom(hub)
    decision = {"apiVersion": f"{UPSTREAM}/v1alpha1", "kind": "PlacementDecision",
                "metadata": {"name": "web-decision-0", "namespace": "apps"},
                "schedulerName": "clusterset",
                "decisions": [{"clusterProfileRef": {"name": "member-1", "namespace": "clusterset",
                                                     "apiVersion": "pruned"}, "reason": "env=prod"}]}
    made = api.create_namespaced_custom_object(UPSTREAM, "v1alpha1", "apps", "placementdecisions", decision)
    assert made["decisions"] == [{"clusterProfileRef": {"name": "member-1", "namespace": "clusterset"},
                                  "reason": "env=prod"}]
    too_many = {**decision, "metadata": {"name": "big", "namespace": "apps"},
                "decisions": [{"clusterProfileRef": {"name": f"m{i}"}} for i in range(101)]}
    assert refused_fields(lambda: api.create_namespaced_custom_object(
        UPSTREAM, "v1alpha1", "apps", "placementdecisions", too_many)) == ["decisions"]
    missing = {k: v for k, v in decision.items() if k != "decisions"} | {"metadata": {"name": "x"}}
    assert refused_fields(lambda: api.create_namespaced_custom_object(
        UPSTREAM, "v1alpha1", "apps", "placementdecisions", missing)) == ["decisions"]


def test_placement_defaults_and_refuses_bad_fields(hub: ClusterInfo) -> None:
    api = custom(hub)
    placement = {"apiVersion": f"{OURS}/v1alpha1", "kind": "Placement",
                 "metadata": {"name": "web", "namespace": "apps"},
                 "spec": {"numberOfClusters": 2,
                          "prioritizers": [{"type": "Balance"}],
                          "spreadConstraints": [{"topologyKey": "topology.kubernetes.io/zone"}]}}
    made = api.create_namespaced_custom_object(OURS, "v1alpha1", "apps", "placements", placement)
    assert made["spec"]["prioritizers"] == [{"type": "Balance", "weight": 1}]
    assert made["spec"]["spreadConstraints"] == [{"topologyKey": "topology.kubernetes.io/zone",
                                                  "topologyKeyType": "Label", "maxSkew": 1,
                                                  "whenUnsatisfiable": "ScheduleAnyway"}]
    bad = {**placement, "metadata": {"name": "bad", "namespace": "apps"},
           "spec": {"numberOfClusters": -1,
                    "predicates": [{"propertySelector": {"matchExpressions": [{"name": "gpus", "operator": "Gte"}]}}],
                    "tolerations": [{"key": "maintenance", "effect": "NoSchedule"}]}}
    fields = refused_fields(lambda: api.create_namespaced_custom_object(OURS, "v1alpha1", "apps", "placements", bad))
    assert sorted(fields) == ["spec.numberOfClusters",
                              "spec.predicates[0].propertySelector.matchExpressions[0].operator",
                              "spec.tolerations[0].effect"]


def test_work_keeps_whole_manifests_and_applied_work_is_cluster_scoped(hub: ClusterInfo, member: ClusterInfo) -> None:
    api = custom(hub)
    core(hub).create_namespace({"metadata": {"name": "clusterset-member-1"}})
    work = {"apiVersion": f"{UPSTREAM}/v1alpha1", "kind": "Work",
            "metadata": {"name": "web", "namespace": "clusterset-member-1"},
            "spec": {"workload": {"manifests": [
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-cfg", "namespace": "default"},
                 "data": {"mode": "blue"}, "unknownField": {"kept": True}}]},
                "manifestConfigs": [{"resourceIdentifier": {"resource": "configmaps", "name": "web-cfg",
                                                            "namespace": "default"},
                                     "feedbackRules": [{"type": "JSONPaths",
                                                        "jsonPaths": [{"name": "x", "path": ".x"}]}]}]}}
    made = api.create_namespaced_custom_object(UPSTREAM, "v1alpha1", "clusterset-member-1", "works", work)
    assert made["spec"]["workload"]["manifests"][0]["unknownField"] == {"kept": True}
    assert made["spec"]["manifestConfigs"][0]["feedbackRules"][0]["type"] == "JSONPaths"
    no_kind = {**work, "metadata": {"name": "bad", "namespace": "clusterset-member-1"},
               "spec": {"workload": {"manifests": [{"apiVersion": "v1", "metadata": {"name": "x"}}]}}}
    assert refused_fields(lambda: api.create_namespaced_custom_object(
        UPSTREAM, "v1alpha1", "clusterset-member-1", "works", no_kind)) == ["spec.workload.manifests[0].kind"]

    applied = {"apiVersion": f"{UPSTREAM}/v1alpha1", "kind": "AppliedWork", "metadata": {"name": "web"},
               "spec": {"workName": "web", "workNamespace": "clusterset-member-1"}}
    got = custom(member).create_cluster_custom_object(UPSTREAM, "v1alpha1", "appliedworks", applied)
    assert got["metadata"]["name"] == "web" and "namespace" not in got["metadata"]


def test_binding_and_work_set_require_their_references(hub: ClusterInfo) -> None:
    api = custom(hub)
    binding = {"apiVersion": f"{OURS}/v1alpha1", "kind": "ClusterSetBinding",
               "metadata": {"name": "apps", "namespace": "apps"}, "spec": {}}
    assert refused_fields(lambda: api.create_namespaced_custom_object(
        OURS, "v1alpha1", "apps", "clustersetbindings", binding)) == ["spec.namespace"]
    work_set = {"apiVersion": f"{OURS}/v1alpha1", "kind": "WorkSet",
                "metadata": {"name": "web", "namespace": "apps"},
                "spec": {"placementRef": {"name": "web"}, "rollout": {"maxUnavailable": "25%"},
                         "manifests": [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}]}}
    made = api.create_namespaced_custom_object(OURS, "v1alpha1", "apps", "worksets", work_set)
    assert made["spec"]["rollout"] == {"maxUnavailable": "25%"}
    no_ref = {**work_set, "metadata": {"name": "bad", "namespace": "apps"}, "spec": {"manifests": []}}
    assert refused_fields(lambda: api.create_namespaced_custom_object(
        OURS, "v1alpha1", "apps", "worksets", no_ref)) == ["spec.placementRef"]
