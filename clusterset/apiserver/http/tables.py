"""Server-side printing: `meta.k8s.io/v1` Tables, as kube-apiserver renders them for `kubectl get`.

kubectl asks for `as=Table` and prints whatever columns come back, so the columns and cell
formats here follow kube's printers (pkg/printers/internalversion) for the built-ins, and the
apiextensions table convertor (additionalPrinterColumns) for custom resources. The server always
renders the wide (`-o wide`) cells; kubectl hides the priority-1 columns itself.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from clusterset.api import objects
from clusterset.api.times import parse_time, rfc3339
from clusterset.apiserver.registry.resources import ResourceType

Obj = dict[str, Any]
Cells = list[Any]

NAME_DESC = (
    "Name must be unique within a namespace. Is required when creating resources, although some resources "
    "may allow a client to request the generation of an appropriate name automatically. Name is primarily "
    "intended for creation idempotence and configuration definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
AGE_DESC = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. It is not "
    "guaranteed to be set in happens-before order across separate operations. Clients may not set this value. "
    "It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. "
    "More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
_ZERO_TIME = "0001-01-01T00:00:00Z"


def _col(name: str, type_: str = "string", desc: str = "", *, priority: int = 0, fmt: str = "") -> dict[str, Any]:
    return {"name": name, "type": type_, "format": fmt, "description": desc, "priority": priority}


NAME_COL = _col("Name", "string", NAME_DESC, fmt="name")
AGE_COL = _col("Age", "string", AGE_DESC)


# ---------------------------------------------------------------------------- time
def human_duration(seconds: float) -> str:
    """kube's duration.HumanDuration: `45s`, `5m3s`, `15m`, `3h2m`, `10h`, `2d3h`, `30d`, `2y40d`."""
    secs = int(seconds)  # Go truncates toward zero
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 60 * 2:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        s = secs % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = secs // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def _since(value: Any, now: datetime) -> str:
    """translateTimestampSince: `<unknown>` for a missing (zero) time."""
    ts = parse_time(value)
    if ts is None:
        return "<unknown>"
    return human_duration((now - ts).total_seconds())


def _rfc3339(value: Any) -> str:
    ts = parse_time(value)
    return rfc3339(ts) if ts else _ZERO_TIME


# ---------------------------------------------------------------------------- small helpers
def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _name(obj: Obj) -> str:
    return _str(objects.meta(obj).get("name"))


def _age(obj: Obj, now: datetime) -> str:
    return _since(objects.meta(obj).get("creationTimestamp"), now)


def format_labels(labels: Any) -> str:
    """labels.FormatLabels: sorted `k=v` pairs, `<none>` when empty."""
    pairs = [f"{k}={v}" for k, v in sorted(_dict(labels).items())]
    return ",".join(pairs) if pairs else "<none>"


def selector_string(selector: Any) -> str:
    """metav1.LabelSelectorAsSelector(...).String(): requirements sorted by key."""
    sel = _dict(selector)
    reqs: list[tuple[str, str]] = []
    for key, value in _dict(sel.get("matchLabels")).items():
        reqs.append((str(key), f"{key}={value}"))
    for expr in _list(sel.get("matchExpressions")):
        expr = _dict(expr)
        key = _str(expr.get("key"))
        op = _str(expr.get("operator"))
        values = ",".join(sorted(str(v) for v in _list(expr.get("values"))))
        text = {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key,
                "DoesNotExist": f"!{key}"}.get(op, f"{key} {op.lower()} ({values})")
        reqs.append((key, text))
    return ",".join(text for _, text in sorted(reqs, key=lambda r: r[0]))


def _containers_cells(pod_spec: Any) -> list[str]:
    containers = [_dict(c) for c in _list(_dict(pod_spec).get("containers"))]
    return [",".join(_str(c.get("name")) for c in containers), ",".join(_str(c.get("image")) for c in containers)]


def _join_host_port(host: str, port: Any) -> str:
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]:{port}"
    except ValueError:
        pass
    return f"{host}:{port}"


def _list_with_more(items: list[str], more: bool, count: int, limit: int) -> str:
    text = ",".join(items)
    if more:
        return f"{text} + {count - limit} more..."
    return text or "<unset>"


# ---------------------------------------------------------------------------- built-in printers
Printer = tuple[list[dict[str, Any]], Callable[[Obj, datetime], Cells]]

POD_COLUMNS = [
    NAME_COL,
    _col("Ready", desc="The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", desc="The aggregate status of the containers in this pod."),
    _col("Restarts", desc="The number of times the containers in this pod have been restarted and when the "
                          "last container in this pod has restarted."),
    AGE_COL,
    _col("IP", desc="podIP address allocated to the pod. Routable at least within the cluster. Empty if not "
                    "yet allocated.", priority=1),
    _col("Node", desc="NodeName indicates in which node this pod is scheduled.", priority=1),
    _col("Nominated Node", desc="nominatedNodeName is set only when this pod preempts other pods on the node, "
                                "but it cannot be scheduled right away.", priority=1),
    _col("Readiness Gates", desc="If specified, all readiness gates will be evaluated for pod readiness.",
         priority=1),
]


