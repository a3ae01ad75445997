"""Credential plugins for ClusterProfile access providers, run as `clusterset credential-plugin NAME`.

They speak the consumer side of KEP-541 as cluster-inventory-api's `pkg/credentialplugin.Run` does:
read `KUBERNETES_EXEC_INFO` (v1, with `spec.cluster.server`), print one v1 ExecCredential and a
newline; on error print `[name] message` to stderr and exit 1.

- `secretreader` (the reference plugin): the token is `data.token` of the Secret
  `<namespace>/<config.clusterName>` on the consumer's own cluster (its kubeconfig; the namespace of
  the current context, else `default`).
- `embedded`: short-lived tokens for a member of an embedded fleet, minted by TokenRequest for the
  ServiceAccount `clusterset-system/clusterset-access` (bound to `cluster-admin`, created on first
  use) with the fleet's admin kubeconfig `<stateDir>/kubeconfig`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson

from clusterset.api.resources import CLUSTER_ROLE_BINDINGS, NAMESPACES, SECRETS, SERVICE_ACCOUNTS, Resource
from clusterset.client import AlreadyExists, ApiError, ClusterClient, ConnectionFailed, CredentialError

EXEC_V1 = "client.authentication.k8s.io/v1"
STATE_DIR_ENV = "CLUSTERSET_STATE_DIR"
ACCESS_NAMESPACE = "clusterset-system"
ACCESS_SERVICE_ACCOUNT = "clusterset-access"
ACCESS_BINDING = "clusterset-access"
DEFAULT_EXPIRATION = 3600
FIELD_MANAGER = "clusterset-credential-plugin"


class PluginError(Exception):
    """Printed as `[plugin] message`; the plugin exits 1."""


ExecInfo = dict[str, Any]
Status = dict[str, Any]


def read_exec_info(environ: dict[str, str] | None = None) -> ExecInfo:
    """KUBERNETES_EXEC_INFO, checked as `credentialplugin.Run` does."""
    raw = (environ if environ is not None else os.environ).get("KUBERNETES_EXEC_INFO", "")
    if not raw.strip():
        raise PluginError("KUBERNETES_EXEC_INFO is empty. set provideClusterInfo: true")
    try:
        info = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise PluginError(f"failed to parse KUBERNETES_EXEC_INFO: {exc}") from None
    if not isinstance(info, dict):
        raise PluginError("failed to parse KUBERNETES_EXEC_INFO: not an object")
    if info.get("apiVersion") != EXEC_V1:
        raise PluginError(f"KUBERNETES_EXEC_INFO apiVersion is {info.get('apiVersion')!r}; this plugin speaks "
                          f"{EXEC_V1} (set apiVersion: {EXEC_V1} in the provider's execConfig)")
    cluster = (info.get("spec") or {}).get("cluster")
    server = cluster.get("server") if isinstance(cluster, dict) else None
    if not isinstance(server, str) or not server.strip() or server == "null":
        raise PluginError("spec.cluster.server is missing in KUBERNETES_EXEC_INFO")
    return info


def plugin_config(info: ExecInfo) -> dict[str, Any]:
    """`spec.cluster.config`: the profile's `client.authentication.k8s.io/exec` extension."""
    config = info["spec"]["cluster"].get("config")
    return config if isinstance(config, dict) else {}


def exec_credential(status: Status) -> bytes:
    return orjson.dumps({"apiVersion": EXEC_V1, "kind": "ExecCredential", "status": status}) + b"\n"


def _cluster_name(info: ExecInfo) -> str:
    name = plugin_config(info).get("clusterName")
    if not isinstance(name, str) or not name:
        raise PluginError("config.clusterName is missing: the profile's client.authentication.k8s.io/exec extension "
                          "must name the cluster")
    return name


# ---------------------------------------------------------------------- secretreader
SECRET_TOKEN_KEY = "token"


async def secretreader(info: ExecInfo) -> Status:
    """The token stored for `config.clusterName` in a Secret on the consumer's own cluster."""
    name = _cluster_name(info)
    async with await ClusterClient.from_kubeconfig() as consumer:
        namespace = consumer.namespace or "default"
        try:
            secret = await consumer.get(SECRETS, name, namespace=namespace)
        except ApiError as exc:
            raise PluginError(f"failed to get secret {namespace}/{name}: {exc.message}") from None
    value = (secret.get("data") or {}).get(SECRET_TOKEN_KEY)
    if not value:
        raise PluginError(f"secret {namespace}/{name} missing {SECRET_TOKEN_KEY!r} key")
    try:
        token = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, ValueError):
        raise PluginError(f"secret {namespace}/{name}: data.{SECRET_TOKEN_KEY} is not base64 text") from None
    return {"token": token}


