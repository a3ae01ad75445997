"""The simulated kubelets: run the pods bound to simulated nodes, as far as the API can tell.

A bound pod gets a pod IP (IPv4, plus IPv6 when the cluster is dual-stack) from its node's
podCIDR (or the cluster's pod range if the node has none), its node's hostIP(s), phase Running,
running containers (`kubectl get pods` shows `1/1 Running`), and the upstream conditions
PodReadyToStartContainers, Initialized, Ready, ContainersReady and PodScheduled. Containers become
ready `settings["podReadyDelay"]` seconds (default 0.5) after starting (a requeue, not a task);
Ready also needs the pod's readiness gates and a Ready node.

Addresses are allocated round-robin per range, as host-local IPAM does, from one set of the
cluster's live pod IPs: an IP is never given to two live pods, and is freed when its pod is gone.
The set is rebuilt from the stored pods on first use after a restart.

Deletion: a simulated container exits as soon as it is signalled, so the kubelet removes a
terminating pod (a grace-0 delete, as upstream's kubelet does once containers stopped)
`min(deletionGracePeriodSeconds, settings["podTerminationDelay"] (default 1 s))` after it saw the
deletion. Annotate the pod `clusterset.io/simulate-termination-seconds: "<n>"` to make its
containers take n seconds instead (still bounded by the grace period), e.g. to watch endpoints of
terminating pods.

Test hooks (annotations, honoured on every update of the pod):
- `clusterset.io/simulate-ready: "false"`: containers keep running but are not ready (a failing
  readiness probe): Ready=False, ContainersReady=False. Removing it makes them ready again.
- `clusterset.io/simulate-phase: Failed | Succeeded`: the containers exit (exit code 1 / 0) and
  the pod reaches that terminal phase, which sticks (terminal phases are final upstream).
  `Pending` keeps the containers in ContainerCreating.
- `clusterset.io/simulate-run-seconds: "<n>"`: the containers exit 0 after running n seconds and the
  pod Succeeds, when its restartPolicy is Never or OnFailure (a bare pod as well as a Job's; put it on
  a Job's pod template). Pods of a Job without it run `settings["jobPodRunSeconds"]` (default 1 s);
  other pods run until deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from clusterset.api.objects import annotations_of, meta, spec, status
from clusterset.api.times import now_rfc3339
from clusterset.apiserver.controllers.manager import ClusterAPI, Key
from clusterset.apiserver.controllers.workloads.nodes import is_simulated, node_ready
from clusterset.apiserver.controllers.workloads.util import (
    CONFLICT_RETRY,
    NODES,
    PODS,
    SIMULATE_PHASE,
    SIMULATE_READY,
    SIMULATE_RUN,
    SIMULATE_TERMINATION,
    deep_copy,
    guarded,
    owner_key,
    parse_ts,
    safe_keys,
    seconds_setting,
    wall,
)
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.storage.store import Event, Obj

CONDITION_ORDER = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")


def normalize_image(image: str) -> str:
    """What the container runtime reports as the image: `hello` → `docker.io/library/hello:latest`."""
    name, _, digest = image.partition("@")
    tag = ""
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    parts = name.split("/")
    if len(parts) == 1:
        name = f"docker.io/library/{name}"
    elif "." not in parts[0] and ":" not in parts[0] and parts[0] != "localhost":
        name = f"docker.io/{name}"
    return f"{name}@{digest}" if digest else f"{name}:{tag or 'latest'}"


def image_id(image: str) -> str:
    normalized = normalize_image(image)
    repo = normalized.split("@", 1)[0]
    if ":" in repo.rsplit("/", 1)[-1]:
        repo = repo.rsplit(":", 1)[0]
    return f"{repo}@sha256:{hashlib.sha256(normalized.encode()).hexdigest()}"


@dataclass(eq=False)
class PodNetwork:
    """A cluster's live pod IPs and the host-local style cursor of each range."""

    cluster: weakref.ref[Cluster]  # a removed cluster is not kept alive by its addresses
    used: set[str] = field(default_factory=set)
    cursors: dict[str, int] = field(default_factory=dict)

    def allocate(self, cidr: str) -> str | None:
        network = ipaddress.ip_network(cidr, strict=False)
        size = network.num_addresses
        first, last = (1, size - 2) if network.version == 4 else (1, size - 1)
        if network.version == 4 and size <= 2:
            return None
        span = last - first + 1
        start = self.cursors.get(cidr, first - 1)
        base = int(network.network_address)
        for step in range(1, min(span, 1 << 20) + 1):
            offset = first + (start - first + step) % span
            candidate = str(ipaddress.ip_address(base + offset))
            if offset == 1 and span > 2:
                continue  # the first address is the node's gateway
            if candidate not in self.used:
                self.used.add(candidate)
                self.cursors[cidr] = offset
                return candidate
        return None