def _is_restartable_init(container: dict[str, Any] | None) -> bool:
    return container is not None and container.get("restartPolicy") == "Always"


def _condition_true(status: dict[str, Any], ctype: str) -> bool:
    return any(_dict(c).get("type") == ctype and _dict(c).get("status") == "True"
               for c in _list(status.get("conditions")))


def _later(current: datetime | None, candidate: Any) -> datetime | None:
    ts = parse_time(candidate)
    if ts is None:
        return current
    return ts if current is None or ts > current else current


def pod_cells(pod: Obj, now: datetime) -> Cells:
    """printPod: Ready, Status (reason), Restarts as kube computes them."""
    spec = _dict(pod.get("spec"))
    status = _dict(pod.get("status"))
    restarts = 0
    restartable_init_restarts = 0
    total = len(_list(spec.get("containers")))
    ready = 0
    last_restart: datetime | None = None
    last_restartable_init_restart: datetime | None = None

    phase = _str(status.get("phase"))
    reason = _str(status.get("reason")) or phase
    for cond in _list(status.get("conditions")):
        cond = _dict(cond)
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_specs = [_dict(c) for c in _list(spec.get("initContainers"))]
    init_by_name = {_str(c.get("name")): c for c in init_specs}
    total += sum(1 for c in init_specs if _is_restartable_init(c))

    initializing = False
    for i, cs in enumerate(_list(status.get("initContainerStatuses"))):
        cs = _dict(cs)
        restarts += _int(cs.get("restartCount"))
        last_terminated = _dict(_get(cs, "lastState", "terminated"))
        if last_terminated:
            last_restart = _later(last_restart, last_terminated.get("finishedAt"))
        restartable = _is_restartable_init(init_by_name.get(_str(cs.get("name"))))
        if restartable:
            restartable_init_restarts += _int(cs.get("restartCount"))
            if last_terminated:
                last_restartable_init_restart = _later(last_restartable_init_restart,
                                                       last_terminated.get("finishedAt"))
        state = _dict(cs.get("state"))
        terminated = state.get("terminated")
        waiting = state.get("waiting")
        if isinstance(terminated, dict) and _int(terminated.get("exitCode")) == 0:
            continue
        if restartable and cs.get("started") is True:
            if cs.get("ready") is True:
                ready += 1
            continue
        if isinstance(terminated, dict):
            if not _str(terminated.get("reason")):
                if _int(terminated.get("signal")) != 0:
                    reason = f"Init:Signal:{_int(terminated.get('signal'))}"
                else:
                    reason = f"Init:ExitCode:{_int(terminated.get('exitCode'))}"
            else:
                reason = "Init:" + _str(terminated.get("reason"))
        elif isinstance(waiting, dict) and _str(waiting.get("reason")) and waiting.get("reason") != "PodInitializing":
            reason = "Init:" + _str(waiting.get("reason"))
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(status, "Initialized"):
        restarts = restartable_init_restarts
        last_restart = last_restartable_init_restart
        has_running = False
        for cs in reversed(_list(status.get("containerStatuses"))):
            cs = _dict(cs)
            restarts += _int(cs.get("restartCount"))
            last_terminated = _dict(_get(cs, "lastState", "terminated"))
            if last_terminated:
                last_restart = _later(last_restart, last_terminated.get("finishedAt"))
            state = _dict(cs.get("state"))
            waiting = state.get("waiting")
            terminated = state.get("terminated")
            if isinstance(waiting, dict) and _str(waiting.get("reason")):
                reason = _str(waiting.get("reason"))
            elif isinstance(terminated, dict) and _str(terminated.get("reason")):
                reason = _str(terminated.get("reason"))
            elif isinstance(terminated, dict):
                if _int(terminated.get("signal")) != 0:
                    reason = f"Signal:{_int(terminated.get('signal'))}"
                else:
                    reason = f"ExitCode:{_int(terminated.get('exitCode'))}"
            elif cs.get("ready") is True and isinstance(state.get("running"), dict):
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(status, "Ready") else "NotReady"

    if objects.meta(pod).get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"

    restarts_str = str(restarts)
    if restarts != 0 and last_restart is not None:
        restarts_str = f"{restarts} ({human_duration((now - last_restart).total_seconds())} ago)"

    pod_ips = _list(status.get("podIPs"))
    pod_ip = _str(_dict(pod_ips[0]).get("ip")) if pod_ips else ""
    gates = _list(spec.get("readinessGates"))
    readiness = "<none>"
    if gates:
        true_count = 0
        for gate in gates:
            ctype = _dict(gate).get("conditionType")
            for cond in _list(status.get("conditions")):
                if _dict(cond).get("type") == ctype:
                    true_count += _dict(cond).get("status") == "True"
                    break
        readiness = f"{true_count}/{len(gates)}"
    return [
        _name(pod), f"{ready}/{total}", reason, restarts_str, _age(pod, now),
        pod_ip or "<none>", _str(spec.get("nodeName")) or "<none>",
        _str(status.get("nominatedNodeName")) or "<none>", readiness,
    ]


