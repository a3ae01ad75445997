"""What kube-controller-manager's EndpointSlice and Endpoints controllers would write, as pure functions.

A port of k8s.io/endpointslice (reconciler.go, utils.go, util/) and pkg/controller/endpoint: given a
Service, the Pods it selects, the Nodes they run on and the slices that exist, `plan_slices` says which
EndpointSlices to create, update and delete, packing and reusing slices the way upstream does so that
clients see the same objects (and the same few writes) as on a real cluster, but for one deviation: new
endpoints fill the room of existing slices before a slice is created (`_reconcile_port_mapping`).
`plan_endpoints` does the same for the legacy core/v1 Endpoints. Nothing here does I/O, so all of it is
unit-tested without a server; `ServiceIndex` is the event bookkeeping both controllers share, and `Memo`
the per-Service cache that lets a reconcile skip the pods that did not change (still no I/O; results are
the same without it).

Where upstream iterates Go maps (random order), this module is deterministic: pods in name order, slices
in name order. Objects are built with upstream's JSON field order and its empty-list encodings (`null`).
"""

from __future__ import annotations

import copy
import functools
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from clusterset.api import objects
from clusterset.api.times import parse_time

Obj = dict[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
HEADLESS_LABEL = "service.kubernetes.io/headless"
ZONE_LABEL = "topology.kubernetes.io/zone"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
ENDPOINTS_MANAGED_BY_LABEL = "endpoints.kubernetes.io/managed-by"
ENDPOINTS_CONTROLLER_NAME = "endpoint-controller"
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"
MAX_ENDPOINTS_PER_SLICE = 100  # kube-controller-manager --max-endpoints-per-slice default
MAX_ENDPOINTS_CAPACITY = 1000  # addresses an Endpoints object keeps before truncation

_RESERVED_SLICE_LABELS = frozenset({SERVICE_NAME_LABEL, MANAGED_BY_LABEL, HEADLESS_LABEL})


# ---------------------------------------------------------------------------- tolerant accessors
def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------------------- services
def service_selector(service: Obj) -> dict[str, str] | None:
    """The selector the controllers act on; None means "the user manages the endpoints".

    An empty map counts as none: upstream stores Services as protobuf, where `{}` comes back nil.
    """
    selector = _dict(service.get("spec")).get("selector")
    if not isinstance(selector, dict) or not selector:
        return None
    return {str(k): str(v) for k, v in selector.items()}


def controls(service: Obj) -> bool:
    """Whether the controllers manage this Service's endpoints (not ExternalName, has a selector)."""
    return _dict(service.get("spec")).get("type") != "ExternalName" and service_selector(service) is not None


def selects(selector: Mapping[str, str], labels: Mapping[str, Any] | None) -> bool:
    """A Service selector is an equality-based label selector."""
    labels = labels if isinstance(labels, Mapping) else {}
    return all(labels.get(k) == v for k, v in selector.items())


def select_pods(service: Obj, pods: Iterable[Obj]) -> list[Obj]:
    """The pods of the Service's namespace its selector matches, in name order."""
    selector = service_selector(service)
    if selector is None:
        return []
    namespace = objects.meta(service).get("namespace", "")
    wanted = list(selector.items())
    chosen = []
    for pod in pods:  # a plain loop: this runs over every pod of the namespace on each sync
        meta = objects.meta(pod)
        labels = meta.get("labels")
        if meta.get("namespace", "") != namespace or not isinstance(labels, dict):
            continue
        for key, value in wanted:
            if labels.get(key) != value:
                break
        else:
            chosen.append(pod)
    return sorted(chosen, key=lambda p: str(objects.meta(p).get("name", "")))


def _service_ip_set(service: Obj) -> bool:
    cluster_ip = _dict(service.get("spec")).get("clusterIP")
    return bool(cluster_ip) and cluster_ip != "None"


def address_types(service: Obj) -> list[str]:
    """getAddressTypesForService: spec.ipFamilies, else the clusterIP's family, else both (headless)."""
    spec = _dict(service.get("spec"))
    out = [f for f in ("IPv4", "IPv6") if f in _list(spec.get("ipFamilies"))]
    if out:
        return sorted(out, key=_list(spec.get("ipFamilies")).index)
    if _service_ip_set(service):
        return [_family_of(str(spec["clusterIP"])) or "IPv4"]
    return ["IPv4", "IPv6"]


def _family_of(ip: str) -> str | None:
    parsed = _parse_ip(ip)
    return parsed[0] if parsed else None


def _parse_ip(ip: Any) -> tuple[str, str] | None:
    """(family, canonical text), as utilnet.ParseIPSloppy(ip).String(); None if it is no IP."""
    return _parse_ip_text(ip) if isinstance(ip, str) else None


@functools.lru_cache(maxsize=1 << 16)
def _parse_ip_text(ip: str) -> tuple[str, str] | None:
    """Cached: every reconcile of a Service parses the same pod IPs again."""
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return "IPv4", str(addr.ipv4_mapped)
    return ("IPv6" if addr.version == 6 else "IPv4"), str(addr)


# ---------------------------------------------------------------------------- pods
def pod_ready(pod: Obj) -> bool:
    """podutil.IsPodReady: the Ready condition is True."""
    for cond in _list(_dict(pod.get("status")).get("conditions")):
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def _pod_ips(pod: Obj) -> list[str]:
    """status.podIPs, or [status.podIP] when only that is set (what v1→internal conversion does)."""
    status = _dict(pod.get("status"))
    ips = [_str(_dict(p).get("ip")) for p in _list(status.get("podIPs"))]
    ips = [ip for ip in ips if ip]
    if not ips and _str(status.get("podIP")):
        ips = [status["podIP"]]
    return ips


def should_be_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """ShouldPodBeInEndpoints: not Succeeded/Failed, has an IP, and not terminating unless asked."""
    if _dict(pod.get("status")).get("phase") in ("Succeeded", "Failed"):
        return False
    if not _pod_ips(pod):
        return False
    return include_terminating or not objects.meta(pod).get("deletionTimestamp")


def _should_set_hostname(pod: Obj, service: Obj) -> bool:
    """ShouldSetHostname: spec.hostname set and spec.subdomain names the Service (any Service type)."""
    spec = _dict(pod.get("spec"))
    return (
        bool(_str(spec.get("hostname")))
        and spec.get("subdomain") == objects.meta(service).get("name")
        and objects.meta(pod).get("namespace", "") == objects.meta(service).get("namespace", "")
    )


def find_port(pod: Obj, service_port: Mapping[str, Any]) -> int | None:
    """podutil.FindPort: a numeric targetPort as is, a named one looked up in the pod's containers
    (and restartable init containers) with the same protocol; None when it cannot be resolved."""
    target = service_port.get("targetPort", service_port.get("port"))
    protocol = service_port.get("protocol") or "TCP"
    if isinstance(target, bool):
        return None
    if isinstance(target, int):
        return target
    if not isinstance(target, str) or not target:
        return None
    spec = _dict(pod.get("spec"))
    containers = [c for c in _list(spec.get("containers")) if isinstance(c, dict)]
    containers += [
        c for c in _list(spec.get("initContainers")) if isinstance(c, dict) and c.get("restartPolicy") == "Always"
    ]
    for container in containers:
        for port in _list(container.get("ports")):
            if not isinstance(port, dict):
                continue
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                number = port.get("containerPort")
                if isinstance(number, int) and not isinstance(number, bool):
                    return number
    return None


def _service_ports(service: Obj) -> list[dict[str, Any]]:
    return [p for p in _list(_dict(service.get("spec")).get("ports")) if isinstance(p, dict)]


def endpoint_ports(service: Obj, pod: Obj) -> list[dict[str, Any]]:
    """getEndpointPorts: the Service's ports resolved against this pod; unresolvable ones are left out."""
    out: list[dict[str, Any]] = []
    for sp in _service_ports(service):
        number = find_port(pod, sp)
        if number is None:
            continue
        port: dict[str, Any] = {"name": _str(sp.get("name")), "protocol": sp.get("protocol") or "TCP", "port": number}
        if sp.get("appProtocol") is not None:
            port["appProtocol"] = sp["appProtocol"]
        out.append(port)
    return out


PortKey = tuple[tuple[str, str, int, bool, str], ...]


def port_key(ports: Any) -> PortKey:
    """NewPortMapKey: the identity of a port set, independent of order (nil and empty are equal)."""
    items = []
    for p in _list(ports):
        p = _dict(p)
        number = p.get("port")
        app = p.get("appProtocol")
        items.append((
            _str(p.get("name")),
            _str(p.get("protocol")) or "TCP",
            number if isinstance(number, int) and not isinstance(number, bool) else -1,
            app is None,
            _str(app),
        ))
    return tuple(sorted(items))


# ---------------------------------------------------------------------------- endpoints of a slice
EndpointHash = tuple[tuple[str, ...], str, str, str]


def endpoint_hash(endpoint: Mapping[str, Any]) -> EndpointHash:
    """hashEndpoint: an endpoint is identified by its addresses, hostname and target's namespace/name."""
    ref = _dict(endpoint.get("targetRef"))
    addresses = tuple(sorted(str(a) for a in _list(endpoint.get("addresses"))))
    return addresses, _str(endpoint.get("hostname")), _str(ref.get("namespace")), _str(ref.get("name"))


def endpoints_equal_beyond_hash(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """EndpointsEqualBeyondHash: nodeName, zone, the three conditions and targetRef (minus resourceVersion)."""
    for key in ("nodeName", "zone"):
        if a.get(key) != b.get(key):
            return False
    ca, cb = _dict(a.get("conditions")), _dict(b.get("conditions"))
    if any(ca.get(k) != cb.get(k) for k in ("ready", "serving", "terminating")):
        return False
    ra = {k: v for k, v in _dict(a.get("targetRef")).items() if k != "resourceVersion"}
    rb = {k: v for k, v in _dict(b.get("targetRef")).items() if k != "resourceVersion"}
    return ra == rb


def pod_to_endpoint(pod: Obj, node: Obj | None, service: Obj, address_type: str) -> dict[str, Any]:
    """podToEndpoint, with upstream's field order (addresses, conditions, hostname, targetRef, nodeName, zone)."""
    serving = pod_ready(pod)
    terminating = bool(objects.meta(pod).get("deletionTimestamp"))
    publish = bool(_dict(service.get("spec")).get("publishNotReadyAddresses"))
    addresses = []
    for ip in _pod_ips(pod):
        parsed = _parse_ip(ip)
        if parsed and parsed[0] == address_type:
            addresses.append(parsed[1])
    meta = objects.meta(pod)
    endpoint: dict[str, Any] = {
        "addresses": addresses,
        "conditions": {"ready": publish or (serving and not terminating), "serving": serving,
                       "terminating": terminating},
    }
    if _should_set_hostname(pod, service):
        endpoint["hostname"] = _dict(pod.get("spec"))["hostname"]
    endpoint["targetRef"] = {"kind": "Pod", "namespace": meta.get("namespace", ""), "name": meta.get("name", ""),
                             "uid": meta.get("uid", "")}
    node_name = _str(_dict(pod.get("spec")).get("nodeName"))
    if node_name:
        endpoint["nodeName"] = node_name
    zone = _dict(objects.meta(node).get("labels")).get(ZONE_LABEL) if node is not None else None
    if zone:
        endpoint["zone"] = zone
    return endpoint


# ---------------------------------------------------------------------------- slices
def slice_labels(existing: Obj | None, service: Obj) -> tuple[dict[str, str], bool]:
    """setEndpointSliceLabels: the Service's labels (minus reserved keys) plus the reserved ones; and
    whether the non-reserved labels differ from the slice's (a change worth an update)."""
    own = objects.labels(existing) if existing else {}
    slice_own = {k: v for k, v in own.items() if k not in _RESERVED_SLICE_LABELS}
    labels = {k: v for k, v in objects.labels(service).items() if k not in _RESERVED_SLICE_LABELS}
    changed = slice_own != labels
    if not _service_ip_set(service):
        labels[HEADLESS_LABEL] = ""
    labels[SERVICE_NAME_LABEL] = str(objects.meta(service).get("name", ""))
    labels[MANAGED_BY_LABEL] = CONTROLLER_NAME
    return labels, changed


def _slice_prefix(service_name: str) -> str:
    """getEndpointSlicePrefix: `<service>-` (Service names are DNS labels, so the dash always fits)."""
    return f"{service_name}-"


def owner_reference(service: Obj) -> dict[str, Any]:
    """metav1.NewControllerRef(service, v1/Service)."""
    meta = objects.meta(service)
    return {"apiVersion": "v1", "kind": "Service", "name": meta.get("name", ""), "uid": meta.get("uid", ""),
            "controller": True, "blockOwnerDeletion": True}


def owned_by(slice_: Obj, service: Obj) -> bool:
    uid = objects.meta(service).get("uid")
    return any(
        isinstance(ref, dict) and (ref.get("uid"), ref.get("kind"), ref.get("apiVersion")) == (uid, "Service", "v1")
        for ref in _list(objects.meta(slice_).get("ownerReferences"))
    )


def new_slice(service: Obj, ports: list[dict[str, Any]], address_type: str) -> Obj:
    """newEndpointSlice: no name yet (generateName), owned by the Service, labelled like it."""
    meta = objects.meta(service)
    labels, _ = slice_labels(None, service)
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "generateName": _slice_prefix(str(meta.get("name", ""))),
            "namespace": meta.get("namespace", ""),
            "labels": labels,
            "ownerReferences": [owner_reference(service)],
        },
        "addressType": address_type,
        "endpoints": [],
        "ports": copy.deepcopy(ports),
    }


