"""APIServices, as kube-apiserver's aggregator keeps them: a Local APIService for each built-in group version it
serves (autoregister, once per start) and for each version a CRD serves (crdregistration, kept in sync and removed
when no CRD serves it any more), and every APIService's `Available` condition (the availability controllers).

The embedded server proxies to no aggregated API server, so an APIService backed by a Service is never available:
`ServiceNotFound` while the Service is missing, then `FailedDiscoveryCheck`, each message saying why.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from clusterset.api.objects import condition, labels, meta, spec, status
from clusterset.apiserver.controllers.manager import ClusterAPI, Key
from clusterset.apiserver.kinds.apiextensions import CRD_RESOURCE
from clusterset.apiserver.kinds.apiregistration import (
    APISERVICE_RESOURCE,
    AUTOMANAGED,
    BUILTIN_PRIORITIES,
    CRD_PRIORITY,
    apiservice_name,
    available_condition,
    local_apiservice,
    local_available,
)
from clusterset.apiserver.kinds.builtins import builtin_resources
from clusterset.apiserver.meta.names import new_uid
from clusterset.apiserver.patch.apply import update_managed_fields
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.registry.context import field_types
from clusterset.apiserver.registry.registry import Served
from clusterset.apiserver.registry.strategy import ClusterView
from clusterset.apiserver.storage.store import Born, Entry, Event, Obj

MANAGER = "kube-apiserver"
SERVICES = "/services"
NOT_PROXIED = "clusterset's embedded API server does not proxy to aggregated API servers, so this APIService " \
              "stays unavailable"


@functools.cache
def builtin_apiservices() -> dict[str, Obj]:
    """The Local APIServices of the built-in group versions every cluster serves, by name (shared: not to be
    changed)."""
    served = {(s.rt.group, s.rt.version) for s in builtin_resources()}
    return {apiservice_name(g, v): local_apiservice(g, v, priority, "onstart")
            for (g, v), priority in BUILTIN_PRIORITIES.items() if (g, v) in served}


def install(cluster: Cluster, now: str) -> None:
    """A new cluster's built-in Local APIServices, written with its other bootstrap objects (as the RBAC policy:
    no history rows, no round trip through the controller, which only checks them from then on). They are a
    third of a new cluster's objects: created one by one they made adding a cluster 1.6 times slower."""
    _install(cluster, builtin_apiservices().values(), now)


def install_crd_apiservices(cluster: Cluster, group_versions: Iterable[tuple[str, str]], now: str) -> None:
    """The Local APIServices of the group versions a new cluster's bootstrap CRDs serve (`ClusterCRDs`), written
    with them: what `APIServiceRegistration` would create for them (its status write included), so it has nothing
    to do. A group version a built-in kind or an earlier CRD serves already has one."""
    stored = cluster.store.get
    _install(cluster, [local_apiservice(group, version, CRD_PRIORITY, "true") for group, version in group_versions
                       if stored(APISERVICE_RESOURCE, "", apiservice_name(group, version)) is None], now)


def _install(cluster: Cluster, apiservices: Iterable[Obj], now: str) -> None:
    served = cluster.registry.get("apiregistration.k8s.io", "v1", "apiservices")
    if served is None:
        return
    born = _born(now)
    for desired in apiservices:
        template = born.get(desired["metadata"]["name"])
        if template is None:
            template = born[desired["metadata"]["name"]] = Born(APISERVICE_RESOURCE, _created(desired, served, now))
        cluster.store.put_born(template, new_uid())


@functools.lru_cache(maxsize=1)
def _born(now: str) -> dict[str, Born]:
    """The APIServices of the clusters born at `now`, by name (filled as they are needed)."""
    return {}


def _created(desired: Obj, served: Served, now: str) -> Obj:
    """An APIService as kube-apiserver creates it at `now`, Available."""
    obj: Obj = {**desired, "metadata": {**desired["metadata"], "uid": "", "creationTimestamp": now}}
    obj["metadata"]["managedFields"] = update_managed_fields(
        None, obj, manager=MANAGER, api_version=served.rt.group_version, now=now, subresource=None,
        types=field_types(served), operation_is_create=True)
    obj["status"] = {"conditions": [local_available()]}
    return obj


def crd_apiservice(cluster: Cluster, name: str) -> Obj | None:
    """The Local APIService of a group version some CRD serves, if one does. Its name is `<version>.<group>` (a
    version has no dot), and a CRD's `<plural>.<group>`: only the CRDs of that group are read."""
    version, _, group = name.partition(".")
    suffix = "." + group
    for entry in cluster.store.entries(CRD_RESOURCE):
        if not str(entry.obj["metadata"]["name"]).endswith(suffix):
            continue
        crd_spec = spec(entry.obj)
        if crd_spec.get("group") != group:
            continue
        for served in crd_spec.get("versions") or []:
            if served.get("served", True) and served.get("name") == version:
                return local_apiservice(group, version, CRD_PRIORITY, "true")
    return None


