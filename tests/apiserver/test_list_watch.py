"""list and watch semantics: selectors, paging, resourceVersions, bookmarks, 410 Expired."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from clusterset.testing import ClusterInfo, ServerThread


def core(info: ClusterInfo) -> client.CoreV1Api:
    return client.CoreV1Api(info.api_client())


def names(items: Any) -> list[str]:
    return [i.metadata.name for i in items.items]


@pytest.fixture
def labelled(cluster: ClusterInfo) -> client.CoreV1Api:
    api = core(cluster)
    for name, labels in [("a", {"env": "prod", "tier": "web"}), ("b", {"env": "dev", "tier": "web"}),
                         ("c", {"env": "prod"}), ("d", {"release": "3"})]:
        api.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": labels}})
    return api


@pytest.mark.parametrize(("selector", "expected"), [
    ("env=prod", ["a", "c"]),
    ("env==prod", ["a", "c"]),
    ("env!=prod", ["b", "d", "kube-root-ca.crt"]),
    ("env in (dev,prod),tier=web", ["a", "b"]),
    ("env notin (prod)", ["b", "d", "kube-root-ca.crt"]),
    ("tier", ["a", "b"]),
    ("!tier,!release", ["c", "kube-root-ca.crt"]),
    ("release>2", ["d"]),
    ("release<3", []),
])
def test_label_selectors(labelled: client.CoreV1Api, selector: str, expected: list[str]) -> None:
    assert names(labelled.list_namespaced_config_map("default", label_selector=selector)) == expected


def test_bad_label_selector_is_400(labelled: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as exc:
        labelled.list_namespaced_config_map("default", label_selector="env in (prod")
    assert exc.value.status == 400
    assert json.loads(exc.value.body)["message"].startswith("unable to parse requirement")


def test_field_selectors(labelled: client.CoreV1Api) -> None:
    assert names(labelled.list_config_map_for_all_namespaces(field_selector="metadata.name=a")) == ["a"]
    everywhere = labelled.list_config_map_for_all_namespaces(field_selector="metadata.namespace!=default")
    assert {i.metadata.namespace for i in everywhere.items} == {"kube-system", "kube-public", "kube-node-lease"}


def test_list_is_sorted_and_carries_resource_version(labelled: client.CoreV1Api) -> None:
    listed = labelled.list_config_map_for_all_namespaces()
    keys = [(i.metadata.namespace, i.metadata.name) for i in listed.items]
    assert keys == sorted(keys)
    newest = max(int(i.metadata.resource_version) for i in listed.items)
    assert int(listed.metadata.resource_version) >= newest


def test_pagination(cluster: ClusterInfo) -> None:
    api = core(cluster)
    for i in range(25):
        api.create_namespaced_config_map("default", {"metadata": {"name": f"cm-{i:02d}"}})
    seen: list[str] = []
    token = None
    pages = 0
    first_rv = None
    while True:
        page = api.list_namespaced_config_map("default", limit=10, _continue=token)
        pages += 1
        first_rv = first_rv or page.metadata.resource_version
        assert page.metadata.resource_version == first_rv  # all pages report the first page's snapshot
        seen += names(page)
        token = page.metadata._continue
        if pages == 1:
            assert page.metadata.remaining_item_count == 16  # 25 + kube-root-ca.crt - 10
        if not token:
            break
    assert pages == 3
    assert seen == sorted([f"cm-{i:02d}" for i in range(25)] + ["kube-root-ca.crt"])


def test_bad_continue_token_is_400(cluster: ClusterInfo) -> None:
    with pytest.raises(ApiException) as exc:
        core(cluster).list_namespaced_config_map("default", limit=1, _continue="garbage!")
    assert exc.value.status == 400


def test_resource_version_match_validation(cluster: ClusterInfo) -> None:
    with pytest.raises(ApiException) as exc:
        core(cluster).list_namespaced_config_map("default", resource_version_match="Exact")
    assert exc.value.status == 422
    body = json.loads(exc.value.body)
    assert body["details"]["kind"] == "ListOptions"


def test_list_not_older_than_a_future_version_times_out(cluster: ClusterInfo) -> None:
    api = core(cluster)
    current = int(api.list_namespaced_config_map("default").metadata.resource_version)
    with pytest.raises(ApiException) as exc:
        api.list_namespaced_config_map("default", resource_version=str(current + 1000),
                                       resource_version_match="NotOlderThan")
    assert exc.value.status == 504
    assert "Too large resource version" in json.loads(exc.value.body)["message"]


def _watch_events(api: client.CoreV1Api, **kwargs: Any) -> Iterator[dict[str, Any]]:
    w = watch.Watch()
    yield from w.stream(api.list_namespaced_config_map, "default", **kwargs)


def test_watch_from_resource_version_sees_exact_sequence(cluster: ClusterInfo) -> None:
    api = core(cluster)
    start = api.list_namespaced_config_map("default").metadata.resource_version
    api.create_namespaced_config_map("default", {"metadata": {"name": "w"}, "data": {"v": "1"}})
    api.patch_namespaced_config_map("w", "default", {"data": {"v": "2"}})
    api.delete_namespaced_config_map("w", "default")
    events = []
    for ev in _watch_events(api, resource_version=start, timeout_seconds=5):
        events.append((ev["type"], ev["object"].metadata.name, (ev["object"].data or {}).get("v")))
        if len(events) == 3:
            break
    assert events == [("ADDED", "w", "1"), ("MODIFIED", "w", "2"), ("DELETED", "w", "2")]


def test_watch_without_version_starts_with_current_objects(cluster: ClusterInfo) -> None:
    api = core(cluster)
    api.create_namespaced_config_map("default", {"metadata": {"name": "pre"}})
    first: list[tuple[str, str]] = []
    for ev in _watch_events(api, timeout_seconds=5):
        first.append((ev["type"], ev["object"].metadata.name))
        if len(first) == 2:
            break
    assert sorted(first) == [("ADDED", "kube-root-ca.crt"), ("ADDED", "pre")]


def test_watch_live_events_and_selector(cluster: ClusterInfo) -> None:
    api = core(cluster)
    start = api.list_namespaced_config_map("default").metadata.resource_version
    got: list[tuple[str, str]] = []
    done = threading.Event()

    def consume() -> None:
        for ev in _watch_events(api, resource_version=start, label_selector="watched=yes", timeout_seconds=10):
            got.append((ev["type"], ev["object"].metadata.name))
            if len(got) == 2:
                break
        done.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    api.create_namespaced_config_map("default", {"metadata": {"name": "ignored"}})
    api.create_namespaced_config_map("default", {"metadata": {"name": "one", "labels": {"watched": "yes"}}})
    api.patch_namespaced_config_map("one", "default", {"data": {"x": "y"}})
    assert done.wait(10)
    assert got == [("ADDED", "one"), ("MODIFIED", "one")]


def test_watch_field_selector_on_name(cluster: ClusterInfo) -> None:
    api = core(cluster)
    start = api.list_namespaced_config_map("default").metadata.resource_version
    api.create_namespaced_config_map("default", {"metadata": {"name": "other"}})
    api.create_namespaced_config_map("default", {"metadata": {"name": "target"}})
    for ev in _watch_events(api, resource_version=start, field_selector="metadata.name=target", timeout_seconds=5):
        assert ev["object"].metadata.name == "target"
        break


def raw_watch(info: ClusterInfo, query: str, stop_after: int, timeout: float = 10) -> list[dict[str, Any]]:
    """Reads a watch stream line by line over HTTPS with the official client's transport."""
    api = info.api_client()
    response = api.rest_client.pool_manager.request(
        "GET", f"{info.server}/api/v1/namespaces/default/configmaps?watch=true&{query}",
        headers={"Authorization": f"Bearer {info.token}"}, preload_content=False, timeout=timeout)
    events: list[dict[str, Any]] = []
    buf = b""
    deadline = time.monotonic() + timeout
    for chunk in response.stream(1024):
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            events.append(json.loads(line))
        if len(events) >= stop_after or time.monotonic() > deadline:
            break
    response.release_conn()
    return events