def _name(obj: Obj) -> str:
    return str(objects.meta(obj).get("name", ""))


def _endpoints_of(slice_: Obj) -> list[Any]:
    return _list(slice_.get("endpoints"))


def _copy(slice_: Obj) -> Obj:
    """A slice to modify: new top level, metadata and endpoint list; the rest is shared, never mutated."""
    out = dict(slice_)
    out["metadata"] = dict(objects.meta(slice_))
    out["endpoints"] = list(_endpoints_of(slice_))
    return out


def _slice_to_fill(slices: list[Obj], count: int, limit: int) -> Obj | None:
    """getSliceToFill: the slice that ends up closest to full when `count` endpoints are added."""
    closest_diff, closest = limit, None
    for s in slices:
        diff = limit - (count + len(_endpoints_of(s)))
        if 0 <= diff < closest_diff:
            closest_diff, closest = diff, s
            if diff == 0:
                break
    return closest


def _pop_first(desired: dict[EndpointHash, dict[str, Any]]) -> dict[str, Any]:
    key = next(iter(desired))
    return desired.pop(key)


def _hashes(slice_: Obj) -> list[EndpointHash | None]:
    return [endpoint_hash(e) if isinstance(e, dict) else None for e in _endpoints_of(slice_)]


def _reconcile_port_mapping(
    service: Obj, existing: list[Obj], desired: dict[EndpointHash, dict[str, Any]], ports: list[dict[str, Any]],
    address_type: str, limit: int, hashes: Callable[[Obj], list[EndpointHash | None]] = _hashes,
) -> tuple[list[Obj], list[Obj], list[Obj]]:
    """reconcileByPortMapping: keep endpoints in the slices they are in, update what changed, fill
    updated slices first, then the unchanged slice closest to full that takes all that is left, and only
    then create slices.

    One deviation (ARCHITECTURE.md, "Decisions where the specs were silent"): when no single unchanged
    slice takes all that is left, upstream creates a slice right away, leaving the room of unchanged
    slices unused for good (it never rebalances), so pods arriving in batches can leave a 1,000-pod
    Service with 11 slices. Here unchanged slices with room are filled first (most room first), so a
    slice is created only when every slice is full: growth keeps at most one slice partly filled, and
    the slice count minimal. Endpoints still never move between slices."""
    by_name: dict[str, Obj] = {}
    unchanged: list[str] = []
    to_update: list[str] = []
    to_delete: list[str] = []
    for s in existing:
        name = _name(s)
        by_name[name] = s
        kept: list[dict[str, Any]] = []
        updated = False
        current = _endpoints_of(s)
        for endpoint, h in zip(current, hashes(s), strict=True):
            if h is None:
                continue
            got = desired.pop(h, None)
            if got is not None:
                kept.append(got)
                if not endpoints_equal_beyond_hash(got, endpoint):
                    updated = True
        labels, labels_changed = slice_labels(s, service)
        if updated or len(current) != len(kept):
            if not kept:
                to_delete.append(name)
            else:
                changed = _copy(s)
                changed["endpoints"] = kept
                changed.setdefault("metadata", {})["labels"] = labels
                by_name[name] = changed
                to_update.append(name)
        elif labels_changed:
            changed = _copy(s)
            changed.setdefault("metadata", {})["labels"] = labels
            by_name[name] = changed
            to_update.append(name)
        else:
            unchanged.append(name)

    if desired and to_update:
        fill = sorted((by_name[n] for n in to_update), key=lambda s: -len(_endpoints_of(s)))
        for s in fill:
            while desired and len(_endpoints_of(s)) < limit:
                s["endpoints"].append(_pop_first(desired))

    creates: list[Obj] = []
    while desired:
        target: Obj | None = None
        if len(desired) < limit and unchanged:
            found = _slice_to_fill([by_name[n] for n in unchanged], len(desired), limit)
            if found is not None:
                target = _copy(found)
                by_name[_name(target)] = target
        if target is None:
            roomy = [by_name[n] for n in unchanged if len(_endpoints_of(by_name[n])) < limit]
            if roomy:  # the deviation: no new slice while an existing one has room
                target = _copy(min(roomy, key=lambda s: (len(_endpoints_of(s)), _name(s))))
                by_name[_name(target)] = target
        if target is None:
            target = new_slice(service, ports, address_type)
        while desired and len(target["endpoints"]) < limit:
            target["endpoints"].append(_pop_first(desired))
        if _name(target):
            if _name(target) not in to_update:
                to_update.append(_name(target))
            unchanged.remove(_name(target))
        else:
            creates.append(target)
    return creates, [by_name[n] for n in to_update], [by_name[n] for n in to_delete]


