"""ClusterProfile access providers (KEP-4322/5339): a profile plus the consumer's provider file → a client.

A port of cluster-inventory-api's `pkg/access` (`BuildConfigFromCP`): the profile says which provider
types a cluster accepts and where it is; the consumer's provider file maps a type to its own exec
plugin, and the file's order decides. Deliberate differences: the exec config is deep-copied (Go
appends into the shared slice), profile-only env vars follow the consumer's in a stable order (Go's
is random), and the provider file is validated on load (Go ignores unknown keys and bad policies
until a profile uses them).

The provider file defaults to `clusterprofile-provider-file.json` in the working directory (Go's
`-clusterprofile-provider-file` default); the environment variable `CLUSTERPROFILE_PROVIDER_FILE`
overrides the default, an explicit path overrides both.
"""

from __future__ import annotations

import base64
import binascii
import copy
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import orjson

from clusterset.client import ClientConfig, ClusterClient, CredentialError, ExecConfig
from clusterset.client.config import EXEC_API_VERSIONS, EXEC_EXTENSION

log = logging.getLogger(__name__)

DEFAULT_PROVIDER_FILE = "clusterprofile-provider-file.json"
PROVIDER_FILE_ENV = "CLUSTERPROFILE_PROVIDER_FILE"
ADDITIONAL_ARGS_EXTENSION = "clusterprofiles.multicluster.x-k8s.io/exec/additional-args"
ADDITIONAL_ENVS_EXTENSION = "clusterprofiles.multicluster.x-k8s.io/exec/additional-envs"

CLI_ARGS_POLICIES = ("Append", "Ignore", "")
ENV_VARS_POLICIES = ("AppendIfNotExists", "Replace", "Ignore", "")
_PROVIDER_KEYS = {"name", "execConfig", "profileSourcedCLIArgsPolicy", "profileSourcedEnvVarsPolicy"}
_EXEC_KEYS = {"command", "args", "env", "apiVersion", "installHint", "provideClusterInfo", "interactiveMode"}


class AccessError(CredentialError):
    """A provider file or ClusterProfile that cannot give a client; the message names the field."""


@dataclass
class AccessProvider:
    """One entry of the consumer's provider file."""

    name: str
    exec_config: ExecConfig | None
    cli_args_policy: str = ""
    env_vars_policy: str = ""


@dataclass
class ProviderFile:
    providers: list[AccessProvider] = field(default_factory=list)
    path: str = ""


def provider_file_path(path: str | None = None) -> str:
    """An explicit path, else $CLUSTERPROFILE_PROVIDER_FILE, else `clusterprofile-provider-file.json`."""
    return path or os.environ.get(PROVIDER_FILE_ENV) or DEFAULT_PROVIDER_FILE