def pod_row_conditions(pod: Obj) -> list[dict[str, Any]] | None:
    """Completed pods carry a `Completed` row condition (kubectl may hide them)."""
    phase = _get(pod, "status", "phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return None


SERVICE_COLUMNS = [
    NAME_COL,
    _col("Type", desc="type determines how the Service is exposed. Defaults to ClusterIP."),
    _col("Cluster-IP", desc="clusterIP is the IP address of the service and is usually assigned randomly."),
    _col("External-IP", desc="externalIPs is a list of IP addresses for which nodes in the cluster will also "
                             "accept traffic for this service."),
    _col("Port(s)", desc="The list of ports that are exposed by this service."),
    AGE_COL,
    _col("Selector", desc="Route service traffic to pods with label keys and values matching this selector.",
         priority=1),
]


def _service_external_ip(svc: Obj) -> str:
    spec = _dict(svc.get("spec"))
    external = [str(ip) for ip in _list(spec.get("externalIPs"))]
    svc_type = spec.get("type")
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if svc_type == "LoadBalancer":
        found = set()
        for ing in _list(_get(svc, "status", "loadBalancer", "ingress")):
            ing = _dict(ing)
            if ing.get("ip"):
                found.add(str(ing["ip"]))
            elif ing.get("hostname"):
                found.add(str(ing["hostname"]))
        lb = sorted(found)
        if external:
            return ",".join([*lb, *external])
        return ",".join(lb) if lb else "<pending>"
    if svc_type == "ExternalName":
        return _str(spec.get("externalName"))
    return "<unknown>"


def _service_ports(ports: Any) -> str:
    pieces = []
    for port in _list(ports):
        port = _dict(port)
        proto = _str(port.get("protocol")) or "TCP"
        node_port = _int(port.get("nodePort"))
        if node_port > 0:
            pieces.append(f"{port.get('port')}:{node_port}/{proto}")
        else:
            pieces.append(f"{port.get('port')}/{proto}")
    return ",".join(pieces)


def service_cells(svc: Obj, now: datetime) -> Cells:
    spec = _dict(svc.get("spec"))
    cluster_ips = _list(spec.get("clusterIPs"))
    internal = str(cluster_ips[0]) if cluster_ips else (_str(spec.get("clusterIP")) or "<none>")
    return [_name(svc), _str(spec.get("type")), internal, _service_external_ip(svc),
            _service_ports(spec.get("ports")) or "<none>", _age(svc, now), format_labels(spec.get("selector"))]


WIDE_CONTAINERS = [
    _col("Containers", desc="Names of each container in the template.", priority=1),
    _col("Images", desc="Images referenced by each container in the template.", priority=1),
]
SELECTOR_DESC = "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones " \
                "affected by this deployment."

DEPLOYMENT_COLUMNS = [
    NAME_COL,
    _col("Ready", desc="Number of the pod with ready state"),
    _col("Up-to-date", "integer", "Total number of non-terminated pods targeted by this deployment that have the "
                                  "desired template spec."),
    _col("Available", "integer", "Total number of available pods (ready for at least minReadySeconds) targeted "
                                 "by this deployment."),
    AGE_COL,
    *WIDE_CONTAINERS,
    _col("Selector", desc=SELECTOR_DESC, priority=1),
]


def deployment_cells(obj: Obj, now: datetime) -> Cells:
    spec = _dict(obj.get("spec"))
    status = _dict(obj.get("status"))
    desired = spec.get("replicas")
    desired = _int(desired) if desired is not None else 1
    return [_name(obj), f"{_int(status.get('readyReplicas'))}/{desired}", _int(status.get("updatedReplicas")),
            _int(status.get("availableReplicas")), _age(obj, now), *_containers_cells(_get(spec, "template", "spec")),
            selector_string(spec.get("selector"))]


REPLICASET_COLUMNS = [
    NAME_COL,
    _col("Desired", "integer", "Replicas is the number of desired pods."),
    _col("Current", "integer", "Replicas is the most recently observed number of non-terminating pods."),
    _col("Ready", "integer", "The number of non-terminating pods targeted by this ReplicaSet with a Ready "
                             "Condition."),
    AGE_COL,
    *WIDE_CONTAINERS,
    _col("Selector", desc="Selector is a label query over pods that should match the replica count.", priority=1),
]


def replicaset_cells(obj: Obj, now: datetime) -> Cells:
    return _replicas_cells(obj, now, selector_string(_dict(obj.get("spec")).get("selector")))


def _replicas_cells(obj: Obj, now: datetime, selector: str) -> Cells:
    spec = _dict(obj.get("spec"))
    status = _dict(obj.get("status"))
    desired = spec.get("replicas")
    return [_name(obj), _int(desired) if desired is not None else 1, _int(status.get("replicas")),
            _int(status.get("readyReplicas")), _age(obj, now), *_containers_cells(_get(spec, "template", "spec")),
            selector]


REPLICATIONCONTROLLER_COLUMNS = [
    NAME_COL,
    _col("Desired", "integer", "Replicas is the number of desired replicas."),
    _col("Current", "integer", "Replicas is the most recently observed number of replicas."),
    _col("Ready", "integer", "The number of ready replicas for this replication controller."),
    AGE_COL,
    *WIDE_CONTAINERS,
    _col("Selector", desc="Selector is a label query over pods that should match the Replicas count.", priority=1),
]


def replicationcontroller_cells(obj: Obj, now: datetime) -> Cells:
    """printReplicationController: as a ReplicaSet's, with the plain-map selector."""
    return _replicas_cells(obj, now, format_labels(_dict(obj.get("spec")).get("selector")))


STATEFULSET_COLUMNS = [NAME_COL, _col("Ready", desc="Number of the pod with ready state"), AGE_COL, *WIDE_CONTAINERS]


def statefulset_cells(obj: Obj, now: datetime) -> Cells:
    spec = _dict(obj.get("spec"))
    desired = spec.get("replicas")
    desired = _int(desired) if desired is not None else 1
    ready = _int(_get(obj, "status", "readyReplicas"))
    return [_name(obj), f"{ready}/{desired}", _age(obj, now), *_containers_cells(_get(spec, "template", "spec"))]


DAEMONSET_COLUMNS = [
    NAME_COL,
    _col("Desired", "integer", "The total number of nodes that should be running the daemon pod."),
    _col("Current", "integer", "The number of nodes that are running at least 1 daemon pod and are supposed to "
                               "run the daemon pod."),
    _col("Ready", "integer", "The number of nodes that should be running the daemon pod and have one or more of "
                             "the daemon pod running with a Ready Condition."),
    _col("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
    _col("Available", "integer", "The number of nodes that should be running the daemon pod and have one or more "
                                 "of the daemon pod running and available."),
    _col("Node Selector", desc="NodeSelector is a selector which must be true for the pod to fit on a node."),
    AGE_COL,
    *WIDE_CONTAINERS,
    _col("Selector", desc="A label query over pods that are managed by the daemon set.", priority=1),
]


def daemonset_cells(obj: Obj, now: datetime) -> Cells:
    spec = _dict(obj.get("spec"))
    status = _dict(obj.get("status"))
    pod_spec = _get(spec, "template", "spec")
    return [_name(obj), _int(status.get("desiredNumberScheduled")), _int(status.get("currentNumberScheduled")),
            _int(status.get("numberReady")), _int(status.get("updatedNumberScheduled")),
            _int(status.get("numberAvailable")), format_labels(_get(pod_spec, "nodeSelector")), _age(obj, now),
            *_containers_cells(pod_spec), selector_string(spec.get("selector"))]


CONTROLLERREVISION_COLUMNS = [
    NAME_COL,
    _col("Controller", desc="Controller of the object"),
    _col("Revision", desc="Revision indicates the revision of the state represented by Data."),
    AGE_COL,
]


def controllerrevision_cells(obj: Obj, now: datetime) -> Cells:
    """printControllerRevision: the controller as `<kind>.<group>/<name>` (lower case), or <none>."""
    ref = next((r for r in _list(objects.meta(obj).get("ownerReferences")) if _dict(r).get("controller") is True), None)
    controller = "<none>"
    if ref is not None:
        group = _str(ref.get("apiVersion")).rpartition("/")[0]
        kind = _str(ref.get("kind")) + (f".{group}" if group else "")
        controller = f"{kind.lower()}/{_str(ref.get('name'))}"
    return [_name(obj), controller, _int(obj.get("revision")), _age(obj, now)]


CONFIGMAP_COLUMNS = [
    NAME_COL,
    _col("Data", "integer", "Data contains the configuration data."),
    AGE_COL,
]


def configmap_cells(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), len(_dict(obj.get("data"))) + len(_dict(obj.get("binaryData"))), _age(obj, now)]


SECRET_COLUMNS = [
    NAME_COL,
    _col("Type", desc="Used to facilitate programmatic handling of secret data."),
    _col("Data", "integer", "Data contains the secret data."),
    AGE_COL,
]


def secret_cells(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), _str(obj.get("type")), len(_dict(obj.get("data"))), _age(obj, now)]