def _placeholder_equal(existing: Obj, placeholder: Obj) -> bool:
    """placeholderSliceCompare: same namespace, labels and address type, no endpoints and no ports."""
    return (
        objects.meta(existing).get("namespace") == objects.meta(placeholder).get("namespace")
        and objects.labels(existing) == objects.labels(placeholder)
        and existing.get("addressType") == placeholder.get("addressType")
        and not _endpoints_of(existing)
        and not _list(existing.get("ports"))
    )


@dataclass
class SlicePlan:
    """The writes that bring a Service's EndpointSlices to the desired state (empty: nothing to do)."""

    creates: list[Obj] = field(default_factory=list)
    updates: list[Obj] = field(default_factory=list)
    deletes: list[Obj] = field(default_factory=list)
    missing_nodes: list[str] = field(default_factory=list)  # pods skipped because their Node is unknown

    def __bool__(self) -> bool:
        return bool(self.creates or self.updates or self.deletes)


def _finalize(service: Obj, plan: SlicePlan, creates: list[Obj], updates: list[Obj], deletes: list[Obj],
              trigger_time: str | None) -> None:
    """finalize: turn create+delete pairs into updates of the doomed slice (fewer events), skip creates
    while the Service is being deleted, stamp the trigger time on what is written."""
    i = 0
    while i < len(deletes) and creates:
        doomed, fresh = deletes[i], creates[-1]
        if doomed.get("addressType") == fresh.get("addressType") and owned_by(doomed, service):
            meta = fresh["metadata"]
            meta["name"] = _name(doomed)
            meta["resourceVersion"] = objects.meta(doomed).get("resourceVersion", "")
            creates.pop()
            updates.append(fresh)
            deletes.pop(i)
        else:
            i += 1
    if objects.meta(service).get("deletionTimestamp"):
        creates = []
    for s in [*creates, *updates]:
        meta = s.setdefault("metadata", {})
        annotations = dict(_dict(meta.get("annotations")))
        if trigger_time:
            annotations[TRIGGER_TIME_ANNOTATION] = trigger_time
        else:
            annotations.pop(TRIGGER_TIME_ANNOTATION, None)
        if annotations:
            meta["annotations"] = annotations
        else:
            meta.pop("annotations", None)
        # upstream's objects come back from etcd (protobuf): empty lists read as null
        s["endpoints"] = _endpoints_of(s) or None
        s["ports"] = _list(s.get("ports")) or None
    plan.creates += creates
    plan.updates += updates
    plan.deletes += deletes


