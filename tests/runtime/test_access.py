"""ClusterProfile access providers: every rule of BuildConfigFromCP, the provider file, and a real plugin end to end."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from clusterset.api.resources import NAMESPACES
from clusterset.client import ExecConfig
from clusterset.runtime.access import (
    ADDITIONAL_ARGS_EXTENSION,
    ADDITIONAL_ENVS_EXTENSION,
    AccessError,
    AccessProvider,
    build_config,
    client_for,
    load_provider_file,
    parse_provider_file,
    provider_file_path,
)
from clusterset.testing import ClusterInfo
from tests.client.plugin import plugin_env, runs, write_plugin

V1 = "client.authentication.k8s.io/v1"
CA = b"-----BEGIN CERTIFICATE-----\nnot really\n-----END CERTIFICATE-----\n"


def profile(access: list[dict[str, Any]] | None = None, credential: list[dict[str, Any]] | None = None
            ) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if access is not None:
        status["accessProviders"] = access
    if credential is not None:
        status["credentialProviders"] = credential
    return {"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ClusterProfile",
            "metadata": {"name": "prod-eu1", "namespace": "fleet"}, "status": status}


def entry(name: str, server: Any = "https://10.0.0.5:6443", **cluster: Any) -> dict[str, Any]:
    return {"name": name, "cluster": {"server": server, **cluster}}


def ext(name: str, value: Any) -> dict[str, Any]:
    return {"name": name, "extension": value}


def provider(name: str, args: list[str] | None = None, env: dict[str, str] | None = None, cli: str = "",
             envs: str = "", command: str = "/plugins/p", exec_config: bool = True) -> AccessProvider:
    config = ExecConfig(command=command, api_version=V1, args=list(args or []),
                        env=[{"name": k, "value": v} for k, v in (env or {}).items()], provide_cluster_info=True,
                        interactive_mode="IfAvailable") if exec_config else None
    return AccessProvider(name, config, cli, envs)


def env_of(config: Any) -> dict[str, str]:
    return {e["name"]: e["value"] for e in config.exec.env}


# ---------------------------------------------------------------- choosing the provider
def test_access_providers_and_the_exec_provider() -> None:
    cp = profile([entry("secretreader", **{"certificate-authority-data": base64.b64encode(CA).decode(),
                                          "extensions": [ext("client.authentication.k8s.io/exec",
                                                             {"clusterName": "prod-eu1"})]})])
    config = build_config(cp, [provider("secretreader", args=["--v"])])
    assert config.server == "https://10.0.0.5:6443" and config.ca_data == CA and config.name == "prod-eu1"
    assert config.token is None and config.exec is not None
    assert config.exec.command == "/plugins/p" and config.exec.api_version == V1 and config.exec.args == ["--v"]
    assert config.exec.interactive_mode == "Never"  # forced, whatever the file said
    assert config.exec.provide_cluster_info is True
    assert config.exec.config == {"clusterName": "prod-eu1"}


def test_provide_cluster_info_comes_from_the_file() -> None:
    p = provider("a")
    assert p.exec_config is not None
    p.exec_config.provide_cluster_info = False
    config = build_config(profile([entry("a")]), [p])
    assert config.exec is not None and config.exec.provide_cluster_info is False and config.exec.config is None


def test_provider_file_order_decides() -> None:
    cp = profile([entry("a", server="https://a"), entry("b", server="https://b")])
    assert build_config(cp, [provider("b"), provider("a")]).server == "https://b"
    assert build_config(cp, [provider("x"), provider("a"), provider("b")]).server == "https://a"


def test_deprecated_credential_providers(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="clusterset.runtime.access"):
        config = build_config(profile(credential=[entry("old", server="https://old")]), [provider("old")])
    assert config.server == "https://old"
    assert "uses deprecated field CredentialProviders 'old'; please migrate to AccessProviders" in caplog.text
    # the same name in both lists: accessProviders wins
    both = profile([entry("p", server="https://new")], credential=[entry("p", server="https://old")])
    assert build_config(both, [provider("p")]).server == "https://new"


def test_no_matching_accessor() -> None:
    with pytest.raises(AccessError, match="no matching cluster accessor found for cluster profile 'prod-eu1'"):
        build_config(profile([entry("a")]), [provider("b")])
    with pytest.raises(AccessError, match="no matching cluster accessor"):
        build_config(profile(), [provider("b")])


def test_match_without_exec_config() -> None:
    with pytest.raises(AccessError, match="no exec config found for provider 'a'"):
        build_config(profile([entry("a")]), [provider("a", exec_config=False)])


# ---------------------------------------------------------------- extensions and policies
def test_additional_args_append_and_ignore() -> None:
    cp = profile([entry("a", extensions=[ext(ADDITIONAL_ARGS_EXTENSION, ["--region", "eu", 3, True])])])
    appended = build_config(cp, [provider("a", args=["get-token"], cli="Append")])
    assert appended.exec is not None and appended.exec.args == ["get-token", "--region", "eu", "3", "true"]
    for policy in ("Ignore", ""):
        ignored = build_config(cp, [provider("a", args=["get-token"], cli=policy)])
        assert ignored.exec is not None and ignored.exec.args == ["get-token"]
    bad = profile([entry("a", extensions=[ext(ADDITIONAL_ARGS_EXTENSION, {"not": "a list"})])])
    with pytest.raises(AccessError, match="failed to unmarshal additional CLI args extension"):
        build_config(bad, [provider("a", cli="Append")])


def test_exec_config_is_deep_copied() -> None:
    cp = profile([entry("a", extensions=[ext(ADDITIONAL_ARGS_EXTENSION, ["--x"]),
                                         ext(ADDITIONAL_ENVS_EXTENSION, {"NEW": "1"})])])
    shared = [provider("a", args=["base"], env={"KEEP": "k"}, cli="Append", envs="Replace")]
    first = build_config(cp, shared)
    second = build_config(cp, shared)
    assert first.exec is not None and second.exec is not None
    assert first.exec.args == second.exec.args == ["base", "--x"]
    assert shared[0].exec_config is not None and shared[0].exec_config.args == ["base"]
    assert shared[0].exec_config.env == [{"name": "KEEP", "value": "k"}]
    assert first.exec is not shared[0].exec_config


def test_additional_envs_policies() -> None:
    cp = profile([entry("a", extensions=[ext(ADDITIONAL_ENVS_EXTENSION, {"SHARED": "profile", "NEW": "n", "N": 1})])])
    consumer = {"SHARED": "consumer", "OWN": "o"}
    keep = build_config(cp, [provider("a", env=consumer, envs="AppendIfNotExists")])
    assert env_of(keep) == {"SHARED": "consumer", "OWN": "o", "NEW": "n", "N": "1"}  # the consumer wins a clash
    replace = build_config(cp, [provider("a", env=consumer, envs="Replace")])
    assert env_of(replace) == {"SHARED": "profile", "OWN": "o", "NEW": "n", "N": "1"}  # the profile wins
    assert replace.exec is not None and [e["name"] for e in replace.exec.env] == ["SHARED", "OWN", "NEW", "N"]
    for policy in ("Ignore", ""):
        assert env_of(build_config(cp, [provider("a", env=consumer, envs=policy)])) == consumer
    bad = profile([entry("a", extensions=[ext(ADDITIONAL_ENVS_EXTENSION, ["A=1"])])])
    with pytest.raises(AccessError, match="failed to unmarshal additional env vars extension"):
        build_config(bad, [provider("a", envs="Replace")])


def test_unsupported_policy_is_an_error_when_used() -> None:
    cp = profile([entry("a", extensions=[ext(ADDITIONAL_ARGS_EXTENSION, ["--x"]),
                                         ext(ADDITIONAL_ENVS_EXTENSION, {"A": "1"})])])
    with pytest.raises(AccessError, match="unsupported ProfileSourcedCLIArgsPolicy: 'Prepend'"):
        build_config(cp, [provider("a", cli="Prepend")])
    with pytest.raises(AccessError, match="unsupported ProfileSourcedEnvVarsPolicy: 'Merge'"):
        build_config(cp, [provider("a", envs="Merge")])


def test_only_server_ca_and_proxy_are_used() -> None:
    cp = profile([entry("a", **{"certificate-authority-data": base64.b64encode(CA).decode(),
                                "proxy-url": "http://proxy:3128", "tls-server-name": "api.internal",
                                "insecure-skip-tls-verify": True, "disable-compression": True,
                                "certificate-authority": "/etc/ca.crt"})])
    config = build_config(cp, [provider("a")])
    assert (config.server, config.ca_data, config.proxy) == ("https://10.0.0.5:6443", CA, "http://proxy:3128")
    assert config.tls_server_name is None and config.insecure is False and config.disable_compression is False
    assert config.ca_file is None


def test_bad_ca_data_and_missing_server() -> None:
    with pytest.raises(AccessError, match="certificate-authority-data: not base64"):
        build_config(profile([entry("a", **{"certificate-authority-data": "%%%"})]), [provider("a")])
    with pytest.raises(AccessError, match=r"cluster\.server: required"):
        build_config(profile([{"name": "a", "cluster": {}}]), [provider("a")])


# ---------------------------------------------------------------- the provider file
GOOD = {"providers": [{"name": "secretreader",
                       "execConfig": {"apiVersion": V1, "command": "/plugins/secretreader", "provideClusterInfo": True,
                                      "args": ["--x"], "env": [{"name": "A", "value": "1"}],
                                      "installHint": "install it"},
                       "profileSourcedCLIArgsPolicy": "Append", "profileSourcedEnvVarsPolicy": "AppendIfNotExists"},
                      {"name": "bare"}]}


def test_load_provider_file(tmp_path: Path) -> None:
    path = tmp_path / "providers.json"
    path.write_text(json.dumps(GOOD))
    loaded = load_provider_file(str(path))
    first, bare = loaded.providers
    assert first.name == "secretreader" and first.cli_args_policy == "Append"
    assert first.env_vars_policy == "AppendIfNotExists"
    assert first.exec_config == ExecConfig(command="/plugins/secretreader", api_version=V1, args=["--x"],
                                           env=[{"name": "A", "value": "1"}], provide_cluster_info=True,
                                           install_hint="install it", interactive_mode="Never")
    assert bare.exec_config is None and bare.cli_args_policy == "" and bare.env_vars_policy == ""


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.pop("providers"), "providers: must be a list"),
    (lambda d: d["providers"][0].update(profileSourcedCLIArgsPolicy="Prepend"),
     r"providers\[0\] \(secretreader\)\.profileSourcedCLIArgsPolicy: unsupported value 'Prepend'"),
    (lambda d: d["providers"][0].update(profileSourcedEnvVarsPolicy="Merge"),
     r"providers\[0\] \(secretreader\)\.profileSourcedEnvVarsPolicy: unsupported value 'Merge'"),
    (lambda d: d["providers"][1].pop("name"), r"providers\[1\]\.name: required"),
    (lambda d: d["providers"][0].update(execconfig={}), "unknown field 'execconfig'"),
    (lambda d: d["providers"][0]["execConfig"].update(apiVersion="client.authentication.k8s.io/v1alpha1"),
     r"execConfig\.apiVersion: 'client.authentication.k8s.io/v1alpha1' is not one of"),
    (lambda d: d["providers"][0]["execConfig"].pop("command"), r"execConfig\.command: required"),
    (lambda d: d["providers"][0]["execConfig"].update(args="--x"), r"execConfig\.args: must be a list of strings"),
    (lambda d: d["providers"][0]["execConfig"].update(env={"A": "1"}), r"execConfig\.env: must be a list"),
    (lambda d: d["providers"][0]["execConfig"].update(provideClusterInfo="yes"), r"provideClusterInfo: must be"),
])
def test_provider_file_errors_name_the_field(change: Any, message: str) -> None:
    doc = json.loads(json.dumps(GOOD))
    change(doc)
    with pytest.raises(AccessError, match=message):
        parse_provider_file(doc, "f.json")


def test_provider_file_unreadable(tmp_path: Path) -> None:
    with pytest.raises(AccessError, match="cannot read access provider file"):
        load_provider_file(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{providers: []")
    with pytest.raises(AccessError, match="not JSON"):
        load_provider_file(str(tmp_path / "bad.json"))


def test_provider_file_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLUSTERPROFILE_PROVIDER_FILE", raising=False)
    assert provider_file_path() == "clusterprofile-provider-file.json"
    monkeypatch.setenv("CLUSTERPROFILE_PROVIDER_FILE", "/etc/providers.json")
    assert provider_file_path() == "/etc/providers.json"
    assert provider_file_path("/explicit.json") == "/explicit.json"


# ---------------------------------------------------------------- end to end
async def test_client_for_lists_namespaces_through_a_real_plugin(
        cluster: ClusterInfo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = write_plugin(tmp_path, "secretreader")
    exec_ext = {"clusterName": "prod-eu1"}
    cp = profile([entry("other", server="https://unreachable"),
                  entry("testplugin", server=cluster.server, **{
                      "certificate-authority-data": base64.b64encode(Path(cluster.ca_file).read_bytes()).decode(),
                      "extensions": [ext("client.authentication.k8s.io/exec", exec_ext),
                                     ext(ADDITIONAL_ENVS_EXTENSION, {"EXPECT_CONFIG": json.dumps(exec_ext),
                                                                     "PLUGIN_TOKEN": "from-the-profile"})]})])
    providers = {"providers": [{
        "name": "testplugin",
        "execConfig": {"apiVersion": V1, "command": str(plugin), "provideClusterInfo": True,
                       "env": plugin_env(tmp_path, cluster.token, EXPECT_SERVER=cluster.server)},
        "profileSourcedEnvVarsPolicy": "AppendIfNotExists"}]}
    path = tmp_path / "clusterprofile-provider-file.json"
    path.write_text(json.dumps(providers))
    monkeypatch.setenv("CLUSTERPROFILE_PROVIDER_FILE", str(path))
    async with client_for(cp) as client:
        names = {n["metadata"]["name"] for n in (await client.list(NAMESPACES))["items"]}
    assert {"default", "kube-system"} <= names
    assert runs(tmp_path) == 1
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["spec"]["interactive"] is False
    assert info["spec"]["cluster"]["config"] == exec_ext
    assert info["spec"]["cluster"]["server"] == cluster.server