class KubeletController:
    """Runs the pods of every simulated node of a cluster."""

    name = "kubelet"
    watches: tuple[str, ...] = (PODS, NODES)

    def __init__(self) -> None:
        self._networks: dict[str, PodNetwork] = {}
        self._started: dict[tuple[str, str], float] = {}  # (cluster, pod uid) → containers started (epoch)
        self._deleting: dict[tuple[str, str], float] = {}  # (cluster, pod uid) → deletion first seen (epoch)

    def network(self, cluster: Cluster) -> PodNetwork:
        net = self._networks.get(cluster.name)
        if net is None or net.cluster() is not cluster:
            self._purge()
            net = PodNetwork(weakref.ref(cluster))
            for entry in cluster.store.entries(PODS):
                for ip in status(entry.obj).get("podIPs") or []:
                    if isinstance(ip, dict) and ip.get("ip") and not spec(entry.obj).get("hostNetwork"):
                        net.used.add(str(ip["ip"]))
            self._networks[cluster.name] = net
        return net

    @safe_keys
    def keys_for(self, cluster: Cluster, event: Event) -> Iterable[Key]:
        obj = event.entry.obj
        if event.resource == PODS:
            if event.type == "DELETED":
                self._forget(cluster, obj)
                return
            if spec(obj).get("nodeName"):
                yield (str(meta(obj).get("namespace", "")), str(meta(obj)["name"]))
            return
        node = meta(obj).get("name")
        for entry in cluster.store.entries(PODS):  # node readiness changes pod readiness
            if spec(entry.obj).get("nodeName") == node:
                yield (str(meta(entry.obj).get("namespace", "")), str(meta(entry.obj)["name"]))

    def _purge(self) -> None:
        """Drops what is remembered about clusters that were removed (or replaced under their name)."""
        gone = {name for name, net in self._networks.items() if net.cluster() is None}
        for name in gone:
            del self._networks[name]
        for memory in (self._started, self._deleting):
            for key in [k for k in memory if k[0] in gone]:
                del memory[key]

    def _forget(self, cluster: Cluster, pod: Obj) -> None:
        uid = str(meta(pod).get("uid", ""))
        self._started.pop((cluster.name, uid), None)
        self._deleting.pop((cluster.name, uid), None)
        net = self._networks.get(cluster.name)
        if net is not None and net.cluster() is cluster and not spec(pod).get("hostNetwork"):
            for ip in status(pod).get("podIPs") or []:
                if isinstance(ip, dict):
                    net.used.discard(str(ip.get("ip", "")))

    @guarded("kubelet")
    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        namespace, name = key
        pod = api.get(PODS, namespace, name)
        if pod is None or not spec(pod).get("nodeName"):
            return None
        node = api.get(NODES, "", str(spec(pod)["nodeName"]))
        if node is None or not is_simulated(node):
            return None  # no kubelet there: the pod stays Pending, as on a dead node
        if meta(pod).get("deletionTimestamp"):
            return await self._terminate(api, pod)
        desired, again = self.desired_status(api.cluster, pod, node)
        if desired != status(pod):
            updated = deep_copy(pod)
            updated["status"] = desired
            if await api.update(PODS, updated, subresource="status") is None:
                self._release_unused(api.cluster, pod, desired)
                return CONFLICT_RETRY
        return again

    def _release_unused(self, cluster: Cluster, pod: Obj, desired: dict[str, Any]) -> None:
        """A status write failed: the addresses it would have given the pod are free again."""
        if spec(pod).get("hostNetwork"):
            return
        had = {str(ip.get("ip")) for ip in status(pod).get("podIPs") or [] if isinstance(ip, dict)}
        net = self.network(cluster)
        for ip in desired.get("podIPs") or []:
            if ip["ip"] not in had:
                net.used.discard(ip["ip"])

    async def _terminate(self, api: ClusterAPI, pod: Obj) -> float | None:
        """Signals the containers, and removes the pod once they exited."""
        m = meta(pod)
        grace = float(m.get("deletionGracePeriodSeconds") or 0)
        delay = seconds_setting(api.cluster, "podTerminationDelay", 1.0)
        override = annotations_of(pod).get(SIMULATE_TERMINATION)
        if override is not None:
            with contextlib.suppress(ValueError):
                delay = max(0.0, float(override))
        seen = self._deleting.setdefault((api.cluster.name, str(m.get("uid", ""))), wall())
        remaining = seen + min(grace, delay) - wall()
        if remaining > 0:
            return remaining
        await api.delete(PODS, str(m.get("namespace", "")), str(m["name"]), gracePeriodSeconds=0,
                         preconditions={"uid": m.get("uid")})
        return None

    def desired_status(self, cluster: Cluster, pod: Obj, node: Obj) -> tuple[dict[str, Any], float | None]:
        """The status this pod's kubelet reports now, and when it will change by itself (readiness)."""
        current = status(pod)
        phase = current.get("phase")
        if phase in ("Succeeded", "Failed") and current.get("containerStatuses"):
            return current, None  # terminal phases are final
        wanted = annotations_of(pod).get(SIMULATE_PHASE, "Running")
        target = phase if phase in ("Succeeded", "Failed") else (
            wanted if wanted in ("Pending", "Succeeded", "Failed") else "Running")
        pod_spec = spec(pod)
        uid = str(meta(pod).get("uid", ""))
        now_text = now_rfc3339()
        now = wall()

        host_ips = [a["address"] for a in status(node).get("addresses") or []
                    if isinstance(a, dict) and a.get("type") == "InternalIP" and a.get("address")]
        out: dict[str, Any] = {**current, "phase": target, "startTime": current.get("startTime") or now_text}
        if host_ips:
            out["hostIP"] = host_ips[0]
            out["hostIPs"] = [{"ip": ip} for ip in host_ips]
        if target != "Pending":
            pod_ips = self._pod_ips(cluster, pod, node, host_ips)
            if pod_ips:
                out["podIP"] = pod_ips[0]
                out["podIPs"] = [{"ip": ip} for ip in pod_ips]

        # when the containers started: remembered precisely, or from their startedAt after a restart
        started_key = (cluster.name, uid)
        started_at = _first_started_at(current) or now_text
        if target == "Running" and started_key not in self._started:
            self._started[started_key] = parse_ts(_first_started_at(current)) or now
        started = self._started.get(started_key, now)
        delay = seconds_setting(cluster, "podReadyDelay", 0.5)
        probe_ok = annotations_of(pod).get(SIMULATE_READY, "true") != "false"
        run = self.run_seconds(cluster, pod)
        if target == "Running" and run is not None and now >= started + run:
            target = out["phase"] = "Succeeded"  # the containers exited 0
        warm = now >= started + delay
        containers_ready = target == "Running" and probe_ok and warm and node_ready(node)
        wakeups = [started + delay - now] if target == "Running" and probe_ok and not warm else []
        if target == "Running" and run is not None:
            wakeups.append(started + run - now)
        again = min(wakeups) if wakeups else None

        cid = hashlib.sha256(f"{cluster.name}/{uid}".encode()).hexdigest()
        statuses = []
        for c in pod_spec.get("containers") or []:
            statuses.append(_container_status(c, target, containers_ready, started_at, now_text, cid, current))
        out["containerStatuses"] = statuses
        inits = []
        for c in pod_spec.get("initContainers") or []:
            if c.get("restartPolicy") == "Always":  # a sidecar: runs alongside the containers
                inits.append(_container_status(c, target, containers_ready, started_at, now_text, cid, current,
                                               init=True))
            else:
                inits.append(_container_status(c, "Succeeded" if target != "Pending" else "Pending", True,
                                               started_at, now_text, cid, current, init=True))
        if inits:
            out["initContainerStatuses"] = inits

        unready = [c.get("name", "") for c in pod_spec.get("containers") or []] if not containers_ready else []
        gates_problem = _gates_problem(pod) if containers_ready else None
        old = {c.get("type"): c for c in current.get("conditions") or [] if isinstance(c, dict)}

        def cond(ctype: str, value: bool, reason: str = "", message: str = "") -> dict[str, Any]:
            previous = old.get(ctype) or {}
            text = "True" if value else "False"
            made: dict[str, Any] = {
                "type": ctype,
                "status": text,
                "lastProbeTime": None,
                "lastTransitionTime": previous.get("lastTransitionTime") if previous.get("status") == text
                and previous.get("lastTransitionTime") else now_text,
            }
            if reason:
                made["reason"] = reason
            if message:
                made["message"] = message
            return made

        terminal_reason = {"Succeeded": "PodCompleted", "Failed": "PodFailed"}.get(target, "")
        not_ready_message = f"containers with unready status: [{' '.join(unready)}]" if unready else ""
        if terminal_reason:
            containers_cond = cond("ContainersReady", False, terminal_reason)
            ready_cond = cond("Ready", False, terminal_reason)
        elif containers_ready:
            containers_cond = cond("ContainersReady", True)
            ready_cond = cond("Ready", False, "ReadinessGatesNotReady", gates_problem) if gates_problem \
                else cond("Ready", True)
        else:
            containers_cond = cond("ContainersReady", False, "ContainersNotReady", not_ready_message)
            ready_cond = cond("Ready", False, "ContainersNotReady", not_ready_message)
        made = {
            "PodReadyToStartContainers": cond("PodReadyToStartContainers", target == "Running"),
            "Initialized": cond("Initialized", True),
            "Ready": ready_cond,
            "ContainersReady": containers_cond,
            "PodScheduled": old.get("PodScheduled") if (old.get("PodScheduled") or {}).get("status") == "True"
            else cond("PodScheduled", True),
        }
        others = [c for t, c in old.items() if t not in made]  # readiness gates and the like: not ours
        out["conditions"] = [*(made[t] for t in CONDITION_ORDER), *others]
        return out, again

    @staticmethod
    def run_seconds(cluster: Cluster, pod: Obj) -> float | None:
        """How long the containers run before exiting 0; None: until deleted. Containers of restartPolicy
        Always would be restarted (not simulated), so only Never/OnFailure pods finish."""
        if spec(pod).get("restartPolicy", "Always") == "Always":
            return None
        value = annotations_of(pod).get(SIMULATE_RUN)
        if value is not None:
            with contextlib.suppress(ValueError):
                return max(0.0, float(value))
        if owner_key(pod, "Job", "batch/v1") is not None:
            return seconds_setting(cluster, "jobPodRunSeconds", 1.0)
        return None

    def _pod_ips(self, cluster: Cluster, pod: Obj, node: Obj, host_ips: list[str]) -> list[str]:
        if spec(pod).get("hostNetwork"):
            return host_ips
        existing = [str(ip.get("ip")) for ip in status(pod).get("podIPs") or [] if isinstance(ip, dict)]
        if existing:
            return existing
        families = ["podCIDR"] + (["podCIDR6"] if cluster.settings.get("dualStack") else [])
        node_cidrs = [str(c) for c in spec(node).get("podCIDRs") or []]
        net = self.network(cluster)
        ips: list[str] = []
        for family in families:
            version = 4 if family == "podCIDR" else 6
            cidr = next((c for c in node_cidrs if ipaddress.ip_network(c, strict=False).version == version),
                        cluster.settings.get(family))
            if not cidr:
                continue
            ip = net.allocate(str(cidr))
            if ip is None and cidr != cluster.settings.get(family):
                ip = net.allocate(str(cluster.settings[family]))
            if ip is not None:
                ips.append(ip)
        return ips