@dataclass
class Memo:
    """A Service's per-pod (and per-slice) results from its previous reconcile, reused while the inputs
    are the same: a stored object never changes without a new resourceVersion, so (uid,
    resourceVersion) identifies a pod's content, and the Service's relevant fields are the
    `signature`. Entries a reconcile does not use are dropped, so the memo never outgrows the Service.
    Cached endpoints end up shared with the slices built from them; nothing mutates them.
    """

    signature: Any = None
    pods: dict[tuple[str, str], Any] = field(default_factory=dict)
    slices: dict[tuple[str, str], Any] = field(default_factory=dict)

    def start(self, signature: Any) -> tuple[dict[tuple[str, str], Any], dict[tuple[str, str], Any]]:
        """The previous entries (none if the Service changed) and fresh dicts for this reconcile."""
        if signature != self.signature:
            self.signature, self.pods, self.slices = signature, {}, {}
        old_pods, old_slices = self.pods, self.slices
        self.pods, self.slices = {}, {}
        return old_pods, old_slices


def _object_key(obj: Obj) -> tuple[str, str] | None:
    meta = objects.meta(obj)
    uid, rv = meta.get("uid"), meta.get("resourceVersion")
    return (str(uid), str(rv)) if uid and rv else None


@dataclass
class _PodResult:
    """What one pod contributes to a Service's slices (per address type: endpoint hash and endpoint)."""

    node_state: str  # the node's zone, or "\0" when the node is unknown: part of the cache key
    included: bool
    ports: list[dict[str, Any]]
    key: PortKey
    node_name: str
    endpoints: dict[str, tuple[EndpointHash, dict[str, Any]]]


def _pod_result(pod: Obj, node: Obj | None, node_state: str, service: Obj, types: list[str]) -> _PodResult:
    node_name = _str(_dict(pod.get("spec")).get("nodeName"))
    if not should_be_in_endpoints(pod, True):
        return _PodResult(node_state, False, [], (), node_name, {})
    ports = endpoint_ports(service, pod)
    endpoints = {}
    for address_type in types:
        endpoint = pod_to_endpoint(pod, node, service, address_type)
        if endpoint["addresses"]:
            endpoints[address_type] = (endpoint_hash(endpoint), endpoint)
    return _PodResult(node_state, True, ports, port_key(ports), node_name, endpoints)