NAMESPACE_COLUMNS = [NAME_COL, _col("Status", desc="The status of the namespace"), AGE_COL]


def namespace_cells(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), _str(_get(obj, "status", "phase")), _age(obj, now)]


ENDPOINTSLICE_COLUMNS = [
    NAME_COL,
    _col("AddressType", desc="addressType specifies the type of address carried by this EndpointSlice."),
    _col("Ports", desc="ports specifies the list of network ports exposed by each endpoint in this slice."),
    _col("Endpoints", desc="endpoints is a list of unique endpoints in this slice."),
    AGE_COL,
]


def endpointslice_cells(obj: Obj, now: datetime) -> Cells:
    limit = 3
    ports: list[str] = []
    more = False
    count = 0
    for port in _list(obj.get("ports")):
        port = _dict(port)
        if len(ports) < limit:
            if port.get("port") is not None:
                ports.append(str(port["port"]))
            elif port.get("name") is not None:
                ports.append(str(port["name"]))
            else:
                ports.append("*")
        else:
            more = True
        count += 1
    port_text = _list_with_more(ports, more, count, limit)
    addrs: list[str] = []
    more = False
    count = 0
    for endpoint in _list(obj.get("endpoints")):
        for address in _list(_dict(endpoint).get("addresses")):
            if len(addrs) < limit:
                addrs.append(str(address))
            else:
                more = True
            count += 1
    return [_name(obj), _str(obj.get("addressType")), port_text, _list_with_more(addrs, more, count, limit),
            _age(obj, now)]


