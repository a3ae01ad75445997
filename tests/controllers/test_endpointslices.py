"""The EndpointSlice and Endpoints controllers of embedded clusters, against kube-controller-manager's behaviour.

Two layers: the planner (`controllers/endpoints/state.py`, pure: service + pods + nodes + existing slices → writes) is
tested directly, including the 1,000-pod packing; the controllers are tested end to end over HTTPS with
the official client and kubectl. The end-to-end tests run on their own server whose controller manager
runs only the endpoint controllers, so pods get exactly the status the test writes through `/status`
(no simulated kubelet or scheduler interferes); one test runs on a `live_cluster` with every built-in
controller.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from clusterset.apiserver import Apiserver
from clusterset.apiserver.controllers.endpoints import endpoint_controllers
from clusterset.apiserver.controllers.endpoints.state import (
    CONTROLLER_NAME,
    ENDPOINTS_CONTROLLER_NAME,
    ENDPOINTS_MANAGED_BY_LABEL,
    HEADLESS_LABEL,
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    TRIGGER_TIME_ANNOTATION,
    Memo,
    ServiceIndex,
    TriggerTimeTracker,
    endpoint_subsets,
    plan_endpoints,
    plan_slices,
)
from clusterset.testing import ClusterInfo, ServerThread
from tests.conftest import KUBECTLS, Kubectl
from tests.helpers import wait_until

MERGE = "application/merge-patch+json"
SLICE_CONTROLLER = "endpointslice-controller"
ENDPOINTS_CONTROLLER = "endpoint-controller"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


# ============================================================================ the planner (pure)
def _svc(name: str = "web", **spec: Any) -> dict[str, Any]:
    base = {"selector": {"app": name}, "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
            "ipFamilies": ["IPv4"], "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    base.update(spec)
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "labels": {"team": "a"},
                         "creationTimestamp": "2024-05-01T10:00:00Z"}, "spec": base}


def _pod(i: int, app: str = "web", ready: bool = True, node: str = "n1", **extra: Any) -> dict[str, Any]:
    ip = f"10.128.{i // 250}.{i % 250 + 1}"
    pod = {
        "metadata": {"name": f"{app}-{i:04d}", "namespace": "default", "uid": f"pod-{app}-{i}", "labels": {"app": app}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x",
                                                   "ports": [{"name": "http", "containerPort": 8080}]}]},
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                   "lastTransitionTime": "2024-05-01T10:05:00Z"}]},
    }
    for key, value in extra.items():
        section, _, field = key.partition("__")
        pod[section][field] = value
    return pod


NODES = {"n1": {"metadata": {"name": "n1", "labels": {"topology.kubernetes.io/zone": "zone-a"}}}}


def _stored(plan_objs: list[dict[str, Any]], start: int = 0) -> list[dict[str, Any]]:
    """What the API server would hold after the creates: named, with resourceVersions."""
    out = []
    for i, obj in enumerate(plan_objs, start):
        obj = copy.deepcopy(obj)
        obj["metadata"]["name"] = obj["metadata"].get("name") or f"web-gen{i}"
        obj["metadata"]["resourceVersion"] = str(100 + i)
        out.append(obj)
    return out


def test_plan_packs_1000_pods_into_10_full_slices_and_is_stable() -> None:
    svc = _svc()
    pods = [_pod(i) for i in range(1000)]
    plan = plan_slices(svc, pods, NODES, [], "2024-05-01T10:05:00Z")
    assert [len(s["endpoints"]) for s in plan.creates] == [100] * 10
    assert not plan.updates and not plan.deletes
    names = {e["targetRef"]["name"] for s in plan.creates for e in s["endpoints"]}
    assert len(names) == 1000
    slices = _stored(plan.creates)
    assert not plan_slices(svc, pods, NODES, slices), "a second pass over the same state must write nothing"
    # one pod turning not-ready touches exactly its slice, in place
    changed = [*pods[:500], _pod(500, ready=False), *pods[501:]]
    plan = plan_slices(svc, changed, NODES, slices)
    assert not plan.creates and not plan.deletes and len(plan.updates) == 1
    (updated,) = plan.updates
    ep = next(e for e in updated["endpoints"] if e["targetRef"]["name"] == "web-0500")
    assert ep["conditions"] == {"ready": False, "serving": False, "terminating": False}
    assert updated["metadata"]["resourceVersion"] in {s["metadata"]["resourceVersion"] for s in slices}
    # 40 new pods fill the one slice with room, no new slice
    shrunk = [p for p in pods if p["metadata"]["name"] >= "web-0040"]
    slices = _stored(plan_slices(svc, shrunk, NODES, []).creates)
    assert sorted(len(s["endpoints"]) for s in slices) == [60] + [100] * 9
    plan = plan_slices(svc, pods, NODES, slices)
    assert not plan.creates and len(plan.updates) == 1 and len(plan.updates[0]["endpoints"]) == 100


def _sizes(slices: list[dict[str, Any]]) -> dict[str, int]:
    return {s["metadata"]["name"]: len(s.get("endpoints") or []) for s in slices}


def _homes(slices: list[dict[str, Any]]) -> dict[str, str]:
    """Pod name → the slice holding its endpoint."""
    return {e["targetRef"]["name"]: s["metadata"]["name"] for s in slices for e in s.get("endpoints") or []}


def _apply(slices: list[dict[str, Any]], plan: Any, rv: int) -> list[dict[str, Any]]:
    """The slices the API server holds once `plan` is written (each write a new resourceVersion)."""
    kept = {s["metadata"]["name"]: s for s in slices}
    for s in plan.deletes:
        kept.pop(s["metadata"]["name"], None)
    for s in [*copy.deepcopy(plan.updates), *_stored(plan.creates, rv * 100)]:
        s["metadata"]["resourceVersion"] = str(rv)
        kept[s["metadata"]["name"]] = s
    return sorted(kept.values(), key=lambda s: str(s["metadata"]["name"]))


def test_plan_fills_room_left_in_unchanged_slices_before_creating_one() -> None:
    """The one deviation from upstream's reconcileByPortMapping: 8 new endpoints and an unchanged slice
    with room for 7. Upstream creates an 8-endpoint slice and the 7 places stay empty for good (it never
    rebalances); here the 7 are filled and only 1 endpoint goes to a new slice."""
    svc = _svc()
    slices = _stored(plan_slices(svc, [_pod(i) for i in range(193)], NODES, []).creates)
    sizes = _sizes(slices)
    assert sorted(sizes.values()) == [93, 100]
    roomy = next(name for name, n in sizes.items() if n == 93)
    plan = plan_slices(svc, [_pod(i) for i in range(201)], NODES, slices)
    assert [(s["metadata"]["name"], len(s["endpoints"])) for s in plan.updates] == [(roomy, 100)]
    assert [len(s["endpoints"]) for s in plan.creates] == [1] and not plan.deletes
    after = _homes(_apply(slices, plan, 2))
    assert all(after[pod] == home for pod, home in _homes(slices).items()), "no endpoint moves"


def test_plan_keeps_upstreams_choices_before_filling_other_slices() -> None:
    svc = _svc()
    # two unchanged slices, 60 and 90 endpoints: 8 new ones go to the one ending closest to full
    # (getSliceToFill), one update and nothing else, as upstream
    slices = _stored(plan_slices(svc, [_pod(i) for i in range(60)], NODES, []).creates)
    slices += _stored(plan_slices(svc, [_pod(i) for i in range(60, 150)], NODES, []).creates, 1)
    plan = plan_slices(svc, [_pod(i) for i in range(158)], NODES, slices)
    assert not plan.creates and not plan.deletes
    assert [len(s["endpoints"]) for s in plan.updates] == [98]
    # 55 new endpoints: the slice being updated anyway (a pod turned not ready) is filled first
    # (upstream's step 2); no unchanged slice takes the 15 left, so the room of one is filled (the
    # deviation: upstream would create a slice of 15); the last 5 go to a new slice
    sixty, ninety = (s["metadata"]["name"] for s in slices)
    changed = [_pod(0, ready=False), *[_pod(i) for i in range(1, 205)]]
    plan = plan_slices(svc, changed, NODES, slices)
    assert sorted((s["metadata"]["name"], len(s["endpoints"])) for s in plan.updates) == [(sixty, 100), (ninety, 100)]
    assert [len(s["endpoints"]) for s in plan.creates] == [5]
    homes = _homes(_apply(slices, plan, 2))
    assert {homes[f"web-{i:04d}"] for i in range(150, 190)} == {sixty}
    assert {homes[f"web-{i:04d}"] for i in range(190, 200)} == {ninety}
    assert {homes[f"web-{i:04d}"] for i in range(200, 205)} == {"web-gen200"}


@pytest.mark.parametrize("lags", [(0,), (0, 0, 1, 5)], ids=["ready-on-arrival", "ready-later"])
def test_plan_pods_arriving_in_batches_end_in_the_fewest_full_slices(lags: tuple[int, ...]) -> None:
    """What a scaled-up Deployment looks like to the controller: pods get IPs in batches of 1 to 60 and
    turn Ready in the same sync (podReadyDelay 0) or some syncs later. Every sync leaves at most one
    slice with room, so 1,000 pods end in 10 full slices (upstream's rule leaves 11 when pods are Ready
    on arrival: a batch that does not fit the last slice's room opens a new one), and no endpoint ever
    moves to another slice."""
    import random

    svc = _svc()
    rng = random.Random(7)
    ready_at: list[int] = []  # the sync from which each pod (there since the sync it got its IP) is Ready
    slices: list[dict[str, Any]] = []
    homes: dict[str, str] = {}
    step = 0
    while len(ready_at) < 1000 or step <= max(ready_at):
        step += 1
        ready_at += [step + rng.choice(lags) for _ in range(min(rng.randint(1, 60), 1000 - len(ready_at)))]
        pods = [_pod(i, ready=when <= step) for i, when in enumerate(ready_at)]
        slices = _apply(slices, plan_slices(svc, pods, NODES, slices), step)
        sizes = _sizes(slices).values()
        assert sum(sizes) == len(pods) and sum(1 for n in sizes if n < 100) <= 1
        now = _homes(slices)
        assert all(now[pod] == home for pod, home in homes.items()), "an endpoint moved"
        homes = now
    assert list(_sizes(slices).values()) == [100] * 10
    assert all(e["conditions"]["ready"] for s in slices for e in s["endpoints"])
    assert not plan_slices(svc, pods, NODES, slices)


def test_service_index_batches_pod_triggered_syncs() -> None:
    """Upstream's AddAfter(key, batchPeriod): the first change opens the window, later ones join it."""
    index = ServiceIndex()
    key = ("default", "web")
    assert index.batch([key], 10.0, 0) == {key} and index.sync_due(key, 10.0) is None, "period 0: at once"
    assert index.batch([key], 10.0, 0.5) == {key}, "a window opens: queue it (the reconcile waits)"
    assert index.batch([key], 10.2, 0.5) == set(), "joins the open window"
    assert index.sync_due(key, 10.2) == pytest.approx(0.3)
    assert index.sync_due(key, 10.5) is None and not index.batches, "due: sync, the window closes"
    assert index.batch([key], 10.6, 0.5) == {key}
    assert index.batch([key], 11.2, 0.5) == {key}, "overdue (its sync queued or lost): queue it again"
    index.urgent.add(key)  # a Service change
    assert index.sync_due(key, 10.7) is None and not index.batches and not index.urgent


def test_plan_endpoint_fields_conditions_and_exclusions() -> None:
    svc = _svc()
    terminating = _pod(3, metadata__deletionTimestamp="2024-05-01T11:00:00Z")
    pods = [_pod(1), _pod(2, ready=False), terminating,
            _pod(4, status__phase="Succeeded"), _pod(5, status__podIPs=[], status__podIP=""),
            _pod(6, node="ghost")]
    plan = plan_slices(svc, pods, NODES, [], "2024-05-01T10:05:00Z")
    (created,) = plan.creates
    by_pod = {e["targetRef"]["name"]: e for e in created["endpoints"]}
    assert set(by_pod) == {"web-0001", "web-0002", "web-0003"}, "terminal, IP-less and unknown-node pods are out"
    assert plan.missing_nodes == ["ghost"]
    assert by_pod["web-0001"] == {
        "addresses": ["10.128.0.2"],
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-0001", "uid": "pod-web-1"},
        "nodeName": "n1",
        "zone": "zone-a",
    }
    assert by_pod["web-0002"]["conditions"] == {"ready": False, "serving": False, "terminating": False}
    assert by_pod["web-0003"]["conditions"] == {"ready": False, "serving": True, "terminating": True}
    assert created["ports"] == [{"name": "http", "protocol": "TCP", "port": 8080}]
    assert created["metadata"]["labels"] == {"team": "a", SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: CONTROLLER_NAME}
    assert created["metadata"]["annotations"] == {TRIGGER_TIME_ANNOTATION: "2024-05-01T10:05:00Z"}
    # publishNotReadyAddresses: every endpoint ready, unknown nodes tolerated
    publish = _svc(publishNotReadyAddresses=True)
    (created,) = plan_slices(publish, pods, NODES, []).creates
    by_pod = {e["targetRef"]["name"]: e for e in created["endpoints"]}
    assert set(by_pod) == {"web-0001", "web-0002", "web-0003", "web-0006"}
    assert all(e["conditions"]["ready"] for e in by_pod.values())
    assert "zone" not in by_pod["web-0006"]


def test_plan_placeholder_for_no_endpoints_is_kept_and_dual_stack_splits_families() -> None:
    svc = _svc()
    plan = plan_slices(svc, [], NODES, [])
    (placeholder,) = plan.creates
    assert placeholder["endpoints"] is None and placeholder["ports"] is None  # what upstream's API returns
    assert not plan_slices(svc, [], NODES, _stored([placeholder]))
    dual = _svc(ipFamilies=["IPv6", "IPv4"], ipFamilyPolicy="RequireDualStack")
    pod = _pod(1, status__podIPs=[{"ip": "10.128.0.2"}, {"ip": "fd00:10:244:0:0::2"}])
    plan = plan_slices(dual, [pod], NODES, [])
    assert [(s["addressType"], s["endpoints"][0]["addresses"]) for s in plan.creates] == [
        ("IPv6", ["fd00:10:244::2"]), ("IPv4", ["10.128.0.2"])]
    # a family the Service dropped loses its slices; one that has no pod IPs gets a placeholder
    slices = _stored(plan.creates)
    plan = plan_slices(_svc(), [_pod(1)], NODES, slices)
    assert [s["addressType"] for s in plan.deletes] == ["IPv6"]
    assert not plan.creates and not plan.updates


def test_plan_named_target_ports_group_pods_by_resolved_ports() -> None:
    svc = _svc(ports=[{"name": "web", "port": 80, "targetPort": "web", "protocol": "TCP", "appProtocol": "http"}])

    def with_port(i: int, port: int | None) -> dict[str, Any]:
        ports = [{"name": "web", "containerPort": port, "protocol": "TCP"}] if port else []
        return _pod(i, spec__containers=[{"name": "c", "image": "x", "ports": ports}])

    plan = plan_slices(svc, [with_port(1, 8080), with_port(2, 8081), with_port(3, 8080), with_port(4, None)],
                       NODES, [])
    got = {json.dumps(s["ports"]): sorted(e["targetRef"]["name"] for e in s["endpoints"]) for s in plan.creates}
    assert got == {
        json.dumps([{"name": "web", "protocol": "TCP", "port": 8080, "appProtocol": "http"}]): ["web-0001", "web-0003"],
        json.dumps([{"name": "web", "protocol": "TCP", "port": 8081, "appProtocol": "http"}]): ["web-0002"],
        "null": ["web-0004"],
    }


def test_plan_label_changes_foreign_slices_and_port_changes() -> None:
    svc = _svc()
    svc["metadata"]["labels"] = {"team": "b"}
    pods = [_pod(1)]
    (fresh,) = _stored(plan_slices(_svc(), pods, NODES, []).creates)
    # labels of the Service changed: an in-place label update, nothing else
    plan = plan_slices(svc, pods, NODES, [fresh])
    assert len(plan.updates) == 1 and plan.updates[0]["metadata"]["labels"]["team"] == "b"
    # a slice of an older Service with the same name is deleted, a new one created (not reused: not owned)
    foreign = copy.deepcopy(fresh)
    foreign["metadata"]["ownerReferences"][0]["uid"] = "uid-of-old-service"
    plan = plan_slices(_svc(), pods, NODES, [foreign])
    assert [d["metadata"]["name"] for d in plan.deletes] == [foreign["metadata"]["name"]]
    assert len(plan.creates) == 1 and not plan.updates
    # an owned slice whose ports are no longer wanted is reused: delete+create become one update
    moved = _svc(ports=[{"name": "http", "port": 80, "targetPort": 9090, "protocol": "TCP"}])
    plan = plan_slices(moved, pods, NODES, [fresh])
    assert not plan.creates and not plan.deletes
    (update,) = plan.updates
    assert update["metadata"]["name"] == fresh["metadata"]["name"]
    assert update["metadata"]["resourceVersion"] == fresh["metadata"]["resourceVersion"]
    assert update["ports"] == [{"name": "http", "protocol": "TCP", "port": 9090}]


def test_memo_saves_work_without_changing_any_plan() -> None:
    """The per-Service memo is keyed by pod uid+resourceVersion, node zone and the Service's fields:
    across a run of changes, planning with it gives exactly what planning from scratch gives."""
    slice_memo, endpoints_memo = Memo(), Memo()
    svc = _svc()
    nodes = copy.deepcopy(NODES)
    pods = [_pod(i) for i in range(250)]
    for p in pods:
        p["metadata"]["resourceVersion"] = "1"
    slices: list[dict[str, Any]] = []
    endpoints: dict[str, Any] | None = None

    def step(rv: int) -> None:
        nonlocal slices, endpoints
        fresh = plan_slices(svc, pods, nodes, slices)
        memoized = plan_slices(svc, pods, nodes, slices, memo=slice_memo)
        assert (memoized.creates, memoized.updates, memoized.deletes) == (fresh.creates, fresh.updates, fresh.deletes)
        fresh_ep = plan_endpoints(svc, pods, endpoints)
        assert plan_endpoints(svc, pods, endpoints, memo=endpoints_memo) == fresh_ep
        kept = {s["metadata"]["name"]: s for s in slices}
        for s in fresh.deletes:
            kept.pop(s["metadata"]["name"], None)
        for s in [*_stored(fresh.creates, rv * 100), *fresh.updates]:
            s["metadata"]["resourceVersion"] = str(rv)
            kept[s["metadata"]["name"]] = s
        slices = list(kept.values())
        if fresh_ep is not None:
            endpoints = {**fresh_ep, "metadata": {**fresh_ep["metadata"], "resourceVersion": str(rv)}}

    step(2)
    pods[7] = _pod(7, ready=False)  # a pod changes: new resourceVersion
    pods[7]["metadata"]["resourceVersion"] = "3"
    step(3)
    assert not plan_slices(svc, pods, nodes, slices, memo=slice_memo)
    nodes["n1"]["metadata"]["labels"]["topology.kubernetes.io/zone"] = "zone-q"  # same pods, new zone
    step(4)
    assert all(e["zone"] == "zone-q" for s in slices for e in s["endpoints"] or [])
    svc["spec"]["ports"][0]["targetPort"] = 9090  # the Service changes
    step(5)
    assert {s["ports"][0]["port"] for s in slices} == {9090}
    del pods[100:]
    step(6)
    assert sum(len(s["endpoints"] or []) for s in slices) == 100
    assert len(slice_memo.pods) == 100, "entries of pods that are gone are dropped"


def test_endpoints_subsets_ready_not_ready_and_repacking() -> None:
    svc = _svc(ports=[{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                      {"name": "alt", "port": 81, "targetPort": "missing", "protocol": "TCP"}])
    pods = [_pod(2), _pod(1), _pod(3, ready=False), _pod(4, metadata__deletionTimestamp="2024-05-01T11:00:00Z")]
    subsets = endpoint_subsets(svc, pods)
    assert subsets == [{
        "addresses": [
            {"ip": "10.128.0.2", "nodeName": "n1",
             "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-0001", "uid": "pod-web-1"}},
            {"ip": "10.128.0.3", "nodeName": "n1",
             "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-0002", "uid": "pod-web-2"}},
        ],
        "notReadyAddresses": [
            {"ip": "10.128.0.4", "nodeName": "n1",
             "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-0003", "uid": "pod-web-3"}},
        ],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }]
    desired = plan_endpoints(svc, pods, None, "2024-05-01T10:05:00Z")
    assert desired is not None
    assert desired["metadata"]["labels"] == {"team": "a", ENDPOINTS_MANAGED_BY_LABEL: ENDPOINTS_CONTROLLER_NAME}
    desired["metadata"]["resourceVersion"] = "7"
    assert plan_endpoints(svc, pods, desired) is None, "unchanged Endpoints must not be rewritten"
    headless = _svc(clusterIP="None", clusterIPs=["None"], ports=[])
    (subset,) = endpoint_subsets(headless, pods[:1])
    assert "ports" not in subset and subset["addresses"][0]["ip"] == "10.128.0.3"


