"""What a new cluster is born with besides its RBAC policy, APIServices and CRDs: the system namespaces, the
`default` ServiceAccount and `kube-root-ca.crt` ConfigMap of each, the `default/kubernetes` Service, and (when its
controllers run) its simulated Nodes and their Leases.

The first cluster of each shape (single or dual stack) gets them through the API: the server creates the
namespaces and the Service, its controllers the ServiceAccounts and ConfigMaps. What that wrote is then the
template of the next clusters of the shape, copied into each with its own uids, times, resourceVersions and Service
address, and no history (nobody can watch a cluster being born), as its CRDs are: creates through the API decode,
default, validate and track fields, and wait for a controller, for objects that come out the same every time. An
embedded fleet of 1,000 members is born with a fraction of the work.

A cluster's Nodes differ in their values (names, addresses, pod ranges, zones), so theirs are not copied from another
cluster: the first Node (and Lease) of each shape goes through the create pipeline as a dry run, as the node
controller's create would, and each Node is that result with its own values laid over it (`BornNodes`). The node
controller then finds them registered, as it would after a restart.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from typing import Any

import orjson

from clusterset.apiserver.controllers.core.apiservices import SERVICES
from clusterset.apiserver.controllers.core.namespaces import CONFIG_MAPS, NAMESPACES, ROOT_CA, SERVICE_ACCOUNTS
from clusterset.apiserver.controllers.manager import ClusterAPI
from clusterset.apiserver.controllers.workloads.nodes import (
    KUBELET,
    LEASE_NAMESPACE,
    desired_lease,
    desired_node,
    desired_status,
    node_count,
)
from clusterset.apiserver.controllers.workloads.util import LEASES, NODES
from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.meta.names import new_uid
from clusterset.apiserver.patch.apply import set_value_key
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.registry.rest import Rest
from clusterset.apiserver.storage.store import Born, Obj, created_at

log = logging.getLogger(__name__)

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
        # each shape's objects alike in every cluster, and its `default/kubernetes` Service (whose address differs)
        self._templates: dict[bool, tuple[list[tuple[str, bytes]], bytes]] = {}
        self._born: dict[bool, tuple[str, list[Born]]] = {}  # each shape's copies for the last second they were born

    @staticmethod
    def _shape(cluster: Cluster) -> bool:
        return bool(cluster.settings.get("dualStack"))

    def learn(self, cluster: Cluster) -> None:
        """Keeps what a cluster just born through the API holds as its shape's template (if it holds all of it)."""
        found = [(resource, cluster.store.get(resource, ns, name)) for resource, ns, name in _born_keys()]
        if all(entry is not None for _, entry in found):
            raws = [(resource, entry.raw) for resource, entry in found if entry]
            self._templates[self._shape(cluster)] = raws[:-1], raws[-1][1]  # the Service is the last key

    def install(self, cluster: Cluster, now: str) -> bool:
        """Copies the shape's template into a new cluster; False if there is none yet (born through the API then)."""
        shape = self._shape(cluster)
        templates = self._templates.get(shape)
        if templates is None:
            return False
        alike, service = templates
        store = cluster.store
        born = self._born.get(shape)
        if born is None or born[0] != now:
            born = self._born[shape] = now, [Born(resource, created_at(raw, now)) for resource, raw in alike]
        for copy in born[1]:
            store.put_born(copy, new_uid())
        obj = created_at(service, now)
        address = kubernetes_service_ip(cluster)
        obj["spec"]["clusterIP"] = address
        obj["spec"]["clusterIPs"] = [address]
        obj["metadata"]["uid"] = new_uid()
        obj["metadata"]["resourceVersion"] = str(store.next_rv())
        store.put(SERVICES, obj, "ADDED", history=False)
        return True


def _node_shape(node: Obj) -> tuple[Any, ...]:
    """What the create pipeline's result depends on beyond the values laid over it: the keys, and the size of the
    pod range set (whose values are fields of its managedFields)."""
    meta, spec = node["metadata"], node["spec"]
    return (tuple(meta["labels"]), tuple(meta["annotations"]), tuple(spec), tuple(node["status"]),
            tuple(sorted(range(len(spec.get("podCIDRs") or ())), key=lambda k: spec["podCIDRs"][k])))