ENDPOINTS_COLUMNS = [NAME_COL, _col("Endpoints", desc="Endpoints of the service"), AGE_COL]


def endpoints_cells(obj: Obj, now: datetime) -> Cells:
    subsets = _list(obj.get("subsets"))
    if not subsets:
        return [_name(obj), "<none>", _age(obj, now)]
    limit = 3
    items: list[str] = []
    more = False
    count = 0
    for subset in subsets:
        subset = _dict(subset)
        addresses = [_str(_dict(a).get("ip")) for a in _list(subset.get("addresses"))]
        ports = [_dict(p) for p in _list(subset.get("ports"))]
        if not ports:
            count += len(addresses)
            for ip in addresses:
                if len(items) == limit:
                    more = True
                    break
                items.append(ip)
            continue
        for port in ports:
            count += len(addresses)
            for ip in addresses:
                if len(items) == limit:
                    more = True
                    break
                items.append(_join_host_port(ip, _int(port.get("port"))))
    text = ",".join(items)
    if more:
        text = f"{text} + {count - limit} more..."
    return [_name(obj), text, _age(obj, now)]


NODE_COLUMNS = [
    NAME_COL,
    _col("Status", desc="The status of the node"),
    _col("Roles", desc="The roles of the node"),
    AGE_COL,
    _col("Version", desc="Kubelet Version reported by the node."),
    _col("Internal-IP", desc="List of addresses reachable to the node.", priority=1),
    _col("External-IP", desc="List of addresses reachable to the node.", priority=1),
    _col("OS-Image", desc="OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
         priority=1),
    _col("Kernel-Version", desc="Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
         priority=1),
    _col("Container-Runtime", desc="ContainerRuntime Version reported by the node through runtime remote API "
                                   "(e.g. containerd://1.4.2).", priority=1),
]


def node_cells(obj: Obj, now: datetime) -> Cells:
    status = _dict(obj.get("status"))
    states: list[str] = []
    ready = [c for c in (_dict(c) for c in _list(status.get("conditions"))) if c.get("type") == "Ready"]
    if ready:
        states.append("Ready" if ready[-1].get("status") == "True" else "NotReady")
    else:
        states.append("Unknown")
    if _get(obj, "spec", "unschedulable") is True:
        states.append("SchedulingDisabled")
    roles: set[str] = set()
    for key, value in _dict(objects.meta(obj).get("labels")).items():
        if key.startswith("node-role.kubernetes.io/"):
            role = key.removeprefix("node-role.kubernetes.io/")
            if role:
                roles.add(role)
        elif key == "kubernetes.io/role" and value:
            roles.add(str(value))
    addresses = [_dict(a) for a in _list(status.get("addresses"))]

    def address(kind: str) -> str:
        return next((_str(a.get("address")) for a in addresses if a.get("type") == kind), "<none>")

    info = _dict(status.get("nodeInfo"))
    return [_name(obj), ",".join(states), ",".join(sorted(roles)) or "<none>", _age(obj, now),
            _str(info.get("kubeletVersion")), address("InternalIP"), address("ExternalIP"),
            _str(info.get("osImage")) or "<unknown>", _str(info.get("kernelVersion")) or "<unknown>",
            _str(info.get("containerRuntimeVersion")) or "<unknown>"]


SERVICEACCOUNT_COLUMNS = [
    NAME_COL,
    _col("Secrets", desc="Secrets is a list of the secrets in the same namespace that pods running using this "
                         "ServiceAccount are allowed to use."),
    AGE_COL,
]


def serviceaccount_cells(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), len(_list(obj.get("secrets"))), _age(obj, now)]


EVENT_COLUMNS = [
    _col("Last Seen", desc="The time at which the most recent occurrence of this event was recorded."),
    _col("Type", desc="Type of this event (Normal, Warning), new types could be added in the future"),
    _col("Reason", desc="This should be a short, machine understandable string that gives the reason for the "
                        "transition into the object's current status."),
    _col("Object", desc="The object that this event is about."),
    _col("Subobject", desc="If referring to a piece of an object instead of an entire object, this string should "
                           "contain a valid JSON/Go field access statement.", priority=1),
    _col("Source", desc="The component reporting this event. Should be a short machine understandable string.",
         priority=1),
    _col("Message", desc="A human-readable description of the status of this operation."),
    _col("First Seen", desc="The time at which the event was first recorded. (Time of server receipt is in "
                            "TypeMeta.)", priority=1),
    _col("Count", desc="The number of times this event has occurred.", priority=1),
    _col("Name", desc=NAME_DESC, priority=1, fmt="name"),
]