def load_provider_file(path: str) -> ProviderFile:
    """Reads and validates a provider file `{"providers": [...]}`."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise AccessError(f"cannot read access provider file {path}: {exc.strerror or exc}") from None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise AccessError(f"access provider file {path}: not JSON: {exc}") from None
    return parse_provider_file(doc, path)


def parse_provider_file(doc: Any, path: str = "<provider file>") -> ProviderFile:
    if not isinstance(doc, dict) or not isinstance(doc.get("providers"), list):
        raise AccessError(f"{path}: providers: must be a list")
    unknown = set(doc) - {"providers"}
    if unknown:
        raise AccessError(f"{path}: unknown field {sorted(unknown)[0]!r} (only 'providers')")
    return ProviderFile([_provider(item, f"{path}: providers[{i}]") for i, item in enumerate(doc["providers"])], path)


def _provider(item: Any, where: str) -> AccessProvider:
    if not isinstance(item, dict):
        raise AccessError(f"{where}: must be an object")
    unknown = set(item) - _PROVIDER_KEYS
    if unknown:
        raise AccessError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise AccessError(f"{where}.name: required, a non-empty string")
    where = f"{where} ({name})"
    args_policy = item.get("profileSourcedCLIArgsPolicy", "")
    if args_policy not in CLI_ARGS_POLICIES:
        raise AccessError(f"{where}.profileSourcedCLIArgsPolicy: unsupported value {args_policy!r} "
                          f"(Append, Ignore or empty)")
    env_policy = item.get("profileSourcedEnvVarsPolicy", "")
    if env_policy not in ENV_VARS_POLICIES:
        raise AccessError(f"{where}.profileSourcedEnvVarsPolicy: unsupported value {env_policy!r} "
                          f"(AppendIfNotExists, Replace, Ignore or empty)")
    exec_raw = item.get("execConfig")
    exec_config = None if exec_raw is None else _exec_config(exec_raw, f"{where}.execConfig")
    return AccessProvider(name, exec_config, args_policy, env_policy)


def _exec_config(raw: Any, where: str) -> ExecConfig:
    if not isinstance(raw, dict):
        raise AccessError(f"{where}: must be an object")
    unknown = set(raw) - _EXEC_KEYS
    if unknown:
        raise AccessError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    command = raw.get("command")
    if not isinstance(command, str) or not command:
        raise AccessError(f"{where}.command: required, a non-empty string")
    api_version = raw.get("apiVersion")
    if api_version not in EXEC_API_VERSIONS:
        raise AccessError(f"{where}.apiVersion: {api_version!r} is not one of {', '.join(EXEC_API_VERSIONS)}")
    args = raw.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise AccessError(f"{where}.args: must be a list of strings")
    env = raw.get("env") or []
    if not isinstance(env, list) or not all(
        isinstance(e, dict) and isinstance(e.get("name"), str) and e["name"] and isinstance(e.get("value", ""), str)
        and set(e) <= {"name", "value"} for e in env
    ):
        raise AccessError(f"{where}.env: must be a list of {{name, value}} with string values")
    provide = raw.get("provideClusterInfo", False)
    if not isinstance(provide, bool):
        raise AccessError(f"{where}.provideClusterInfo: must be true or false")
    hint = raw.get("installHint", "")
    if not isinstance(hint, str):
        raise AccessError(f"{where}.installHint: must be a string")
    mode = raw.get("interactiveMode", "Never")
    if mode not in ("Never", "IfAvailable", "Always", ""):
        raise AccessError(f"{where}.interactiveMode: {mode!r} is not Never, IfAvailable or Always")
    return ExecConfig(
        command=command, api_version=api_version, args=list(args),
        env=[{"name": e["name"], "value": e.get("value", "")} for e in env],
        provide_cluster_info=provide, install_hint=hint, interactive_mode=mode or "Never",
    )


def build_config(cluster_profile: dict[str, Any], providers: ProviderFile | list[AccessProvider]) -> ClientConfig:
    """`BuildConfigFromCP`: the ClientConfig to reach the profile's cluster through the consumer's plugin."""
    entries = providers.providers if isinstance(providers, ProviderFile) else providers
    name = str((cluster_profile.get("metadata") or {}).get("name") or "")
    accessor = _cluster_accessor(cluster_profile, entries, name)
    if accessor is None:
        raise AccessError(f"no matching cluster accessor found for cluster profile {name!r}")
    provider_name = str(accessor.get("name"))
    chosen = next((p for p in entries if p.name == provider_name), None)
    if chosen is None or chosen.exec_config is None:
        raise AccessError(f"no exec config found for provider {provider_name!r}")
    exec_config = copy.deepcopy(chosen.exec_config)
    cluster = accessor.get("cluster")
    where = f"cluster profile {name!r}: access provider {provider_name!r}: cluster"
    if not isinstance(cluster, dict):
        raise AccessError(f"{where}: missing")
    extensions = cluster.get("extensions") or []
    if not isinstance(extensions, list):
        raise AccessError(f"{where}.extensions: must be a list")
    exec_extension: Any = None
    for ext in extensions:
        if not isinstance(ext, dict):
            continue
        if ext.get("name") == ADDITIONAL_ARGS_EXTENSION:
            _add_args(exec_config, ext.get("extension"), chosen.cli_args_policy)
        elif ext.get("name") == ADDITIONAL_ENVS_EXTENSION:
            _add_envs(exec_config, ext.get("extension"), chosen.env_vars_policy)
        elif ext.get("name") == EXEC_EXTENSION:
            exec_extension = copy.deepcopy(ext.get("extension"))  # the last one wins, as in a Go map
    server = cluster.get("server")
    if not isinstance(server, str) or not server:
        raise AccessError(f"{where}.server: required")
    exec_config.interactive_mode = "Never"
    exec_config.config = exec_extension
    return ClientConfig(
        server=server.rstrip("/"),
        name=name,
        ca_data=_ca_data(cluster.get("certificate-authority-data"), where),
        proxy=cluster.get("proxy-url") or None,
        exec=exec_config,
    )


def client_for(cluster_profile: dict[str, Any], provider_file: str | None = None) -> ClusterClient:
    """A client for the profile's cluster; `provider_file` defaults as `provider_file_path` says."""
    providers = load_provider_file(provider_file_path(provider_file))
    return ClusterClient.from_config(build_config(cluster_profile, providers))