def _first_started_at(pod_status: dict[str, Any]) -> str | None:
    for cs in pod_status.get("containerStatuses") or []:
        running = ((cs or {}).get("state") or {}).get("running") or {}
        if running.get("startedAt"):
            return str(running["startedAt"])
    return None


def _container_status(c: dict[str, Any], phase: str, ready: bool, started_at: str, now_text: str, cid: str,
                      current: dict[str, Any], init: bool = False) -> dict[str, Any]:
    name = str(c.get("name", ""))
    image = str(c.get("image", ""))
    key = "initContainerStatuses" if init else "containerStatuses"
    previous = next((s for s in current.get(key) or [] if isinstance(s, dict) and s.get("name") == name), {})
    container_id = f"containerd://{hashlib.sha256(f'{cid}/{name}'.encode()).hexdigest()}"
    out: dict[str, Any] = {"name": name, "image": normalize_image(image), "imageID": image_id(image),
                           "containerID": container_id, "lastState": {}, "restartCount": 0}
    if phase == "Pending":
        return {"name": name, "image": image, "imageID": "", "lastState": {}, "ready": False, "restartCount": 0,
                "started": False, "state": {"waiting": {"reason": "PodInitializing" if init else
                                                        "ContainerCreating"}}}
    if phase in ("Succeeded", "Failed"):
        finished = ((previous.get("state") or {}).get("terminated") or {}).get("finishedAt") or now_text
        code = 0 if phase == "Succeeded" else 1
        out.update(ready=init and code == 0, started=False, state={"terminated": {
            "containerID": container_id, "exitCode": code, "finishedAt": finished,
            "reason": "Completed" if code == 0 else "Error", "startedAt": started_at}})
        return out
    out.update(ready=ready, started=True, state={"running": {"startedAt": started_at}})
    return out


def _gates_problem(pod: Obj) -> str | None:
    """Why the pod's readiness gates hold it not ready (upstream's messages), or None."""
    conditions = {c.get("type"): c for c in status(pod).get("conditions") or [] if isinstance(c, dict)}
    for gate in spec(pod).get("readinessGates") or []:
        ctype = (gate or {}).get("conditionType", "")
        cond = conditions.get(ctype)
        if cond is None:
            return f'corresponding condition of pod readiness gate "{ctype}" does not exist.'
        if cond.get("status") != "True":
            return f'the status of pod readiness gate "{ctype}" is not "True", but {cond.get("status")}'
    return None
