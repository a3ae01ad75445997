"""Simulated nodes: what each node's kubelet registers (the Node and its Lease), KWOK-style.

A cluster gets `settings["nodes"]` (default 3) Ready nodes named `<cluster>-node-<i>` (kind's
convention, so node names say which cluster a pod runs in; `node-<i>` if that would exceed the
63 characters of a hostname label). Node i is in zone `zones[(i-1) % len(zones)]`
(`settings["zones"]`, default zone-a, zone-b, zone-c), has InternalIP `.<i+1>` of the cluster's
node range (a /22 per cluster from 172.16.0.0/12, IPv6 `fd00:172:16:<slot>::/64` when dual-stack),
a podCIDR carved from the cluster's pod range (a /24 each, or smaller with many nodes), and room
for 110 pods (`settings["maxPods"]`), so a default cluster fits 330 pods, as a real one would.

The node set is reconciled as one key, triggered by the `kube-node-lease` namespace (which exists
as soon as the cluster does, so attaching a cluster creates its nodes, unless it was born with them:
`born.py`, from this module's `desired_node`/`desired_status`/`desired_lease`), by node events and by the
deletion of a node Lease: missing nodes and Leases are created (a deleted node re-registers, as a live
kubelet's would), nodes above the count that we created are deleted, and each node's status is kept as
a kubelet reports it. Heartbeats are not renewed, so an idle cluster costs nothing.

Test hook: annotating a node `clusterset.io/simulate-ready: "false"` makes it report Ready=False;
the scheduler then avoids it and the kubelet reports its pods not ready (what the node lifecycle
controller does for a dead node).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import ipaddress
import math
from collections.abc import Iterable
from typing import Any

from clusterset.api.objects import annotations_of, meta, status
from clusterset.api.times import now_rfc3339, rfc3339_micro
from clusterset.apiserver.controllers.manager import ClusterAPI, Key
from clusterset.apiserver.controllers.workloads.util import (
    LEASES,
    NAMESPACES,
    NODES,
    SIMULATE_READY,
    SIMULATED_NODE,
    deep_copy,
    guarded,
    safe_keys,
)
from clusterset.apiserver.meta.version import KUBE_VERSION
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.storage.store import Event, Obj

ALL_NODES: Key = ("", "")
DEFAULT_ZONES = ("zone-a", "zone-b", "zone-c")
LEASE_NAMESPACE = "kube-node-lease"
KUBELET = "kubelet"  # the field manager of what a kubelet registers
CAPACITY = {"cpu": "8", "ephemeral-storage": "100Gi", "hugepages-2Mi": "0", "memory": "32Gi", "pods": "110"}


def capacity(cluster: Cluster) -> dict[str, str]:
    """A node's capacity; `settings["maxPods"]` overrides the kubelet's default of 110 pods per node."""
    out = dict(CAPACITY)
    with contextlib.suppress(TypeError, ValueError):
        out["pods"] = str(max(1, int(cluster.settings.get("maxPods", 110))))
    return out


def node_count(cluster: Cluster) -> int:
    try:
        return max(0, int(cluster.settings.get("nodes", 3)))
    except (TypeError, ValueError):
        return 3


def node_name(cluster: Cluster, i: int) -> str:
    name = f"{cluster.name}-node-{i}"
    return name if len(name) <= 63 else f"node-{i}"


def zones(cluster: Cluster) -> list[str]:
    value = cluster.settings.get("zones")
    if isinstance(value, list) and value and all(isinstance(z, str) and z for z in value):
        return list(value)
    return list(DEFAULT_ZONES)


_NODE_RANGE = ipaddress.IPv4Address("172.16.0.0")
_NODE_RANGE6 = ipaddress.IPv6Address("fd00:172:16::")


@functools.lru_cache(maxsize=256)
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A setting's range, parsed once (every node of every cluster born with the same settings asks)."""
    return ipaddress.ip_network(cidr)


def node_ips(cluster: Cluster, i: int) -> list[str]:
    """InternalIPs of node i: a /22 of 172.16.0.0/12 per cluster (IPv6 too when dual-stack)."""
    slot = cluster.index % 1024
    given = cluster.settings.get("nodeCIDR")
    first = _network(given).network_address if given else _NODE_RANGE + slot * 1024
    ips = [str(first + 1 + i)]
    if cluster.settings.get("dualStack"):
        ips.append(str(_NODE_RANGE6 + (slot << 64) + 1 + i))
    return ips


def node_pod_cidrs(cluster: Cluster, i: int) -> list[str]:
    """Node i's share of the cluster's pod ranges (what the node IPAM controller assigns)."""
    count = max(node_count(cluster), i)
    bits = math.ceil(math.log2(count)) if count > 1 else 0
    out = []
    for key, minimum, maximum in (("podCIDR", 24, 28), ("podCIDR6", 112, 120)):
        if key == "podCIDR6" and not cluster.settings.get("dualStack"):
            continue
        cidr = cluster.settings.get(key)
        if not cidr:
            continue
        network = _network(cidr)
        prefix = max(minimum, network.prefixlen + bits)
        if prefix > maximum or prefix - network.prefixlen >= 31 or (i - 1) >= 2 ** (prefix - network.prefixlen):
            continue
        size = 2 ** (network.max_prefixlen - prefix)
        sub = ipaddress.ip_network((int(network.network_address) + (i - 1) * size, prefix))
        out.append(str(sub))
    return out


