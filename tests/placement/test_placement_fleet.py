"""The scheduler on an embedded fleet of five members with different labels, properties and zones: selection,
numberOfClusters, spread, taints through the CLI, prioritizers, bindings and RBAC, bad input, rescheduling.

    member  zone  env   gpus (a ClusterProperty in the member)
    1       a     prod  0
    2       a     prod  8
    3       b     dev   4
    4       b     prod  2
    5       c     dev   16
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from clusterset.api.objects import condition
from clusterset.cli.main import main
from clusterset.fleet.embedded import FleetOptions
from clusterset.inventory.registration import leave
from clusterset.testing import ClusterInfo, FleetThread
from tests.helpers import custom, wait_until
from tests.placement.fleet import CLUSTERSET, OURS, UPSTREAM, Hub, forbidden

MEMBERS = [f"member-{i}" for i in range(1, 6)]
ZONE = "topology.kubernetes.io/zone"
LAYOUT = {"member-1": ("a", "prod", "0"), "member-2": ("a", "prod", "8"), "member-3": ("b", "dev", "4"),
          "member-4": ("b", "prod", "2"), "member-5": ("c", "dev", "16")}
ALL = list(MEMBERS)


def healthy(hub: Hub, name: str) -> bool:
    try:
        profile = hub.profile(name)
    except ApiException:
        return False
    c = condition((profile.get("status") or {}).get("conditions"), "ControlPlaneHealthy") or {}
    return c.get("status") == "True"


def gpus(hub: Hub, name: str) -> str | None:
    props = {p["name"]: p["value"] for p in (hub.profile(name).get("status") or {}).get("properties") or []}
    return props.get("gpus")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetThread]:
    state = Path(tmp_path_factory.mktemp("placement-fleet")) / "fleet"
    thread = FleetThread(FleetOptions(state, members=5, heartbeat=0.5, grace=30.0, probe_timeout=2.0, dns=False))
    try:
        hub = Hub(thread.info("hub"))
        wait_until(lambda: all(healthy(hub, m) for m in MEMBERS), timeout=60, message="five healthy members")
        for member, (zone, env, count) in LAYOUT.items():
            hub.label_profile(member, {ZONE: zone, "env": env})
            custom(thread.info(member)).create_cluster_custom_object(
                "about.k8s.io", "v1beta1", "clusterproperties",
                {"metadata": {"name": "gpus"}, "spec": {"value": count}})
        wait_until(lambda: all(gpus(hub, m) == LAYOUT[m][2] for m in MEMBERS), timeout=30,
                   message="the agents report gpus into the profiles")
        yield thread
    finally:
        thread.stop()


@pytest.fixture(scope="module")
def hub(fleet: FleetThread) -> Hub:
    return Hub(fleet.info("hub"))


def clusterset(*args: str, state: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*args, "--state-dir", str(state)])
    return code, out.getvalue(), err.getvalue()


def test_up_binds_default_and_a_placement_selects_by_label_and_property(fleet: FleetThread, hub: Hub) -> None:
    bindings = hub.api.list_namespaced_custom_object(*OURS, CLUSTERSET, "clustersetbindings")["items"]
    assert sorted(b["spec"]["namespace"] for b in bindings) == ["clusterset", "default"]
    # the profile manager keeps labels users put on profiles while it writes their status
    assert hub.profile("member-2")["metadata"]["labels"]["env"] == "prod"
    hub.place("default", "gpu-prod", {"predicates": [
        {"labelSelector": {"matchLabels": {"env": "prod"}},
         "propertySelector": {"matchExpressions": [{"name": "gpus", "operator": "Gt", "values": ["1"]}]}}]})
    hub.wait_decided("default", "gpu-prod", ["member-2", "member-4"])
    (only,) = hub.slices("default", "gpu-prod")
    placement = hub.placement("default", "gpu-prod")
    assert only["metadata"]["name"] == "gpu-prod-decision-0"
    assert only["metadata"]["labels"] == {"multicluster.x-k8s.io/decision-key": "gpu-prod",
                                          "multicluster.x-k8s.io/decision-index": "0",
                                          "multicluster.x-k8s.io/placement-key": "gpu-prod"}
    assert only["metadata"]["ownerReferences"] == [{
        "apiVersion": "clusterset.io/v1alpha1", "kind": "Placement", "name": "gpu-prod",
        "uid": placement["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    assert only["schedulerName"] == "clusterset"
    assert only["decisions"][0] == {"clusterProfileRef": {"name": "member-2", "namespace": "clusterset"},
                                    "reason": "predicate 0"}
    satisfied = hub.wait_reason("default", "gpu-prod", "AllDecided")
    assert satisfied["status"] == "True" and satisfied["observedGeneration"] == 1
    assert satisfied["message"] == "2 of 2 qualifying: 3 not matching any predicate"
    assert hub.placement("default", "gpu-prod")["status"]["numberOfSelectedClusters"] == 2
    wait_until(lambda: ("Normal", "Scheduled", "2 clusters chosen (added member-2, member-4)")
               in hub.events("default", "gpu-prod"), message="the Scheduled event")
    # Lt, In on a property; NotIn on a label
    hub.place("default", "few-gpus", {"predicates": [
        {"labelSelector": {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}]},
         "propertySelector": {"matchExpressions": [{"name": "gpus", "operator": "Lt", "values": ["5"]}]}},
        {"propertySelector": {"matchExpressions": [{"name": "gpus", "operator": "In", "values": ["16"]}]}}]})
    hub.wait_decided("default", "few-gpus", ["member-1", "member-4", "member-5"])
    # deleting the Placement deletes its decisions (ownerReferences, garbage collector)
    hub.api.delete_namespaced_custom_object(*OURS, "default", "placements", "few-gpus")
    wait_until(lambda: hub.decided("default", "few-gpus") is None, message="the slices garbage-collected")


def test_number_of_clusters_with_prioritizers_and_no_write_when_nothing_changed(hub: Hub) -> None:
    ns = hub.namespace("prio")
    hub.place(ns, "top2", {"numberOfClusters": 2, "prioritizers": [{"type": "Property", "property": "gpus",
                                                                     "weight": 2}]})
    hub.wait_decided(ns, "top2", ["member-2", "member-5"])
    hub.place(ns, "ask7", {"numberOfClusters": 7, "prioritizers": [{"type": "Steady"}]})
    hub.wait_decided(ns, "ask7", ALL)
    c = hub.wait_reason(ns, "ask7", "NotAllDecided")
    assert (c["status"], c["message"]) == ("False", "5 of 7 requested")
    wait_until(lambda: ("Warning", "NotAllDecided", "5 of 7 requested") in hub.events(ns, "ask7"),
               message="the Warning event")
    # Balance: with member-2 and member-5 taken by top2, a Balance placement takes others
    hub.place(ns, "spread-load", {"numberOfClusters": 2, "prioritizers": [{"type": "Balance"}]})
    hub.wait_decided(ns, "spread-load", ["member-1", "member-3"])

    before = {s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in hub.slices(ns, "top2")}
    start = hub.api.list_namespaced_custom_object(*UPSTREAM, ns, "placementdecisions")["metadata"]["resourceVersion"]
    # every Placement is rescheduled by a profile change; this one changes only what `watcher` asks for
    hub.place(ns, "watcher", {"predicates": [{"labelSelector": {"matchLabels": {"marked": "yes"}}}]})
    hub.wait_decided(ns, "watcher", [])
    hub.label_profile("member-1", {"marked": "yes"})
    hub.wait_decided(ns, "watcher", ["member-1"])
    events = list(watch.Watch().stream(hub.api.list_namespaced_custom_object, *UPSTREAM, ns, "placementdecisions",
                                       resource_version=start, timeout_seconds=1))
    changed = {e["object"]["metadata"]["name"] for e in events}
    assert changed == {"watcher-decision-0"}, changed
    assert {s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in hub.slices(ns, "top2")} == before
    hub.label_profile("member-1", {"marked": None})


def test_spread_over_zones(hub: Hub) -> None:
    ns = hub.namespace("spread")
    gpus_first = [{"type": "Property", "property": "gpus"}]
    hub.place(ns, "one-per-zone", {"numberOfClusters": 3, "prioritizers": gpus_first,
                                   "spreadConstraints": [{"topologyKey": ZONE}]})
    hub.wait_decided(ns, "one-per-zone", ["member-2", "member-3", "member-5"])  # the most gpus of a, b and c
    hub.place(ns, "strict", {"numberOfClusters": 4, "prioritizers": gpus_first, "spreadConstraints": [
        {"topologyKey": ZONE, "maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"}]})
    hub.wait_decided(ns, "strict", ["member-2", "member-3", "member-4", "member-5"])
    hub.place(ns, "by-env", {"prioritizers": gpus_first, "spreadConstraints": [
        {"topologyKey": "env", "whenUnsatisfiable": "DoNotSchedule"}],
        "predicates": [{"propertySelector": {"matchExpressions": [{"name": "gpus", "operator": "NotIn",
                                                                   "values": ["4"]}]}}]})
    # three prod candidates, one dev: with maxSkew 1 the prod cluster with the fewest gpus waits
    hub.wait_decided(ns, "by-env", ["member-2", "member-4", "member-5"])
    c = hub.wait_reason(ns, "by-env", "NotAllDecided")
    assert c["message"] == "3 of 4 qualifying: 1 not matching any predicate, 1 held back by DoNotSchedule spread"


def test_taints_and_tolerations_through_the_cli(fleet: FleetThread, hub: Hub) -> None:
    state = fleet.state_dir
    assert state is not None
    ns = hub.namespace("taints")
    hub.place(ns, "plain", {})
    hub.place(ns, "tolerant", {"tolerations": [{"key": "maintenance", "operator": "Exists"}]})
    hub.place(ns, "three", {"numberOfClusters": 3, "prioritizers": [{"type": "Property", "property": "gpus"}]})
    hub.wait_decided(ns, "plain", ALL)
    hub.wait_decided(ns, "three", ["member-2", "member-3", "member-5"])

    assert clusterset("taint", "member-2", "maintenance=planned:NoSelect", state=state) == (
        0, "clusterprofile/member-2 tainted\n", "")
    hub.wait_decided(ns, "plain", ["member-1", "member-3", "member-4", "member-5"])
    hub.wait_decided(ns, "three", ["member-3", "member-4", "member-5"])
    assert hub.decided(ns, "tolerant") == ALL
    c = hub.wait_reason(ns, "plain", "AllDecided", containing="tainted")
    assert c["message"] == "4 of 4 qualifying: 1 tainted maintenance=planned:NoSelect"
    # PreferNoSelect: member-5 (the most gpus) is chosen only when needed
    assert clusterset("taint", "member-5", "spot:PreferNoSelect", state=state)[0] == 0
    hub.wait_decided(ns, "three", ["member-1", "member-3", "member-4"])
    assert hub.decided(ns, "plain") == ["member-1", "member-3", "member-4", "member-5"]

    code, out, _ = clusterset("status", state=state)
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("  member-")}
    assert rows["member-2"][-2] == "maintenance=planned:NoSelect" and rows["member-1"][-2] == "-"
    assert f"  {ns}/three" in out and "3/3" in out
    # the profile manager keeps the annotation when it writes the profile's status
    custom(fleet.info("member-2")).create_cluster_custom_object(
        "about.k8s.io", "v1beta1", "clusterproperties", {"metadata": {"name": "rack"}, "spec": {"value": "r1"}})
    wait_until(lambda: any(p["name"] == "rack" for p in hub.profile("member-2")["status"]["properties"]),
               message="a status write of member-2's profile")
    assert "maintenance" in hub.profile("member-2")["metadata"]["annotations"]["clusterset.io/taints"]

    # bad input is one line and exit 1
    assert clusterset("taint", "member-2", "maintenance:NoSchedule", state=state) == (
        1, "", "clusterset taint: invalid taint spec: maintenance:NoSchedule, unsupported taint effect 'NoSchedule' "
               "(use NoSelect or PreferNoSelect)\n")
    assert clusterset("taint", "member-2", "other:NoSelect-", state=state) == (
        1, "", 'clusterset taint: taint "other:NoSelect" not found\n')
    code, _, err = clusterset("taint", "member-9", "k:NoSelect", state=state)
    assert code == 1 and err.startswith("clusterset taint: 404 NotFound: ") and len(err.splitlines()) == 1

    untainted = (0, "clusterprofile/member-2 untainted\n", "")
    assert clusterset("taint", "member-2", "maintenance-", state=state) == untainted
    assert clusterset("taint", "member-5", "spot:PreferNoSelect-", state=state)[0] == 0
    hub.wait_decided(ns, "plain", ALL)
    hub.wait_decided(ns, "three", ["member-2", "member-3", "member-5"])  # Steady keeps what it had
    # a malformed annotation (edited by hand) makes that cluster unselectable, and the condition names it
    hub.annotate_profile("member-1", {"clusterset.io/taints": "not json"})
    hub.wait_decided(ns, "plain", ALL[1:])
    hub.wait_reason(ns, "plain", "AllDecided", containing="with malformed taints (clusterset/member-1: annotation "
                    "clusterset.io/taints is not JSON")
    hub.annotate_profile("member-1", {"clusterset.io/taints": None})
    hub.wait_decided(ns, "plain", ALL)


def namespace_admin(fleet: FleetThread, hub: Hub, namespace: str) -> client.CustomObjectsApi:
    """The official client as a ServiceAccount bound to `admin` in `namespace` only."""
    core = client.CoreV1Api(hub.info.api_client())
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "owner"}})
    client.RbacAuthorizationV1Api(hub.info.api_client()).create_namespaced_role_binding(namespace, {
        "metadata": {"name": "owner-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "owner", "namespace": namespace}]})
    token = core.create_namespaced_service_account_token(
        "owner", namespace, {"spec": {"expirationSeconds": 3600}}).status.token
    info = ClusterInfo("hub", hub.info.server, token, hub.info.ca_file, hub.info.kubeconfig)
    return custom(info)


def test_an_unbound_namespace_chooses_nothing_and_its_admin_cannot_bind_it(fleet: FleetThread, hub: Hub) -> None:
    ns = hub.namespace("team", bind=False)
    admin = namespace_admin(fleet, hub, ns)
    # the aggregated admin role writes Placements in its namespace and reads their decisions
    wait_until(lambda: _can_create(admin, ns), message="admin aggregates the placement role")
    hub.wait_decided(ns, "probe", [])
    c = hub.wait_reason(ns, "probe", "NoClusterSetBinding")
    assert c["status"] == "False" and "kubectl create -f - <<<" in c["message"]
    assert '"namespace": "clusterset"' in c["message"] and '"spec": {"namespace": "team"}' in c["message"]
    assert admin.list_namespaced_custom_object(*UPSTREAM, ns, "placementdecisions")["items"]
    # ... but it cannot bind its namespace to the ClusterSet, nor read the inventory
    message = forbidden(lambda: admin.create_namespaced_custom_object(*OURS, CLUSTERSET, "clustersetbindings", {
        "apiVersion": "clusterset.io/v1alpha1", "kind": "ClusterSetBinding", "metadata": {"name": ns},
        "spec": {"namespace": ns}}))
    assert 'cannot create resource "clustersetbindings" in API group "clusterset.io" in the namespace ' \
           '"clusterset"' in message
    forbidden(lambda: admin.list_namespaced_custom_object(*UPSTREAM, CLUSTERSET, "clusterprofiles"))
    forbidden(lambda: admin.create_namespaced_custom_object(*UPSTREAM, ns, "placementdecisions", {
        "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "PlacementDecision", "metadata": {"name": "x"},
        "decisions": []}))
    # a binding in its own namespace binds nothing (it is not a ClusterSet's namespace)
    hub.api.create_namespaced_custom_object(*OURS, ns, "clustersetbindings", {
        "apiVersion": "clusterset.io/v1alpha1", "kind": "ClusterSetBinding", "metadata": {"name": ns},
        "spec": {"namespace": ns}})
    assert hub.satisfied(ns, "probe")["reason"] == "NoClusterSetBinding"
    # someone allowed to bind does; spec.clusterSets narrows to named sets
    hub.namespace(ns)
    hub.wait_decided(ns, "probe", ALL)
    hub.place(ns, "elsewhere", {"clusterSets": ["another-set"]})
    c = hub.wait_reason(ns, "elsewhere", "NoClusterSets")
    assert c["message"] == f"none of spec.clusterSets (another-set) is bound to namespace {ns}; bound: clusterset"
    assert hub.decided(ns, "elsewhere") == []


def _can_create(admin: client.CustomObjectsApi, ns: str) -> bool:
    try:
        admin.create_namespaced_custom_object(*OURS, ns, "placements", {
            "apiVersion": "clusterset.io/v1alpha1", "kind": "Placement", "metadata": {"name": "probe"}, "spec": {}})
    except ApiException as err:
        if err.status == 403:
            return False
        if err.status != 409:
            raise
    return True


def test_consumers_read_decisions_and_view_aggregates_them(hub: Hub) -> None:
    rbac = client.RbacAuthorizationV1Api(hub.info.api_client())
    rules = rbac.read_cluster_role("clusterset:placement-decision-reader").rules
    assert [(r.api_groups, r.resources, r.verbs) for r in rules] == [
        (["multicluster.x-k8s.io"], ["placementdecisions"], ["get", "list", "watch"])]

    def granted(role: str) -> dict[str, set[str]]:
        verbs: dict[str, set[str]] = {}
        for r in rbac.read_cluster_role(role).rules or []:
            if {"clusterset.io", "multicluster.x-k8s.io"} & set(r.api_groups or []):
                for res in r.resources or []:
                    verbs.setdefault(res, set()).update(r.verbs)
        return verbs

    view = wait_until(lambda: granted("view").get("placementdecisions") and granted("view"))
    assert view["placements"] == {"get", "list", "watch"} and "clustersetbindings" not in view
    edit = granted("edit")
    assert "create" in edit["placements"] and "create" in edit["worksets"]
    assert edit["placementdecisions"] == {"get", "list", "watch"} and "clustersetbindings" not in edit


@pytest.mark.parametrize(("name", "expression", "reason", "message"), [
    ("gt-word", {"name": "gpus", "operator": "Gt", "values": ["many"]}, "Misconfigured",
     "spec.predicates[0].propertySelector.matchExpressions[0].values: Gt needs exactly one integer value, got "
     "['many']; the clusters chosen before stay chosen until it is fixed"),
    ("in-empty", {"name": "gpus", "operator": "In"}, "Misconfigured",
     "spec.predicates[0].propertySelector.matchExpressions[0].values: In needs at least one value; the clusters "
     "chosen before stay chosen until it is fixed"),
    ("missing", {"name": "no-such-property", "operator": "Gt", "values": ["1"]}, "NoClusterMatched",
     "0 of 0 qualifying: 5 not matching any predicate"),
])
def test_bad_input_gives_a_condition(hub: Hub, name: str, expression: dict[str, Any], reason: str,
                                     message: str) -> None:
    ns = hub.namespace(f"bad-{name}")
    hub.place(ns, name, {"predicates": [{"propertySelector": {"matchExpressions": [expression]}}]})
    c = hub.wait_reason(ns, name, reason)
    assert (c["status"], c["message"]) == ("False", message)
    assert hub.decided(ns, name) == []  # slice 0 exists, empty
    wait_until(lambda: ("Warning", reason, message) in hub.events(ns, name), message="the Warning event")


def test_an_unknown_operator_is_refused_by_the_api(hub: Hub) -> None:
    with pytest.raises(ApiException) as caught:
        hub.place("default", "bad-op", {"predicates": [{"propertySelector": {"matchExpressions": [
            {"name": "gpus", "operator": "Gte", "values": ["1"]}]}}]})
    assert caught.value.status == 422
    assert "spec.predicates[0].propertySelector.matchExpressions[0].operator" in caught.value.body


def test_rescheduling_when_a_member_turns_unhealthy_leaves_or_changes(fleet: FleetThread, hub: Hub) -> None:
    """Last: it takes two members out of the fleet."""
    ns = hub.namespace("resched")
    hub.place(ns, "all", {})
    hub.place(ns, "prod", {"predicates": [{"labelSelector": {"matchLabels": {"env": "prod"}}}]})
    hub.wait_decided(ns, "all", ALL)
    hub.wait_decided(ns, "prod", ["member-1", "member-2", "member-4"])
    hub.label_profile("member-3", {"env": "prod"})  # labels change
    hub.wait_decided(ns, "prod", ["member-1", "member-2", "member-3", "member-4"])
    fleet.remove_cluster("member-5")  # its /readyz fails: unhealthy
    hub.wait_decided(ns, "all", ALL[:4], timeout=30)
    hub.wait_reason(ns, "all", "AllDecided", containing="1 unhealthy")

    async def leave_by_id() -> str:
        return await leave(fleet.fleet.admin_client("hub"), None, "member-4")

    assert fleet.call(leave_by_id()) == "member-4"  # it leaves: its profile is deleted
    hub.wait_decided(ns, "all", ["member-1", "member-2", "member-3"], timeout=30)
    hub.wait_decided(ns, "prod", ["member-1", "member-2", "member-3"])
    wait_until(lambda: any(e[1] == "Scheduled" and "removed member-4" in e[2] for e in hub.events(ns, "all")),
               message="a Scheduled event naming the member that left")