def _service_signature(service: Obj, types: list[str]) -> Any:
    spec = _dict(service.get("spec"))
    meta = objects.meta(service)
    return (meta.get("namespace"), meta.get("name"), repr(_service_ports(service)), spec.get("clusterIP"),
            bool(spec.get("publishNotReadyAddresses")), tuple(types))


def plan_slices(
    service: Obj,
    pods: Iterable[Obj],
    nodes: Mapping[str, Obj],
    slices: Iterable[Obj],
    trigger_time: str | None = None,
    max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE,
    memo: Memo | None = None,
) -> SlicePlan:
    """Reconciler.Reconcile: `pods` are those the Service selects, `slices` those labelled as this
    controller's for the Service (as upstream lists them); returns the writes to make. `memo` (kept by
    the caller per Service) only saves work: the result is the same with or without it."""
    plan = SlicePlan()
    types = address_types(service)
    live = [s for s in slices if isinstance(s, dict) and not objects.meta(s).get("deletionTimestamp")]
    by_type: dict[str, list[Obj]] = {t: [] for t in types}
    for s in sorted(live, key=_name):
        if s.get("addressType") in by_type:
            by_type[s["addressType"]].append(s)
        else:
            plan.deletes.append(s)
    old_pods, old_slices = memo.start(_service_signature(service, types)) if memo is not None else ({}, {})
    results: list[_PodResult] = []
    for pod in pods:
        node_name = _str(_dict(pod.get("spec")).get("nodeName"))
        node = nodes.get(node_name) if node_name else None
        node_state = "\0" if node is None else _str(_dict(objects.meta(node).get("labels")).get(ZONE_LABEL))
        pod_key = _object_key(pod) if memo is not None else None
        result = old_pods.get(pod_key) if pod_key is not None else None
        if result is None or result.node_state != node_state:
            result = _pod_result(pod, node, node_state, service, types)
        if memo is not None and pod_key is not None:
            memo.pods[pod_key] = result
        results.append(result)

    def hashes(slice_: Obj) -> list[EndpointHash | None]:
        slice_key = (_name(slice_), str(objects.meta(slice_).get("resourceVersion", "")))
        found = old_slices.get(slice_key) if memo is not None and slice_key[1] else None
        if found is None:
            found = _hashes(slice_)
        if memo is not None and slice_key[1]:
            memo.slices[slice_key] = found
        return found

    publish = bool(_dict(service.get("spec")).get("publishNotReadyAddresses"))
    for address_type in types:
        existing = by_type[address_type]
        deletes: list[Obj] = []
        existing_by_key: dict[PortKey, list[Obj]] = {}
        for s in existing:
            if owned_by(s, service):
                existing_by_key.setdefault(port_key(s.get("ports")), []).append(s)
            else:
                deletes.append(s)
        desired_ports: dict[PortKey, list[dict[str, Any]]] = {}
        desired: dict[PortKey, dict[EndpointHash, dict[str, Any]]] = {}
        for result in results:
            if not result.included:
                continue
            wanted = desired.setdefault(result.key, {})
            desired_ports.setdefault(result.key, result.ports)
            if result.node_state == "\0":
                if result.node_name not in plan.missing_nodes:
                    plan.missing_nodes.append(result.node_name)
                if not publish:
                    continue
            hit = result.endpoints.get(address_type)
            if hit is not None:
                wanted[hit[0]] = hit[1]
        creates: list[Obj] = []
        updates: list[Obj] = []
        for key, wanted in desired.items():
            c, u, d = _reconcile_port_mapping(service, existing_by_key.get(key, []), wanted, desired_ports[key],
                                              address_type, max_endpoints_per_slice, hashes)
            creates += c
            updates += u
            deletes += d
        for key, stale in existing_by_key.items():
            if key not in desired:
                deletes += stale
        if len(existing) == len(deletes) and not creates:
            placeholder = new_slice(service, [], address_type)
            if len(deletes) == 1 and _placeholder_equal(deletes[0], placeholder):
                deletes = []
            else:
                creates.append(placeholder)
        _finalize(service, plan, creates, updates, deletes, trigger_time)
    return plan


# ---------------------------------------------------------------------------- legacy Endpoints
def _endpoint_address(service: Obj, pod: Obj) -> dict[str, Any] | None:
    """podToEndpointAddressForService: the pod IP of the Service's primary family."""
    spec = _dict(service.get("spec"))
    families = _list(spec.get("ipFamilies"))
    if families:
        family = families[0]
    elif _service_ip_set(service):
        family = _family_of(str(spec.get("clusterIP"))) or "IPv4"
    else:
        family = _family_of(_str(_dict(pod.get("status")).get("podIP"))) or "IPv4"
    ip = next((ip for ip in _pod_ips(pod) if _family_of(ip) == family), None)
    if ip is None:
        return None
    meta = objects.meta(pod)
    address: dict[str, Any] = {"ip": ip}
    if _should_set_hostname(pod, service):
        address["hostname"] = _dict(pod.get("spec"))["hostname"]
    address["nodeName"] = _str(_dict(pod.get("spec")).get("nodeName"))
    address["targetRef"] = {"kind": "Pod", "namespace": meta.get("namespace", ""), "name": meta.get("name", ""),
                            "uid": meta.get("uid", "")}
    return address


