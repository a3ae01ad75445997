"""Helpers of the Work tests: Works written by hand on the hub in a member's hub namespace, and what the member's
agent applied."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubernetes.client.rest import ApiException

from clusterset.fleet.embedded import FleetOptions
from clusterset.testing import ClusterInfo, FleetThread
from tests.helpers import custom, wait_until

GROUP, VERSION = "multicluster.x-k8s.io", "v1alpha1"
Obj = dict[str, Any]


@contextmanager
def running_fleet(state_dir: Path, members: int = 2) -> Iterator[FleetThread]:
    fleet = FleetThread(FleetOptions(state_dir, members=members, heartbeat=0.5, grace=6.0, probe_timeout=2.0))
    try:
        yield fleet
    finally:
        fleet.stop()


def hub_namespace(member: str) -> str:
    return f"clusterset-{member}"


class Works:
    """One fleet's Works on the hub and their AppliedWorks in members, through the official client."""

    def __init__(self, fleet: FleetThread) -> None:
        self.fleet = fleet
        self.infos: dict[str, ClusterInfo] = {}

    def info(self, cluster: str) -> ClusterInfo:
        if cluster not in self.infos:
            self.infos[cluster] = self.fleet.info(cluster)
        return self.infos[cluster]

    def api(self, cluster: str) -> Any:
        return self.info(cluster).api_client()

    # ------------------------------------------------------------ the hub
    def create(self, member: str, name: str, manifests: list[Obj], **spec: Any) -> Obj:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Work", "metadata": {"name": name},
                "spec": {"workload": {"manifests": manifests}, **spec}}
        return dict(custom(self.info("hub")).create_namespaced_custom_object(GROUP, VERSION, hub_namespace(member),
                                                                              "works", body))

    def work(self, member: str, name: str) -> Obj | None:
        try:
            return dict(custom(self.info("hub")).get_namespaced_custom_object(GROUP, VERSION, hub_namespace(member),
                                                                              "works", name))
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def patch(self, member: str, name: str, patch: Obj) -> Obj:
        return dict(custom(self.info("hub")).patch_namespaced_custom_object(GROUP, VERSION, hub_namespace(member),
                                                                             "works", name, patch))

    def set_manifests(self, member: str, name: str, manifests: list[Obj]) -> Obj:
        return self.patch(member, name, {"spec": {"workload": {"manifests": manifests}}})

    def delete(self, member: str, name: str) -> None:
        custom(self.info("hub")).delete_namespaced_custom_object(GROUP, VERSION, hub_namespace(member), "works", name)

    def condition(self, member: str, name: str, type_: str) -> Obj | None:
        work = self.work(member, name) or {}
        return next((c for c in (work.get("status") or {}).get("conditions") or [] if c["type"] == type_), None)

    def manifest(self, member: str, name: str, ordinal: int) -> Obj | None:
        work = self.work(member, name) or {}
        return next((m for m in (work.get("status") or {}).get("manifestConditions") or []
                     if m["identifier"]["ordinal"] == ordinal), None)

    def manifest_condition(self, member: str, name: str, ordinal: int, type_: str) -> Obj | None:
        entry = self.manifest(member, name, ordinal) or {}
        return next((c for c in entry.get("conditions") or [] if c["type"] == type_), None)

    def feedback(self, member: str, name: str, ordinal: int) -> dict[str, Any]:
        entry = self.manifest(member, name, ordinal) or {}
        out = {}
        for value in (entry.get("statusFeedback") or {}).get("values") or []:
            field = value["fieldValue"]
            out[value["name"]] = field[{"Integer": "integer", "String": "string", "Boolean": "boolean",
                                        "JsonRaw": "jsonRaw"}[field["type"]]]
        return out

    def wait_applied(self, member: str, name: str, timeout: float = 20) -> Obj:
        """Waits for the Work's status to describe its current generation, Applied or not; returns the Work."""
        def observed() -> Obj | None:
            work = self.work(member, name) or {}
            applied = next((c for c in (work.get("status") or {}).get("conditions") or [] if c["type"] == "Applied"),
                           None)
            generation = work.get("metadata", {}).get("generation")
            return work if applied and applied.get("observedGeneration") == generation else None
        return wait_until(observed, timeout=timeout, message=f"the status of Work {member}/{name}")

    # ------------------------------------------------------------ a member
    def applied_work(self, member: str, name: str) -> Obj | None:
        try:
            return dict(custom(self.info(member)).get_cluster_custom_object(GROUP, VERSION, "appliedworks", name))
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def read(self, member: str, read: Any) -> Obj | None:
        """`read(api_client)` → the object as a dict, or None if it does not exist."""
        try:
            return dict(self.api(member).sanitize_for_serialization(read(self.api(member))))
        except ApiException as err:
            if err.status == 404:
                return None
            raise


def configmap(name: str, namespace: str, **data: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": data}


def namespace(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def deployment(name: str, namespace: str, replicas: int = 2, image: str = "nginx:1.25") -> Obj:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "web", "image": image}]}}}}
