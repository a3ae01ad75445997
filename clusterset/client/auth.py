"""Where a request's credential comes from: a static token, token file, basic auth, client certificate
(in the TLS context) or an exec plugin; and which refusals are worth a fresh credential."""

from __future__ import annotations

import base64
import ssl
import tempfile
import time
from pathlib import Path

from clusterset.client.config import ClientConfig
from clusterset.client.errors import CredentialError
from clusterset.client.exec_credentials import Credential, ExecCredentialRunner

TOKEN_FILE_TTL = 60.0  # client-go re-reads token files once a minute


class Credentials:
    """The credential for the next request of one client."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.exec = ExecCredentialRunner(config.exec, config) if config.exec else None
        self._static = Credential(token=config.token) if config.token else Credential()
        self._file_read_at: float | None = None  # not 0: the monotonic clock starts near 0 on a node that just booted

    async def get(self) -> Credential:
        if self.exec is not None:
            return await self.exec.get()
        if self.config.token_file and (self._file_read_at is None
                                       or time.monotonic() - self._file_read_at > TOKEN_FILE_TTL):
            try:
                token = Path(self.config.token_file).read_text().strip()
            except OSError as exc:
                raise CredentialError(f"cannot read token file {self.config.token_file}: {exc}") from None
            self._static = Credential(token=token)
            self._file_read_at = time.monotonic()
        return self._static

    def refused(self, used: Credential) -> bool:
        """The server answered 401 to `used`: true if a fresh credential may help (exec plugins, token files)."""
        if self.exec is not None:
            self.exec.invalidate(used)
            return True
        if self.config.token_file:
            stale = self._file_read_at is not None
            self._file_read_at = None
            return stale
        return False

    def headers(self, cred: Credential) -> dict[str, str]:
        if cred.token:
            return {"Authorization": f"Bearer {cred.token}"}
        if self.config.username is not None and self.config.password is not None and not cred.client_cert:
            basic = base64.b64encode(f"{self.config.username}:{self.config.password}".encode()).decode()
            return {"Authorization": f"Basic {basic}"}
        return {}


def ssl_context(config: ClientConfig, cert: bytes | None = None, key: bytes | None = None) -> ssl.SSLContext | None:
    """The TLS context for `config` (None for plain http); `cert`/`key` (PEM) override the configured client cert."""
    if not config.server.startswith("https:"):
        return None
    if config.insecure:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif config.ca_data or config.ca_file:
        ctx = ssl.create_default_context(
            cafile=config.ca_file if not config.ca_data else None,
            cadata=config.ca_data.decode() if config.ca_data else None,
        )
    else:
        ctx = ssl.create_default_context()
    if cert is None and key is None:
        cert, key = _read(config.client_cert_data, config.client_cert_file), _read(
            config.client_key_data, config.client_key_file)
    if cert and key:
        _load_chain(ctx, cert, key)
    elif cert or key:
        raise CredentialError(f"cluster {config.name or config.server}: client certificate and key must both be set")
    return ctx


def _read(data: bytes | None, path: str | None) -> bytes | None:
    if data:
        return data
    if path:
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise CredentialError(f"cannot read {path}: {exc}") from None
    return None


def _load_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """`load_cert_chain` reads only files: write them to a private directory just long enough."""
    with tempfile.TemporaryDirectory(prefix="clusterset-tls-") as tmp:
        cert_path, key_path = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
        cert_path.write_bytes(cert)
        key_path.touch(0o600)
        key_path.write_bytes(key)
        try:
            ctx.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as exc:
            raise CredentialError(f"bad client certificate or key: {exc}") from None
