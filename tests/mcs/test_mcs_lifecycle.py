"""The life of a multi-cluster service: exports and Services deleted, a member's agent silenced, restarted or its
cluster removed, the whole fleet restarted. The module's fleet is disrupted in order: member loss last."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clusterset.testing import FleetThread
from tests.helpers import apps, core, wait_until
from tests.mcs.fleet import MEMBERS, Mcs, endpoints_by_cluster, fleet_options, holds_throughout, ips, running_fleet

Obj = dict[str, Any]
LEASE = 3  # endpoint_lease of the fleets here
SLACK = 4.0  # the hub's merge and every agent's import after a lease runs out


@pytest.fixture(scope="module")
def mcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mcs]:
    fleet = FleetThread(fleet_options(Path(tmp_path_factory.mktemp("mcs-lifecycle")) / "fleet"))
    try:
        yield Mcs(fleet)
    finally:
        fleet.stop()


def two_exporters(mcs: Mcs, ns: str, name: str, replicas: int = 2) -> dict[str, set[str]]:
    """A Deployment and Service of `name` exported from member-1 and member-2; their ready pods' IPs once every
    member imports them all."""
    mcs.namespace(ns)
    for m in ("member-1", "member-2"):
        mcs.deployment(m, ns, name, replicas=replicas)
        mcs.service(m, ns, name, [{"name": "http", "port": 80, "targetPort": 8080}])
        mcs.export(m, ns, name)
    wait_until(lambda: all(len(mcs.ready_pod_ips(m, ns, name)) == replicas for m in ("member-1", "member-2")), 30,
               message="pods ready")
    pods = {m: mcs.ready_pod_ips(m, ns, name) for m in ("member-1", "member-2")}
    for member in MEMBERS:
        wait_until(lambda m=member: endpoints_by_cluster(mcs.imported_slices(m, ns, name)) == pods, 30,
                   message=f"both clusters' endpoints in {member}")
    return pods


def clusters(mcs: Mcs, member: str, ns: str, name: str) -> set[str] | None:
    imp = mcs.service_import(member, ns, name)
    return None if imp is None else {c["cluster"] for c in (imp.get("status") or {}).get("clusters") or []}


def test_an_import_says_ready_only_once_its_slices_and_ips_are_in_place(mcs: Mcs) -> None:
    """The data plane first, in every member: the ServiceImport's status (Ready, its clusters) is written by a pass
    that had nothing else to write, after the import's IPs and slices."""
    ns, name = "data-plane-first", "web"
    mcs.namespace(ns)
    mcs.deployment("member-1", ns, name)
    mcs.service("member-1", ns, name, [{"name": "http", "port": 80, "targetPort": 8080}])
    wait_until(lambda: len(mcs.ready_pod_ips("member-1", ns, name)) == 2, 30, message="pods ready")
    pods = mcs.ready_pod_ips("member-1", ns, name)
    wait_until(lambda: ips(mcs.local_slices("member-1", ns, name)) == pods, 30, message="the local slice")
    mcs.export("member-1", ns, name)
    for member in MEMBERS:
        wait_until(lambda m=member: ((mcs.service_import(m, ns, name) or {}).get("status") or {}).get("conditions")
                   and (mcs.derived(m, ns, name) or {}).get("metadata", {}).get("ownerReferences"), 20,
                   message=f"the import's status and the derived Service's owner in {member}")
        imported = mcs.service_import(member, ns, name)
        assert imported is not None and imported["spec"]["ips"], imported
        ready = {c["type"]: c["status"] for c in imported["status"]["conditions"]}
        assert ready == {"Ready": "True"}, imported["status"]
        slices = mcs.imported_slices(member, ns, name)
        assert ips(slices) == pods, slices
        status_written = int(imported["metadata"]["resourceVersion"])
        assert all(int(s["metadata"]["resourceVersion"]) < status_written for s in slices), (member, slices)


def test_unexporting_removes_one_cluster_then_the_whole_import(mcs: Mcs) -> None:
    ns, name = "unexport", "web"
    pods = two_exporters(mcs, ns, name)
    mcs.unexport("member-2", ns, name)
    for member in MEMBERS:
        wait_until(lambda m=member: clusters(mcs, m, ns, name) == {"member-1"}
                   and endpoints_by_cluster(mcs.imported_slices(m, ns, name)) == {"member-1": pods["member-1"]}, 20,
                   message=f"only member-1 left in {member}")
        assert mcs.derived(member, ns, name) is not None
    mcs.unexport("member-1", ns, name)
    for member in MEMBERS:
        wait_until(lambda m=member: mcs.service_import(m, ns, name) is None and mcs.derived(m, ns, name) is None
                   and not mcs.imported_slices(m, ns, name), 20, message=f"nothing imported in {member}")
    # the local Services and their slices stay
    for m in ("member-1", "member-2"):
        assert core(mcs.info(m)).read_namespaced_service(name, ns)
        assert {a for s in mcs.local_slices(m, ns, name) for ep in s["endpoints"] for a in ep["addresses"]} == pods[m]