def _uuid_for(text: str) -> str:
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def desired_node(cluster: Cluster, i: int) -> Obj:
    name = node_name(cluster, i)
    zone = zones(cluster)[(i - 1) % len(zones(cluster))]
    node_spec: dict[str, Any] = {"providerID": f"clusterset://{cluster.name}/{name}"}
    cidrs = node_pod_cidrs(cluster, i)
    if cidrs:
        node_spec["podCIDR"] = cidrs[0]
        node_spec["podCIDRs"] = cidrs
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "topology.kubernetes.io/zone": zone,
            },
            "annotations": {
                SIMULATED_NODE: "true",
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": node_spec,
    }


def desired_status(cluster: Cluster, node: Obj, i: int) -> dict[str, Any]:
    """The status a healthy kubelet reports; condition times carried over while nothing changes."""
    name = meta(node)["name"]
    now = now_rfc3339()
    ready = annotations_of(node).get(SIMULATE_READY, "true") != "false"
    current = {c.get("type"): c for c in status(node).get("conditions") or [] if isinstance(c, dict)}

    def cond(ctype: str, value: str, reason: str, message: str) -> dict[str, Any]:
        old = current.get(ctype) or {}
        same = old.get("status") == value and old.get("reason") == reason and old.get("message") == message
        return {
            "type": ctype,
            "status": value,
            "lastHeartbeatTime": old.get("lastHeartbeatTime", now) if same else now,
            "lastTransitionTime": old.get("lastTransitionTime", now) if old.get("status") == value else now,
            "reason": reason,
            "message": message,
        }

    ips = node_ips(cluster, i)
    return {
        "capacity": capacity(cluster),
        "allocatable": capacity(cluster),
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", "True", "KubeletReady", "kubelet is posting ready status")
            if ready
            else cond("Ready", "False", "KubeletNotReady",
                      f'node is simulated not ready ({SIMULATE_READY}: "false")'),
        ],
        "addresses": [*({"type": "InternalIP", "address": ip} for ip in ips), {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": _uuid_for(f"machine/{cluster.name}/{name}").replace("-", ""),
            "systemUUID": _uuid_for(f"system/{cluster.name}/{name}"),
            "bootID": _uuid_for(f"boot/{cluster.name}/{name}"),
            "kernelVersion": "6.1.0-clusterset",
            "osImage": "clusterset simulated node",
            "containerRuntimeVersion": "containerd://1.7.15",
            "kubeletVersion": KUBE_VERSION,
            "kubeProxyVersion": KUBE_VERSION,
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }


def desired_lease(node: Obj) -> Obj:
    """The Lease a node's kubelet registers in `kube-node-lease`, owned by its Node."""
    name = meta(node)["name"]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": meta(node)["uid"]}],
        },
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": rfc3339_micro()},
    }


def is_simulated(node: Obj | None) -> bool:
    return node is not None and annotations_of(node).get(SIMULATED_NODE) == "true"


def node_ready(node: Obj | None) -> bool:
    if node is None:
        return False
    for cond in status(node).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


class NodeController:
    """Registers the simulated nodes of a cluster and reports their status."""

    name = "nodes"
    watches: tuple[str, ...] = (NODES, NAMESPACES, LEASES)

    @safe_keys
    def keys_for(self, cluster: Cluster, event: Event) -> Iterable[Key]:
        if event.resource == NAMESPACES:
            if meta(event.entry.obj).get("name") == LEASE_NAMESPACE and event.type != "DELETED":
                yield ALL_NODES
            return
        if event.resource == LEASES:  # a node's Lease deleted: its kubelet makes it again
            if event.type == "DELETED" and meta(event.entry.obj).get("namespace") == LEASE_NAMESPACE:
                yield ALL_NODES
            return
        yield ALL_NODES

    @guarded(KUBELET)
    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        cluster = api.cluster
        count = node_count(cluster)
        wanted = {node_name(cluster, i): i for i in range(1, count + 1)}
        again: float | None = None
        for name, i in wanted.items():
            node = api.get(NODES, "", name)
            if node is None:
                fresh = desired_node(cluster, i)
                node = await api.create(NODES, {**fresh, "status": desired_status(cluster, fresh, i)})
                if node is None:
                    again = 0.5
                    continue
            elif meta(node).get("deletionTimestamp"):
                continue
            want = desired_status(cluster, node, i)
            if status(node) != {**status(node), **want}:
                updated = deep_copy(node)
                updated["status"] = {**status(node), **want}
                if await api.update(NODES, updated, subresource="status") is None:
                    again = 0.05
            await self._ensure_lease(api, node)
        for node in api.objects(NODES):
            name = meta(node)["name"]
            if name not in wanted and is_simulated(node) and not meta(node).get("deletionTimestamp"):
                await api.delete(NODES, "", name)
        return again

    async def _ensure_lease(self, api: ClusterAPI, node: Obj) -> None:
        name = meta(node)["name"]
        if api.get(LEASES, LEASE_NAMESPACE, name) is not None:
            return
        if api.get(NAMESPACES, "", LEASE_NAMESPACE) is None:
            return
        await api.create(LEASES, desired_lease(node))
