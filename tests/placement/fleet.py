"""Helpers of the placement tests: Placements, bindings and decisions on a fleet's hub, through the official client."""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client.rest import ApiException

from clusterset.api.objects import condition
from clusterset.testing import ClusterInfo
from tests.helpers import core, custom, wait_until

OURS = ("clusterset.io", "v1alpha1")
UPSTREAM = ("multicluster.x-k8s.io", "v1alpha1")
CLUSTERSET = "clusterset"
Obj = dict[str, Any]


class Hub:
    def __init__(self, info: ClusterInfo) -> None:
        self.info = info
        self.api = custom(info)

    def namespace(self, name: str, *, bind: bool = True) -> str:
        try:
            core(self.info).create_namespace({"metadata": {"name": name}})
        except ApiException as err:
            if err.status != 409:
                raise
        if bind:
            self.api.create_namespaced_custom_object(*OURS, CLUSTERSET, "clustersetbindings", {
                "apiVersion": "clusterset.io/v1alpha1", "kind": "ClusterSetBinding",
                "metadata": {"name": name}, "spec": {"namespace": name}})
        return name

    def place(self, namespace: str, name: str, spec: Obj) -> Obj:
        body = {"apiVersion": "clusterset.io/v1alpha1", "kind": "Placement",
                "metadata": {"name": name, "namespace": namespace}, "spec": spec}
        out: Obj = self.api.create_namespaced_custom_object(*OURS, namespace, "placements", body)
        return out

    def placement(self, namespace: str, name: str) -> Obj:
        out: Obj = self.api.get_namespaced_custom_object(*OURS, namespace, "placements", name)
        return out

    def slices(self, namespace: str, name: str) -> list[Obj]:
        items = self.api.list_namespaced_custom_object(
            *UPSTREAM, namespace, "placementdecisions",
            label_selector=f"multicluster.x-k8s.io/decision-key={name}")["items"]
        return sorted(items, key=lambda s: int(s["metadata"]["labels"]["multicluster.x-k8s.io/decision-index"]))

    def decided(self, namespace: str, name: str) -> list[str] | None:
        """The cluster names a Placement's slices hold, in order (None: no slice yet)."""
        slices = self.slices(namespace, name)
        if not slices:
            return None
        return [d["clusterProfileRef"]["name"] for s in slices for d in s["decisions"]]

    def wait_decided(self, namespace: str, name: str, want: list[str], timeout: float = 30) -> None:
        wait_until(lambda: self.decided(namespace, name) == want, timeout=timeout,
                   message=f"{namespace}/{name} to decide {want} (last: {self.decided(namespace, name)})")

    def satisfied(self, namespace: str, name: str) -> Obj:
        return condition((self.placement(namespace, name).get("status") or {}).get("conditions"), "Satisfied") or {}

    def wait_reason(self, namespace: str, name: str, reason: str, timeout: float = 30, containing: str = "") -> Obj:
        """Waits for the Satisfied condition's reason (and a message containing `containing`: a reason may stay the
        same while its message changes, one write after the slices)."""
        def reached() -> bool:
            c = self.satisfied(namespace, name)
            return c.get("reason") == reason and containing in str(c.get("message"))

        wait_until(reached, timeout=timeout, message=f"{namespace}/{name} Satisfied reason {reason} with "
                   f"{containing!r} (last: {self.satisfied(namespace, name)})")
        return self.satisfied(namespace, name)

    def profile(self, name: str) -> Obj:
        out: Obj = self.api.get_namespaced_custom_object(*UPSTREAM, CLUSTERSET, "clusterprofiles", name)
        return out

    def label_profile(self, name: str, labels: dict[str, str | None]) -> None:
        self.api.patch_namespaced_custom_object(*UPSTREAM, CLUSTERSET, "clusterprofiles", name,
                                                {"metadata": {"labels": labels}})

    def annotate_profile(self, name: str, annotations: dict[str, str | None]) -> None:
        self.api.patch_namespaced_custom_object(*UPSTREAM, CLUSTERSET, "clusterprofiles", name,
                                                {"metadata": {"annotations": annotations}})

    def events(self, namespace: str, name: str) -> list[tuple[str, str, str]]:
        items = core(self.info).list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={name},involvedObject.kind=Placement").items
        return [(e.type, e.reason, e.message) for e in items]


def forbidden(call: Any) -> str:
    try:
        call()
    except ApiException as err:
        assert err.status == 403, err.body
        return str(json.loads(err.body)["message"])
    raise AssertionError("the call was allowed")
