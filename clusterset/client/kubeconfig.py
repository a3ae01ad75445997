"""kubeconfig files → `ClientConfig`.

kubernetes_asyncio does the file work: `KubeConfigMerger` reads and merges the `KUBECONFIG` list
(remembering which file each entry came from) and `FileOrData` resolves `*-data` versus file paths
relative to that file. We pick the context and map the entries ourselves, because its loader runs
exec plugins eagerly, writes certificates to temp files and has no `provideClusterInfo`. It parses with
plain PyYAML, so each file is parsed bounded first (`parse_kubeconfig`): a kubeconfig of a few hundred bytes
must not expand into gigabytes through YAML aliases.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import orjson

from clusterset.api import boundedyaml
from clusterset.client.config import EXEC_EXTENSION, ClientConfig, ExecConfig
from clusterset.client.errors import CredentialError
from clusterset.client.incluster import in_cluster, in_cluster_config

DEFAULT_KUBECONFIG = "~/.kube/config"
MAX_KUBECONFIG_BYTES = 64 * 1024 * 1024  # decoded, as JSON: thousands of clusters fit; an alias bomb does not


def parse_kubeconfig(data: bytes, source: str) -> dict[str, Any]:
    """A kubeconfig's content as a mapping ({} when empty): JSON (what the embedded fleet writes) by orjson,
    anything else as YAML with go-yaml's alias budget and a size bound. Raises ValueError naming `source`."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            parsed = boundedyaml.load(data, max_size=MAX_KUBECONFIG_BYTES)
        except boundedyaml.YAMLError as exc:
            raise ValueError(f"{source}: {exc}") from None
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        raise ValueError(f"{source}: a kubeconfig is a mapping, not {type(parsed).__name__}")
    return parsed


def load_kubeconfig(path: str | None = None, context: str | None = None) -> ClientConfig:
    """The ClientConfig of `context` (default: current-context) in `path` (default: $KUBECONFIG, a
    `:`-separated list, else the pod's own cluster when running in one, else ~/.kube/config).

    That order is controller-runtime's (`GetConfig`): a process in a pod needs no kubeconfig, and one named
    (a path, $KUBECONFIG or a context) always wins over the pod's ServiceAccount."""
    from kubernetes_asyncio.config.config_exception import ConfigException
    from kubernetes_asyncio.config.kube_config import KubeConfigMerger

    if not path and not os.environ.get("KUBECONFIG") and context is None and in_cluster():
        return in_cluster_config()
    paths = path or os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG
    if not any(p and os.path.exists(os.path.expanduser(p)) for p in paths.split(os.pathsep)):
        raise CredentialError(f"no kubeconfig found at {paths}, and not running in a pod")
    try:
        for file in paths.split(os.pathsep):
            if file and os.path.exists(os.path.expanduser(file)):
                parse_kubeconfig(Path(file).expanduser().read_bytes(), file)
        merger = KubeConfigMerger(paths)
    except (OSError, ValueError) as exc:
        raise CredentialError(f"cannot read kubeconfig {paths}: {exc}") from None
    root = merger.config
    if root is None:
        raise CredentialError(f"no kubeconfig found at {paths}")
    try:
        return _from_merged(merger, root, context, paths)
    except ConfigException as exc:
        raise CredentialError(f"kubeconfig {paths}: {exc}") from None