def _core_port(service_port: Mapping[str, Any], number: int) -> dict[str, Any]:
    """endpointPortFromServicePort (core/v1 EndpointPort: name is omitempty)."""
    port: dict[str, Any] = {}
    if _str(service_port.get("name")):
        port["name"] = service_port["name"]
    port["port"] = number
    port["protocol"] = service_port.get("protocol") or "TCP"
    if service_port.get("appProtocol") is not None:
        port["appProtocol"] = service_port["appProtocol"]
    return port


def _address_sort_key(address: Mapping[str, Any]) -> tuple[bytes, str]:
    return _str(address.get("ip")).encode(), _str(_dict(address.get("targetRef")).get("uid"))


_PortEntry = tuple[Any, dict[str, Any] | None]  # (frozen port, port); (None, None): a portless headless Service


def _endpoints_entry(service: Obj, pod: Obj, publish: bool) -> tuple[dict[str, Any] | None, bool, list[_PortEntry]]:
    """One pod's part of the Endpoints: its address (None: not listed), readiness and ports."""
    if not should_be_in_endpoints(pod, publish):
        return None, False, []
    address = _endpoint_address(service, pod)
    if address is None:
        return None, False, []
    service_ports = _service_ports(service)
    ports: list[_PortEntry] = []
    if not service_ports:
        if _dict(service.get("spec")).get("clusterIP") == "None":
            ports.append((None, None))
    else:
        for sp in service_ports:
            number = find_port(pod, sp)
            if number is not None:
                port = _core_port(sp, number)
                ports.append((tuple(sorted(port.items())), port))
    return address, publish or pod_ready(pod), ports


def endpoint_subsets(service: Obj, pods: Iterable[Obj], memo: Memo | None = None) -> list[dict[str, Any]]:
    """The Endpoints controller's subsets, repacked as RepackSubsets does: one subset per distinct set
    of addresses, holding every port those addresses serve (not-ready wins over ready per port).
    `memo` (kept by the caller per Service) only saves work."""
    publish = bool(_dict(service.get("spec")).get("publishNotReadyAddresses"))
    old_pods = memo.start(_service_signature(service, address_types(service)))[0] if memo is not None else {}
    # port (frozen; None for a headless Service without ports) → address key → (address, ready)
    by_port: dict[Any, dict[tuple[str, str], tuple[dict[str, Any], bool]]] = {}
    port_objs: dict[Any, dict[str, Any] | None] = {}
    for pod in pods:
        pod_key = _object_key(pod) if memo is not None else None
        entry = old_pods.get(pod_key) if pod_key is not None else None
        if entry is None:
            entry = _endpoints_entry(service, pod, publish)
        if memo is not None and pod_key is not None:
            memo.pods[pod_key] = entry
        address, ready, ports = entry
        if address is None:
            continue
        key = (address["ip"], address["targetRef"]["uid"])
        for frozen, port in ports:
            port_objs[frozen] = port
            addrs = by_port.setdefault(frozen, {})
            previous = addrs.get(key)
            if previous is None or previous[1]:
                addrs[key] = (previous[0] if previous else address, ready)
    grouped: dict[Any, tuple[dict[tuple[str, str], tuple[dict[str, Any], bool]], list[dict[str, Any] | None]]] = {}
    for frozen, addrs in by_port.items():
        signature = tuple(sorted((k, ready) for k, (_a, ready) in addrs.items()))
        grouped.setdefault(signature, (addrs, []))[1].append(port_objs[frozen])
    subsets: list[dict[str, Any]] = []
    for addrs, ports in grouped.values():
        ready_list = sorted((a for a, r in addrs.values() if r), key=_address_sort_key)
        not_ready = sorted((a for a, r in addrs.values() if not r), key=_address_sort_key)
        subset: dict[str, Any] = {}
        if ready_list:
            subset["addresses"] = ready_list
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        real_ports = sorted((p for p in ports if p is not None),
                            key=lambda p: (_str(p.get("name")), p["port"], _str(p.get("protocol"))))
        if real_ports:
            subset["ports"] = real_ports
        subsets.append(subset)
    # every port is in exactly one subset, so the ports order the subsets
    subsets.sort(key=lambda s: [tuple(sorted(p.items())) for p in s.get("ports", [])])
    return subsets


