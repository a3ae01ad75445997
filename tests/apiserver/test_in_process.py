"""`Apiserver.in_process`: resource requests answered in this process, with the answers, events and refusals the same
requests get over HTTPS."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest

from clusterset.api.resources import CONFIG_MAPS, ROLE_BINDINGS, ROLES, SERVICE_ACCOUNTS
from clusterset.apiserver import Apiserver
from clusterset.client import (
    ClientConfig,
    ClusterClient,
    ConnectionFailed,
    Forbidden,
    Gone,
    NotFound,
    RetryPolicy,
    Unauthorized,
)

Obj = dict[str, Any]


@contextlib.asynccontextmanager
async def one_cluster(*more: str, **options: Any) -> AsyncIterator[Apiserver]:
    """A started server with cluster `one` and `more` (no controllers), stopped afterwards."""
    server = Apiserver(None, **options)
    for name in ("one", *more):
        await server.add_cluster(name, controllers=False)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def server() -> AsyncIterator[Apiserver]:
    async with one_cluster("two") as started:
        yield started


def client(server: Apiserver, cluster: str, token: str | None, in_process: bool) -> ClusterClient:
    """In process: a URL where nothing listens, so that whatever is not answered in process fails."""
    url = f"https://127.0.0.1:1/clusters/{cluster}" if in_process else server.cluster_url(cluster)
    return ClusterClient(ClientConfig(server=url, ca_data=server.ca_pem.encode(), token=token,
                                      retry=RetryPolicy(attempts=1)),
                         in_process=server.in_process(cluster) if in_process else None)


async def test_reads_and_writes_answer_as_over_https(server: Apiserver) -> None:
    token = server.cluster_token("one")
    local, https = client(server, "one", token, True), client(server, "one", token, False)
    try:
        before = server.resource_version("one")
        made = await local.create(CONFIG_MAPS, {"metadata": {"name": "a", "namespace": "default"}, "data": {"k": "v"}})
        assert server.resource_version("one") == before + 1  # written by the server, not answered from elsewhere
        assert made == await https.get(CONFIG_MAPS, "a", "default") == await local.get(CONFIG_MAPS, "a", "default")
        applied = await local.apply(CONFIG_MAPS, {"metadata": {"name": "a", "namespace": "default"},
                                                  "data": {"k": "w"}}, "tester")
        assert applied["data"] == {"k": "w"}
        assert {e["manager"] for e in applied["metadata"]["managedFields"]} == {"clusterset", "tester"}
        assert applied == await https.get(CONFIG_MAPS, "a", "default")
        listed_local = await local.list(CONFIG_MAPS, "default", field_selector="metadata.name=a")
        assert listed_local == await https.list(CONFIG_MAPS, "default", field_selector="metadata.name=a")
        assert [i["metadata"]["name"] for i in listed_local["items"]] == ["a"]
        with pytest.raises(NotFound):
            await local.get(CONFIG_MAPS, "missing", "default")
        # a group-version's resource list (what a controller's discovery asks) is answered in process, as over HTTPS
        for path in ("/api/v1", "/apis/apps/v1", "/apis/rbac.authorization.k8s.io/v1"):
            assert await local.request("GET", path) == await https.request("GET", path), path
        for missing in ("/apis/nothing.example.com/v1", "/apis/apps/v9"):
            with pytest.raises(NotFound):
                await local.request("GET", missing)
        # what is not a plain resource verb goes over HTTPS: the other discovery documents, a delete
        for other in (local.request("GET", "/api"), local.request("GET", "/apis/apps"),
                      local.delete(CONFIG_MAPS, "a", "default")):
            with pytest.raises(ConnectionFailed):
                await other
        both = ClusterClient(dataclasses.replace(https.config), in_process=server.in_process("one"))
        try:
            assert "v1" in (await both.request("GET", "/api"))["versions"]
            await both.delete(CONFIG_MAPS, "a", "default")
            with pytest.raises(NotFound):
                await https.get(CONFIG_MAPS, "a", "default")
        finally:
            await both.close()
    finally:
        await local.close()
        await https.close()


async def test_a_token_gets_what_its_identity_may_and_no_more(server: Apiserver) -> None:
    admin = client(server, "one", server.cluster_token("one"), True)
    try:
        await admin.create(SERVICE_ACCOUNTS, {"metadata": {"name": "reader", "namespace": "default"}})
        await admin.create(ROLES, {"metadata": {"name": "get-cm", "namespace": "default"}, "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]})
        await admin.create(ROLE_BINDINGS, {"metadata": {"name": "get-cm", "namespace": "default"},
                                           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                       "name": "get-cm"},
                                           "subjects": [{"kind": "ServiceAccount", "name": "reader",
                                                         "namespace": "default"}]})
        await admin.create(CONFIG_MAPS, {"metadata": {"name": "a", "namespace": "default"}})
        minted = await admin.request("POST", SERVICE_ACCOUNTS.path("default", "reader", "token"),
                                     body={"spec": {"expirationSeconds": 3600}})
        token = minted["status"]["token"]
        reader = client(server, "one", token, True)
        try:
            assert (await reader.get(CONFIG_MAPS, "a", "default"))["metadata"]["name"] == "a"
            with pytest.raises(Forbidden) as refused:
                await reader.list(CONFIG_MAPS, "default")
            assert 'cannot list resource "configmaps"' in str(refused.value)
            with pytest.raises(Forbidden):
                await reader.create(CONFIG_MAPS, {"metadata": {"name": "b", "namespace": "default"}})
            https = client(server, "one", token, False)
            try:  # the token TokenRequest answered in process is valid over HTTPS too
                assert (await https.get(CONFIG_MAPS, "a", "default"))["metadata"]["name"] == "a"
            finally:
                await https.close()
        finally:
            await reader.close()
        for other in (client(server, "two", server.cluster_token("one"), True), client(server, "one", None, True)):
            try:  # another cluster's token, no token
                with pytest.raises(Unauthorized):
                    await other.get(CONFIG_MAPS, "a", "default")
                with pytest.raises(Unauthorized):
                    await other.request("GET", "/api/v1")
            finally:
                await other.close()
    finally:
        await admin.close()


async def test_health_and_version_answer_as_over_https_without_credentials(server: Apiserver) -> None:
    """What an agent's probe of its member asks (the embedded fleet answers it in process); a removed cluster's
    paths are gone (404), which an agent counts as its member refusing it."""
    for token in (None, server.cluster_token("two")):
        local, https = client(server, "two", token, True), client(server, "two", token, False)
        try:
            for path in ("/readyz", "/livez", "/healthz"):
                assert await local.request("GET", path) == await https.request("GET", path) == "ok"
            version = await local.request("GET", "/version")
            assert version == await https.request("GET", "/version") and version["gitVersion"].startswith("v1.")
        finally:
            await local.close()
            await https.close()
    local, https = client(server, "two", None, True), client(server, "two", None, False)
    try:
        await server.remove_cluster("two")
        for probe in (local, https):
            with pytest.raises(NotFound):
                await probe.request("GET", "/readyz")
    finally:
        await local.close()
        await https.close()


async def events(watcher: ClusterClient, rv: str, count: int) -> list[tuple[str, str, str]]:
    """(type, name, resourceVersion) of the first `count` events after `rv`, bookmarks left out."""
    out: list[tuple[str, str, str]] = []
    stream = watcher.watch(CONFIG_MAPS, "default", resource_version=rv, timeout_seconds=30)
    async with contextlib.aclosing(stream):
        async for event in stream:
            if event["type"] != "BOOKMARK":
                meta = event["object"]["metadata"]
                out.append((event["type"], meta["name"], meta["resourceVersion"]))
            if len(out) == count:
                break
    return out


async def test_a_watch_sees_the_events_an_https_watch_sees(server: Apiserver) -> None:
    token = server.cluster_token("one")
    local, https = client(server, "one", token, True), client(server, "one", token, False)
    try:
        rv = (await local.list(CONFIG_MAPS, "default"))["metadata"]["resourceVersion"]
        watched = [asyncio.create_task(events(c, rv, 3)) for c in (local, https)]

        async def write() -> None:
            await local.create(CONFIG_MAPS, {"metadata": {"name": "w", "namespace": "default"}})
            await local.apply(CONFIG_MAPS, {"metadata": {"name": "w", "namespace": "default"}, "data": {"a": "b"}},
                              "tester")
            await https.delete(CONFIG_MAPS, "w", "default")  # a delete goes over HTTPS

        await asyncio.wait_for(asyncio.gather(write(), *watched), 30)
        seen_local, seen_https = (t.result() for t in watched)
        assert [(t, n) for t, n, _ in seen_local] == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]
        assert seen_local == seen_https
        # a replay from the list's resourceVersion gives them again; one ending by its timeout ends the stream
        assert await asyncio.wait_for(events(local, rv, 3), 30) == seen_local
        stream = local.watch(CONFIG_MAPS, "default", resource_version=seen_local[-1][2], timeout_seconds=1,
                             allow_bookmarks=False)
        assert [e async for e in stream] == []
    finally:
        await local.close()
        await https.close()


async def test_a_watch_older_than_the_history_is_gone_as_over_https() -> None:
    async with one_cluster(history_size=2) as server:
        token = server.cluster_token("one")
        local, https = client(server, "one", token, True), client(server, "one", token, False)
        try:
            rv = (await local.list(CONFIG_MAPS, "default"))["metadata"]["resourceVersion"]
            for i in range(4):
                await local.create(CONFIG_MAPS, {"metadata": {"name": f"c{i}", "namespace": "default"}})
            for watcher in (local, https):
                stream = watcher.watch(CONFIG_MAPS, "default", resource_version=rv, timeout_seconds=5)
                with pytest.raises(Gone):  # relist, as an informer does
                    async with contextlib.aclosing(stream):
                        async for _ in stream:
                            pass
        finally:
            await local.close()
            await https.close()


async def test_an_idle_watch_gets_bookmarks_and_ends_at_its_timeout() -> None:
    """One timer per watch serves both: a bookmark every interval while nothing happens, the end at the timeout."""
    async with one_cluster(bookmark_interval=0.2) as server:
        local = client(server, "one", server.cluster_token("one"), True)
        try:
            rv = (await local.list(CONFIG_MAPS, "default"))["metadata"]["resourceVersion"]
            started = asyncio.get_running_loop().time()
            seen = await asyncio.wait_for(
                _all(local.watch(CONFIG_MAPS, "default", resource_version=rv, timeout_seconds=1)), 10)
            took = asyncio.get_running_loop().time() - started
            assert {e["type"] for e in seen} == {"BOOKMARK"}
            assert 3 <= len(seen) <= 5, seen  # at 0.2, 0.4, 0.6, 0.8 s
            assert 0.9 <= took < 5
            assert {e["object"]["metadata"]["resourceVersion"] for e in seen} == {rv}
        finally:
            await local.close()


async def _all(stream: AsyncIterator[Obj]) -> list[Obj]:
    return [e async for e in stream]


def test_a_watch_arms_its_timer_once_not_for_every_batch_of_events() -> None:
    """uvloop rounds a timer's `when()` to milliseconds: a watch comparing it with its deadline armed a new timer
    for every batch of events it sent (the watch bench fell to 0.55-0.77x). On a loop that rounds as uvloop does,
    twenty events one after another leave the watch with the one timer it armed first."""
    armed: list[str] = []

    class RoundingLoop(asyncio.SelectorEventLoop):
        def call_at(self, when: float, callback: Any, *args: Any, context: Any = None) -> asyncio.TimerHandle:
            armed.append(getattr(callback, "__qualname__", ""))
            return super().call_at(round(when, 3), callback, *args, context=context)

    async def watch_twenty() -> None:
        async with one_cluster() as server:
            local = client(server, "one", server.cluster_token("one"), True)
            try:
                rv = (await local.list(CONFIG_MAPS, "default"))["metadata"]["resourceVersion"]
                stream = local.watch(CONFIG_MAPS, "default", resource_version=rv, timeout_seconds=60,
                                     allow_bookmarks=False)
                async with contextlib.aclosing(stream):
                    for i in range(20):
                        await local.create(CONFIG_MAPS, {"metadata": {"name": f"c{i}", "namespace": "default"}})
                        event = await asyncio.wait_for(anext(stream), 10)
                        assert event["object"]["metadata"]["name"] == f"c{i}"
            finally:
                await local.close()

    with asyncio.Runner(loop_factory=RoundingLoop) as runner:
        runner.run(watch_twenty())
    assert [q for q in armed if q.endswith("watch_events.<locals>.wake")] == ["watch_events.<locals>.wake"]
