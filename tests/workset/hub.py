"""Helpers of the WorkSet tests, through the official client: the objects a user writes on the hub, the decisions
another scheduler writes, clusters another cluster manager lists (no agent behind them, so the tests write their
Works' statuses), and what the fleet's members hold."""

from __future__ import annotations

from typing import Any

from kubernetes.client.rest import ApiException

from clusterset.api.inventory import CLUSTER_MANAGER_LABEL, CONTROL_PLANE_HEALTHY, MEMBER_LABEL, member_namespace
from clusterset.api.placement import (
    DECISION_INDEX_LABEL,
    DECISION_KEY_LABEL,
    PLACEMENT_KEY_LABEL,
    SCHEDULING_DISABLED_ANNOTATION,
    decision_name,
)
from clusterset.testing import ClusterInfo, FleetThread
from clusterset.workset.works import WORKSET_LABEL, WORKSET_NAMESPACE_LABEL
from tests.helpers import apps, core, custom

Obj = dict[str, Any]
CLUSTERSET = "clusterset"
MCX, CS, V = "multicluster.x-k8s.io", "clusterset.io", "v1alpha1"


def deployment(image: str = "nginx:1.25", replicas: int = 1, name: str = "web") -> Obj:
    """A Deployment in `default`. The WorkSets of real members each name their own (`name`): two Works applying
    one object in a member would take it from each other."""
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web", "image": image}]}}}}