def event_cells(obj: Obj, now: datetime) -> Cells:
    first = _since(obj.get("firstTimestamp"), now)
    if parse_time(obj.get("firstTimestamp")) is None:
        first = _since(obj.get("eventTime"), now)
    last = _since(obj.get("lastTimestamp"), now)
    if parse_time(obj.get("lastTimestamp")) is None:
        last = first
    count = _int(obj.get("count"))
    series = obj.get("series")
    if isinstance(series, dict):
        last = _since(series.get("lastObservedTime"), now)
        count = _int(series.get("count"))
    elif count == 0:
        count = 1
    involved = _dict(obj.get("involvedObject"))
    kind = _str(involved.get("kind")).lower()
    target = f"{kind}/{involved['name']}" if _str(involved.get("name")) else kind
    source = _dict(obj.get("source"))
    component = _str(source.get("component")) or _str(obj.get("reportingComponent"))
    instance = _str(source.get("host")) or _str(obj.get("reportingInstance"))
    source_text = f"{component}, {instance}" if instance else component
    return [last, _str(obj.get("type")), _str(obj.get("reason")), target, _str(involved.get("fieldPath")),
            source_text, _str(obj.get("message")).strip(), first, count, _name(obj)]


LEASE_COLUMNS = [NAME_COL, _col("Holder", desc="holderIdentity contains the identity of the holder of a current "
                                               "lease."), AGE_COL]


def lease_cells(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), _str(_get(obj, "spec", "holderIdentity")), _age(obj, now)]


ROLE_COLUMNS = [NAME_COL, _col("Created At", desc=AGE_DESC)]


def role_cells(obj: Obj, now: datetime) -> Cells:
    return [_name(obj), _rfc3339(objects.meta(obj).get("creationTimestamp"))]


ROLEBINDING_COLUMNS = [
    NAME_COL,
    _col("Role", desc="RoleRef can reference a Role in the current namespace or a ClusterRole in the global "
                      "namespace."),
    AGE_COL,
    _col("Users", desc="Users in the roleBinding", priority=1),
    _col("Groups", desc="Groups in the roleBinding", priority=1),
    _col("ServiceAccounts", desc="ServiceAccounts in the roleBinding", priority=1),
]


def rolebinding_cells(obj: Obj, now: datetime) -> Cells:
    ref = _dict(obj.get("roleRef"))
    users: list[str] = []
    groups: list[str] = []
    sas: list[str] = []
    for subject in _list(obj.get("subjects")):
        subject = _dict(subject)
        kind = subject.get("kind")
        if kind == "ServiceAccount":
            sas.append(f"{_str(subject.get('namespace'))}/{_str(subject.get('name'))}")
        elif kind == "User":
            users.append(_str(subject.get("name")))
        elif kind == "Group":
            groups.append(_str(subject.get("name")))
    return [_name(obj), f"{_str(ref.get('kind'))}/{_str(ref.get('name'))}", _age(obj, now),
            ", ".join(users), ", ".join(groups), ", ".join(sas)]


APISERVICE_COLUMNS = [
    NAME_COL,
    _col("Service", desc="The reference to the service that hosts this API endpoint."),
    _col("Available", desc="Whether this service is available."),
    AGE_COL,
]


def apiservice_cells(obj: Obj, now: datetime) -> Cells:
    """kube-aggregator's ConvertToTable: `Local` or namespace/name; the Available status, with its reason if not
    True."""
    service = _get(obj, "spec", "service")
    where = f"{_str(_dict(service).get('namespace'))}/{_str(_dict(service).get('name'))}" if service else "Local"
    available = "Unknown"
    for condition in _list(_get(obj, "status", "conditions")):
        condition = _dict(condition)
        if condition.get("type") == "Available":
            status, reason = _str(condition.get("status")), _str(condition.get("reason"))
            available = f"{status} ({reason})" if status != "True" and reason else status
            break
    return [_name(obj), where, available, _age(obj, now)]


DEFAULT_COLUMNS = [NAME_COL, _col("Created At", "date", AGE_DESC)]


def default_cells(obj: Obj, now: datetime) -> Cells:
    """rest.NewDefaultTableConvertor: the name and the creation time in RFC 3339."""
    return [_name(obj), _rfc3339(objects.meta(obj).get("creationTimestamp"))]


PRINTERS: dict[tuple[str, str], Printer] = {
    ("", "Pod"): (POD_COLUMNS, pod_cells),
    ("", "Service"): (SERVICE_COLUMNS, service_cells),
    ("", "ConfigMap"): (CONFIGMAP_COLUMNS, configmap_cells),
    ("", "Secret"): (SECRET_COLUMNS, secret_cells),
    ("", "Namespace"): (NAMESPACE_COLUMNS, namespace_cells),
    ("", "Endpoints"): (ENDPOINTS_COLUMNS, endpoints_cells),
    ("", "Node"): (NODE_COLUMNS, node_cells),
    ("", "ServiceAccount"): (SERVICEACCOUNT_COLUMNS, serviceaccount_cells),
    ("", "Event"): (EVENT_COLUMNS, event_cells),
    ("apps", "Deployment"): (DEPLOYMENT_COLUMNS, deployment_cells),
    ("apps", "ReplicaSet"): (REPLICASET_COLUMNS, replicaset_cells),
    ("apps", "StatefulSet"): (STATEFULSET_COLUMNS, statefulset_cells),
    ("apps", "DaemonSet"): (DAEMONSET_COLUMNS, daemonset_cells),
    ("apps", "ControllerRevision"): (CONTROLLERREVISION_COLUMNS, controllerrevision_cells),
    ("", "ReplicationController"): (REPLICATIONCONTROLLER_COLUMNS, replicationcontroller_cells),
    ("discovery.k8s.io", "EndpointSlice"): (ENDPOINTSLICE_COLUMNS, endpointslice_cells),
    ("coordination.k8s.io", "Lease"): (LEASE_COLUMNS, lease_cells),
    ("rbac.authorization.k8s.io", "Role"): (ROLE_COLUMNS, role_cells),
    ("rbac.authorization.k8s.io", "ClusterRole"): (ROLE_COLUMNS, role_cells),
    ("rbac.authorization.k8s.io", "RoleBinding"): (ROLEBINDING_COLUMNS, rolebinding_cells),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): (ROLEBINDING_COLUMNS, rolebinding_cells),
    ("apiregistration.k8s.io", "APIService"): (APISERVICE_COLUMNS, apiservice_cells),
}


