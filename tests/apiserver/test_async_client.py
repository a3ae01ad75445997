"""kubernetes_asyncio against the embedded server: CRUD, selectors, paging, watch, every patch type, SSA."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.rest import ApiException

from clusterset.testing import ClusterInfo

APPLY = "application/apply-patch+yaml"


async def test_crud_and_list(cluster: ClusterInfo) -> None:
    async with cluster.async_api_client() as api_client:
        api = client.CoreV1Api(api_client)
        for i in range(5):
            await api.create_namespaced_config_map(
                "default", {"metadata": {"name": f"c{i}", "labels": {"parity": "even" if i % 2 == 0 else "odd"}}}
            )
        evens = await api.list_namespaced_config_map("default", label_selector="parity=even")
        assert [i.metadata.name for i in evens.items] == ["c0", "c2", "c4"]
        page = await api.list_namespaced_config_map("default", limit=2)
        assert len(page.items) == 2 and page.metadata._continue
        rest = await api.list_namespaced_config_map("default", limit=100, _continue=page.metadata._continue)
        assert len(rest.items) == 4  # 3 more ConfigMaps + kube-root-ca.crt
        await api.delete_namespaced_config_map("c0", "default")
        with pytest.raises(ApiException) as exc:
            await api.read_namespaced_config_map("c0", "default")
        assert exc.value.status == 404


async def test_watch_resume_from_resource_version(cluster: ClusterInfo) -> None:
    async with cluster.async_api_client() as api_client:
        api = client.CoreV1Api(api_client)
        listed = await api.list_namespaced_config_map("default")
        rv = listed.metadata.resource_version
        received: list[tuple[str, str]] = []

        async def consume(since: str, count: int) -> str:
            last = since
            async with watch.Watch().stream(
                api.list_namespaced_config_map, "default", resource_version=since, timeout_seconds=10
            ) as stream:
                async for ev in stream:
                    received.append((ev["type"], ev["object"].metadata.name))
                    last = ev["object"].metadata.resource_version
                    if len(received) >= count:
                        break
            return last

        task = asyncio.create_task(consume(rv, 2))
        await asyncio.sleep(0)
        await api.create_namespaced_config_map("default", {"metadata": {"name": "w1"}})
        await api.create_namespaced_config_map("default", {"metadata": {"name": "w2"}})
        last = await asyncio.wait_for(task, 10)
        # changes while no watch is open are delivered when resuming from the last seen version
        await api.create_namespaced_config_map("default", {"metadata": {"name": "w3"}})
        await api.delete_namespaced_config_map("w1", "default")
        await asyncio.wait_for(consume(last, 4), 10)
        assert received == [("ADDED", "w1"), ("ADDED", "w2"), ("ADDED", "w3"), ("DELETED", "w1")]


async def test_patch_types(cluster: ClusterInfo) -> None:
    async with cluster.async_api_client() as api_client:
        apps = client.AppsV1Api(api_client)
        await apps.create_namespaced_deployment(
            "default",
            {
                "metadata": {"name": "web", "labels": {"a": "1", "b": "2"}},
                "spec": {
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {
                            "containers": [
                                {"name": "web", "image": "web:1", "env": [{"name": "X", "value": "1"}]},
                                {"name": "sidecar", "image": "side:1"},
                            ]
                        },
                    },
                },
            },
        )
        # strategic merge: containers merge by name, other containers stay
        dep = await apps.patch_namespaced_deployment(
            "web",
            "default",
            {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}}},
            _content_type="application/strategic-merge-patch+json",
        )
        containers = {c.name: c for c in dep.spec.template.spec.containers}
        assert containers["web"].image == "web:2" and containers["sidecar"].image == "side:1"
        assert containers["web"].env[0].name == "X"
        # merge patch: null deletes a label, lists are replaced whole
        dep = await apps.patch_namespaced_deployment(
            "web", "default", {"metadata": {"labels": {"b": None}}}, _content_type="application/merge-patch+json"
        )
        assert dep.metadata.labels == {"a": "1"}
        # JSON patch with an escaped key and a test op
        dep = await apps.patch_namespaced_deployment(
            "web",
            "default",
            [
                {"op": "test", "path": "/metadata/labels/a", "value": "1"},
                {"op": "add", "path": "/metadata/annotations", "value": {}},
                {"op": "add", "path": "/metadata/annotations/example.com~1note", "value": "hi"},
            ],
            _content_type="application/json-patch+json",
        )
        assert dep.metadata.annotations == {"example.com/note": "hi"}
        with pytest.raises(ApiException) as exc:
            await apps.patch_namespaced_deployment(
                "web",
                "default",
                [{"op": "test", "path": "/metadata/labels/a", "value": "2"}],
                _content_type="application/json-patch+json",
            )
        assert exc.value.status == 422


async def test_server_side_apply_ownership_and_conflicts(cluster: ClusterInfo) -> None:
    async with cluster.async_api_client() as api_client:
        api = client.CoreV1Api(api_client)
        manifest = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "ssa"},
            "data": {"owned": "1", "shared": "x"},
        }
        created = await api.patch_namespaced_config_map(
            "ssa", "default", manifest, field_manager="alice", _content_type=APPLY
        )
        fields = created.metadata.managed_fields
        assert [(f.manager, f.operation) for f in fields] == [("alice", "Apply")]
        assert set(fields[0].fields_v1["f:data"]) == {"f:owned", "f:shared"}
        # re-applying the same manifest is a no-op
        again = await api.patch_namespaced_config_map(
            "ssa", "default", manifest, field_manager="alice", _content_type=APPLY
        )
        assert again.metadata.resource_version == created.metadata.resource_version
        # bob applies the same value of "shared": shared ownership, no conflict
        await api.patch_namespaced_config_map(
            "ssa",
            "default",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"shared": "x"}},
            field_manager="bob",
            _content_type=APPLY,
        )
        # bob changes a field alice owns: 409 naming alice and the field
        with pytest.raises(ApiException) as exc:
            await api.patch_namespaced_config_map(
                "ssa",
                "default",
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"owned": "2"}},
                field_manager="bob",
                _content_type=APPLY,
            )
        assert exc.value.status == 409
        status: dict[str, Any] = json.loads(exc.value.body)
        assert status["reason"] == "Conflict"
        assert 'conflict with "alice"' in status["message"] and ".data.owned" in status["message"]
        assert status["details"]["causes"][0]["reason"] == "FieldManagerConflict"
        forced = await api.patch_namespaced_config_map(
            "ssa",
            "default",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"},
             "data": {"owned": "2", "shared": "x"}},
            field_manager="bob",
            force=True,
            _content_type=APPLY,
        )
        assert forced.data["owned"] == "2"
        # alice drops "shared" from her manifest: bob's latest apply still owns it, so it stays
        await api.patch_namespaced_config_map(
            "ssa",
            "default",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {}},
            field_manager="alice",
            _content_type=APPLY,
        )
        final = await api.read_namespaced_config_map("ssa", "default")
        assert final.data == {"owned": "2", "shared": "x"}


async def test_update_records_managed_fields(cluster: ClusterInfo) -> None:
    async with cluster.async_api_client() as api_client:
        api = client.CoreV1Api(api_client)
        created = await api.create_namespaced_config_map(
            "default", {"metadata": {"name": "mf"}, "data": {"a": "1"}}, field_manager="creator"
        )
        entry = created.metadata.managed_fields[0]
        assert (entry.manager, entry.operation, entry.api_version) == ("creator", "Update", "v1")
        assert "f:a" in entry.fields_v1["f:data"]