class BornNodes:
    """The simulated Nodes and Leases a new cluster is born with: the node controller's creates, run once per shape
    through the pipeline as dry runs, each cluster's own values laid over the result."""

    def __init__(self) -> None:
        self._nodes: dict[tuple[Any, ...], bytes] = {}
        self._lease: tuple[bytes, str] | None = None  # the dry run's Lease, and the owner uid it names

    async def install(self, rest: Rest, cluster: Cluster, now: str) -> None:
        api, store = ClusterAPI(rest, cluster, KUBELET), cluster.store
        if not cluster.settings.get("controllers") or store.get(NAMESPACES, "", LEASE_NAMESPACE) is None:
            return  # no node controller: no nodes (as before it runs)
        for i in range(1, node_count(cluster) + 1):
            fresh = desired_node(cluster, i)
            fresh["status"] = desired_status(cluster, fresh, i)
            try:
                node_template = await self._node_template(api, fresh)
                node = self._node(node_template, fresh, now)
                lease_template = await self._lease_template(api, node)
            except StatusError as err:  # the node controller makes it through the API, and logs why it cannot
                log.warning("cluster=%s is born without node %s: %s", cluster.name, fresh["metadata"]["name"],
                            err.message)
                return
            node["metadata"]["resourceVersion"] = str(store.next_rv())
            store.put(NODES, node, "ADDED", history=False)
            lease = self._leased(desired_lease(node), lease_template, now)
            lease["metadata"]["resourceVersion"] = str(store.next_rv())
            store.put(LEASES, lease, "ADDED", history=False)

    async def _node_template(self, api: ClusterAPI, fresh: Obj) -> bytes:
        shape = _node_shape(fresh)
        template = self._nodes.get(shape)
        if template is None:
            made = await api.rest.create(dataclasses.replace(api.ctx(NODES, None), dry_run=True), fresh)
            template = self._nodes[shape] = orjson.dumps(made)
        return template

    async def _lease_template(self, api: ClusterAPI, node: Obj) -> tuple[bytes, str]:
        if self._lease is None:
            made = await api.rest.create(dataclasses.replace(api.ctx(LEASES, LEASE_NAMESPACE), dry_run=True),
                                         desired_lease(node))
            self._lease = orjson.dumps(made), node["metadata"]["uid"]
        return self._lease

    @staticmethod
    def _node(template: bytes, fresh: Obj, now: str) -> Obj:
        node: Obj = orjson.loads(template)
        meta, fresh_meta = node["metadata"], fresh["metadata"]
        fields = orjson.dumps(meta.get("managedFields") or [])
        # the pod ranges are keys of the managedFields too (the shape holds their ranks: the keys keep their order)
        for old, new in zip(node["spec"].get("podCIDRs") or (), fresh["spec"].get("podCIDRs") or (), strict=True):
            fields = fields.replace(set_value_key(old.encode()), set_value_key(new.encode()))
        meta.update(name=fresh_meta["name"], labels=fresh_meta["labels"], annotations=fresh_meta["annotations"],
                    uid=new_uid(), creationTimestamp=now)
        _stamp(meta, fields, now)
        node["spec"].update(fresh["spec"])
        node["status"].update(fresh["status"])
        return node

    @staticmethod
    def _leased(fresh: Obj, template: tuple[bytes, str], now: str) -> Obj:
        raw, owner_uid = template
        lease: Obj = orjson.loads(raw)
        meta, fresh_meta = lease["metadata"], fresh["metadata"]
        owner = fresh_meta["ownerReferences"][0]["uid"]
        fields = orjson.dumps(meta.get("managedFields") or []).replace(owner_uid.encode(), owner.encode())
        meta.update(name=fresh_meta["name"], ownerReferences=fresh_meta["ownerReferences"], uid=new_uid(),
                    creationTimestamp=now)
        _stamp(meta, fields, now)
        lease["spec"].update(fresh["spec"])
        return lease


def _stamp(meta: Obj, managed_fields: bytes, now: str) -> None:
    """The template's managedFields (encoded, its values replaced by the copy's) as of `now`."""
    if "managedFields" in meta:
        meta["managedFields"] = orjson.loads(managed_fields)
        for entry in meta["managedFields"]:
            entry["time"] = now
