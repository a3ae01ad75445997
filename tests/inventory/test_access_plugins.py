"""The credential plugins `clusterset credential-plugin secretreader|embedded`, run as real processes."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from clusterset.api.resources import CLUSTER_ROLE_BINDINGS, NAMESPACES, SECRETS, SERVICE_ACCOUNTS
from clusterset.client import ClientConfig, ClusterClient
from clusterset.runtime.access import client_for
from clusterset.testing import ClusterInfo, ServerThread

V1 = "client.authentication.k8s.io/v1"
PLUGIN = [sys.executable, "-m", "clusterset.cli.main", "credential-plugin"]


def exec_info(server: str, config: dict[str, Any] | None = None, api_version: str = V1) -> str:
    cluster: dict[str, Any] = {"server": server}
    if config is not None:
        cluster["config"] = config
    return json.dumps({"apiVersion": api_version, "kind": "ExecCredential",
                       "spec": {"interactive": False, "cluster": cluster}})


def run_plugin(name: str, info: str | None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "CLUSTERSET_STATE_DIR",
                                                                "KUBERNETES_EXEC_INFO")}
    if info is not None:
        environ["KUBERNETES_EXEC_INFO"] = info
    environ.update(env)
    return subprocess.run([*PLUGIN, name], env=environ, capture_output=True, text=True, timeout=60)


def credential(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("\n") and result.stdout.count("\n") == 1
    out: dict[str, Any] = json.loads(result.stdout)
    assert out["apiVersion"] == V1 and out["kind"] == "ExecCredential"
    status: dict[str, Any] = out["status"]
    return status


def failure(result: subprocess.CompletedProcess[str], plugin: str) -> str:
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"[{plugin}] "), result.stderr
    return result.stderr


async def admin(info: ClusterInfo) -> ClusterClient:
    return ClusterClient.from_config(ClientConfig(server=info.server, ca_file=info.ca_file, token=info.token))


# ---------------------------------------------------------------- secretreader
@pytest.fixture
async def consumer(cluster: ClusterInfo, tmp_path: Path) -> Path:
    """The consumer's kubeconfig (namespace `consumers`) holding a token Secret for `prod-eu1`."""
    async with await admin(cluster) as c:
        await c.create(NAMESPACES, {"metadata": {"name": "consumers"}})
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["contexts"][0]["context"]["namespace"] = "consumers"
    path = tmp_path / "consumer.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


async def store_token(cluster: ClusterInfo, namespace: str, name: str, data: dict[str, str]) -> None:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    async with await admin(cluster) as c:
        await c.create(SECRETS, {"metadata": {"name": name, "namespace": namespace}, "data": encoded})


async def test_secretreader_returns_the_secret_token(cluster: ClusterInfo, server: ServerThread,
                                                     consumer: Path) -> None:
    member = server.add_cluster(controllers=False)
    await store_token(cluster, "consumers", "prod-eu1", {"token": member.token})
    result = run_plugin("secretreader", exec_info(member.server, {"clusterName": "prod-eu1"}),
                        KUBECONFIG=str(consumer))
    assert credential(result) == {"token": member.token}


async def test_secretreader_default_namespace(cluster: ClusterInfo) -> None:
    await store_token(cluster, "default", "c2", {"token": "tok"})
    result = run_plugin("secretreader", exec_info("https://x", {"clusterName": "c2"}),
                        KUBECONFIG=str(cluster.kubeconfig))  # its context names no namespace
    assert credential(result) == {"token": "tok"}


async def test_secretreader_errors(cluster: ClusterInfo, consumer: Path) -> None:
    await store_token(cluster, "consumers", "no-token", {"other": "x"})
    kc = {"KUBECONFIG": str(consumer)}
    cases = [
        (None, "KUBERNETES_EXEC_INFO is empty. set provideClusterInfo: true"),
        ("{not json", "failed to parse KUBERNETES_EXEC_INFO"),
        (exec_info("https://x", {"clusterName": "a"}, api_version="client.authentication.k8s.io/v1beta1"),
         "this plugin speaks client.authentication.k8s.io/v1"),
        (exec_info("", {"clusterName": "a"}), "spec.cluster.server is missing in KUBERNETES_EXEC_INFO"),
        (exec_info("https://x", {}), "config.clusterName is missing"),
        (exec_info("https://x", {"clusterName": "ghost"}),
         'failed to get secret consumers/ghost: secrets "ghost" not found'),
        (exec_info("https://x", {"clusterName": "no-token"}), "secret consumers/no-token missing 'token' key"),
    ]
    for info, message in cases:
        assert message in failure(run_plugin("secretreader", info, **kc), "secretreader")