def _truncate(subsets: list[dict[str, Any]]) -> bool:
    """truncateEndpoints: keep at most 1,000 addresses, ready ones first, spread over the subsets."""
    total_ready = sum(len(_list(s.get("addresses"))) for s in subsets)
    total_not_ready = sum(len(_list(s.get("notReadyAddresses"))) for s in subsets)
    if total_ready + total_not_ready <= MAX_ENDPOINTS_CAPACITY:
        return False
    truncate_ready = total_ready > MAX_ENDPOINTS_CAPACITY
    limit = MAX_ENDPOINTS_CAPACITY if truncate_ready else MAX_ENDPOINTS_CAPACITY - total_ready
    total = total_ready if truncate_ready else total_not_ready
    can_add = limit
    for subset in subsets:
        field_name = "addresses" if truncate_ready else "notReadyAddresses"
        count = len(_list(subset.get(field_name)))
        share = min(-(-count * limit // total) if total else 0, can_add)
        kept = _list(subset.get(field_name))[:share]
        if kept:
            subset[field_name] = kept
        else:
            subset.pop(field_name, None)
        if truncate_ready:
            subset.pop("notReadyAddresses", None)
        can_add -= len(kept)
    return True


def _subsets_equal(existing: Any, desired: list[dict[str, Any]]) -> bool:
    """endpointSubsetsEqualIgnoreResourceVersion, copying only when targetRefs carry resourceVersions."""
    current = _list(existing)
    if current == desired:
        return True
    has_versions = any(
        isinstance(a, dict) and "resourceVersion" in _dict(a.get("targetRef"))
        for subset in current for key in ("addresses", "notReadyAddresses") for a in _list(_dict(subset).get(key))
    )
    if not has_versions:
        return False
    stripped = copy.deepcopy(current)
    for subset in stripped:
        for key in ("addresses", "notReadyAddresses"):
            for address in _list(_dict(subset).get(key)):
                if isinstance(address, dict) and isinstance(address.get("targetRef"), dict):
                    address["targetRef"].pop("resourceVersion", None)
    return bool(stripped == desired)


def endpoints_labels(service: Obj) -> dict[str, str]:
    """The Service's labels, the headless marker and the controller's managed-by label (1.33+)."""
    labels = {k: v for k, v in objects.labels(service).items() if k not in (HEADLESS_LABEL, ENDPOINTS_MANAGED_BY_LABEL)}
    if not _service_ip_set(service):
        labels[HEADLESS_LABEL] = ""
    labels[ENDPOINTS_MANAGED_BY_LABEL] = ENDPOINTS_CONTROLLER_NAME
    return labels


def plan_endpoints(service: Obj, pods: Iterable[Obj], existing: Obj | None, trigger_time: str | None = None,
                   memo: Memo | None = None) -> Obj | None:
    """The Endpoints object to write for a Service (with the existing resourceVersion: an update), or
    None when the existing one is already right (subsets, labels and over-capacity marker)."""
    subsets = endpoint_subsets(service, pods, memo)
    truncated = _truncate(subsets)
    labels = endpoints_labels(service)
    annotations = dict(_dict(objects.meta(existing).get("annotations"))) if existing else {}
    if (
        existing is not None
        and _subsets_equal(existing.get("subsets"), subsets)
        and objects.labels(existing) == labels
        and (OVER_CAPACITY_ANNOTATION in annotations) == truncated
    ):
        return None
    if trigger_time:
        annotations[TRIGGER_TIME_ANNOTATION] = trigger_time
    else:
        annotations.pop(TRIGGER_TIME_ANNOTATION, None)
    if truncated:
        annotations[OVER_CAPACITY_ANNOTATION] = "truncated"
    else:
        annotations.pop(OVER_CAPACITY_ANNOTATION, None)
    if existing is not None:
        out = dict(existing)  # shallow: subsets, labels and annotations are replaced, nothing is mutated
        meta = out["metadata"] = dict(objects.meta(existing))
    else:
        smeta = objects.meta(service)
        out = {"apiVersion": "v1", "kind": "Endpoints",
               "metadata": {"name": smeta.get("name", ""), "namespace": smeta.get("namespace", "")}}
        meta = out["metadata"]
    meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    if subsets:
        out["subsets"] = subsets
    else:
        out.pop("subsets", None)
    return out


# ---------------------------------------------------------------------------- trigger time
def format_time(value: datetime) -> str:
    """Go's time.RFC3339Nano in UTC: fractional seconds only when present, trailing zeros trimmed."""
    value = value.astimezone(UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0") + "Z"
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ready_transition(pod: Obj) -> datetime | None:
    for cond in _list(_dict(pod.get("status")).get("conditions")):
        if isinstance(cond, dict) and cond.get("type") == "Ready":
            return parse_time(cond.get("lastTransitionTime"))
    return None


class TriggerTimeTracker:
    """util.TriggerTimeTracker: the `last-change-trigger-time` a sync exports is the earliest Ready
    transition (or Service creation) seen since the previous sync; a Service's first sync after a
    (re)start exports its creationTimestamp. In-memory by design, as upstream."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], tuple[datetime | None, dict[str, datetime]]] = {}

    def compute(self, service: Obj, pods: Iterable[Obj]) -> str | None:
        meta = objects.meta(service)
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        known = key in self._states
        last_service, last_pods = self._states.get(key, (None, {}))
        earliest: datetime | None = None
        pod_times: dict[str, datetime] = {}
        for pod in pods:
            when = _ready_transition(pod)
            if when is None:
                continue
            name = str(objects.meta(pod).get("name", ""))
            pod_times[name] = when
            previous = last_pods.get(name)
            if (previous is None or when > previous) and (earliest is None or when < earliest):
                earliest = when
        created = parse_time(meta.get("creationTimestamp"))
        if (created is not None and (last_service is None or created > last_service)
                and (earliest is None or created < earliest)):
            earliest = created
        self._states[key] = (created, pod_times)
        if not known:
            return format_time(created) if created else None
        return format_time(earliest) if earliest else None

    def forget(self, namespace: str, name: str) -> None:
        self._states.pop((namespace, name), None)


# ---------------------------------------------------------------------------- event bookkeeping
def _pod_fingerprint(pod: Obj) -> tuple[Any, ...]:
    """What of a pod can change its endpoints (podEndpointsChanged, plus phase and node)."""
    spec = _dict(pod.get("spec"))
    return (
        tuple(sorted(objects.labels(pod).items())),
        pod_ready(pod),
        tuple(_pod_ips(pod)),
        bool(objects.meta(pod).get("deletionTimestamp")),
        _str(spec.get("hostname")),
        _str(spec.get("subdomain")),
        _dict(pod.get("status")).get("phase") in ("Succeeded", "Failed"),
        _str(spec.get("nodeName")),
    )


@dataclass
class ServiceIndex:
    """Per-cluster bookkeeping that maps store events to the Services they concern, without scans.

    Kept from the events themselves (and rebuilt by the relist on attach), so it is a cache: a stale
    entry costs an extra no-op reconcile, never a wrong object. `members` comes from the endpoint
    objects' targetRefs, so a pod that leaves a Service's selector still requeues the Service that
    lists it; `expected` holds the objects this controller is writing, whose events need no requeue;
    `memos` keeps each Service's planner cache; `batches` and `urgent` delay pod-triggered syncs by the
    controller's batch period (`batch`, `sync_due`).
    """

    selectors: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)  # ns → svc → selector
    members: dict[tuple[str, str], tuple[str, frozenset[str]]] = field(default_factory=dict)
    pod_services: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    fingerprints: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    pod_node: dict[tuple[str, str], str] = field(default_factory=dict)
    node_pods: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    node_zones: dict[str, str | None] = field(default_factory=dict)
    expected: set[tuple[str, str]] = field(default_factory=set)
    memos: dict[tuple[str, str], Memo] = field(default_factory=dict)  # (ns, svc) → the planner's cache
    batches: dict[tuple[str, str], float] = field(default_factory=dict)  # (ns, svc) → when its batched sync is due
    urgent: set[tuple[str, str]] = field(default_factory=set)  # (ns, svc) to sync at once, batch or not

    def memo(self, namespace: str, name: str) -> Memo:
        return self.memos.setdefault((namespace, name), Memo())

    def batch(self, keys: Iterable[tuple[str, str]], now: float, period: float) -> set[tuple[str, str]]:
        """Pod-triggered syncs, delayed as upstream's `queue.AddAfter(key, batchPeriod)`: a Service's first
        change opens a window of `period` seconds that later changes join (a waiting item keeps its earlier
        due time). Returns the keys to queue now: those whose window just opened (their reconcile waits for
        it, see `sync_due`) or is overdue (its sync is queued already, or was lost: queue it again).
        `period <= 0` (upstream's default) queues every change at once."""
        if period <= 0:
            return set(keys)
        out = set()
        for key in keys:
            due = self.batches.get(key)
            if due is None:
                self.batches[key] = now + period
                out.add(key)
            elif due <= now:
                out.add(key)
        return out

    def sync_due(self, key: tuple[str, str], now: float) -> float | None:
        """At the start of a reconcile: None to sync now (closing the Service's batch window), or the
        seconds until its window closes. Service changes and writes by others (`urgent`) never wait."""
        if key in self.urgent:
            self.urgent.discard(key)
            self.batches.pop(key, None)
            return None
        due = self.batches.get(key)
        if due is None:
            return None
        if due > now:
            return due - now
        del self.batches[key]
        return None

    def service_event(self, event_type: str, service: Obj) -> None:
        meta = objects.meta(service)
        ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        selector = service_selector(service) if event_type != "DELETED" else None
        if selector is None:
            self.selectors.get(ns, {}).pop(name, None)
        else:
            self.selectors.setdefault(ns, {})[name] = selector

    def services_for_pod(self, namespace: str, name: str, labels: Mapping[str, Any]) -> set[str]:
        """Services whose selector matches the labels, plus those whose endpoints list the pod now."""
        found = {svc for svc, sel in self.selectors.get(namespace, {}).items() if selects(sel, labels)}
        found.update(self.pod_services.get((namespace, name), {}))
        return found

    def pod_event(self, event_type: str, pod: Obj, track_nodes: bool) -> set[str]:
        """The Services to requeue for a pod event; none when nothing endpoint-relevant changed."""
        meta = objects.meta(pod)
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        if event_type == "DELETED":
            self.fingerprints.pop(key, None)
            if track_nodes:
                self._set_node(key, "")
        else:
            fingerprint = _pod_fingerprint(pod)
            if self.fingerprints.get(key) == fingerprint:
                return set()
            self.fingerprints[key] = fingerprint
            if track_nodes:
                self._set_node(key, _str(_dict(pod.get("spec")).get("nodeName")))
        return self.services_for_pod(key[0], key[1], objects.labels(pod))

    def _set_node(self, pod: tuple[str, str], node: str) -> None:
        old = self.pod_node.get(pod)
        if old == node:
            return
        if old:
            pods = self.node_pods.get(old)
            if pods is not None:
                pods.discard(pod)
                if not pods:
                    del self.node_pods[old]
        if node:
            self.pod_node[pod] = node
            self.node_pods.setdefault(node, set()).add(pod)
        else:
            self.pod_node.pop(pod, None)

    def node_event(self, event_type: str, node: Obj) -> list[tuple[str, str]] | None:
        """Pods on a node whose existence or zone changed (None: nothing relevant changed)."""
        name = str(objects.meta(node).get("name", ""))
        if event_type == "DELETED":
            if name not in self.node_zones:
                return None
            del self.node_zones[name]
        else:
            zone = objects.labels(node).get(ZONE_LABEL) or None
            if name in self.node_zones and self.node_zones[name] == zone:
                return None
            self.node_zones[name] = zone
        return sorted(self.node_pods.get(name, ()))

    def set_members(self, namespace: str, obj_name: str, service: str | None, pods: Iterable[str]) -> str | None:
        """Records which pods an endpoint object lists; returns the Service it was recorded for before."""
        key = (namespace, obj_name)
        previous = self.members.pop(key, None)
        if previous is not None:
            for pod in previous[1]:
                refs = self.pod_services.get((namespace, pod))
                if refs is None:
                    continue
                refs[previous[0]] = refs.get(previous[0], 1) - 1
                if refs[previous[0]] <= 0:
                    del refs[previous[0]]
                if not refs:
                    del self.pod_services[(namespace, pod)]
        if service:
            frozen = frozenset(pods)
            self.members[key] = (service, frozen)
            for pod in frozen:
                refs = self.pod_services.setdefault((namespace, pod), {})
                refs[service] = refs.get(service, 0) + 1
        return previous[0] if previous is not None else None


def target_pods(namespace: str, addresses: Iterable[Any]) -> list[str]:
    """Names of the pods of `namespace` that endpoint entries point at."""
    out = []
    for item in addresses:
        ref = _dict(_dict(item).get("targetRef"))
        if ref.get("kind") == "Pod" and ref.get("namespace", namespace) == namespace and _str(ref.get("name")):
            out.append(ref["name"])
    return out