def test_bookmarks(cluster: ClusterInfo) -> None:
    # the session server sends bookmarks every second
    rv = core(cluster).list_namespaced_config_map("default").metadata.resource_version
    events = raw_watch(cluster, f"allowWatchBookmarks=true&resourceVersion={rv}&timeoutSeconds=5", stop_after=1)
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    assert bookmarks, events
    assert bookmarks[0]["object"]["kind"] == "ConfigMap"
    assert int(bookmarks[0]["object"]["metadata"]["resourceVersion"]) >= int(rv)


def test_send_initial_events(cluster: ClusterInfo) -> None:
    core(cluster).create_namespaced_config_map("default", {"metadata": {"name": "init"}})
    events = raw_watch(cluster, "sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true",
                       stop_after=3)
    assert [e["type"] for e in events[:2]] == ["ADDED", "ADDED"]
    assert events[2]["type"] == "BOOKMARK"
    assert events[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_send_initial_events_needs_not_older_than(cluster: ClusterInfo) -> None:
    with pytest.raises(ApiException) as exc:
        core(cluster).list_namespaced_config_map("default", watch=True, send_initial_events=True,
                                                 allow_watch_bookmarks=True, _preload_content=False)
    assert exc.value.status == 422


def test_watch_timeout_ends_stream(cluster: ClusterInfo) -> None:
    started = time.monotonic()
    rv = core(cluster).list_namespaced_config_map("default").metadata.resource_version
    events = raw_watch(cluster, f"resourceVersion={rv}&timeoutSeconds=1", stop_after=100, timeout=10)
    assert events == []
    assert time.monotonic() - started < 5


@pytest.fixture(scope="module")
def small_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    running = ServerThread(tmp_path_factory.mktemp("small-history"), history_size=20)
    yield running
    running.stop()


def test_watch_too_old_resource_version_gets_expired(small_history: ServerThread) -> None:
    info = small_history.add_cluster()
    api = core(info)
    for i in range(60):
        api.create_namespaced_config_map("default", {"metadata": {"name": f"x{i}"}})
    events = raw_watch(info, "resourceVersion=2", stop_after=1)
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["code"] == 410 and status["reason"] == "Expired"
    assert status["message"].startswith("too old resource version: 2 (")
    # the Python client retries once, then raises 410
    with pytest.raises(ApiException) as exc:
        for _ in _watch_events(api, resource_version="2", timeout_seconds=2):
            pass
    assert exc.value.status == 410


def test_state_dir_files(server: ServerThread) -> None:
    state = Path(server.server.state_dir or "")
    assert (state / "apiserver.db").exists()
    assert (state / "pki" / "ca.crt").exists()