def _from_merged(merger: Any, root: Any, context: str | None, paths: str) -> ClientConfig:
    # kubectl: the first file that sets current-context wins (the merger lets the last one win)
    firsts = [c.get("current-context") for c in merger.config_files.values() if c and c.get("current-context")]
    name = context or (firsts[0] if firsts else None)
    if not name:
        raise CredentialError(f"kubeconfig {paths} has no current-context; name a context")
    ctx = root["contexts"].get_with_name(name, safe=True)
    if ctx is None:
        raise CredentialError(f"kubeconfig {paths} has no context {name!r}")
    ctx_body = ctx["context"]
    cluster_name = ctx_body.safe_get("cluster")
    cluster_entry = root["clusters"].get_with_name(cluster_name, safe=True) if cluster_name else None
    if cluster_entry is None:
        raise CredentialError(f"kubeconfig {paths}: context {name!r} names no known cluster ({cluster_name!r})")
    cluster = cluster_entry["cluster"]
    user_name = ctx_body.safe_get("user")
    user_entry = root["users"].get_with_name(user_name, safe=True) if user_name and "users" in root else None
    user = user_entry["user"] if user_entry is not None else None

    server = cluster.safe_get("server")
    if not server:
        raise CredentialError(f"kubeconfig {paths}: cluster {cluster_name!r} has no server")
    config = ClientConfig(
        server=str(server).rstrip("/"),
        name=name,
        namespace=ctx_body.safe_get("namespace") or "default",
        ca_data=_file_or_data(cluster, "certificate-authority"),
        insecure=bool(cluster.safe_get("insecure-skip-tls-verify")),
        tls_server_name=cluster.safe_get("tls-server-name"),
        proxy=cluster.safe_get("proxy-url"),
        disable_compression=bool(cluster.safe_get("disable-compression")),
    )
    if user is not None:
        _apply_user(config, user, cluster, paths)
    return config


def _apply_user(config: ClientConfig, user: Any, cluster: Any, paths: str) -> None:
    if "auth-provider" in user:
        provider = user["auth-provider"].safe_get("name")
        raise CredentialError(
            f"kubeconfig {paths}: auth-provider {provider!r} is not supported; use an exec credential plugin"
        )
    config.client_cert_data = _file_or_data(user, "client-certificate")
    config.client_key_data = _file_or_data(user, "client-key")
    config.token = user.safe_get("token") or None
    token_file = user.safe_get("tokenFile")
    if token_file and not config.token:
        config.token_file = _resolve(user, str(token_file))
    config.username = user.safe_get("username")
    config.password = user.safe_get("password")
    if "exec" in user:
        config.exec = _exec_config(user["exec"], cluster, user)


def _exec_config(node: Any, cluster: Any, user: Any) -> ExecConfig:
    value = node.value
    command = str(value.get("command") or "")
    if not command:
        raise CredentialError("kubeconfig exec stanza has no command")
    if os.sep in command and not os.path.isabs(command):  # client-go resolves it next to the kubeconfig
        command = _resolve(user, command)
    env = value.get("env") or []
    extension = None
    for ext in cluster.safe_get("extensions") or []:
        if isinstance(ext, dict) and ext.get("name") == EXEC_EXTENSION:
            extension = ext.get("extension")
    return ExecConfig(
        command=command,
        api_version=str(value.get("apiVersion") or ""),
        args=[str(a) for a in value.get("args") or []],
        env=[{"name": str(e["name"]), "value": str(e.get("value", ""))} for e in env],
        provide_cluster_info=bool(value.get("provideClusterInfo")),
        interactive_mode=str(value.get("interactiveMode") or "IfAvailable"),
        install_hint=str(value.get("installHint") or ""),
        config=extension,
    )


def _resolve(node: Any, path: str) -> str:
    base = os.path.dirname(os.path.abspath(node.path)) if node.path else ""
    return os.path.normpath(os.path.join(base, os.path.expanduser(path)))


def _file_or_data(node: Any, key: str) -> bytes | None:
    """`<key>-data` (base64) or the file `<key>` (relative to its kubeconfig), as raw bytes."""
    from kubernetes_asyncio.config.kube_config import FileOrData

    if key not in node and f"{key}-data" not in node:
        return None
    base = os.path.dirname(os.path.abspath(node.path)) if node.path else ""
    try:
        data = FileOrData(node, key, file_base_path=base).as_data()
    except OSError as exc:
        raise CredentialError(f"kubeconfig: cannot read {key}: {exc}") from None
    return base64.standard_b64decode(data) if data else None
