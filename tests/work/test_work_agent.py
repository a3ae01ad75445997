"""The work agent across restarts and with its own token: a restart writes nothing when nothing changed, a Work
that disappeared while the agent was away takes its objects with it, and an agent cannot touch another member's
Works. Nothing in this module's fleet fails, so an idle work queue means every Work has been looked at."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from clusterset.api.placement import WORK_CLEANUP_FINALIZER
from clusterset.inventory.registration import leave
from clusterset.testing import FleetThread
from tests.helpers import wait_until
from tests.inventory.test_fleet import agent_api
from tests.work.fleet import GROUP, VERSION, Works, configmap, deployment, hub_namespace, namespace, running_fleet

WELL_KNOWN = [{"resourceIdentifier": {"group": "apps", "resource": "deployments", "namespace": "stay", "name": "web"},
               "feedbackRules": [{"type": "WellKnownStatus"}]}]


@pytest.fixture(scope="module")
def works(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Works]:
    with running_fleet(tmp_path_factory.mktemp("work-agent") / "fleet") as fleet:
        yield Works(fleet)


def idle(fleet: FleetThread) -> bool:
    """The agents' work-apply queue has nothing queued, in progress or delayed."""
    async def pending() -> int:
        controller = next(c for c in fleet.fleet.agent_manager.controllers if c.name == "work-apply")
        return controller.queue.pending() if controller.queue is not None else 1
    return fleet.call(pending()) == 0


def restart_agent(works: Works, member: str, while_away: Callable[[], None] = lambda: None) -> None:
    fleet = works.fleet
    fleet.call(fleet.fleet.members.remove(member))
    while_away()
    fleet.call(fleet.fleet.join_member(member))


def versions(works: Works, member: str, name: str, objects: list[Callable[[Any], Any]]) -> list[str]:
    work, applied = works.work(member, name), works.applied_work(member, name)
    assert work is not None and applied is not None
    out = [work["metadata"]["resourceVersion"], applied["metadata"]["resourceVersion"]]
    for read in objects:
        obj = works.read(member, read)
        assert obj is not None
        out.append(obj["metadata"]["resourceVersion"])
    return out


def test_an_agent_restart_writes_nothing_when_nothing_changed(works: Works) -> None:
    works.create("member-1", "stay", [namespace("stay"), configmap("settings", "stay", mode="blue"),
                                      deployment("web", "stay", replicas=2)], manifestConfigs=WELL_KNOWN)
    wait_until(lambda: works.feedback("member-1", "stay", 2).get("readyReplicas") == 2
               and (works.condition("member-1", "stay", "Available") or {}).get("status") == "True", 30,
               message="the Work applied and available")
    wait_until(lambda: idle(works.fleet), 10, message="the agent idle")
    objects = [lambda api: client.CoreV1Api(api).read_namespace("stay"),
               lambda api: client.CoreV1Api(api).read_namespaced_config_map("settings", "stay"),
               lambda api: client.AppsV1Api(api).read_namespaced_deployment("web", "stay")]
    before = versions(works, "member-1", "stay", objects)

    restart_agent(works, "member-1")
    # the round trip that says the new agent has looked at every Work: a new Work applied, then an idle queue
    works.create("member-1", "marker", [configmap("marker", "stay", n="1")])
    wait_until(lambda: (works.condition("member-1", "marker", "Applied") or {}).get("status") == "True", 20,
               message="the restarted agent applying a new Work")
    wait_until(lambda: idle(works.fleet), 10, message="the restarted agent idle")
    assert versions(works, "member-1", "stay", objects) == before, "the restarted agent wrote something"


def test_a_work_gone_while_its_agent_was_away_takes_its_objects_with_it(works: Works) -> None:
    works.create("member-2", "away", [namespace("away"), configmap("a", "away", n="1")])
    wait_until(lambda: works.applied_work("member-2", "away"), 20)

    def delete_without_the_finalizer() -> None:
        works.delete("member-2", "away")
        works.patch("member-2", "away", {"metadata": {"finalizers": None}})
        wait_until(lambda: works.work("member-2", "away") is None, 10)

    restart_agent(works, "member-2", delete_without_the_finalizer)
    wait_until(lambda: works.applied_work("member-2", "away") is None, 20, message="the AppliedWork deleted")
    wait_until(lambda: works.read("member-2", lambda api: client.CoreV1Api(api).read_namespaced_config_map(
        "a", "away")) is None, 15, message="its namespaced objects collected")


