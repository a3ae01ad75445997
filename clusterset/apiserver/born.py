"""What a new cluster is born with besides its RBAC policy, APIServices and CRDs: the system namespaces, the
`default` ServiceAccount and `kube-root-ca.crt` ConfigMap of each, and the `default/kubernetes` Service.

The first cluster of each shape (single or dual stack) gets them through the API: the server creates the
namespaces and the Service, its controllers the ServiceAccounts and ConfigMaps. What that wrote is then the
template of the next clusters of the shape, copied into each with its own uids, times, resourceVersions and Service
address, and no history (nobody can watch a cluster being born), as its CRDs are: creates through the API decode,
default, validate and track fields, and wait for a controller, for objects that come out the same every time. An
embedded fleet of 1,000 members is born with a fraction of the work.
"""

from __future__ import annotations

import ipaddress
import uuid

import orjson

from clusterset.apiserver.controllers.core.apiservices import SERVICES
from clusterset.apiserver.controllers.core.namespaces import CONFIG_MAPS, NAMESPACES, ROOT_CA, SERVICE_ACCOUNTS
from clusterset.apiserver.registry.cluster import Cluster

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def kubernetes_service_ip(cluster: Cluster) -> str:
    """The `default/kubernetes` Service's address: the first of the cluster's service range, as kube-apiserver's."""
    return str(ipaddress.ip_network(cluster.settings["serviceCIDR"]).network_address + 1)


def _born_keys() -> list[tuple[str, str, str]]:
    """(resource, namespace, name) of every object this module copies."""
    keys = [(NAMESPACES, "", ns) for ns in SYSTEM_NAMESPACES]
    for ns in SYSTEM_NAMESPACES:
        keys += [(SERVICE_ACCOUNTS, ns, "default"), (CONFIG_MAPS, ns, ROOT_CA)]
    return [*keys, (SERVICES, "default", "kubernetes")]


class BornObjects:
    """The templates of one server's new clusters, learnt from the first cluster of each shape."""

    def __init__(self) -> None:
        self._templates: dict[bool, list[tuple[str, bytes]]] = {}

    @staticmethod
    def _shape(cluster: Cluster) -> bool:
        return bool(cluster.settings.get("dualStack"))

    def learn(self, cluster: Cluster) -> None:
        """Keeps what a cluster just born through the API holds as its shape's template (if it holds all of it)."""
        found = [(resource, cluster.store.get(resource, ns, name)) for resource, ns, name in _born_keys()]
        if all(entry is not None for _, entry in found):
            self._templates[self._shape(cluster)] = [(resource, entry.raw) for resource, entry in found if entry]

    def install(self, cluster: Cluster, now: str) -> bool:
        """Copies the shape's template into a new cluster; False if there is none yet (born through the API then)."""
        templates = self._templates.get(self._shape(cluster))
        if templates is None:
            return False
        store, address = cluster.store, kubernetes_service_ip(cluster)
        for resource, raw in templates:
            obj = orjson.loads(raw)
            meta = obj["metadata"]
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now
            for entry in meta.get("managedFields") or ():
                entry["time"] = now
            meta["resourceVersion"] = str(store.next_rv())
            if resource == SERVICES:
                obj["spec"]["clusterIP"] = address
                obj["spec"]["clusterIPs"] = [address]
            store.put(resource, obj, "ADDED", history=False)
        return True
