"""Runs client-go exec credential plugins (KEP-541) the way client-go does, without blocking the loop.

Ours rather than kubernetes_asyncio's `ExecProvider`, which (36.1) never sends `spec.cluster`
(`provideClusterInfo`), reports `interactive` from `isatty()`, caches only at load time and does not
re-run on 401. ClusterProfile access providers depend on all four.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from clusterset.client.config import EXEC_API_VERSIONS, ClientConfig, ExecConfig
from clusterset.client.errors import CredentialError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0
_STDERR_TAIL = 2000


@dataclass(frozen=True, eq=False)
class Credential:
    """What a plugin returned: a bearer token and/or a client certificate (PEM), and when it expires."""

    token: str | None = None
    client_cert: bytes | None = None
    client_key: bytes | None = None
    expires: datetime | None = None

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires is not None and (now or datetime.now(UTC)) >= self.expires


def exec_cluster_info(config: ClientConfig, exec_config: ExecConfig) -> dict[str, Any]:
    """`spec.cluster` of KUBERNETES_EXEC_INFO: client-go's `clientauthentication.Cluster`, empty fields omitted."""
    cluster: dict[str, Any] = {"server": config.server}
    if config.tls_server_name:
        cluster["tls-server-name"] = config.tls_server_name
    if config.insecure:
        cluster["insecure-skip-tls-verify"] = True
    ca = config.ca_data
    if ca is None and config.ca_file:
        with open(config.ca_file, "rb") as f:
            ca = f.read()
    if ca:
        cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
    if config.proxy:
        cluster["proxy-url"] = config.proxy
    if config.disable_compression:
        cluster["disable-compression"] = True
    if exec_config.config is not None:
        cluster["config"] = exec_config.config
    return cluster


class ExecCredentialRunner:
    """Runs one plugin lazily, caches its credential until `expirationTimestamp`, re-runs when told the
    credential was refused. Concurrent callers share one run."""

    def __init__(self, exec_config: ExecConfig, cluster: ClientConfig, timeout: float = DEFAULT_TIMEOUT) -> None:
        if exec_config.api_version not in EXEC_API_VERSIONS:
            raise CredentialError(
                f"exec plugin {exec_config.command!r}: apiVersion {exec_config.api_version!r} is not supported "
                f"(use one of {', '.join(EXEC_API_VERSIONS)})"
            )
        if exec_config.interactive_mode == "Always":
            raise CredentialError(
                f"exec plugin {exec_config.command!r}: interactiveMode Always is not possible, "
                "clusterset runs credential plugins non-interactively"
            )
        self.exec_config = exec_config
        self.cluster = cluster
        self.timeout = timeout
        self._cached: Credential | None = None
        self._lock = asyncio.Lock()

    @property
    def cached(self) -> Credential | None:
        return self._cached

    async def get(self) -> Credential:
        """The cached credential, or a fresh one if there is none or it has expired."""
        cached = self._cached
        if cached is not None and not cached.expired():
            return cached
        async with self._lock:
            cached = self._cached
            if cached is not None and not cached.expired():
                return cached
            self._cached = await self.run()
            return self._cached

    def invalidate(self, used: Credential) -> None:
        """Forget `used` (the server answered 401 to it); a newer credential already fetched is kept."""
        if self._cached is used:
            self._cached = None

    async def run(self) -> Credential:
        """Runs the plugin once and parses its ExecCredential."""
        cfg = self.exec_config
        env = dict(os.environ)
        for item in cfg.env:
            env[item["name"]] = item["value"]
        spec: dict[str, Any] = {"interactive": False}
        if cfg.provide_cluster_info:
            spec["cluster"] = exec_cluster_info(self.cluster, cfg)
        env["KUBERNETES_EXEC_INFO"] = orjson.dumps(
            {"apiVersion": cfg.api_version, "kind": "ExecCredential", "spec": spec}
        ).decode()
        try:
            proc = await asyncio.create_subprocess_exec(
                cfg.command, *cfg.args, env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            hint = f"\n{cfg.install_hint}" if cfg.install_hint else ""
            raise CredentialError(f"exec plugin {cfg.command!r}: executable not found{hint}") from None
        except PermissionError:
            raise CredentialError(f"exec plugin {cfg.command!r}: permission denied (is it executable?)") from None
        except OSError as exc:
            raise CredentialError(f"exec plugin {cfg.command!r}: cannot start: {exc}") from None
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(), self.timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise CredentialError(f"exec plugin {cfg.command!r}: no answer within {self.timeout:g}s") from None
        except asyncio.CancelledError:  # the request was cancelled: do not leave the plugin running
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
            raise
        err_text = stderr.decode(errors="replace").strip()
        if proc.returncode != 0:
            detail = f": {err_text[-_STDERR_TAIL:]}" if err_text else ""
            raise CredentialError(f"exec plugin {cfg.command!r}: exited with status {proc.returncode}{detail}")
        if err_text:
            log.info("exec plugin %s: %s", cfg.command, err_text[-_STDERR_TAIL:])
        return parse_exec_credential(cfg, stdout)


def parse_exec_credential(cfg: ExecConfig, stdout: bytes) -> Credential:
    """Checks a plugin's output as client-go does: one ExecCredential of the configured apiVersion with a
    token or a certificate and key."""
    name = repr(cfg.command)
    try:
        out = orjson.loads(stdout)
    except orjson.JSONDecodeError as exc:
        snippet = stdout[:200].decode(errors="replace")
        raise CredentialError(f"exec plugin {name}: output is not JSON ({exc}): {snippet!r}") from None
    if not isinstance(out, dict):
        raise CredentialError(f"exec plugin {name}: output is not an ExecCredential object")
    if out.get("kind") != "ExecCredential":
        raise CredentialError(f"exec plugin {name}: output has kind {out.get('kind')!r}, want ExecCredential")
    if out.get("apiVersion") != cfg.api_version:
        raise CredentialError(
            f"exec plugin {name} is configured to use API version {cfg.api_version}, "
            f"plugin returned version {out.get('apiVersion')}"
        )
    status = out.get("status")
    if not isinstance(status, dict):
        raise CredentialError(f"exec plugin {name}: output has no status")
    token = status.get("token") or None
    cert = status.get("clientCertificateData") or None
    key = status.get("clientKeyData") or None
    if bool(cert) != bool(key):
        raise CredentialError(f"exec plugin {name}: clientCertificateData and clientKeyData must both be set")
    if token is None and cert is None:
        raise CredentialError(f"exec plugin {name}: status has neither token nor clientCertificateData")
    if not all(v is None or isinstance(v, str) for v in (token, cert, key)):
        raise CredentialError(f"exec plugin {name}: token, clientCertificateData and clientKeyData must be strings")
    expires = None
    stamp = status.get("expirationTimestamp")
    if stamp:
        try:
            expires = datetime.fromisoformat(str(stamp))
        except ValueError:
            raise CredentialError(f"exec plugin {name}: bad expirationTimestamp {stamp!r}") from None
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
    return Credential(
        token=token,
        client_cert=cert.encode() if cert else None,
        client_key=key.encode() if key else None,
        expires=expires,
    )
