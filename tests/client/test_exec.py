"""Exec credential plugins run as real processes: KUBERNETES_EXEC_INFO, caching, expiry, 401, failures."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from clusterset.api.resources import NAMESPACES
from clusterset.client import ClientConfig, ClusterClient, CredentialError, ExecConfig
from clusterset.client.exec_credentials import ExecCredentialRunner
from clusterset.testing import ClusterInfo
from tests.client.plugin import plugin_env, runs, write_plugin

V1 = "client.authentication.k8s.io/v1"


def exec_client(cluster: ClusterInfo, command: str, env: list[dict[str, str]], api_version: str = V1,
                config: Any = None, provide: bool = True) -> ClusterClient:
    return ClusterClient.from_config(ClientConfig(
        server=cluster.server, ca_file=cluster.ca_file, name=cluster.name,
        exec=ExecConfig(command=command, api_version=api_version, env=env, provide_cluster_info=provide,
                        config=config),
    ))


async def _names(c: ClusterClient) -> set[str]:
    return {n["metadata"]["name"] for n in (await c.list(NAMESPACES))["items"]}


async def test_token_from_plugin_and_exec_info(cluster: ClusterInfo, tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path)
    config = {"clusterName": "prod-eu1", "nested": {"n": 1}}
    env = plugin_env(tmp_path, cluster.token, EXPECT_SERVER=cluster.server, EXPECT_CONFIG=json.dumps(config))
    async with exec_client(cluster, str(plugin), env, config=config) as c:
        assert "default" in await _names(c)
        assert "kube-system" in await _names(c)
    assert runs(tmp_path) == 1  # no expiry: cached for the client's life
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["apiVersion"] == V1 and info["kind"] == "ExecCredential"
    assert info["spec"]["interactive"] is False
    cluster_info = info["spec"]["cluster"]
    assert set(cluster_info) == {"server", "certificate-authority-data", "config"}
    assert base64.b64decode(cluster_info["certificate-authority-data"]) == Path(cluster.ca_file).read_bytes()
    assert cluster_info["config"] == config


async def test_no_cluster_info_unless_asked(cluster: ClusterInfo, tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path)
    async with exec_client(cluster, str(plugin), plugin_env(tmp_path, cluster.token), provide=False,
                           config={"ignored": True}) as c:
        await c.list(NAMESPACES)
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["spec"] == {"interactive": False}


async def test_v1beta1(cluster: ClusterInfo, tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path)
    beta = "client.authentication.k8s.io/v1beta1"
    async with exec_client(cluster, str(plugin), plugin_env(tmp_path, cluster.token), api_version=beta) as c:
        await c.list(NAMESPACES)
    assert json.loads((tmp_path / "info.json").read_text())["apiVersion"] == beta


async def test_cached_until_expiry_then_rerun(cluster: ClusterInfo, tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path)
    async with exec_client(cluster, str(plugin), plugin_env(tmp_path, cluster.token, EXPIRES_IN="2")) as c:
        await asyncio.gather(*(c.list(NAMESPACES) for _ in range(5)))  # concurrent callers share one run
        assert runs(tmp_path) == 1
        runner = c.credentials.exec
        assert runner is not None and runner.cached is not None and runner.cached.expires is not None
        deadline = time.monotonic() + 10
        while not runner.cached.expired():
            assert time.monotonic() < deadline, "the credential never expired"
            await asyncio.sleep(0.05)
        assert runs(tmp_path) == 1
        await c.list(NAMESPACES)
        assert runs(tmp_path) == 2


async def test_rerun_on_401(cluster: ClusterInfo, tmp_path: Path) -> None:
    plugin = write_plugin(tmp_path)
    async with exec_client(cluster, str(plugin), plugin_env(tmp_path, cluster.token, PLUGIN_MODE="bad-first")) as c:
        assert "default" in await _names(c)  # first token refused, plugin run again, request retried
        assert runs(tmp_path) == 2
        await c.list(NAMESPACES)
        assert runs(tmp_path) == 2


async def test_401_after_rerun_is_raised(cluster: ClusterInfo, tmp_path: Path) -> None:
    from clusterset.client import Unauthorized

    plugin = write_plugin(tmp_path)
    async with exec_client(cluster, str(plugin), plugin_env(tmp_path, "never-valid")) as c:
        with pytest.raises(Unauthorized):
            await c.list(NAMESPACES)
    assert runs(tmp_path) == 2


async def test_wrong_path_names_the_command(cluster: ClusterInfo, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-plugin"
    c = ClusterClient.from_config(ClientConfig(server=cluster.server, ca_file=cluster.ca_file, exec=ExecConfig(
        command=str(missing), install_hint="install it with: pip install no-such-plugin")))
    async with c:
        with pytest.raises(CredentialError) as exc:
            await c.list(NAMESPACES)
    assert str(missing) in str(exc.value) and "not found" in str(exc.value)
    assert "pip install no-such-plugin" in str(exc.value)


@pytest.mark.parametrize(("mode", "expected"), [
    ("exit", r"exited with status 1: \[testplugin\] cannot reach the token service"),
    ("garbage", "output is not JSON"),
    ("wrong-api", "configured to use API version client.authentication.k8s.io/v1, plugin returned version "
                  "client.authentication.k8s.io/v1beta1"),
])
async def test_plugin_failures_are_clear(cluster: ClusterInfo, tmp_path: Path, mode: str, expected: str) -> None:
    plugin = write_plugin(tmp_path)
    async with exec_client(cluster, str(plugin), plugin_env(tmp_path, cluster.token, PLUGIN_MODE=mode)) as c:
        with pytest.raises(CredentialError, match=expected) as exc:
            await c.list(NAMESPACES)
    assert str(plugin) in str(exc.value)


def test_unsupported_settings_are_refused() -> None:
    config = ClientConfig(server="https://x")
    with pytest.raises(CredentialError, match="v1alpha1"):
        ExecCredentialRunner(ExecConfig(command="p", api_version="client.authentication.k8s.io/v1alpha1"), config)
    with pytest.raises(CredentialError, match="interactiveMode Always"):
        ExecCredentialRunner(ExecConfig(command="p", interactive_mode="Always"), config)


async def test_exec_from_kubeconfig(cluster: ClusterInfo, tmp_path: Path) -> None:
    """A kubeconfig exec stanza with a relative command and the exec extension on the cluster."""
    plugdir = tmp_path / "bin"
    plugdir.mkdir()
    write_plugin(plugdir, "cred")
    kubeconfig = yaml.safe_load(cluster.kubeconfig.read_text())
    kubeconfig["clusters"][0]["cluster"]["extensions"] = [
        {"name": "client.authentication.k8s.io/exec", "extension": {"clusterName": "c1"}}]
    kubeconfig["contexts"][0]["context"]["namespace"] = "team"
    kubeconfig["users"][0]["user"] = {"exec": {
        "apiVersion": V1, "command": "./bin/cred", "provideClusterInfo": True, "interactiveMode": "Never",
        "env": plugin_env(plugdir, cluster.token)}}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    async with await ClusterClient.from_kubeconfig(str(path)) as c:
        assert c.namespace == "team" and c.name == cluster.name
        await c.list(NAMESPACES)
    info = json.loads((plugdir / "info.json").read_text())
    assert info["spec"]["cluster"]["config"] == {"clusterName": "c1"}
    assert info["spec"]["cluster"]["server"] == cluster.server


async def test_kubeconfig_errors(tmp_path: Path, cluster: ClusterInfo, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CredentialError, match="no kubeconfig found"):
        await ClusterClient.from_kubeconfig(str(tmp_path / "missing"))
    with pytest.raises(CredentialError, match="no context 'other'"):
        await ClusterClient.from_kubeconfig(str(cluster.kubeconfig), context="other")
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}:{cluster.kubeconfig}")
    async with await ClusterClient.from_kubeconfig() as c:  # $KUBECONFIG, a list
        assert c.server == cluster.server
        await c.list(NAMESPACES)


async def test_a_cancelled_request_kills_its_plugin(tmp_path: Path) -> None:
    plugin = tmp_path / "slow-plugin"
    pid_file = tmp_path / "pid"
    plugin.write_text(f"#!{sys.executable}\nimport os, time\n"
                      f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n")
    plugin.chmod(0o755)
    runner = ExecCredentialRunner(ExecConfig(command=str(plugin)), ClientConfig(server="https://x"))
    task = asyncio.create_task(runner.get())
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the plugin never started"
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left running for its 60 s
        os.kill(int(pid_file.read_text()), 0)