# ---------------------------------------------------------------------- embedded
async def embedded(info: ExecInfo) -> Status:
    """A TokenRequest token for the member `config.clusterName` of the fleet in `config.stateDir`."""
    config = plugin_config(info)
    name = _cluster_name(info)
    state_dir = config.get("stateDir") or os.environ.get(STATE_DIR_ENV)
    if not state_dir:
        raise PluginError(f"the fleet's state directory is unknown: set config.stateDir or {STATE_DIR_ENV}")
    seconds = config.get("expirationSeconds", DEFAULT_EXPIRATION)
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 1:
        raise PluginError(f"config.expirationSeconds must be a positive integer, not {seconds!r}")
    kubeconfig = Path(state_dir, "kubeconfig")
    async with await ClusterClient.from_kubeconfig(str(kubeconfig), context=name) as admin:
        wanted = str(info["spec"]["cluster"]["server"]).rstrip("/")
        if admin.server != wanted:  # never hand a token meant for one cluster to another server
            raise PluginError(f"spec.cluster.server {wanted} is not the server of cluster {name!r} in {kubeconfig} "
                              f"({admin.server})")
        await ensure_access_account(admin)
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": seconds}}
        path = SERVICE_ACCOUNTS.path(ACCESS_NAMESPACE, ACCESS_SERVICE_ACCOUNT, "token")
        try:
            out = await admin.request("POST", path, body=body)
        except ApiError as exc:
            raise PluginError(f"TokenRequest for {ACCESS_NAMESPACE}/{ACCESS_SERVICE_ACCOUNT} on {name}: "
                              f"{exc.status} {exc.message}") from None
    status = out.get("status") if isinstance(out, dict) else None
    if not isinstance(status, dict) or not status.get("token"):
        raise PluginError(f"TokenRequest on {name} returned no token")
    result: Status = {"token": status["token"]}
    if status.get("expirationTimestamp"):
        result["expirationTimestamp"] = status["expirationTimestamp"]
    return result


async def ensure_access_account(admin: ClusterClient) -> None:
    """The namespace, ServiceAccount and cluster-admin binding the embedded plugin's tokens belong to."""
    objects: list[tuple[Resource, dict[str, Any]]] = [
        (NAMESPACES, {"metadata": {"name": ACCESS_NAMESPACE}}),
        (SERVICE_ACCOUNTS, {"metadata": {"name": ACCESS_SERVICE_ACCOUNT, "namespace": ACCESS_NAMESPACE}}),
        (CLUSTER_ROLE_BINDINGS, {
            "metadata": {"name": ACCESS_BINDING},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": ACCESS_SERVICE_ACCOUNT, "namespace": ACCESS_NAMESPACE}],
        }),
    ]
    for res, obj in objects:
        try:
            await admin.create(res, obj, field_manager=FIELD_MANAGER)
        except AlreadyExists:
            pass
        except ApiError as exc:
            raise PluginError(f"cannot create {res.kind} {obj['metadata']['name']}: {exc.message}") from None


# ---------------------------------------------------------------------- entry point
PLUGINS: dict[str, Callable[[ExecInfo], Coroutine[Any, Any, Status]]] = {
    "secretreader": secretreader,
    "embedded": embedded,
}


def main(name: str) -> int:
    """Runs plugin `name`: ExecCredential on stdout, or `[name] message` on stderr and status 1."""
    plugin = PLUGINS.get(name)
    try:
        if plugin is None:
            raise PluginError(f"unknown plugin; choose one of {', '.join(PLUGINS)}")
        status = asyncio.run(plugin(read_exec_info()))
    except (PluginError, CredentialError, ConnectionFailed) as exc:
        print(f"[{name}] {exc}", file=sys.stderr)
        return 1
    except ApiError as exc:
        print(f"[{name}] {exc.status} {exc.message}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(exec_credential(status))
    sys.stdout.flush()
    return 0