def availability(cluster: Cluster, apiservice: Obj) -> dict[str, Any]:
    """The status the availability controllers would write now."""
    previous = condition(status(apiservice).get("conditions"), "Available")
    service = spec(apiservice).get("service")
    if not isinstance(service, dict):
        available = local_available(previous)
    else:
        namespace, name = str(service.get("namespace", "")), str(service.get("name", ""))
        if cluster.store.get(SERVICES, namespace, name) is None:
            available = available_condition(
                False, "ServiceNotFound", f'service/{name} in "{namespace}" is not present; {NOT_PROXIED}', previous)
        else:
            group, version = spec(apiservice).get("group", ""), spec(apiservice).get("version", "")
            url = f"https://{name}.{namespace}.svc:{service.get('port', 443)}/apis/{group}/{version}"
            available = available_condition(
                False, "FailedDiscoveryCheck", f"failing or missing response from {url}: {NOT_PROXIED}", previous)
    others = [c for c in status(apiservice).get("conditions") or [] if c is not previous]
    return {**status(apiservice), "conditions": [*others, available]}


def _as_wanted(cluster: Cluster, name: str, entry: Entry | None) -> bool:
    """Whether a Local APIService (built-in, or of a CRD's version) is stored as wanted, its spec and `Available`
    for being Local: it needs no look (a relist of 1,000 clusters would queue 13,000 keys, and a restart 4 more per
    member for its CRDs' versions)."""
    desired = builtin_apiservices().get(name) or crd_apiservice(cluster, name)
    if entry is None or desired is None or spec(entry.obj) != desired["spec"]:
        return False
    available = condition(status(entry.obj).get("conditions"), "Available")
    return available is not None and available.get("reason") == "Local" and available.get("status") == "True"


class BackedAPIServices:
    """A cluster's APIServices by the Service backing them (a cluster part): every Service event asks, and there
    are a dozen Local APIServices per cluster to look through for none. Made again after an APIService changes."""

    def __init__(self, cluster: ClusterView) -> None:
        self._store = cluster.store
        self._by_service: dict[tuple[str, str], list[str]] | None = None

    def changed(self) -> None:
        self._by_service = None

    def backed_by(self, service: tuple[str, str]) -> list[str]:
        if self._by_service is None:
            self._by_service = {}
            for entry in self._store.entries(APISERVICE_RESOURCE):
                backing = spec(entry.obj).get("service")
                if isinstance(backing, dict):
                    where = (str(backing.get("namespace") or ""), str(backing.get("name") or ""))
                    self._by_service.setdefault(where, []).append(str(meta(entry.obj)["name"]))
        return self._by_service.get(service, [])


class APIServiceRegistration:
    """Local APIServices for what the cluster serves, and every APIService's availability."""

    name = "apiservices"
    watches: tuple[str, ...] = (APISERVICE_RESOURCE, CRD_RESOURCE, SERVICES)

    def keys_on_attach(self, cluster: Cluster) -> Iterable[Key]:
        """The built-in ones are registered when the controller starts (upstream: AddAPIServiceToSyncOnStart):
        those missing; the relist's events bring the stored ones that are not as wanted."""
        stored = cluster.store.get
        return [("", name) for name in builtin_apiservices() if stored(APISERVICE_RESOURCE, "", name) is None]

    def keys_for(self, cluster: Cluster, event: Event) -> Iterable[Key]:
        obj = event.entry.obj
        if event.resource == APISERVICE_RESOURCE:
            cluster.part(BackedAPIServices).changed()
            # a deleted built-in one comes back on the next start only, as upstream's "onstart" ones
            name = str(meta(obj)["name"])
            if event.type == "DELETED":
                if labels(obj).get(AUTOMANAGED) == "true":
                    yield ("", name)
            elif not _as_wanted(cluster, name, event.entry):
                yield ("", name)
        elif event.resource == CRD_RESOURCE:
            group = str(spec(obj).get("group", ""))
            names = {apiservice_name(group, str(v.get("name"))) for v in spec(obj).get("versions") or []}
            names |= {str(meta(e.obj)["name"]) for e in cluster.store.entries(APISERVICE_RESOURCE)
                      if spec(e.obj).get("group") == group and labels(e.obj).get(AUTOMANAGED) == "true"}
            stored = cluster.store.get
            yield from (("", name) for name in sorted(names)
                        if not _as_wanted(cluster, name, stored(APISERVICE_RESOURCE, "", name)))
        else:
            where = (str(meta(obj).get("namespace") or ""), str(meta(obj).get("name") or ""))
            yield from (("", name) for name in cluster.part(BackedAPIServices).backed_by(where))

    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        api = api.as_manager(MANAGER)
        name = key[1]
        desired = builtin_apiservices().get(name) or crd_apiservice(api.cluster, name)
        current = api.get(APISERVICE_RESOURCE, "", name)
        if current is None:
            if desired is not None:
                await api.create(APISERVICE_RESOURCE, desired)
            return None
        managed = labels(current).get(AUTOMANAGED)
        if managed == "true" and desired is None:
            await api.delete(APISERVICE_RESOURCE, "", name)
            return None
        if managed and desired is not None and spec(current) != desired["spec"]:
            changed = {**current, "spec": desired["spec"]}
            current = await api.update(APISERVICE_RESOURCE, changed)
            if current is None:
                return 0.0  # written meanwhile: look again
        wanted = availability(api.cluster, current)
        if wanted != status(current) and await api.update(APISERVICE_RESOURCE, {**current, "status": wanted},
                                                          subresource="status") is None:
            return 0.0
        return None