# ---------------------------------------------------------------------------- JSONPath (CRD columns)
Step = tuple[Any, ...]


class JSONPathError(ValueError):
    """A jsonPath outside the subset kubectl and CRD printer columns use."""



@lru_cache(maxsize=512)
def parse_jsonpath(path: str) -> tuple[Step, ...]:
    """`.a.b`, `.a[0].b`, `.a[*].b`, `.a['x.y']`, `.a[1:3]`, `.a[?(@.type=="Ready")].status`."""
    p = path.strip()
    if p.startswith("{") and p.endswith("}"):
        p = p[1:-1].strip()
    if p.startswith("$"):
        p = p[1:]
    steps: list[Step] = []
    i = 0
    while i < len(p):
        c = p[i]
        if c == ".":
            if p.startswith("..", i):
                raise JSONPathError(f"recursive descent is not supported: {path}")
            i += 1
            name, i = _read_name(p, i)
            if name:
                steps.append(("field", name))
        elif c == "[":
            end = _closing_bracket(p, i)
            steps.append(_bracket(p[i + 1:end].strip(), path))
            i = end + 1
        elif i == 0:
            name, i = _read_name(p, i)
            steps.append(("field", name))
        else:
            raise JSONPathError(f"unexpected {c!r} in {path}")
    return tuple(steps)


def _read_name(p: str, i: int) -> tuple[str, int]:
    out = []
    while i < len(p):
        c = p[i]
        if c == "\\" and i + 1 < len(p):
            out.append(p[i + 1])
            i += 2
            continue
        if c in ".[":
            break
        out.append(c)
        i += 1
    return "".join(out), i


def _closing_bracket(p: str, start: int) -> int:
    depth = 0
    quote = ""
    for j in range(start, len(p)):
        c = p[j]
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in "[(":
            depth += 1
        elif c in ")]":
            depth -= 1
            if depth == 0:
                return j
    raise JSONPathError(f"unclosed bracket in {p}")


_FILTER = re.compile(r"^@((?:\.[^.\s=!<>]+|\[[^\]]*\])*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+))?$")


def _bracket(inner: str, path: str) -> Step:
    if inner == "*":
        return ("wildcard",)
    if inner.startswith("?(") and inner.endswith(")"):
        m = _FILTER.match(inner[2:-1].strip())
        if not m:
            raise JSONPathError(f"unsupported filter in {path}")
        sub = parse_jsonpath(m.group(1)) if m.group(1) else ()
        op = m.group(2)
        literal = _literal(m.group(3).strip()) if op else None
        return ("filter", sub, op, literal)
    if inner[:1] in ("'", '"') and inner[-1:] == inner[:1]:
        return ("field", inner[1:-1])
    if ":" in inner:
        parts = [int(x) if x.strip() else None for x in inner.split(":")]
        while len(parts) < 3:
            parts.append(None)
        return ("slice", parts[0], parts[1], parts[2])
    try:
        return ("index", int(inner))
    except ValueError:
        raise JSONPathError(f"unsupported subscript [{inner}] in {path}") from None


def _literal(text: str) -> Any:
    if text[:1] in ("'", '"') and text[-1:] == text[:1]:
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    try:
        return json.loads(text)
    except ValueError:
        return text


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        a: Any = float(left)
        b: Any = float(right)
    elif isinstance(left, str) and isinstance(right, str):
        a, b = left, right
    else:
        return False
    return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])


def eval_jsonpath(steps: tuple[Step, ...], root: Any) -> list[Any]:
    """All matches, in document order (map wildcards in key order, as kube's jsonpath sorts them)."""
    current = [root]
    for step in steps:
        kind = step[0]
        nxt: list[Any] = []
        for value in current:
            if kind == "field":
                if isinstance(value, dict) and step[1] in value:
                    nxt.append(value[step[1]])
            elif kind == "index":
                if isinstance(value, list) and -len(value) <= step[1] < len(value):
                    nxt.append(value[step[1]])
            elif kind == "wildcard":
                if isinstance(value, list):
                    nxt.extend(value)
                elif isinstance(value, dict):
                    nxt.extend(value[k] for k in sorted(value))
            elif kind == "slice":
                if isinstance(value, list):
                    nxt.extend(value[slice(step[1], step[2], step[3])])
            elif kind == "filter":
                items = value if isinstance(value, list) else list(value.values()) if isinstance(value, dict) else []
                for item in items:
                    found = eval_jsonpath(step[1], item)
                    if step[2] is None:
                        if found:
                            nxt.append(item)
                    elif found and _compare(found[0], step[2], step[3]):
                        nxt.append(item)
        current = nxt
    return current