def _cluster_accessor(profile: dict[str, Any], providers: list[AccessProvider], name: str) -> dict[str, Any] | None:
    status = profile.get("status") or {}
    by_name: dict[str, dict[str, Any]] = {}
    for entry in status.get("credentialProviders") or []:
        if isinstance(entry, dict):
            by_name[str(entry.get("name"))] = entry
            log.warning("ClusterProfile %r uses deprecated field CredentialProviders %r; please migrate to "
                        "AccessProviders", name, entry.get("name"))
    for entry in status.get("accessProviders") or []:
        if isinstance(entry, dict):
            by_name[str(entry.get("name"))] = entry
    for provider in providers:
        if provider.name in by_name:
            return by_name[provider.name]
    return None


def _add_args(exec_config: ExecConfig, data: Any, policy: str) -> None:
    if policy in ("", "Ignore"):
        return
    if policy != "Append":
        raise AccessError(f"unsupported ProfileSourcedCLIArgsPolicy: {policy!r}")
    if data is None:
        return
    if not isinstance(data, list) or not all(_is_scalar(a) for a in data):
        raise AccessError(f"failed to unmarshal additional CLI args extension: want a list of strings, got {data!r}")
    exec_config.args = [*exec_config.args, *(_scalar_text(a) for a in data)]


def _add_envs(exec_config: ExecConfig, data: Any, policy: str) -> None:
    if policy in ("", "Ignore"):
        return
    if policy not in ("AppendIfNotExists", "Replace"):
        raise AccessError(f"unsupported ProfileSourcedEnvVarsPolicy: {policy!r}")
    if data is None:
        data = {}
    if not isinstance(data, dict) or not all(_is_scalar(v) for v in data.values()):
        raise AccessError(f"failed to unmarshal additional env vars extension: want a map of strings, got {data!r}")
    values = {str(k): _scalar_text(v) for k, v in data.items()}
    profile_names = list(values)
    for item in exec_config.env:  # Go's loops, value for value
        if policy == "AppendIfNotExists" or item["name"] not in values:
            values[item["name"]] = item["value"]
    # order (unspecified in Go, a map): the consumer's names first, then the profile's new ones
    order = list(dict.fromkeys([*(item["name"] for item in exec_config.env), *profile_names]))
    exec_config.env = [{"name": k, "value": values[k]} for k in order]


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _scalar_text(value: Any) -> str:
    """A YAML scalar as Go's yaml.v3 decodes it into a string: `true`, `1`, not `True`."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _ca_data(value: Any, where: str) -> bytes | None:
    if not value:
        return None
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise AccessError(f"{where}.certificate-authority-data: not base64") from None