def test_trigger_time_tracker_reports_earliest_new_change() -> None:
    tracker = TriggerTimeTracker()
    svc = _svc()
    pod = _pod(1)
    assert tracker.compute(svc, [pod]) == "2024-05-01T10:00:00Z", "first sync: the Service's creation"
    assert tracker.compute(svc, [pod]) is None, "nothing changed since"
    later = copy.deepcopy(pod)
    later["status"]["conditions"][0]["lastTransitionTime"] = "2024-05-01T10:07:30Z"
    other = _pod(2)
    other["status"]["conditions"][0]["lastTransitionTime"] = "2024-05-01T10:09:00Z"
    assert tracker.compute(svc, [later, other]) == "2024-05-01T10:07:30Z"


def test_service_index_requeues_services_that_list_a_relabelled_pod() -> None:
    index = ServiceIndex()
    index.service_event("ADDED", _svc("web"))
    index.service_event("ADDED", _svc("api"))
    pod = _pod(1)
    assert index.pod_event("ADDED", pod, track_nodes=True) == {"web"}
    assert index.pod_event("MODIFIED", pod, track_nodes=True) == set(), "no endpoint-relevant change"
    index.set_members("default", "web-abc", "web", ["web-0001"])
    relabelled = copy.deepcopy(pod)
    relabelled["metadata"]["labels"] = {"app": "api"}
    assert index.pod_event("MODIFIED", relabelled, track_nodes=True) == {"web", "api"}
    assert index.node_event("ADDED", NODES["n1"]) == [("default", "web-0001")]
    assert index.node_event("MODIFIED", NODES["n1"]) is None