def forbidden(call: Callable[[], Any]) -> str:
    with pytest.raises(ApiException) as exc:
        call()
    assert exc.value.status == 403, exc.value.body
    return str(json.loads(exc.value.body)["message"])


def test_an_agent_token_reaches_only_its_own_works(works: Works) -> None:
    works.create("member-2", "private", [configmap("p", "default", n="1")])
    works.create("member-1", "mine", [configmap("m", "default", n="1")])
    api = client.CustomObjectsApi(agent_api(works.fleet, "member-1"))
    own, other = hub_namespace("member-1"), hub_namespace("member-2")
    assert api.get_namespaced_custom_object(GROUP, VERSION, own, "works", "mine")["metadata"]["name"] == "mine"
    api.patch_namespaced_custom_object_status(GROUP, VERSION, own, "works", "mine", {"status": {}})
    message = forbidden(lambda: api.list_namespaced_custom_object(GROUP, VERSION, other, "works"))
    assert other in message
    forbidden(lambda: api.get_namespaced_custom_object(GROUP, VERSION, other, "works", "private"))
    forbidden(lambda: api.patch_namespaced_custom_object(GROUP, VERSION, other, "works", "private",
                                                         {"metadata": {"labels": {"x": "y"}}}))
    forbidden(lambda: api.patch_namespaced_custom_object_status(GROUP, VERSION, other, "works", "private",
                                                                {"status": {}}))
    forbidden(lambda: api.delete_namespaced_custom_object(GROUP, VERSION, other, "works", "private"))
    # in its own namespace too, an agent neither creates nor deletes Works: the hub does
    forbidden(lambda: api.create_namespaced_custom_object(GROUP, VERSION, own, "works", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Work", "metadata": {"name": "forged"}, "spec": {}}))
    forbidden(lambda: api.delete_namespaced_custom_object(GROUP, VERSION, own, "works", "mine"))


def test_a_removed_cluster_ends_its_works(works: Works) -> None:
    """`clusterset cluster remove`: what the cluster's Works applied went with it, so its Works end on the hub
    instead of waiting forever for a finalizer its agent can no longer run (a WorkSet being deleted waited too).
    member-1 is gone after this test."""
    works.create("member-1", "removed", [namespace("removed"), configmap("a", "removed", n="1")])
    wait_until(lambda: WORK_CLEANUP_FINALIZER in ((works.work("member-1", "removed") or {}).get("metadata") or {}).get(
        "finalizers", []), 20, message="the Work applied, its agent's finalizer on it")
    works.fleet.remove_cluster("member-1")
    wait_until(lambda: works.work("member-1", "removed") is None, 20, message="the removed cluster's Work ended")
    assert works.work("member-2", "removed") is None  # nothing of another member's


def test_leave_ends_the_members_works_on_both_sides(works: Works) -> None:
    """Last in the module: member-2 is no longer a member after it."""
    works.create("member-2", "leaving", [namespace("leaving"), configmap("a", "leaving", n="1")])
    wait_until(lambda: works.read("member-2", lambda api: client.CoreV1Api(api).read_namespaced_config_map(
        "a", "leaving")), 20, message="the Work applied")
    fleet = works.fleet
    fleet.call(leave(fleet.fleet.admin_client("hub"), fleet.fleet.admin_client("member-2")))
    hub = client.CoreV1Api(works.api("hub"))
    wait_until(lambda: works.read("hub", lambda _api: hub.read_namespace(hub_namespace("member-2"))) is None, 20,
               message="the member's hub namespace deleted (no Work finalizer holds it)")
    assert works.applied_work("member-2", "leaving") is None
    wait_until(lambda: works.read("member-2", lambda api: client.CoreV1Api(api).read_namespaced_config_map(
        "a", "leaving")) is None, 15, message="what the member's Works applied removed from it")