async def test_secretreader_end_to_end(cluster: ClusterInfo, server: ServerThread, consumer: Path,
                                       tmp_path: Path) -> None:
    """A ClusterProfile, the consumer's provider file naming `clusterset credential-plugin secretreader`, a client."""
    member = server.add_cluster(controllers=False)
    async with await admin(member) as m:
        await m.create(NAMESPACES, {"metadata": {"name": "only-on-the-member"}})
    await store_token(cluster, "consumers", "prod-eu1", {"token": member.token})
    providers = {"providers": [{"name": "secretreader", "execConfig": {
        "apiVersion": V1, "command": sys.executable, "args": ["-m", "clusterset.cli.main", "credential-plugin"],
        "env": [{"name": "KUBECONFIG", "value": str(consumer)}], "provideClusterInfo": True},
        "profileSourcedCLIArgsPolicy": "Append"}]}
    provider_file = tmp_path / "providers.json"
    provider_file.write_text(json.dumps(providers))
    ca = base64.b64encode(Path(member.ca_file).read_bytes()).decode()
    profile = {"metadata": {"name": "prod-eu1", "namespace": "fleet"}, "status": {"accessProviders": [{
        "name": "secretreader", "cluster": {"server": member.server, "certificate-authority-data": ca, "extensions": [
            {"name": "client.authentication.k8s.io/exec", "extension": {"clusterName": "prod-eu1"}},
            {"name": "clusterprofiles.multicluster.x-k8s.io/exec/additional-args", "extension": ["secretreader"]},
        ]}}]}}
    async with client_for(profile, str(provider_file)) as c:
        names = {n["metadata"]["name"] for n in (await c.list(NAMESPACES))["items"]}
    assert "only-on-the-member" in names


# ---------------------------------------------------------------- embedded
def fleet_state(server: ServerThread, tmp_path: Path, *names: str) -> Path:
    """A fleet state directory: `<dir>/kubeconfig` with one admin context per cluster, named after it."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "kubeconfig").write_text(yaml.safe_dump(server.server.kubeconfig(list(names), names[0])))
    return state


async def test_embedded_issues_short_lived_tokens(server: ServerThread, tmp_path: Path) -> None:
    member = server.add_cluster(controllers=False)
    state = fleet_state(server, tmp_path, member.name)
    info = exec_info(member.server, {"clusterName": member.name, "stateDir": str(state), "expirationSeconds": 1200})
    before = datetime.now(UTC)
    status = credential(run_plugin("embedded", info))
    expires = datetime.fromisoformat(status["expirationTimestamp"])
    assert 1100 <= (expires - before).total_seconds() <= 1300
    # the token is the clusterset-access ServiceAccount's, bound to cluster-admin
    async with ClusterClient.from_config(ClientConfig(server=member.server, ca_file=member.ca_file,
                                                      token=status["token"])) as c:
        await c.create(NAMESPACES, {"metadata": {"name": "made-with-the-token"}})
    # idempotent: a second run works and reuses the same account and binding
    again = credential(run_plugin("embedded", exec_info(member.server, {"clusterName": member.name}),
                                  CLUSTERSET_STATE_DIR=str(state)))
    assert again["token"] and again["token"] != status["token"]
    async with await admin(member) as c:
        binding = await c.get(CLUSTER_ROLE_BINDINGS, "clusterset-access")
        assert binding["roleRef"]["name"] == "cluster-admin"
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "clusterset-access",
                                        "namespace": "clusterset-system"}]
        accounts = await c.list(SERVICE_ACCOUNTS, namespace="clusterset-system")
        assert [a["metadata"]["name"] for a in accounts["items"]].count("clusterset-access") == 1


async def test_embedded_end_to_end(server: ServerThread, tmp_path: Path) -> None:
    member = server.add_cluster(controllers=False)
    state = fleet_state(server, tmp_path, member.name)
    providers = {"providers": [{"name": "clusterset-embedded", "execConfig": {
        "apiVersion": V1, "command": sys.executable,
        "args": ["-m", "clusterset.cli.main", "credential-plugin", "embedded"], "provideClusterInfo": True}}]}
    provider_file = tmp_path / "providers.json"
    provider_file.write_text(json.dumps(providers))
    ca = base64.b64encode(Path(member.ca_file).read_bytes()).decode()
    profile = {"metadata": {"name": member.name}, "status": {"accessProviders": [{
        "name": "clusterset-embedded", "cluster": {"server": member.server, "certificate-authority-data": ca,
                                                   "extensions": [{"name": "client.authentication.k8s.io/exec",
                                                                   "extension": {"clusterName": member.name,
                                                                                 "stateDir": str(state)}}]}}]}}
    async with client_for(profile, str(provider_file)) as c:
        names = {n["metadata"]["name"] for n in (await c.list(NAMESPACES))["items"]}
        runner = c.credentials.exec
        assert runner is not None and runner.cached is not None and runner.cached.expires is not None
    assert {"default", "clusterset-system"} <= names


async def test_embedded_errors(server: ServerThread, tmp_path: Path) -> None:
    member = server.add_cluster(controllers=False)
    other = server.add_cluster(controllers=False)
    state = fleet_state(server, tmp_path, member.name, other.name)
    cases = [
        (exec_info(member.server, {"clusterName": member.name}), "the fleet's state directory is unknown"),
        (exec_info(member.server, {"clusterName": "nope", "stateDir": str(state)}), "has no context 'nope'"),
        (exec_info(other.server, {"clusterName": member.name, "stateDir": str(state)}),
         f"is not the server of cluster '{member.name}'"),
        (exec_info(member.server, {"clusterName": member.name, "stateDir": str(state), "expirationSeconds": "1h"}),
         "config.expirationSeconds must be a positive integer"),
        (exec_info(member.server, {"clusterName": member.name, "stateDir": str(tmp_path / "missing")}),
         "no kubeconfig found"),
    ]
    for info, message in cases:
        assert message in failure(run_plugin("embedded", info), "embedded")