# ============================================================================ end to end
def endpoint_only_server(state_dir: Path, **options: Any) -> ServerThread:
    """A server whose clusters run only the endpoint controllers: pod status is what the test writes."""
    return ServerThread(state_dir, cluster_controllers=endpoint_controllers(), **options)


@pytest.fixture(scope="module")
def ep_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    running = endpoint_only_server(tmp_path_factory.mktemp("endpoint-apiserver"), bookmark_interval=1.0)
    yield running
    running.stop()


class Env:
    """One logical cluster of `ep_server`, with helpers to fake what kubelets would report."""

    _ips = itertools.count(1)

    def __init__(self, server: ServerThread, info: ClusterInfo) -> None:
        self.server = server
        self.info = info
        self.api = info.api_client()
        self.core = client.CoreV1Api(self.api)
        self.discovery = client.DiscoveryV1Api(self.api)

    def node(self, name: str, zone: str) -> None:
        self.core.create_node({"metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}}})

    def pod(self, name: str, labels: dict[str, str], node: str = "n1", ready: bool = True, ips: list[str] | None = None,
            ports: list[dict[str, Any]] | None = None, phase: str = "Running", **spec: Any) -> dict[str, Any]:
        body = {"metadata": {"name": name, "labels": labels},
                "spec": {"nodeName": node, **spec,
                         "containers": [{"name": "app", "image": "nginx:1.27",
                                         "ports": ports if ports is not None else [{"name": "http",
                                                                                    "containerPort": 8080}]}]}}
        created = self.core.create_namespaced_pod("default", body)
        if ips is None:
            n = next(self._ips)
            ips = [f"10.128.{n // 250}.{n % 250 + 1}"]
        self.set_status(name, ips, ready, phase)
        return {"name": name, "uid": created.metadata.uid, "ips": ips}

    def set_status(self, name: str, ips: list[str], ready: bool, phase: str = "Running") -> None:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        status = {"phase": phase, "podIP": ips[0], "podIPs": [{"ip": ip} for ip in ips],
                  "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                  "lastTransitionTime": now}]}
        self.core.patch_namespaced_pod_status(name, "default", {"status": status}, _content_type=MERGE)

    def service(self, name: str, **spec: Any) -> dict[str, Any]:
        labels = spec.pop("labels", {"app": name})
        body = {"metadata": {"name": name, "labels": labels},
                "spec": {"selector": {"app": name},
                         "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}], **spec}}
        body["spec"] = {k: v for k, v in body["spec"].items() if v is not None}
        return self.api.sanitize_for_serialization(self.core.create_namespaced_service("default", body))  # type: ignore[no-any-return]

    def slices(self, service: str) -> list[dict[str, Any]]:
        """Raw JSON: the official client's model rejects the `endpoints: null` of placeholder slices."""
        resp = self.discovery.list_namespaced_endpoint_slice(
            "default", label_selector=f"{SERVICE_NAME_LABEL}={service}", _preload_content=False)
        return json.loads(resp.data)["items"]  # type: ignore[no-any-return]

    def endpoints(self, service: str) -> dict[str, Any] | None:
        try:
            resp = self.core.read_namespaced_endpoints(service, "default", _preload_content=False)
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return json.loads(resp.data)  # type: ignore[no-any-return]

    def wait_endpoints(self, service: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The Service's slices once they hold exactly `count` endpoints in total."""
        def done() -> list[dict[str, Any]] | None:
            slices = self.slices(service)
            total = sum(len(s.get("endpoints") or []) for s in slices)
            return slices if slices and total == count else None
        return wait_until(done, timeout, f"{count} endpoints for {service}")

    def reconciles(self, controller: str = SLICE_CONTROLLER) -> int:
        return self.server.server.reconcile_count(controller)

    def settle(self) -> None:
        """Returns once no controller has anything queued, running or scheduled, failing after 10 s."""
        self.server.call(asyncio.wait_for(self.server.server.wait_idle(), 10.0))

    def configure(self, **settings: Any) -> None:
        self.server.call(self.server.server.configure_cluster(self.info.name, **settings))

    def store_rv(self) -> int:
        return self.server.server.resource_version(self.info.name)


def by_pod(slices: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["targetRef"]["name"]: e for s in slices for e in s.get("endpoints") or []}


@pytest.fixture
def env(ep_server: ServerThread) -> Env:
    e = Env(ep_server, ep_server.add_cluster())
    e.node("n1", "zone-a")
    e.node("n2", "zone-b")
    return e


def test_service_over_pods_yields_upstream_slice(env: Env) -> None:
    svc = env.service("web", labels={"app": "web", "team": "payments"},
                      ports=[{"name": "http", "port": 80, "targetPort": 8080, "appProtocol": "http"},
                             {"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"}])
    p1 = env.pod("web-1", {"app": "web"}, node="n1")
    p2 = env.pod("web-2", {"app": "web"}, node="n2")
    p3 = env.pod("web-3", {"app": "web"}, node="n1", ready=False)
    env.pod("other", {"app": "other"})
    done = env.pod("web-done", {"app": "web"}, ready=False, phase="Succeeded")
    env.core.create_namespaced_pod("default", {"metadata": {"name": "web-pending", "labels": {"app": "web"}},
                                               "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    (s,) = env.wait_endpoints("web", 3)
    meta = s["metadata"]
    assert meta["generateName"] == "web-" and re.fullmatch(r"web-[a-z0-9]{5}", meta["name"])
    assert meta["labels"] == {"app": "web", "team": "payments", SERVICE_NAME_LABEL: "web",
                              MANAGED_BY_LABEL: CONTROLLER_NAME}
    assert meta["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                        "uid": svc["metadata"]["uid"], "controller": True,
                                        "blockOwnerDeletion": True}]
    assert RFC3339.match(meta["annotations"][TRIGGER_TIME_ANNOTATION])
    assert {m["manager"] for m in meta["managedFields"]} == {"kube-controller-manager"}
    assert s["addressType"] == "IPv4"
    assert s["ports"] == [{"name": "http", "protocol": "TCP", "port": 8080, "appProtocol": "http"},
                          {"name": "metrics", "protocol": "TCP", "port": 9090}]
    eps = by_pod([s])
    assert set(eps) == {"web-1", "web-2", "web-3"}, f"not {done['name']}, other or web-pending"
    assert eps["web-1"] == {
        "addresses": p1["ips"],
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-1", "uid": p1["uid"]},
        "nodeName": "n1",
        "zone": "zone-a",
    }
    assert eps["web-2"]["zone"] == "zone-b" and eps["web-2"]["addresses"] == p2["ips"]
    assert eps["web-3"]["conditions"] == {"ready": False, "serving": False, "terminating": False}
    # the legacy Endpoints, as kubectl get endpoints users expect
    ep = wait_until(lambda: env.endpoints("web"), message="Endpoints web")
    assert ep["metadata"]["labels"] == {"app": "web", "team": "payments",
                                        ENDPOINTS_MANAGED_BY_LABEL: ENDPOINTS_CONTROLLER_NAME}
    (subset,) = ep["subsets"]
    assert sorted(a["targetRef"]["name"] for a in subset["addresses"]) == ["web-1", "web-2"]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == p3["ips"]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"},
                               {"name": "metrics", "port": 9090, "protocol": "TCP"}]


def test_named_target_port_is_resolved_per_pod(env: Env) -> None:
    env.service("app", ports=[{"name": "web", "port": 80, "targetPort": "web"}])
    env.pod("app-a", {"app": "app"}, ports=[{"name": "web", "containerPort": 8080}])
    env.pod("app-b", {"app": "app"}, ports=[{"name": "web", "containerPort": 9000}])
    env.pod("app-c", {"app": "app"}, ports=[{"name": "web", "containerPort": 8080}])
    slices = env.wait_endpoints("app", 3)
    got = {s["ports"][0]["port"]: sorted(by_pod([s])) for s in slices}
    assert got == {8080: ["app-a", "app-c"], 9000: ["app-b"]}
    assert all(s["ports"][0]["name"] == "web" for s in slices)


def test_headless_service_over_statefulset_pods_has_hostnames(env: Env) -> None:
    env.service("db", clusterIP="None", ports=[{"name": "pg", "port": 5432}])
    for i in range(2):
        env.pod(f"db-{i}", {"app": "db"}, hostname=f"db-{i}", subdomain="db")
    env.pod("db-x", {"app": "db"}, hostname="db-x", subdomain="elsewhere")
    (s,) = env.wait_endpoints("db", 3)
    assert s["metadata"]["labels"][HEADLESS_LABEL] == ""
    eps = by_pod([s])
    assert eps["db-0"]["hostname"] == "db-0" and eps["db-1"]["hostname"] == "db-1"
    assert "hostname" not in eps["db-x"], "subdomain must name the Service"
    ep = wait_until(lambda: env.endpoints("db"), message="Endpoints db")
    assert {a.get("hostname") for a in ep["subsets"][0]["addresses"]} == {"db-0", "db-1", None}


def test_readiness_and_termination_update_the_slice_in_place_within_a_deadline(env: Env) -> None:
    env.service("api")
    a = env.pod("api-a", {"app": "api"})
    env.pod("api-b", {"app": "api"})
    (before,) = env.wait_endpoints("api", 2)

    env.set_status("api-a", a["ips"], ready=False)
    s = wait_until(lambda: next((s for s in env.slices("api")
                                 if not by_pod([s])["api-a"]["conditions"]["ready"]), None),
                   timeout=5, message="api-a not ready in the slice")
    assert by_pod([s])["api-a"]["conditions"] == {"ready": False, "serving": False, "terminating": False}
    assert s["metadata"]["name"] == before["metadata"]["name"], "updated in place, not replaced"
    ep = wait_until(lambda: (e := env.endpoints("api")) and "notReadyAddresses" in e["subsets"][0] and e,
                    timeout=5, message="api-a in notReadyAddresses")
    assert [x["targetRef"]["name"] for x in ep["subsets"][0]["notReadyAddresses"]] == ["api-a"]

    env.core.delete_namespaced_pod("api-b", "default")  # bound pod: 30 s of grace, nobody ends it early
    s = wait_until(lambda: next((s for s in env.slices("api")
                                 if by_pod([s])["api-b"]["conditions"]["terminating"]), None),
                   timeout=5, message="api-b terminating in the slice")
    assert by_pod([s])["api-b"]["conditions"] == {"ready": False, "serving": True, "terminating": True}
    ep = wait_until(lambda: (e := env.endpoints("api")) and "addresses" not in e["subsets"][0] and e,
                    timeout=5, message="api-b out of the Endpoints")
    assert [x["targetRef"]["name"] for x in ep["subsets"][0]["notReadyAddresses"]] == ["api-a"]


def test_deleting_pods_removes_their_endpoints(env: Env) -> None:
    env.service("cache")
    env.pod("cache-a", {"app": "cache"})
    env.pod("cache-b", {"app": "cache"})
    env.wait_endpoints("cache", 2)
    env.core.delete_namespaced_pod("cache-a", "default", grace_period_seconds=0)
    assert set(by_pod(env.wait_endpoints("cache", 1, timeout=5))) == {"cache-b"}
    env.core.delete_namespaced_pod("cache-b", "default", grace_period_seconds=0)

    def placeholder() -> list[dict[str, Any]] | None:
        slices = env.slices("cache")
        return slices if len(slices) == 1 and slices[0]["endpoints"] is None else None

    (s,) = wait_until(placeholder, timeout=5, message="the empty placeholder slice")
    assert s["ports"] is None, "upstream keeps one slice with null endpoints and ports"
    ep = wait_until(lambda: (e := env.endpoints("cache")) and "subsets" not in e and e, timeout=5,
                    message="empty Endpoints")
    assert ep["metadata"]["name"] == "cache"


def test_node_zone_and_late_node_registration_reach_the_slice(env: Env) -> None:
    env.service("geo")
    env.pod("geo-1", {"app": "geo"}, node="n1")
    env.pod("geo-late", {"app": "geo"}, node="n3")  # n3 is not registered: upstream leaves the pod out
    (s,) = env.wait_endpoints("geo", 1)
    assert by_pod([s])["geo-1"]["zone"] == "zone-a"
    env.core.patch_node("n1", {"metadata": {"labels": {"topology.kubernetes.io/zone": "zone-z"}}})
    wait_until(lambda: by_pod(env.slices("geo")).get("geo-1", {}).get("zone") == "zone-z", timeout=5,
               message="the node's new zone on its endpoint")
    env.node("n3", "zone-c")
    eps = by_pod(env.wait_endpoints("geo", 2, timeout=5))
    assert eps["geo-late"]["zone"] == "zone-c" and eps["geo-late"]["nodeName"] == "n3"


def test_250_pods_make_three_slices_of_at_most_100(env: Env) -> None:
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: env.pod(f"big-{i:03d}", {"app": "big"}, node="n1" if i % 2 else "n2"), range(250)))
    env.service("big")
    slices = env.wait_endpoints("big", 250, timeout=30)
    assert sorted(len(s["endpoints"]) for s in slices) == [50, 100, 100]
    assert len(by_pod(slices)) == 250


def _slice_writes(env: Env, service: str, since: str, until: str) -> list[dict[str, Any]]:
    """The Service's slices as written after resourceVersion `since`, up to `until` (a watch replay)."""
    resp = env.discovery.list_namespaced_endpoint_slice(
        "default", label_selector=f"{SERVICE_NAME_LABEL}={service}", watch=True, resource_version=since,
        timeout_seconds=1, _preload_content=False)
    events = [json.loads(line) for line in resp.data.decode().splitlines() if line.strip()]
    return [e["object"] for e in events
            if e["type"] != "BOOKMARK" and int(e["object"]["metadata"]["resourceVersion"]) <= int(until)]


def test_batch_period_gathers_pod_changes_into_one_write_but_not_service_changes(env: Env) -> None:
    """The `endpointSliceBatchPeriod` setting (upstream's --endpointslice-updates-batch-period, default 0):
    a pod change syncs its Service that many seconds later, with every change made meanwhile; a change
    of the Service itself syncs at once, pending pod changes included."""
    env.configure(endpointSliceBatchPeriod=1.5)
    pods = [env.pod(f"batch-{i}", {"app": "batch"}) for i in range(4)]
    env.service("batch")
    (first,) = env.wait_endpoints("batch", 4)

    def all_ready(ready: bool) -> Callable[[], list[dict[str, Any]] | None]:
        def check() -> list[dict[str, Any]] | None:
            slices = env.slices("batch")
            eps = by_pod(slices)
            return slices if len(eps) == 4 and all(e["conditions"]["ready"] == ready for e in eps.values()) else None
        return check

    start = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda p: env.set_status(p["name"], p["ips"], ready=False), pods))
    (after,) = wait_until(all_ready(False), timeout=10, message="four not-ready endpoints")
    assert time.monotonic() - start >= 1.5, "a pod change waits for the batch period"
    writes = _slice_writes(env, "batch", first["metadata"]["resourceVersion"], after["metadata"]["resourceVersion"])
    assert len(writes) == 1, "the four changes of the window share one write"

    env.configure(endpointSliceBatchPeriod=4.0)
    start = time.monotonic()
    for p in pods:
        env.set_status(p["name"], p["ips"], ready=True)
    env.core.patch_namespaced_service("batch", "default", {"metadata": {"labels": {"app": "batch", "tier": "web"}}},
                                      _content_type=MERGE)
    (s,) = wait_until(all_ready(True), timeout=10, message="four ready endpoints")
    assert time.monotonic() - start < 4.0, "the Service's sync did not wait for the pods' batch period"
    assert s["metadata"]["labels"]["tier"] == "web"
    env.configure(endpointSliceBatchPeriod=0)
    env.settle()  # the window's requeue still fires (a no-op sync): leave the server idle


def test_dual_stack_service_gets_one_slice_per_family(ep_server: ServerThread) -> None:
    e = Env(ep_server, ep_server.add_cluster(dual_stack=True))
    e.node("n1", "zone-a")
    svc = e.service("dual", ipFamilyPolicy="RequireDualStack")
    assert svc["spec"]["ipFamilies"] == ["IPv4", "IPv6"]
    e.service("single")
    e.pod("dual-1", {"app": "dual"}, ips=["10.128.0.7", "fd00:10:244:0:0:0:0:7"])
    e.pod("single-1", {"app": "single"}, ips=["10.128.0.8", "fd00:10:244::8"])
    slices = wait_until(lambda: len(s := e.slices("dual")) == 2 and all(x.get("endpoints") for x in s) and s,
                        message="two families of slices")
    assert {s["addressType"]: s["endpoints"][0]["addresses"] for s in slices} == {
        "IPv4": ["10.128.0.7"], "IPv6": ["fd00:10:244::7"]}
    single = e.wait_endpoints("single", 1)
    assert [s["addressType"] for s in single] == ["IPv4"]


def test_selectorless_and_externalname_services_are_left_alone(env: Env) -> None:
    env.service("ext", selector=None)
    env.service("alias", type="ExternalName", externalName="example.com", ports=None)
    env.pod("ext-1", {"app": "ext"})
    env.pod("alias-1", {"app": "alias"})
    user = {"metadata": {"name": "ext-manual", "labels": {SERVICE_NAME_LABEL: "ext"}},
            "addressType": "IPv4", "endpoints": [{"addresses": ["192.0.2.10"]}], "ports": [{"port": 9999}]}
    created = env.discovery.create_namespaced_endpoint_slice("default", user)
    rv = created.metadata.resource_version
    before = env.reconciles()
    env.core.patch_namespaced_service("ext", "default", {"metadata": {"annotations": {"touch": "1"}}},
                                      _content_type=MERGE)
    wait_until(lambda: env.reconciles() > before, message="the ext Service reconciled")
    env.settle()
    (s,) = env.slices("ext")
    assert s["metadata"]["name"] == "ext-manual" and s["metadata"]["resourceVersion"] == rv
    assert env.slices("alias") == []
    assert env.endpoints("ext") is None and env.endpoints("alias") is None


def test_no_write_when_nothing_changed(env: Env) -> None:
    env.service("quiet")
    env.pod("quiet-1", {"app": "quiet"})
    env.pod("quiet-2", {"app": "quiet"})
    (s,) = env.wait_endpoints("quiet", 2)
    wait_until(lambda: (e := env.endpoints("quiet")) and len(e["subsets"][0].get("addresses", [])) == 2,
               message="Endpoints quiet")
    env.settle()
    rv = env.store_rv()
    slices_before, endpoints_before = env.reconciles(SLICE_CONTROLLER), env.reconciles(ENDPOINTS_CONTROLLER)
    # a Service annotation: both controllers reconcile, neither writes
    env.core.patch_namespaced_service("quiet", "default", {"metadata": {"annotations": {"note": "x"}}},
                                      _content_type=MERGE)
    wait_until(lambda: env.reconciles(SLICE_CONTROLLER) > slices_before
               and env.reconciles(ENDPOINTS_CONTROLLER) > endpoints_before, message="both controllers reconciled")
    env.settle()
    assert env.store_rv() == rv + 1, "only the annotation itself was written"
    # a pod change that cannot affect endpoints: not even a reconcile
    slices_before = env.reconciles()
    env.core.patch_namespaced_pod("quiet-1", "default", {"metadata": {"annotations": {"note": "y"}}},
                                  _content_type=MERGE)
    env.settle()
    assert env.store_rv() == rv + 2 and env.reconciles() == slices_before
    (after,) = env.slices("quiet")
    assert after["metadata"]["resourceVersion"] == s["metadata"]["resourceVersion"]
    # positive control: a Service label is copied onto the slice, in place
    env.core.patch_namespaced_service("quiet", "default", {"metadata": {"labels": {"tier": "gold"}}},
                                      _content_type=MERGE)
    relabelled = wait_until(lambda: next((x for x in env.slices("quiet")
                                          if x["metadata"]["labels"].get("tier") == "gold"), None),
                            message="the new label on the slice")
    assert relabelled["metadata"]["name"] == s["metadata"]["name"]
    env.settle()
    assert env.reconciles() == slices_before + 1, "the event of our own slice write must not requeue"


def test_deleting_the_service_removes_its_slices_and_endpoints(env: Env) -> None:
    env.service("gone")
    env.pod("gone-1", {"app": "gone"})
    env.wait_endpoints("gone", 1)
    wait_until(lambda: env.endpoints("gone"), message="Endpoints gone")
    # raw: kube-apiserver answers with the deleted Service, which the client's model expects
    env.core.delete_namespaced_service("gone", "default", _preload_content=False)
    wait_until(lambda: env.slices("gone") == [] and env.endpoints("gone") is None, timeout=5,
               message="slices and Endpoints removed")


async def _attach(server: Apiserver, name: str) -> None:
    server.start_controllers(name)


def test_attach_reconciles_what_exists(ep_server: ServerThread) -> None:
    """Restart-safe: a cluster's existing Services, pods and stale slices are all reconciled on attach."""
    e = Env(ep_server, ep_server.add_cluster(controllers=False))
    e.node("n1", "zone-a")
    svc = e.service("web")
    e.pod("web-1", {"app": "web"})
    e.pod("web-2", {"app": "web"})
    owner = {"apiVersion": "v1", "kind": "Service", "name": "web", "uid": svc["metadata"]["uid"],
             "controller": True, "blockOwnerDeletion": True}
    stale = {"metadata": {"name": "web-stale", "labels": {SERVICE_NAME_LABEL: "web", MANAGED_BY_LABEL: CONTROLLER_NAME},
                          "ownerReferences": [owner]},
             "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
             "endpoints": [{"addresses": ["10.128.9.9"], "conditions": {"ready": True},
                            "targetRef": {"kind": "Pod", "namespace": "default", "name": "vanished", "uid": "x"}}]}
    e.discovery.create_namespaced_endpoint_slice("default", stale)
    orphan = copy.deepcopy(stale)
    orphan["metadata"].update(name="old-orphan", labels={SERVICE_NAME_LABEL: "old", MANAGED_BY_LABEL: CONTROLLER_NAME},
                              ownerReferences=[{**owner, "name": "old", "uid": "no-such-service"}])
    e.discovery.create_namespaced_endpoint_slice("default", orphan)
    assert e.slices("web")[0]["metadata"]["name"] == "web-stale"

    ep_server.call(_attach(ep_server.server, e.info.name))
    (s,) = e.wait_endpoints("web", 2)
    assert s["metadata"]["name"] == "web-stale", "the existing slice is reused, as upstream does"
    assert set(by_pod([s])) == {"web-1", "web-2"}
    wait_until(lambda: e.slices("old") == [], timeout=5, message="the orphaned slice deleted")


def test_restart_rewrites_nothing_and_keeps_reconciling(tmp_path: Path) -> None:
    """After a restart on the same state, the relist reconciles everything and writes nothing (an
    exporting cluster must not replay every slice to its watchers); changes are followed again."""
    first = endpoint_only_server(tmp_path / "state")
    try:
        e = Env(first, first.add_cluster("restarted"))
        e.node("n1", "zone-a")
        e.service("web")
        a = e.pod("web-1", {"app": "web"})
        e.pod("web-2", {"app": "web"})
        (s,) = e.wait_endpoints("web", 2)
        wait_until(lambda: e.endpoints("web"), message="Endpoints web")
        e.settle()
        rv = e.store_rv()
    finally:
        first.stop()
    second = endpoint_only_server(tmp_path / "state")
    try:
        e = Env(second, second.info("restarted"))
        e.settle()
        # the relist reconciled each Service of the cluster once per controller: web and kubernetes
        assert e.reconciles(SLICE_CONTROLLER) == 2 and e.reconciles(ENDPOINTS_CONTROLLER) == 2
        assert e.store_rv() == rv, "the relist wrote something"
        (after,) = e.slices("web")
        assert after["metadata"]["resourceVersion"] == s["metadata"]["resourceVersion"]
        e.set_status("web-1", a["ips"], ready=False)
        wait_until(lambda: not by_pod(e.slices("web"))["web-1"]["conditions"]["ready"], timeout=5,
                   message="web-1 not ready after the restart")
    finally:
        second.stop()


@pytest.fixture(params=sorted(KUBECTLS) or ["missing"])
def kubectl_binary(request: pytest.FixtureRequest) -> str:
    if request.param == "missing":
        pytest.skip("kubectl is not installed on this machine (CI requires it: .ci/run fails without it)")
    return KUBECTLS[request.param]


def test_kubectl_get_endpointslices_and_endpoints(env: Env, kubectl_binary: str, tmp_path: Path) -> None:
    kubectl = Kubectl(kubectl_binary, env.info, tmp_path / "kubectl-cache")
    env.service("shop")
    a = env.pod("shop-a", {"app": "shop"})
    b = env.pod("shop-b", {"app": "shop"})
    (s,) = env.wait_endpoints("shop", 2)
    rows = [line.split() for line in kubectl("get", "endpointslices", "-o", "wide").splitlines()]
    assert rows[0] == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    row = next(r for r in rows[1:] if r[0] == s["metadata"]["name"])
    addresses = [e["addresses"][0] for e in s["endpoints"]]
    assert sorted(addresses) == sorted(a["ips"] + b["ips"])
    assert row[1:4] == ["IPv4", "8080", ",".join(addresses)]
    out = kubectl("get", "endpointslices", "-l", f"{SERVICE_NAME_LABEL}=shop", "-o", "json")
    assert [i["metadata"]["name"] for i in json.loads(out)["items"]] == [s["metadata"]["name"]]
    wait_until(lambda: (e := env.endpoints("shop")) and len(e["subsets"][0].get("addresses", [])) == 2,
               message="Endpoints shop")
    rows = [line.split() for line in kubectl("get", "endpoints", "shop").splitlines()]
    assert rows[0][:2] == ["NAME", "ENDPOINTS"]
    assert sorted(rows[1][1].split(",")) == sorted(f"{ip}:8080" for ip in a["ips"] + b["ips"])


# ============================================================================ with every controller on
def test_live_cluster_publishes_ready_pods(live_cluster: ClusterInfo) -> None:
    """With the built-in controllers on (nodes, scheduler, kubelets), a Service over bound pods gets its
    slice; the pods' status comes from the simulated kubelet."""
    e = Env.__new__(Env)
    e.info = live_cluster
    e.api = live_cluster.api_client()
    e.core = client.CoreV1Api(e.api)
    e.discovery = client.DiscoveryV1Api(e.api)
    nodes = wait_until(lambda: e.core.list_node().items, message="simulated nodes")
    node = nodes[0].metadata.name
    zone = (nodes[0].metadata.labels or {}).get("topology.kubernetes.io/zone")
    e.core.create_namespaced_service("default", {
        "metadata": {"name": "live"},
        "spec": {"selector": {"app": "live"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    for i in range(2):
        e.core.create_namespaced_pod("default", {
            "metadata": {"name": f"live-{i}", "labels": {"app": "live"}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx:1.27"}]}})

    def ready_slice() -> list[dict[str, Any]] | None:
        resp = e.discovery.list_namespaced_endpoint_slice("default", label_selector=f"{SERVICE_NAME_LABEL}=live",
                                                          _preload_content=False)
        slices = json.loads(resp.data)["items"]
        eps = by_pod(slices)
        return slices if len(eps) == 2 and all(x["conditions"]["ready"] for x in eps.values()) else None

    slices = wait_until(ready_slice, timeout=30, message="two ready endpoints on a live cluster")
    pods = {p.metadata.name: p for p in e.core.list_namespaced_pod("default", label_selector="app=live").items}
    for name, ep in by_pod(slices).items():
        assert ep["addresses"] == [pods[name].status.pod_ip]
        assert ep["nodeName"] == node and ep.get("zone") == zone
    assert slices[0]["ports"] == [{"name": "", "protocol": "TCP", "port": 8080}]
    # the kubelet's failing-readiness hook: the endpoint follows the pod's Ready condition
    e.core.patch_namespaced_pod("live-0", "default", {"metadata": {"annotations": {
        "clusterset.io/simulate-ready": "false"}}}, _content_type=MERGE)
    wait_until(lambda: by_pod(json.loads(e.discovery.list_namespaced_endpoint_slice(
        "default", label_selector=f"{SERVICE_NAME_LABEL}=live", _preload_content=False).data)["items"])
        .get("live-0", {}).get("conditions") == {"ready": False, "serving": False, "terminating": False},
        timeout=10, message="live-0 not ready in its slice")


def test_deployment_of_1000_replicas_gets_10_full_slices(server: ServerThread) -> None:
    """The scale case, with every controller on (10 nodes of 110 pods): the pods get IPs and turn Ready
    in batches, as the scheduler and kubelets get to them; the Service ends with exactly 10
    EndpointSlices of 100 ready endpoints, one per pod."""
    from tests.helpers import wait_until as poll

    info = server.add_cluster(nodes=10)
    try:
        api = info.api_client()
        core, discovery = client.CoreV1Api(api), client.DiscoveryV1Api(api)
        labels = {"app": "big"}
        client.AppsV1Api(api).create_namespaced_deployment("default", {
            "metadata": {"name": "big"},
            "spec": {"replicas": 1000, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "app:1", "ports": [{"containerPort": 8080}]}]}}}})
        core.create_namespaced_service("default", {
            "metadata": {"name": "big"}, "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}})

        def all_ready() -> list[dict[str, Any]] | None:
            resp = discovery.list_namespaced_endpoint_slice("default", label_selector=f"{SERVICE_NAME_LABEL}=big",
                                                            _preload_content=False)
            slices: list[dict[str, Any]] = json.loads(resp.data)["items"]
            eps = [e for s in slices for e in s.get("endpoints") or []]
            return slices if len(eps) == 1000 and all(e["conditions"]["ready"] for e in eps) else None

        # polled every 0.5 s: listing 1,000 endpoints competes for the CPU the server needs
        slices = poll(all_ready, timeout=120, interval=0.5, message="1,000 ready endpoints")
        assert sorted(len(s["endpoints"]) for s in slices) == [100] * 10
        eps = by_pod(slices)
        pods = {p.metadata.name: p for p in core.list_namespaced_pod("default", label_selector="app=big").items}
        assert set(eps) == set(pods) and len(pods) == 1000
        assert all(ep["addresses"] == [pods[name].status.pod_ip] for name, ep in eps.items())
        assert all(s["ports"] == [{"name": "", "protocol": "TCP", "port": 8080}] for s in slices)
    finally:
        server.remove_cluster(info.name)
