"""Helpers of the MCS fleet tests: workloads, Services and ServiceExports in members, and what they import."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubernetes.client.rest import ApiException

from clusterset.api.mcs import (
    MANAGED_BY_LABEL,
    MCS_CONTROLLER,
    SERVICE_NAME_LABEL,
    SOURCE_CLUSTER_LABEL,
    derived_service_name,
)
from clusterset.fleet.embedded import FleetOptions
from clusterset.testing import ClusterInfo, FleetThread
from tests.helpers import apps, core, custom

GROUP, VERSION = "multicluster.x-k8s.io", "v1beta1"
MEMBERS = ("member-1", "member-2", "member-3")
Obj = dict[str, Any]


def fleet_options(state_dir: Path, **overrides: Any) -> FleetOptions:
    opts: dict[str, Any] = {"members": 3, "heartbeat": 0.5, "grace": 6.0, "probe_timeout": 2.0, "endpoint_lease": 3}
    opts.update(overrides)
    return FleetOptions(state_dir, **opts)


@contextmanager
def running_fleet(state_dir: Path, **overrides: Any) -> Iterator[FleetThread]:
    fleet = FleetThread(fleet_options(state_dir, **overrides))
    try:
        yield fleet
    finally:
        fleet.stop()


class Mcs:
    """One fleet's members, by name, through the official client."""

    def __init__(self, fleet: FleetThread) -> None:
        self.fleet = fleet
        self.infos: dict[str, ClusterInfo] = {}

    def info(self, member: str) -> ClusterInfo:
        if member not in self.infos:
            self.infos[member] = self.fleet.info(member)
        return self.infos[member]

    def forget(self, member: str) -> None:
        self.infos.pop(member, None)

    # ------------------------------------------------------------ writing
    def namespace(self, ns: str, members: tuple[str, ...] = MEMBERS) -> None:
        for m in members:
            try:
                core(self.info(m)).create_namespace({"metadata": {"name": ns}})
            except ApiException as err:
                if err.status != 409:
                    raise

    def deployment(self, member: str, ns: str, name: str, replicas: int = 2, container_ports: tuple[int, ...] = (8080,),
                   app: str | None = None) -> None:
        labels = {"app": app or name}
        apps(self.info(member)).create_namespaced_deployment(ns, {
            "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "c", "image": "nginx:1.25",
                          "ports": [{"containerPort": p} for p in container_ports]}]}}}})

    def statefulset(self, member: str, ns: str, name: str, service: str, replicas: int = 2) -> None:
        labels = {"app": name}
        apps(self.info(member)).create_namespaced_stateful_set(ns, {
            "metadata": {"name": name},
            "spec": {"replicas": replicas, "serviceName": service, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "c", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]}}}})

    def service(self, member: str, ns: str, name: str, ports: list[Obj] | None = None, *, app: str | None = None,
                headless: bool = False, **spec: Any) -> Obj:
        body: Obj = {"selector": {"app": app or name}, **spec}
        if ports is not None:
            body["ports"] = ports
        if headless:
            body["clusterIP"] = "None"
        created = core(self.info(member)).create_namespaced_service(ns, {"metadata": {"name": name}, "spec": body})
        return self.info(member).api_client().sanitize_for_serialization(created)

    def export(self, member: str, ns: str, name: str, **spec: Any) -> Obj:
        body: Obj = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ServiceExport", "metadata": {"name": name}}
        if spec:
            body["spec"] = spec
        return custom(self.info(member)).create_namespaced_custom_object(GROUP, VERSION, ns, "serviceexports", body)

    def unexport(self, member: str, ns: str, name: str) -> None:
        custom(self.info(member)).delete_namespaced_custom_object(GROUP, VERSION, ns, "serviceexports", name)

    # ------------------------------------------------------------ reading
    def get(self, member: str, ns: str, plural: str, name: str) -> Obj | None:
        try:
            return custom(self.info(member)).get_namespaced_custom_object(GROUP, VERSION, ns, plural, name)
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def service_import(self, member: str, ns: str, name: str) -> Obj | None:
        return self.get(member, ns, "serviceimports", name)

    def service_export(self, member: str, ns: str, name: str) -> Obj | None:
        return self.get(member, ns, "serviceexports", name)

    def conditions(self, member: str, ns: str, name: str) -> dict[str, Obj]:
        export = self.service_export(member, ns, name) or {}
        return {c["type"]: c for c in (export.get("status") or {}).get("conditions") or []}

    def condition(self, member: str, ns: str, name: str, type_: str) -> tuple[str, str] | None:
        c = self.conditions(member, ns, name).get(type_)
        return None if c is None else (c["status"], c["reason"])

    def slices(self, member: str, ns: str, selector: str) -> list[Obj]:
        api = self.info(member).api_client()
        from kubernetes import client

        items = client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(ns, label_selector=selector).items
        return [api.sanitize_for_serialization(s) for s in items]

    def imported_slices(self, member: str, ns: str, name: str) -> list[Obj]:
        return self.slices(member, ns, f"{SERVICE_NAME_LABEL}={name}")

    def local_slices(self, member: str, ns: str, name: str) -> list[Obj]:
        return self.slices(member, ns, f"kubernetes.io/service-name={name}")

    def derived(self, member: str, ns: str, name: str) -> Obj | None:
        try:
            svc = core(self.info(member)).read_namespaced_service(derived_service_name(ns, name), ns)
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return self.info(member).api_client().sanitize_for_serialization(svc)

    def ready_pod_ips(self, member: str, ns: str, app: str) -> set[str]:
        pods = core(self.info(member)).list_namespaced_pod(ns, label_selector=f"app={app}").items
        return {p.status.pod_ip for p in pods if p.status.pod_ip and any(
            c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])}

    def events(self, member: str, ns: str, name: str) -> list[Obj]:
        items = core(self.info(member)).list_namespaced_event(
            ns, field_selector=f"involvedObject.name={name},involvedObject.kind=ServiceExport").items
        return [{"type": e.type, "reason": e.reason, "message": e.message} for e in items]


def endpoints_by_cluster(slices: list[Obj]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for s in slices:
        cluster = s["metadata"]["labels"][SOURCE_CLUSTER_LABEL]
        for ep in s.get("endpoints") or []:
            out.setdefault(cluster, set()).update(ep["addresses"])
    return out


def ips(slices: list[Obj]) -> set[str]:
    return {a for s in slices for ep in s.get("endpoints") or [] for a in ep["addresses"]}


def is_imported(s: Obj) -> bool:
    return s["metadata"]["labels"].get(MANAGED_BY_LABEL) == MCS_CONTROLLER


def holds_throughout(predicate: Callable[[], bool], seconds: float, interval: float = 0.1) -> None:
    """Fails as soon as `predicate()` is false during the next `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), "the condition stopped holding"
        time.sleep(interval)