def test_deleting_the_exported_service_invalidates_the_export_and_withdraws_it(mcs: Mcs) -> None:
    ns, name = "service-deleted", "web"
    pods = two_exporters(mcs, ns, name)
    core(mcs.info("member-2")).delete_namespaced_service(name, ns)
    wait_until(lambda: mcs.condition("member-2", ns, name, "Valid") == ("False", "NoService"), 15,
               message="Valid=False/NoService")
    for member in MEMBERS:
        wait_until(lambda m=member: clusters(mcs, m, ns, name) == {"member-1"}
                   and endpoints_by_cluster(mcs.imported_slices(m, ns, name)) == {"member-1": pods["member-1"]}, 20,
                   message=f"member-2 withdrawn in {member}")
    assert mcs.condition("member-1", ns, name, "Valid") == ("True", "Valid")
    # the Service back: exported again
    mcs.service("member-2", ns, name, [{"name": "http", "port": 80, "targetPort": 8080}])
    for member in MEMBERS:
        wait_until(lambda m=member: endpoints_by_cluster(mcs.imported_slices(m, ns, name)) == pods, 20,
                   message=f"member-2 back in {member}")


class SliceWatcher:
    """Polls the imported slices of one service in one member in a thread, noting every change of their uids."""

    def __init__(self, mcs: Mcs, member: str, ns: str, name: str) -> None:
        self.mcs, self.member, self.ns, self.name = mcs, member, ns, name
        self.seen: list[dict[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def uids(self) -> dict[str, str]:
        return {s["metadata"]["name"]: s["metadata"]["uid"] for s in
                self.mcs.imported_slices(self.member, self.ns, self.name)}

    def _run(self) -> None:
        while not self._stop.is_set():
            now = self.uids()
            if not self.seen or self.seen[-1] != now:
                self.seen.append(now)
            time.sleep(0.05)

    def __enter__(self) -> SliceWatcher:
        self._thread.start()
        wait_until(lambda: self.seen, 5, message="a first look at the slices")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def test_restarting_an_agent_loses_nothing_and_rewrites_no_slice(mcs: Mcs) -> None:
    ns, name = "agent-restart", "web"
    pods = two_exporters(mcs, ns, name)
    with SliceWatcher(mcs, "member-3", ns, name) as watcher:
        before = watcher.uids()
        fleet = mcs.fleet
        fleet.call(fleet.fleet.members.remove("member-2"))
        apps(mcs.info("member-2")).patch_namespaced_deployment_scale(name, ns, {"spec": {"replicas": 3}})
        fleet.call(fleet.fleet.join_member("member-2"))
        wait_until(lambda: len(mcs.ready_pod_ips("member-2", ns, name)) == 3, 30, message="the third pod")
        pods["member-2"] = mcs.ready_pod_ips("member-2", ns, name)
        for member in MEMBERS:
            wait_until(lambda m=member: endpoints_by_cluster(mcs.imported_slices(m, ns, name)) == pods, 20,
                       message=f"the change made while the agent was away, in {member}")
        holds_throughout(lambda: watcher.seen[-1] == before, 1.0)
    assert watcher.seen == [before], "member-3's imported slices were deleted or replaced during the restart"
    assert mcs.condition("member-2", ns, name, "Ready") == ("True", "Ready")


def test_a_silent_agent_loses_its_endpoints_until_it_is_back(mcs: Mcs) -> None:
    ns, name = "silent-agent", "web"
    pods = two_exporters(mcs, ns, name)
    fleet = mcs.fleet
    fleet.call(fleet.fleet.members.remove("member-2"))
    silenced = time.monotonic()
    for member in ("member-1", "member-3"):  # member-2's own imports wait for its agent
        wait_until(lambda m=member: endpoints_by_cluster(mcs.imported_slices(m, ns, name)) ==
                   {"member-1": pods["member-1"]}, LEASE + SLACK - (time.monotonic() - silenced),
                   message=f"member-2's endpoints withdrawn in {member} within the lease")
        assert mcs.service_import(member, ns, name) is not None
    holds_throughout(lambda: mcs.service_import("member-3", ns, name) is not None
                     and "member-2" not in endpoints_by_cluster(mcs.imported_slices("member-3", ns, name)), 1.0)
    fleet.call(fleet.fleet.join_member("member-2"))
    for member in MEMBERS:
        wait_until(lambda m=member: endpoints_by_cluster(mcs.imported_slices(m, ns, name)) == pods, 20,
                   message=f"member-2's endpoints back in {member}")


def test_a_removed_member_loses_its_endpoints_everywhere(mcs: Mcs) -> None:
    """Last in the module: member-2 is gone for good after it (`clusterset cluster remove`)."""
    ns, name = "member-removed", "web"
    pods = two_exporters(mcs, ns, name)
    mcs.service("member-2", ns, "solo", [{"port": 80}])  # exported by member-2 alone: for the next test
    mcs.export("member-2", ns, "solo")
    for member in MEMBERS:
        wait_until(lambda m=member: clusters(mcs, m, ns, "solo") == {"member-2"}, 20, message="the solo import")
    mcs.fleet.remove_cluster("member-2")
    mcs.forget("member-2")
    removed = time.monotonic()
    for member in ("member-1", "member-3"):
        wait_until(lambda m=member: endpoints_by_cluster(mcs.imported_slices(m, ns, name)) ==
                   {"member-1": pods["member-1"]}, LEASE + SLACK - (time.monotonic() - removed),
                   message=f"member-2's endpoints withdrawn in {member}")
        assert mcs.service_import(member, ns, name) is not None


def test_a_removed_member_exports_nothing_any_more(mcs: Mcs) -> None:
    """After the previous test: member-2 was removed. Its agent withdrew its exports as it stopped: it is in no
    import's clusters, and the service only it exported is imported nowhere."""
    ns = "member-removed"
    for member in ("member-1", "member-3"):
        wait_until(lambda m=member: clusters(mcs, m, ns, "web") == {"member-1"}
                   and mcs.service_import(m, ns, "solo") is None, 10, message=f"member-2's exports gone in {member}")


# ------------------------------------------------------------------ whole fleet restart
def snapshot(mcs: Mcs, ns: str, name: str) -> dict[str, Obj]:
    out = {}
    for member in MEMBERS:
        imp, derived = mcs.service_import(member, ns, name), mcs.derived(member, ns, name)
        assert imp is not None and derived is not None
        out[member] = {"import": imp["metadata"]["uid"], "ips": imp["spec"]["ips"],
                       "derived": derived["metadata"]["uid"], "clusterIPs": derived["spec"]["clusterIPs"],
                       "slices": {s["metadata"]["name"]: s["metadata"]["uid"]
                                  for s in mcs.imported_slices(member, ns, name)}}
    return out


def test_a_fleet_restart_keeps_every_import_and_serves_changes(tmp_path: Path) -> None:
    state = tmp_path / "fleet"
    ns, name = "fleet-restart", "web"
    with running_fleet(state) as fleet:
        mcs = Mcs(fleet)
        two_exporters(mcs, ns, name)
        before = snapshot(mcs, ns, name)
    # down for longer than the endpoint lease: every lease's renewTime is old when the hub comes back
    outage = time.monotonic() + LEASE + 1.0
    wait_until(lambda: time.monotonic() > outage, LEASE + 2.0, message="the outage")
    with running_fleet(state) as fleet:
        mcs = Mcs(fleet)
        for member in MEMBERS:
            assert mcs.service_import(member, ns, name) is not None
        # the agents have renewed their leases and resynced: still the same objects, same ClusterSet IPs
        wait_until(lambda: all(mcs.condition(m, ns, name, "Ready") == ("True", "Ready")
                               for m in ("member-1", "member-2")), 20, message="exports Ready after the restart")
        holds_throughout(lambda: snapshot(mcs, ns, name) == before, LEASE + 1.0, interval=0.2)
        # changes right after the restart propagate
        mcs.unexport("member-2", ns, name)
        mcs.service("member-3", ns, "new", [{"port": 80}])
        mcs.export("member-3", ns, "new")
        for member in MEMBERS:
            wait_until(lambda m=member: clusters(mcs, m, ns, name) == {"member-1"}, 20, message="unexported")
            wait_until(lambda m=member: clusters(mcs, m, ns, "new") == {"member-3"}, 20, message="new export")