class Hub:
    def __init__(self, fleet: FleetThread) -> None:
        self.fleet = fleet
        self.info: ClusterInfo = fleet.info("hub")
        self.api = custom(self.info)

    # ------------------------------------------------------------ what a user writes
    def namespace_with_placement(self, ns: str, placement: str = "web") -> None:
        """A namespace, bound to the ClusterSet, with a Placement that another scheduler decides: the test writes
        its PlacementDecisions (the fleet's own scheduler leaves it alone)."""
        core(self.info).create_namespace({"metadata": {"name": ns}})
        self.api.create_namespaced_custom_object(CS, V, CLUSTERSET, "clustersetbindings", {
            "apiVersion": f"{CS}/{V}", "kind": "ClusterSetBinding", "metadata": {"name": ns},
            "spec": {"namespace": ns}})
        self.api.create_namespaced_custom_object(CS, V, ns, "placements", {
            "apiVersion": f"{CS}/{V}", "kind": "Placement",
            "metadata": {"name": placement, "annotations": {SCHEDULING_DISABLED_ANNOTATION: "true"}}, "spec": {}})

    def workset(self, ns: str, name: str, manifests: list[Obj], placement: str = "web", **spec: Any) -> Obj:
        return self.api.create_namespaced_custom_object(CS, V, ns, "worksets", {
            "apiVersion": f"{CS}/{V}", "kind": "WorkSet", "metadata": {"name": name},
            "spec": {"placementRef": {"name": placement}, "manifests": manifests, **spec}})

    def patch_workset(self, ns: str, name: str, spec: Obj) -> Obj:
        return self.api.patch_namespaced_custom_object(CS, V, ns, "worksets", name, {"spec": spec})

    def get_workset(self, ns: str, name: str) -> Obj | None:
        try:
            return self.api.get_namespaced_custom_object(CS, V, ns, "worksets", name)
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def conditions(self, ns: str, name: str) -> dict[str, Obj]:
        ws = self.get_workset(ns, name) or {}
        return {c["type"]: c for c in (ws.get("status") or {}).get("conditions") or []}

    def summary(self, ns: str, name: str) -> Obj:
        return ((self.get_workset(ns, name) or {}).get("status") or {}).get("summary") or {}

    # ------------------------------------------------------------ what the scheduler writes
    def decide(self, ns: str, clusters: list[str], placement: str = "web", index: int = 0) -> None:
        """Writes slice `index` of the Placement's decision (created or replaced)."""
        body = {"apiVersion": f"{MCX}/{V}", "kind": "PlacementDecision",
                "metadata": {"name": decision_name(placement, index), "namespace": ns,
                             "labels": {DECISION_KEY_LABEL: placement, PLACEMENT_KEY_LABEL: placement,
                                        DECISION_INDEX_LABEL: str(index)}},
                "decisions": [{"clusterProfileRef": {"name": c, "namespace": CLUSTERSET}, "reason": "test"}
                              for c in clusters]}
        try:
            old = self.api.get_namespaced_custom_object(MCX, V, ns, "placementdecisions", body["metadata"]["name"])
        except ApiException as err:
            if err.status != 404:
                raise
            self.api.create_namespaced_custom_object(MCX, V, ns, "placementdecisions", body)
        else:
            body["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            self.api.replace_namespaced_custom_object(MCX, V, ns, "placementdecisions", body["metadata"]["name"],
                                                      body)

    # ------------------------------------------------------------ clusters another cluster manager lists
    def agentless_cluster(self, name: str, labels: dict[str, str] | None = None,
                          properties: dict[str, str] | None = None) -> None:
        """A cluster listed by another cluster manager: its ClusterProfile (status written through the status
        subresource, as its manager would) and a hub namespace labelled with its id, so the WorkSet controller
        writes its Works there; no agent reads them, so `report` is the only writer of their status. The profile
        comes first: the fleet's inventory leaves another manager's profile alone (saying so once in its log), but
        would make its own for a member namespace without one."""
        self.api.create_namespaced_custom_object(MCX, V, CLUSTERSET, "clusterprofiles", {
            "apiVersion": f"{MCX}/{V}", "kind": "ClusterProfile",
            "metadata": {"name": name, "labels": {CLUSTER_MANAGER_LABEL: "elsewhere", **(labels or {})}},
            "spec": {"displayName": name, "clusterManager": {"name": "elsewhere"}}})
        self.api.patch_namespaced_custom_object_status(MCX, V, CLUSTERSET, "clusterprofiles", name, {"status": {
            "conditions": [{"type": CONTROL_PLANE_HEALTHY, "status": "True", "reason": "Listed", "message": "",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "properties": [{"name": k, "value": v} for k, v in sorted((properties or {}).items())]}})
        core(self.info).create_namespace({"metadata": {"name": member_namespace(name), "labels": {MEMBER_LABEL: name}}})

    # ------------------------------------------------------------ Works, and what the agents write
    def works(self, ns: str, name: str) -> dict[str, Obj]:
        """member id → the WorkSet's Work in that member's hub namespace."""
        items = self.api.list_cluster_custom_object(
            MCX, V, "works", label_selector=f"{WORKSET_NAMESPACE_LABEL}={ns},{WORKSET_LABEL}={name}")["items"]
        return {w["metadata"]["namespace"].removeprefix("clusterset-"): w for w in items}

    def report(self, work: Obj, applied: bool = True, available: bool = True, degraded: bool = False,
               message: str = "") -> Obj:
        """The Work's status as an agent would write it, for the Work's current generation (on a cluster without
        an agent: the test is the only writer of the Work's status)."""
        generation = work["metadata"]["generation"]

        def cond(type_: str, ok: bool) -> Obj:
            return {"type": type_, "status": "True" if ok else "False", "reason": "Test" + type_ + str(ok),
                    "message": message or type_, "observedGeneration": generation,
                    "lastTransitionTime": "2026-01-01T00:00:00Z"}

        body = {**work, "status": {"conditions": [cond("Applied", applied), cond("Available", available),
                                                   cond("Degraded", degraded)]}}
        return self.api.replace_namespaced_custom_object_status(
            MCX, V, work["metadata"]["namespace"], "works", work["metadata"]["name"], body)

    def property(self, member: str, name: str, value: str) -> None:
        """A ClusterProperty in the member (its agent reports it into the member's ClusterProfile)."""
        api = custom(self.fleet.info(member))
        body = {"apiVersion": "about.k8s.io/v1beta1", "kind": "ClusterProperty", "metadata": {"name": name},
                "spec": {"value": value}}
        try:
            api.create_cluster_custom_object("about.k8s.io", "v1beta1", "clusterproperties", body)
        except ApiException as err:
            if err.status != 409:
                raise
            api.patch_cluster_custom_object("about.k8s.io", "v1beta1", "clusterproperties", name,
                                            {"spec": {"value": value}})

    def profile_properties(self, member: str) -> dict[str, str]:
        profile = self.api.get_namespaced_custom_object(MCX, V, CLUSTERSET, "clusterprofiles", member)
        return {p["name"]: p["value"] for p in (profile.get("status") or {}).get("properties") or []}

    def label_profile(self, member: str, labels: dict[str, str]) -> None:
        self.api.patch_namespaced_custom_object(MCX, V, CLUSTERSET, "clusterprofiles", member,
                                                {"metadata": {"labels": labels}})

    # ------------------------------------------------------------ what a member holds
    def member_deployment(self, member: str, name: str, namespace: str = "default") -> Obj | None:
        """The Deployment as the member has it, or None."""
        api = apps(self.fleet.info(member))
        try:
            found: Obj = api.api_client.sanitize_for_serialization(api.read_namespaced_deployment(name, namespace))
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return found

    def events(self, ns: str, name: str) -> list[tuple[str, str]]:
        items = core(self.info).list_namespaced_event(
            ns, field_selector=f"involvedObject.name={name},involvedObject.kind=WorkSet").items
        return [(e.reason, e.message) for e in items]