# ---------------------------------------------------------------------------- CRD printer
def go_format_float(value: float) -> str:
    """fmt's %v for float64 (strconv 'g', shortest): 1.5, 100000, 1e+06, 1.23456789e+08."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    if not isinstance(exponent, int):
        return repr(value)
    text_digits = "".join(str(d) for d in digits)
    nd = len(text_digits)
    dp = nd + exponent  # decimal point position
    eprec = 6
    if eprec > nd and nd >= dp:
        eprec = nd
    x = dp - 1
    prefix = "-" if sign else ""
    if x < -4 or x >= eprec:
        mantissa = text_digits[0] + ("." + text_digits[1:] if nd > 1 else "")
        return f"{prefix}{mantissa}e{'-' if x < 0 else '+'}{abs(x):02d}"
    if dp <= 0:
        return f"{prefix}0.{'0' * -dp}{text_digits}"
    if dp >= nd:
        return f"{prefix}{text_digits}{'0' * (dp - nd)}"
    return f"{prefix}{text_digits[:dp]}.{text_digits[dp:]}"


def go_print(value: Any) -> str:
    """How kube's jsonpath prints a value as text (fmt.Sprint of the decoded JSON)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_format_float(value)
    if value is None:
        return "<nil>"
    if isinstance(value, list):
        return "[" + " ".join(go_print(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_print(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def crd_cell(column_type: str, value: Any, now: datetime) -> Any:
    """cellForJSONValue: typed cells; a value of the wrong type gives a null cell."""
    if value is None:
        return None
    if column_type == "string":
        return go_print(value)
    if column_type == "integer":
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return int(value)
        return None
    if column_type == "number":
        if isinstance(value, bool):
            return None
        if isinstance(value, (int, float)):
            return float(value)
        return None
    if column_type == "boolean":
        return value if isinstance(value, bool) else None
    if column_type == "date":
        if not isinstance(value, str):
            return None
        ts = parse_time(value)
        if ts is None:
            return "<invalid>"
        return human_duration((now - ts).total_seconds())
    return None


def _crd_printer(rt: ResourceType) -> Printer:
    declared = [c for c in (rt.printer_columns or []) if isinstance(c, dict)]
    if not declared:
        declared = [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp",
                     "description": AGE_DESC}]
    columns = [NAME_COL]
    paths: list[tuple[Step, ...] | None] = []
    types: list[str] = []
    for col in declared:
        json_path = str(col.get("jsonPath", ""))
        desc = col.get("description") or f"Custom resource definition column (in JSONPath format): {json_path}"
        columns.append(_col(str(col.get("name", "")), str(col.get("type", "string")), str(desc),
                            priority=_int(col.get("priority")), fmt=str(col.get("format") or "")))
        try:
            paths.append(parse_jsonpath(json_path))
        except (JSONPathError, ValueError):
            paths.append(None)
        types.append(str(col.get("type", "string")))

    def cells(obj: Obj, now: datetime) -> Cells:
        row: Cells = [_name(obj)]
        for steps, column_type in zip(paths, types, strict=True):
            found = eval_jsonpath(steps, obj) if steps is not None else []
            row.append(crd_cell(column_type, found[0], now) if found else None)
        return row

    return columns, cells


def printer_for(rt: ResourceType) -> Printer:
    """The columns and row function kube-apiserver uses for this resource."""
    if rt.is_crd:
        return _crd_printer(rt)
    return PRINTERS.get((rt.group, rt.kind), (DEFAULT_COLUMNS, default_cells))


# ---------------------------------------------------------------------------- the Table
def to_table(rt: ResourceType, objects: list[dict[str, Any]], *, include_object: str = "Metadata",
             resource_version: str = "", continue_token: str = "", now: datetime | None = None) -> dict[str, Any]:
    """A `meta.k8s.io/v1` Table of `objects`; `include_object` is None, Metadata (default) or Object."""
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    columns, cells_of = printer_for(rt)
    is_pod = not rt.is_crd and rt.group == "" and rt.kind == "Pod"
    rows: list[dict[str, Any]] = []
    for obj in objects:
        row: dict[str, Any] = {"cells": cells_of(obj, now)}
        if is_pod:
            conditions = pod_row_conditions(obj)
            if conditions:
                row["conditions"] = conditions
        if include_object == "Object":
            row["object"] = {"kind": rt.kind, "apiVersion": rt.group_version, **obj}
        elif include_object != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": obj.get("metadata") or {}}
        rows.append(row)
    meta: dict[str, Any] = {}
    if resource_version:
        meta["resourceVersion"] = resource_version
    if continue_token:
        meta["continue"] = continue_token
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
            "columnDefinitions": [dict(c) for c in columns], "rows": rows}
