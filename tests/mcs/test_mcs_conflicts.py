"""Conflicts between exports of one service (KEP-1645 §Constraints and Conflict Resolution, spec §6): the oldest
export wins each field, ports are a union, Conflict=True on every export with the reasons comma-joined, Events,
and strict port routing. Exports are made more than a second apart, as the conformance suite makes them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from clusterset.api.mcs import SOURCE_CLUSTER_LABEL
from clusterset.testing import FleetThread
from tests.helpers import core, custom, wait_until
from tests.mcs.fleet import GROUP, MEMBERS, VERSION, Mcs, fleet_options

Obj = dict[str, Any]
ALL_REASONS = ["PortConflict", "TypeConflict", "SessionAffinityConflict", "SessionAffinityConfigConflict",
               "LabelsConflict", "AnnotationsConflict", "InternalTrafficPolicyConflict",
               "TrafficDistributionConflict"]


@pytest.fixture(scope="module")
def mcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mcs]:
    fleet = FleetThread(fleet_options(Path(tmp_path_factory.mktemp("mcs-conflicts")) / "fleet"))
    try:
        yield Mcs(fleet)
    finally:
        fleet.stop()


def a_second_after(export: Obj) -> None:
    """Waits until an export made now has a later creationTimestamp (1-second resolution) than `export`."""
    created = datetime.fromisoformat(export["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    wait_until(lambda: datetime.now(UTC) >= created + timedelta(seconds=1.1), 3, message="the next second")


def svc_spec(**spec: Any) -> Obj:
    return {"ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}], **spec}


def export_in_order(mcs: Mcs, ns: str, name: str, specs: list[tuple[str, Obj, Obj]]) -> None:
    """Each (member, Service spec, ServiceExport spec) in turn, more than a second apart, oldest first."""
    mcs.namespace(ns)
    previous = None
    for member, spec, export_spec in specs:
        mcs.deployment(member, ns, name, replicas=1)
        headless = spec.pop("headless", False)
        mcs.service(member, ns, name, spec.pop("ports", None), headless=headless, **spec)
        if previous is not None:
            a_second_after(previous)
        previous = mcs.export(member, ns, name, **export_spec)


def conflict(mcs: Mcs, member: str, ns: str, name: str) -> Obj | None:
    c = mcs.conditions(member, ns, name).get("Conflict")
    return c if c and c["status"] == "True" else None


def all_conflict(mcs: Mcs, ns: str, name: str, members: tuple[str, ...], reason: str) -> dict[str, Obj]:
    def check() -> dict[str, Obj] | None:
        got = {m: conflict(mcs, m, ns, name) for m in members}
        return got if all(c is not None and c["reason"] == reason for c in got.values()) else None

    try:
        return wait_until(check, 20, message=f"Conflict=True/{reason} on {members}")
    except AssertionError as err:
        raise AssertionError(f"{err}; have {[mcs.conditions(m, ns, name).get('Conflict') for m in members]}") from None


def no_conflict(mcs: Mcs, ns: str, name: str, members: tuple[str, ...]) -> None:
    wait_until(lambda: all(mcs.condition(m, ns, name, "Conflict") == ("False", "NoConflicts") for m in members), 20,
               message="Conflict=False/NoConflicts everywhere")


def events_of(mcs: Mcs, member: str, ns: str, name: str, type_: str, reason: str) -> bool:
    return any(e["type"] == type_ and reason in e["reason"] for e in mcs.events(member, ns, name))


def imported(mcs: Mcs, ns: str, name: str, clusters: set[str], check: Callable[[Obj], bool]) -> None:
    for member in MEMBERS:
        def ok(m: str = member) -> bool:
            imp = mcs.service_import(m, ns, name)
            return imp is not None and {c["cluster"] for c in (imp.get("status") or {}).get("clusters") or []} == \
                clusters and check(imp)

        wait_until(ok, 20, message=f"the import in {member}")


def patch_service(mcs: Mcs, member: str, ns: str, name: str, spec: Obj) -> None:
    """Replaces the given fields of the Service's spec (a JSON patch: a strategic merge of ports keyed by port
    number would mix TCP and UDP ports of one number)."""
    core(mcs.info(member)).patch_namespaced_service(
        name, ns, [{"op": "add", "path": f"/spec/{field}", "value": value} for field, value in spec.items()])


def patch_export(mcs: Mcs, member: str, ns: str, name: str, spec: Obj) -> None:
    custom(mcs.info(member)).patch_namespaced_custom_object(GROUP, VERSION, ns, "serviceexports", name,
                                                            {"spec": spec})


# (id, older Service spec, newer Service spec, older export spec, newer export spec, reason, words in the message,
#  a check of the import (the older's value wins), how to fix the newer one: (service patch, export patch))
FIELD_CASES = [
    ("session-affinity", {}, {"sessionAffinity": "ClientIP"}, {}, {}, "SessionAffinityConflict", "sessionAffinity",
     lambda imp: imp["spec"].get("sessionAffinity", "None") == "None", ({"sessionAffinity": "None"}, None)),
    ("session-affinity-config",
     {"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 100}}},
     {"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 200}}}, {}, {},
     "SessionAffinityConfigConflict", "sessionAffinityConfig",
     lambda imp: imp["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 100}},
     ({"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 100}}}, None)),
    ("labels", {}, {}, {"exportedLabels": {"tier": "web"}}, {"exportedLabels": {"tier": "api"}}, "LabelsConflict",
     "labels", lambda imp: (imp["metadata"].get("labels") or {}).get("tier") == "web",
     (None, {"exportedLabels": {"tier": "web"}})),
    ("annotations", {}, {}, {"exportedAnnotations": {"team": "a"}}, {"exportedAnnotations": {"team": "a", "x": "y"}},
     "AnnotationsConflict", "annotations",
     lambda imp: (imp["metadata"].get("annotations") or {}).get("team") == "a"
     and "x" not in imp["metadata"]["annotations"], (None, {"exportedAnnotations": {"x": None}})),
    ("internal-traffic-policy", {"internalTrafficPolicy": "Local"}, {"internalTrafficPolicy": "Cluster"}, {}, {},
     "InternalTrafficPolicyConflict", "internalTrafficPolicy",
     lambda imp: imp["spec"].get("internalTrafficPolicy") == "Local", ({"internalTrafficPolicy": "Local"}, None)),
    ("traffic-distribution", {"trafficDistribution": "PreferClose"}, {}, {}, {}, "TrafficDistributionConflict",
     "trafficDistribution", lambda imp: imp["spec"].get("trafficDistribution") == "PreferClose",
     ({"trafficDistribution": "PreferClose"}, None)),
]


@pytest.mark.parametrize(("older", "newer", "older_export", "newer_export", "reason", "words", "check", "fix"),
                         [pytest.param(*case[1:], id=case[0]) for case in FIELD_CASES])
def test_a_field_conflict_is_on_every_export_and_clears(mcs: Mcs, request: pytest.FixtureRequest, older: Obj,
                                                        newer: Obj, older_export: Obj, newer_export: Obj, reason: str,
                                                        words: str, check: Callable[[Obj], bool],
                                                        fix: tuple[Obj | None, Obj | None]) -> None:
    ns, name = "conflict-" + request.node.callspec.id, "svc"
    export_in_order(mcs, ns, name, [("member-1", svc_spec(**older), older_export),
                                    ("member-2", svc_spec(**newer), newer_export)])
    both = ("member-1", "member-2")
    conflicts = all_conflict(mcs, ns, name, both, reason)
    for c in conflicts.values():
        assert words in c["message"] and '"member-1"' in c["message"] and "1/2 clusters disagree" in c["message"], c
    imported(mcs, ns, name, {"member-1", "member-2"}, check)
    for m in both:
        wait_until(lambda m=m: events_of(mcs, m, ns, name, "Warning", reason), 10, message=f"a Warning Event in {m}")
    service_patch, export_patch = fix
    if service_patch is not None:
        patch_service(mcs, "member-2", ns, name, service_patch)
    if export_patch is not None:
        patch_export(mcs, "member-2", ns, name, export_patch)
    no_conflict(mcs, ns, name, both)
    imported(mcs, ns, name, {"member-1", "member-2"}, check)
    for m in both:
        wait_until(lambda m=m: events_of(mcs, m, ns, name, "Normal", "NoConflicts"), 10,
                   message=f"a Normal Event in {m}")


def test_exported_labels_and_annotations_alone_are_copied_to_the_import(mcs: Mcs) -> None:
    ns, name = "exported-metadata", "svc"
    mcs.namespace(ns)
    core(mcs.info("member-1")).create_namespaced_service(ns, {
        "metadata": {"name": name, "labels": {"svc-own": "no"}, "annotations": {"svc-own": "no"}},
        "spec": svc_spec(selector={"app": name})})
    custom(mcs.info("member-1")).create_namespaced_custom_object(GROUP, VERSION, ns, "serviceexports", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "ServiceExport",
        "metadata": {"name": name, "labels": {"export-own": "no"}, "annotations": {"export-own": "no"}},
        "spec": {"exportedLabels": {"tier": "web"}, "exportedAnnotations": {"owner": "team-a"}}})
    imported(mcs, ns, name, {"member-1"}, lambda imp: imp["metadata"].get("labels") == {"tier": "web"})
    imp = mcs.service_import("member-3", ns, name)
    assert imp is not None
    annotations = imp["metadata"]["annotations"]
    assert annotations["owner"] == "team-a"
    assert "svc-own" not in annotations and "export-own" not in annotations


def test_type_conflict_the_oldest_wins(mcs: Mcs) -> None:
    ns, name = "conflict-type", "svc"
    export_in_order(mcs, ns, name, [("member-1", svc_spec(), {}), ("member-2", svc_spec(headless=True), {})])
    both = ("member-1", "member-2")
    conflicts = all_conflict(mcs, ns, name, both, "TypeConflict")
    assert all("type" in c["message"] and '"member-1"' in c["message"] for c in conflicts.values())
    assert all('"ClusterSetIP"' in c["message"] for c in conflicts.values())
    imported(mcs, ns, name, {"member-1", "member-2"}, lambda imp: imp["spec"]["type"] == "ClusterSetIP"
             and bool(imp["spec"]["ips"]))
    # the headless one goes: no conflict left
    core(mcs.info("member-2")).delete_namespaced_service(name, ns)
    no_conflict(mcs, ns, name, ("member-1",))
    imported(mcs, ns, name, {"member-1"}, lambda imp: imp["spec"]["type"] == "ClusterSetIP")


def test_port_union_is_a_conflict_on_every_export(mcs: Mcs) -> None:
    """Conformance: {tcp/42, udp/42} | {tcp/42, sctp/142} is a PortConflict, the import has the union."""
    ns, name = "conflict-ports", "svc"
    older = [{"name": "tcp", "protocol": "TCP", "port": 42}, {"name": "udp", "protocol": "UDP", "port": 42}]
    newer = [{"name": "tcp", "protocol": "TCP", "port": 42}, {"name": "sctp", "protocol": "SCTP", "port": 142}]
    export_in_order(mcs, ns, name, [("member-1", {"ports": older}, {}), ("member-2", {"ports": newer}, {})])
    both = ("member-1", "member-2")
    conflicts = all_conflict(mcs, ns, name, both, "PortConflict")
    assert all("ports" in c["message"] and "1/2 clusters disagree" in c["message"] for c in conflicts.values())
    union = [{"name": "tcp", "protocol": "TCP", "port": 42}, {"name": "udp", "protocol": "UDP", "port": 42},
             {"name": "sctp", "protocol": "SCTP", "port": 142}]
    imported(mcs, ns, name, {"member-1", "member-2"}, lambda imp: imp["spec"]["ports"] == union)
    for m in both:
        wait_until(lambda m=m: events_of(mcs, m, ns, name, "Warning", "PortConflict"), 10, message="Warning Event")
    patch_service(mcs, "member-2", ns, name, {"ports": older})
    no_conflict(mcs, ns, name, both)


def ports_by_cluster(mcs: Mcs, member: str, ns: str, name: str) -> dict[str, list[tuple[str, str, int]]]:
    return {s["metadata"]["labels"][SOURCE_CLUSTER_LABEL]: sorted((p["name"], p["protocol"], p["port"])
                                                                  for p in s["ports"] or [])
            for s in mcs.imported_slices(member, ns, name)}


def test_strict_port_routing_a_port_reaches_only_clusters_that_expose_it(mcs: Mcs) -> None:
    ns, name = "strict-ports", "svc"
    export_in_order(mcs, ns, name, [
        ("member-1", {"ports": [{"name": "tcp", "protocol": "TCP", "port": 42, "targetPort": 8080}]}, {}),
        ("member-2", {"ports": [{"name": "tcp", "protocol": "TCP", "port": 4242, "targetPort": 42}]}, {})])
    all_conflict(mcs, ns, name, ("member-1", "member-2"), "PortConflict")
    imported(mcs, ns, name, {"member-1", "member-2"},
             lambda imp: imp["spec"]["ports"] == [{"name": "tcp", "protocol": "TCP", "port": 42}])
    for member in MEMBERS:
        wait_until(lambda m=member: ports_by_cluster(mcs, m, ns, name) == {"member-1": [("tcp", "TCP", 8080)]}, 20,
                   message=f"only member-1's endpoints, on port 42's target, in {member}")
    # member-2 renames its port: now the union has both, each routed to its own cluster
    patch_service(mcs, "member-2", ns, name, {"ports": [{"name": "tcp2", "protocol": "TCP", "port": 4242,
                                                         "targetPort": 42}]})
    imported(mcs, ns, name, {"member-1", "member-2"}, lambda imp: imp["spec"]["ports"] == [
        {"name": "tcp", "protocol": "TCP", "port": 42}, {"name": "tcp2", "protocol": "TCP", "port": 4242}])
    for member in MEMBERS:
        wait_until(lambda m=member: ports_by_cluster(mcs, m, ns, name) == {
            "member-1": [("tcp", "TCP", 8080)], "member-2": [("tcp2", "TCP", 42)]}, 20,
            message=f"each port routed to its own cluster in {member}")


def test_everything_conflicting_at_once(mcs: Mcs) -> None:
    ns, name = "conflict-everything", "svc"
    older = {"ports": [{"name": "http", "port": 80}], "sessionAffinity": "ClientIP",
             "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 100}}, "internalTrafficPolicy": "Local",
             "trafficDistribution": "PreferClose"}
    newer = {"ports": [{"name": "web", "port": 8080}], "headless": True, "sessionAffinity": "ClientIP",
             "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 200}}, "internalTrafficPolicy": "Cluster"}
    export_in_order(mcs, ns, name, [
        ("member-1", older, {"exportedLabels": {"a": "1"}, "exportedAnnotations": {"a": "1"}}),
        ("member-2", newer, {"exportedLabels": {"a": "2"}, "exportedAnnotations": {"a": "2"}}),
        ("member-3", {**newer, "sessionAffinity": "None", "sessionAffinityConfig": None},
         {"exportedLabels": {"a": "3"}})])
    every = ("member-1", "member-2", "member-3")
    conflicts = all_conflict(mcs, ns, name, every, ",".join(ALL_REASONS))
    message = conflicts["member-1"]["message"]
    assert "2/3 clusters disagree" in message and '"member-1"' in message
    imported(mcs, ns, name, set(every), lambda imp: imp["spec"]["type"] == "ClusterSetIP" and imp["spec"]["ports"] == [
        {"name": "http", "protocol": "TCP", "port": 80}, {"name": "web", "protocol": "TCP", "port": 8080}]
        and imp["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 100}}
        and imp["metadata"]["labels"] == {"a": "1"} and imp["spec"]["internalTrafficPolicy"] == "Local")
    # nothing broke: an ordinary export in the same fleet still works
    mcs.service("member-1", ns, "plain", [{"port": 80}])
    mcs.export("member-1", ns, "plain")
    wait_until(lambda: mcs.condition("member-1", ns, "plain", "Conflict") == ("False", "NoConflicts"), 20,
               message="an ordinary export")
