"""Views served from another cluster's informers (runtime/shared.py), against the real server."""

from __future__ import annotations

from collections.abc import Callable

from clusterset.api.resources import CONFIG_MAPS, NAMESPACES, Resource
from clusterset.client import ClusterClient
from clusterset.runtime import Cache, Manager
from clusterset.runtime.cluster import Cluster
from clusterset.runtime.informer import ADDED, DELETED, MODIFIED, Event, Informer
from clusterset.runtime.shared import ChildInformer, Mirror, SharedReads
from clusterset.testing import ClusterInfo
from tests.runtime.util import cm, eventually

ROOT_CA = "kube-root-ca.crt"  # every namespace gets one: not the tests'


def names(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.type, e.obj["metadata"]["name"]) for e in events if e.obj["metadata"]["name"] != ROOT_CA]


def listed(cache: Cache) -> list[str]:
    return [o["metadata"]["name"] for o in cache.list() if o["metadata"]["name"] != ROOT_CA]


def views(cluster: Cluster) -> list[tuple[str, str, str]]:
    return sorted((str(i.resource), i.namespace or "", i.label_selector or "") for i in cluster.informers())


async def namespaces(client: ClusterClient, *names_: str) -> None:
    for name in names_:
        await client.create(NAMESPACES, {"metadata": {"name": name}})


async def test_views_of_namespaces_share_one_watch_and_see_only_their_namespace(cluster: ClusterInfo,
                                                                                client: ClusterClient) -> None:
    await namespaces(client, "a", "b", "c")
    await client.create(CONFIG_MAPS, cm("early", "a"))
    parent = Cluster("parent", client)
    reads = SharedReads(lambda: parent, common=("c",))

    def may_watch(allowed: set[str]) -> Callable[[Resource, str], bool]:
        return lambda resource, namespace: resource == CONFIG_MAPS and namespace in allowed

    async with Manager() as manager:
        view_a = await manager.add_cluster("a@hub", client, owned=False,
                                           informers=reads.source(may_watch({"a", "c"})))
        view_b = await manager.add_cluster("b@hub", client, owned=False,
                                           informers=reads.source(may_watch({"b", "c"})))
        events_a: list[Event] = []
        events_b: list[Event] = []
        view_a.informer(CONFIG_MAPS, "a").add_handler(events_a.append)
        view_b.informer(CONFIG_MAPS, "b").add_handler(events_b.append)
        common_a, common_b = view_a.cache(CONFIG_MAPS, "c"), view_b.cache(CONFIG_MAPS, "c")
        await view_a.wait_synced(10)
        await view_b.wait_synced(10)
        assert all(isinstance(i, ChildInformer) for c in (view_a, view_b) for i in c.informers())
        # one watch of all namespaces for both own namespaces, one of the common namespace
        assert views(parent) == [("configmaps", "", ""), ("configmaps", "c", "")]
        assert names(events_a) == [(ADDED, "early")] and names(events_b) == []

        await client.create(CONFIG_MAPS, cm("x", "b"))
        await client.patch(CONFIG_MAPS, "early", {"data": {"v": "2"}}, namespace="a")
        await client.create(CONFIG_MAPS, cm("shared", "c"))
        await client.delete(CONFIG_MAPS, "early", namespace="a")
        await eventually(lambda: len(names(events_a)) == 3 and len(names(events_b)) == 1,
                         message="the events of each view")
        assert names(events_a) == [(ADDED, "early"), (MODIFIED, "early"), (DELETED, "early")]
        modified = [e for e in events_a if e.type == MODIFIED]
        assert modified[0].old is not None and not modified[0].old.get("data")
        assert names(events_b) == [(ADDED, "x")]
        await eventually(lambda: listed(common_a) == listed(common_b) == ["shared"],
                         message="the common namespace in both views")
        assert listed(view_b.cache(CONFIG_MAPS, "b")) == ["x"]
        assert listed(view_a.cache(CONFIG_MAPS, "a")) == []

        # what the view may not watch (another namespace, a selector) it lists and watches for itself
        own = view_a.informer(CONFIG_MAPS, "b")
        assert type(own) is Informer
        assert type(view_a.informer(CONFIG_MAPS, "a", label_selector="test=runtime")) is Informer

        # a view that goes stops getting events; the parent and the other view carry on
        await manager.remove_cluster("a@hub")
        await client.create(CONFIG_MAPS, cm("late", "a"))
        await client.create(CONFIG_MAPS, cm("y", "b"))
        await eventually(lambda: len(names(events_b)) == 2, message="the other view's event")
        assert len(names(events_a)) == 3
    await parent.stop()


async def test_a_view_made_before_its_parent_has_loaded_becomes_synced_with_its_objects(
        cluster: ClusterInfo, client: ClusterClient) -> None:
    await namespaces(client, "a")
    await client.create(CONFIG_MAPS, cm("there", "a"))
    parent = Cluster("parent", client)
    reads = SharedReads(lambda: parent)
    view = Cluster("view", client, informers=reads.source(lambda resource, namespace: namespace == "a"))
    cache = view.cache(CONFIG_MAPS, "a")  # the parent's informer starts now: not loaded yet
    assert not parent.synced
    await view.wait_synced(10)
    assert listed(cache) == ["there"]
    assert cache.resource_version
    await view.stop()
    await parent.stop()


async def test_a_mirror_serves_selected_views_of_widened_kinds_from_one_watch(cluster: ClusterInfo,
                                                                              client: ClusterClient) -> None:
    parent = Cluster("member", client)
    view = Cluster("member", client, informers=Mirror(parent, widens=(CONFIG_MAPS,)))
    await client.create(CONFIG_MAPS, {"metadata": {"name": "in", "namespace": "default", "labels": {"tier": "a"}}})
    events: list[Event] = []
    informer = view.informer(CONFIG_MAPS, "default", label_selector="tier=a")
    informer.add_handler(events.append)
    plain = view.cache(CONFIG_MAPS, "default")
    others = view.cache(NAMESPACES)
    await view.wait_synced(10)
    assert views(parent) == [("configmaps", "", ""), ("configmaps", "default", ""), ("namespaces", "", "")]
    assert names(events) == [(ADDED, "in")] and len(plain) >= 1 and len(others) >= 1

    # an object that comes into the selection is added to the view, one that leaves it is deleted from it
    await client.create(CONFIG_MAPS, {"metadata": {"name": "out", "namespace": "default", "labels": {"tier": "b"}}})
    await client.patch(CONFIG_MAPS, "out", {"metadata": {"labels": {"tier": "a"}}}, namespace="default")
    await client.patch(CONFIG_MAPS, "in", {"metadata": {"labels": {"tier": "b"}}}, namespace="default")
    await eventually(lambda: len(events) == 3, message="three events")
    assert names(events) == [(ADDED, "in"), (ADDED, "out"), (DELETED, "in")]
    assert listed(informer.cache) == ["out"]

    # the view goes, the parent stays (a reader with another lifetime keeps reading it)
    await view.stop()
    assert all(i.running for i in parent.informers())
    await parent.stop()
