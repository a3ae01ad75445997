"""Cluster providers: a kubeconfig file followed as it is rewritten; ClusterProfiles on a hub."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from pathlib import Path
from typing import Any

from clusterset.api import crds
from clusterset.api.resources import CLUSTER_PROFILES, CONFIG_MAPS, CRDS, NAMESPACES
from clusterset.client import ClusterClient, NotFound
from clusterset.runtime import (
    ClusterProfileProvider,
    Controller,
    KubeconfigProvider,
    Manager,
    ObjectKey,
    Request,
    StaticProvider,
    Watch,
)
from clusterset.runtime.providers import client_for_context, read_kubeconfig
from clusterset.testing import ServerThread
from tests.runtime.util import MINE, client_of, cm, eventually


def recorder() -> tuple[Controller, set[tuple[str, Any]]]:
    seen: set[tuple[str, Any]] = set()

    async def reconcile(req: Request) -> None:
        seen.add((req.cluster.name, req.key))

    return Controller("record", reconcile, [Watch(CONFIG_MAPS, namespace="default", label_selector=MINE)]), seen


async def test_kubeconfig_provider_engages_added_contexts_and_disengages_removed_ones(
        server: ServerThread, tmp_path: Path) -> None:
    a, b = server.add_cluster(controllers=False), server.add_cluster(controllers=False)
    for info in (a, b):
        async with client_of(info) as c:
            await c.create(CONFIG_MAPS, cm(f"in-{info.name}"))
    path = tmp_path / "kubeconfig"
    server.server.write_kubeconfig(path, names=[a.name])
    controller, seen = recorder()
    provider = KubeconfigProvider(path, poll_interval=0.1)
    manager = Manager(provider)
    manager.add(controller)
    async with manager:
        await eventually(lambda: set(manager.clusters) == {a.name}, message="the first context")
        await eventually(lambda: (a.name, ObjectKey("default", f"in-{a.name}")) in seen)
        first = manager.cluster(a.name)

        server.server.write_kubeconfig(path, names=[a.name, b.name])  # atomic rewrite, as the fleet does
        await eventually(lambda: set(manager.clusters) == {a.name, b.name}, message="the added context")
        await eventually(lambda: (b.name, ObjectKey("default", f"in-{b.name}")) in seen)
        assert manager.cluster(a.name) is first  # an unchanged context is left alone

        informers = first.informers()
        assert informers and all(i.running for i in informers)
        server.server.write_kubeconfig(path, names=[b.name])
        await eventually(lambda: set(manager.clusters) == {b.name}, message="the removed context")
        assert not any(i.running for i in informers)  # its watches were cancelled
        assert first.client._session is None  # and its client closed
        # keys for a disengaged cluster are not reconciled
        seen.clear()
        controller.enqueue(a.name, "ghost")
        controller.enqueue(b.name, "alive")
        await eventually(lambda: (b.name, "alive") in seen)
        assert (a.name, "ghost") not in seen

        path.unlink()  # no file: no clusters
        await eventually(lambda: not manager.clusters, message="every cluster disengaged")


def test_kubeconfig_contexts_become_clients_inline_or_through_the_loader(tmp_path: Path) -> None:
    ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode()
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "inline",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1/", "certificate-authority-data": ca}}],
        "users": [{"name": "token", "user": {"token": "secret"}},
                  {"name": "plugin", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                                        "command": "/bin/true", "interactiveMode": "Never"}}}],
        "contexts": [{"name": "inline", "context": {"cluster": "c", "user": "token", "namespace": "apps"}},
                     {"name": "exec", "context": {"cluster": "c", "user": "plugin"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))

    async def build() -> tuple[ClusterClient, ClusterClient]:
        parsed = read_kubeconfig(path)
        return (await client_for_context(path, parsed, "inline"), await client_for_context(path, parsed, "exec"))

    inline, exec_ = asyncio.run(build())
    assert (inline.config.server, inline.config.token, inline.config.namespace) == (
        "https://127.0.0.1:1", "secret", "apps")
    assert inline.config.ca_data == b"-----BEGIN CERTIFICATE-----\n"
    assert exec_.config.exec is not None and exec_.config.exec.command == "/bin/true"


async def install_profiles_crd(hub: ClusterClient) -> None:
    await hub.create(CRDS, crds.load("multicluster.x-k8s.io_clusterprofiles.yaml"))

    async def served() -> bool:
        try:
            await hub.list(CLUSTER_PROFILES, namespace="default")
        except NotFound:
            return False
        return True

    await eventually(served, message="the ClusterProfile CRD to be served")


async def set_health(hub: ClusterClient, name: str, healthy: bool, server: str = "") -> None:
    profile = await hub.get(CLUSTER_PROFILES, name, namespace="fleet")
    profile["status"] = {
        "conditions": [{"type": "ControlPlaneHealthy", "status": "True" if healthy else "False",
                        "reason": "Healthz" if healthy else "Unreachable", "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        "accessProviders": [{"name": "test", "cluster": {"server": server or "https://unused"}}],
    }
    await hub.update(CLUSTER_PROFILES, profile, subresource="status")


async def test_cluster_profile_provider_follows_health_and_deletion(server: ServerThread) -> None:
    hub_info = server.add_cluster(controllers=False)
    members = {name: server.add_cluster(controllers=False) for name in ("m1", "m2")}
    for info in members.values():
        async with client_of(info) as c:
            await c.create(CONFIG_MAPS, cm("hello"))
    hub = client_of(hub_info)
    await install_profiles_crd(hub)
    await hub.create(NAMESPACES, {"metadata": {"name": "fleet"}})
    built: list[str] = []
    failures = {"m2": 2}  # m2's access fails twice: retried with backoff

    def client_for(profile: dict[str, Any], provider_file: str | None) -> ClusterClient:
        name = profile["metadata"]["name"]
        built.append(name)
        if failures.get(name):
            failures[name] -= 1
            raise RuntimeError("no matching cluster accessor")
        return client_of(members[name])

    controller, seen = recorder()
    provider = ClusterProfileProvider(hub, namespace="fleet", client_for=client_for)
    manager = Manager([StaticProvider({"hub": hub}), provider])
    manager.add(controller)
    async with manager:
        for name in members:
            await hub.create(CLUSTER_PROFILES, {"metadata": {"name": name, "namespace": "fleet"},
                                                "spec": {"displayName": name, "clusterManager": {"name": "test"}}})
        await eventually(lambda: set(manager.clusters) == {"hub"})  # no status yet: not healthy
        await set_health(hub, "m1", True)
        await set_health(hub, "m2", True)
        await eventually(lambda: set(manager.clusters) == {"hub", "m1", "m2"}, message="healthy profiles engaged")
        assert built.count("m2") == 3
        await eventually(lambda: {("m1", ObjectKey("default", "hello")), ("m2", ObjectKey("default", "hello"))}
                         <= seen, message="member objects reconciled")

        m1 = manager.cluster("m1")
        await set_health(hub, "m1", True)  # a status write that changes nothing about access: same client
        await set_health(hub, "m1", False)
        await eventually(lambda: "m1" not in manager.clusters, message="unhealthy profile disengaged")
        assert m1.client._session is None
        await set_health(hub, "m1", True)
        await eventually(lambda: "m1" in manager.clusters, message="healthy again")
        count = built.count("m1")
        await set_health(hub, "m1", True, server="https://moved")  # new access data: a new client
        await eventually(lambda: built.count("m1") == count + 1, message="re-engaged with new access")
        await hub.delete(CLUSTER_PROFILES, "m2", namespace="fleet")
        await eventually(lambda: set(manager.clusters) == {"hub", "m1"}, message="deleted profile disengaged")
    await hub.close()


PLUGIN = '''
import json, os, sys
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
name = info["spec"]["cluster"]["config"]["clusterName"]
with open(os.path.join(os.environ["TOKEN_DIR"], name)) as f:
    token = f.read().strip()
print(json.dumps({"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": {"token": token}}))
'''


async def test_cluster_profile_provider_reaches_members_through_an_exec_access_provider(
        server: ServerThread, tmp_path: Path) -> None:
    hub_info = server.add_cluster(controllers=False)
    member = server.add_cluster(controllers=False)
    async with client_of(member) as c:
        await c.create(CONFIG_MAPS, cm("over-exec"))
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    (tokens / member.name).write_text(member.token)
    plugin = tmp_path / "plugin.py"
    plugin.write_text(PLUGIN)
    provider_file = tmp_path / "providers.json"
    provider_file.write_text(json.dumps({"providers": [{"name": "test-tokens", "execConfig": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable, "args": [str(plugin)],
        "env": [{"name": "TOKEN_DIR", "value": str(tokens)}], "provideClusterInfo": True}}]}))
    hub = client_of(hub_info)
    await install_profiles_crd(hub)
    await hub.create(NAMESPACES, {"metadata": {"name": "fleet"}})
    await hub.create(CLUSTER_PROFILES, {"metadata": {"name": member.name, "namespace": "fleet"},
                                        "spec": {"displayName": member.name, "clusterManager": {"name": "test"}}})
    profile = await hub.get(CLUSTER_PROFILES, member.name, namespace="fleet")
    ca = base64.b64encode(Path(member.ca_file).read_bytes()).decode()
    profile["status"] = {
        "conditions": [{"type": "ControlPlaneHealthy", "status": "True", "reason": "Healthz", "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        "accessProviders": [{"name": "test-tokens", "cluster": {
            "server": member.server, "certificate-authority-data": ca,
            "extensions": [{"name": "client.authentication.k8s.io/exec", "extension": {"clusterName": member.name}}],
        }}],
    }
    await hub.update(CLUSTER_PROFILES, profile, subresource="status")

    controller, seen = recorder()
    manager = Manager(ClusterProfileProvider(hub, namespace="fleet", provider_file=str(provider_file)))
    manager.add(controller)
    async with manager:
        await eventually(lambda: (member.name, ObjectKey("default", "over-exec")) in seen, timeout=20,
                         message="a member object read through the exec-authenticated client")
        assert manager.cluster(member.name).client.config.exec is not None
    await hub.close()


def test_cluster_profile_provider_names_clusters_apart_across_namespaces() -> None:
    profile = {"metadata": {"name": "m1", "namespace": "fleet-a"}}
    assert ClusterProfileProvider(None, namespace="fleet-a").cluster_name(profile) == "m1"  # type: ignore[arg-type]
    assert ClusterProfileProvider(None).cluster_name(profile) == "fleet-a/m1"  # type: ignore[arg-type]
