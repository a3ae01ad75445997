"""ServiceAccount tokens: the signing key, JWT signing and verification, and TokenRequest.

Tokens are what kube-apiserver issues for `POST .../serviceaccounts/<sa>/token` (`kubectl create
token`): ES256 JWTs (RS256 with a key made before) with `iss`, `sub` = `system:serviceaccount:<ns>:<sa>`,
`aud`, `exp`, `iat`, `nbf`, `jti` and the private `kubernetes.io` claim (`namespace`,
`serviceaccount{name,uid}`, and the bound `pod`/`secret`/`node`). One more private claim,
`clusterset.io/cluster`, binds a token to the logical cluster that minted it (each logical cluster is
its own API server; they share the key).

The key is `<state-dir>/pki/sa.key` (the temporary PKI directory of an in-memory server), made on
first use, so tokens survive restarts and a server that never mints one never pays for the key. A new
key is ECDSA P-256 (ES256, which kube-apiserver signs with when given such a key): signing takes a
tenth of RSA-2048's time, and an embedded fleet signs a token for every member it joins. An RSA key
made by an earlier version is kept, and its tokens stay RS256, so that tokens survive an upgrade.
Checking a token against the objects it names (the ServiceAccount and its uid, the bound object,
expiry) is the authenticator's job (`authn.py`); this module only proves the token is ours.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from clusterset.api.times import rfc3339
from clusterset.apiserver.meta import errors
from clusterset.apiserver.meta.errors import field_invalid
from clusterset.apiserver.storage.store import ClusterStore, Obj

log = logging.getLogger(__name__)

ISSUER = "https://kubernetes.default.svc.cluster.local"
# what kube-apiserver accepts by default (--api-audiences defaults to the issuer)
API_AUDIENCES = (ISSUER,)
CLUSTER_CLAIM = "clusterset.io/cluster"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600  # upstream's MinTokenAgeSec
MAX_EXPIRATION = 1 << 32
_CACHE_SIZE = 4096

SERVICE_ACCOUNTS = "/serviceaccounts"
PODS, SECRETS, NODES = "/pods", "/secrets", "/nodes"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def rfc3339_seconds(seconds: float) -> str:
    return rfc3339(datetime.fromtimestamp(int(seconds), UTC))


def service_account_username(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
_ES256_HALF = 32  # bytes of each of r and s in an ES256 signature (JWS: their concatenation, not DER)


class TokenIssuer:
    """Signs and verifies the tokens of every logical cluster of one server.

    `clock` (seconds since the epoch) is what "now" means for minting and expiry; tests move it.
    """

    def __init__(self, key_path: Path | None) -> None:
        self.key_path = key_path
        self.clock: Callable[[], float] = time.time
        self._key: SigningKey | None = None
        self._kid = ""
        self._alg = ""
        self._header = ""
        self._verified: dict[str, dict[str, Any]] = {}  # token → claims whose signature checked out

    # ---------------------------------------------------------------- the key
    def _load(self) -> SigningKey:
        if self._key is not None:
            return self._key
        key: SigningKey | None = None
        path = self.key_path
        if path is not None and path.exists():
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if isinstance(loaded, rsa.RSAPrivateKey) or (
                    isinstance(loaded, ec.EllipticCurvePrivateKey) and isinstance(loaded.curve, ec.SECP256R1)):
                key = loaded
            else:  # pragma: no cover - someone replaced the file
                log.warning("%s is neither an RSA nor a P-256 key; making a new one", path)
        if key is None:
            key = ec.generate_private_key(ec.SECP256R1())
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.unlink(missing_ok=True)
                # created 0600: the key is never readable by others, not even between write and chmod
                with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                    out.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
                tmp.replace(path)
        self._key = key
        self._alg = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        der = key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        self._kid = _b64(hashlib.sha256(der).digest())  # upstream's key id: sha256 of the PKIX public key
        self._header = _b64(orjson.dumps({"alg": self._alg, "kid": self._kid}))
        return key

    @property
    def key_id(self) -> str:
        self._load()
        return self._kid

    # ---------------------------------------------------------------- JWTs
    def sign(self, claims: dict[str, Any]) -> str:
        key = self._load()
        payload = orjson.dumps(claims)
        signing_input = f"{self._header}.{_b64(payload)}"
        if isinstance(key, rsa.RSAPrivateKey):
            signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        else:
            r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(_ES256_HALF, "big") + s.to_bytes(_ES256_HALF, "big")
        token = f"{signing_input}.{_b64(signature)}"
        self._remember(token, orjson.loads(payload))  # its first use needs no verification: this server signed it
        return token

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this server signed, else None. Time and objects are not checked here."""
        claims = self._verified.get(token)
        if claims is not None:
            return claims
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = orjson.loads(_unb64(parts[0]))
            key = self._load()
            if not isinstance(header, dict) or header.get("alg") != self._alg:
                return None
            if header.get("kid", self._kid) != self._kid:
                return None
            signature, signed = _unb64(parts[2]), f"{parts[0]}.{parts[1]}".encode()
            if isinstance(key, rsa.RSAPrivateKey):
                key.public_key().verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            elif len(signature) != 2 * _ES256_HALF:
                return None
            else:
                der = encode_dss_signature(int.from_bytes(signature[:_ES256_HALF], "big"),
                                           int.from_bytes(signature[_ES256_HALF:], "big"))
                key.public_key().verify(der, signed, ec.ECDSA(hashes.SHA256()))
            claims = orjson.loads(_unb64(parts[1]))
        except (ValueError, InvalidSignature, orjson.JSONDecodeError):
            return None
        if not isinstance(claims, dict):
            return None
        self._remember(token, claims)
        return claims

    def _remember(self, token: str, claims: dict[str, Any]) -> None:
        if len(self._verified) >= _CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = claims

    def mint(
        self,
        cluster: str,
        service_account: Obj,
        *,
        expiration_seconds: int = DEFAULT_EXPIRATION,
        audiences: list[str] | None = None,
        bound: tuple[str, Obj] | None = None,
        node: Obj | None = None,
        now: float | None = None,
    ) -> tuple[str, int]:
        """A token for `service_account` (its stored object) and its expiry (seconds since the epoch).

        Any expiry is accepted here (tests mint short-lived tokens); TokenRequest enforces the minimum.
        `bound` is ("Pod" | "Secret", object); `node` the bound pod's node.
        """
        issued = int(self.clock() if now is None else now)
        expires = issued + int(expiration_seconds)
        meta = service_account["metadata"]
        private: dict[str, Any] = {
            "namespace": meta["namespace"],
            "serviceaccount": {"name": meta["name"], "uid": meta["uid"]},
        }
        if bound is not None:
            kind, obj = bound
            private[kind.lower()] = {"name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"]}
        if node is not None:
            private["node"] = {"name": node["metadata"]["name"], "uid": node["metadata"]["uid"]}
        claims = {
            "aud": list(audiences) if audiences else list(API_AUDIENCES),
            "exp": expires,
            "iat": issued,
            "iss": ISSUER,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": private,
            "nbf": issued,
            "sub": service_account_username(meta["namespace"], meta["name"]),
            CLUSTER_CLAIM: cluster,
        }
        return self.sign(claims), expires


# -------------------------------------------------------------------- TokenRequest
def token_request(
    issuer: TokenIssuer, cluster: str, store: ClusterStore, namespace: str, name: str, body: Any
) -> dict[str, Any]:
    """`POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token`, as kube-apiserver's TokenREST."""
    if not isinstance(body, dict):
        raise errors.bad_request("the object provided is unrecognized (must be of type TokenRequest)")
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if kind not in (None, "TokenRequest") or api_version not in (None, "authentication.k8s.io/v1"):
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version "
            "(authentication.k8s.io/v1)" if api_version != "authentication.k8s.io/v1"
            else f"the kind in the data ({kind}) does not match the expected kind (TokenRequest)"
        )
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    if not isinstance(meta, dict) or not isinstance(spec, dict):
        raise errors.bad_request("TokenRequest metadata and spec must be objects")
    if meta.get("name") and meta["name"] != name:
        raise errors.invalid("TokenRequest", "authentication.k8s.io", name, [
            field_invalid("metadata.name", meta["name"], "must match the service account name if specified")])
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise errors.invalid("TokenRequest", "authentication.k8s.io", name, [
            field_invalid("metadata.namespace", meta["namespace"],
                          "must match the service account namespace if specified")])
    sa = store.get(SERVICE_ACCOUNTS, namespace, name)
    if sa is None:
        raise errors.not_found("serviceaccounts", "", name)
    expiration = spec.get("expirationSeconds")
    if expiration is None:
        expiration = DEFAULT_EXPIRATION
    if not isinstance(expiration, int) or isinstance(expiration, bool):
        raise errors.bad_request("TokenRequest in version \"v1\" cannot be handled as a TokenRequest: "
                                 "spec.expirationSeconds must be an integer")
    problems = []
    if expiration < MIN_EXPIRATION:
        problems.append(field_invalid("spec.expirationSeconds", expiration,
                                      "may not specify a duration less than 10 minutes"))
    if expiration > MAX_EXPIRATION:
        problems.append(field_invalid("spec.expirationSeconds", expiration,
                                      "may not specify a duration larger than 2^32 seconds"))
    if problems:
        raise errors.invalid("TokenRequest", "authentication.k8s.io", "", problems)
    audiences = [str(a) for a in spec.get("audiences") or []] or list(API_AUDIENCES)
    bound, node = _bound_object(store, namespace, name, spec.get("boundObjectRef"))
    now = issuer.clock()
    token, expires = issuer.mint(cluster, sa.obj, expiration_seconds=expiration, audiences=audiences,
                                 bound=bound, node=node, now=now)
    out_spec: dict[str, Any] = {"audiences": audiences, "expirationSeconds": expiration}
    if spec.get("boundObjectRef"):
        out_spec["boundObjectRef"] = spec["boundObjectRef"]
    return {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": rfc3339_seconds(now)},
        "spec": out_spec,
        "status": {"token": token, "expirationTimestamp": rfc3339_seconds(expires)},
    }


def _bound_object(store: ClusterStore, namespace: str, sa_name: str, ref: Any
                  ) -> tuple[tuple[str, Obj] | None, Obj | None]:
    if not ref:
        return None, None
    if not isinstance(ref, dict):
        raise errors.bad_request("spec.boundObjectRef must be an object")
    kind, api_version = str(ref.get("kind") or ""), str(ref.get("apiVersion") or "")
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    name = str(ref.get("name") or "")
    if group == "" and kind == "Pod":
        entry = store.get(PODS, namespace, name)
        if entry is None:
            raise errors.not_found("pods", "", name)
        pod_sa = (entry.obj.get("spec") or {}).get("serviceAccountName") or "default"
        if pod_sa != sa_name:
            raise errors.bad_request(
                f'cannot bind token for serviceaccount "{sa_name}" to pod running with different serviceaccount name.')
        node_name = (entry.obj.get("spec") or {}).get("nodeName")
        node = store.get(NODES, "", node_name) if node_name else None
        bound: tuple[str, Obj] = ("Pod", entry.obj)
    elif group == "" and kind == "Secret":
        entry = store.get(SECRETS, namespace, name)
        if entry is None:
            raise errors.not_found("secrets", "", name)
        node = None
        bound = ("Secret", entry.obj)
    elif group == "" and kind == "Node":  # ServiceAccountTokenNodeBinding is alpha (off) in 1.30
        raise errors.bad_request('cannot bind token to a Node object as the "ServiceAccountTokenNodeBinding" '
                                 "feature-gate is disabled")
    else:
        version = api_version.rpartition("/")[2]
        raise errors.bad_request(f"cannot bind token to object of type {group}/{version}, Kind={kind}")
    uid = ref.get("uid")
    if uid and uid != entry.obj["metadata"]["uid"]:
        raise errors.StatusError(
            409, "Conflict",
            f'Operation cannot be fulfilled on {errors.qualified(kind, group)} "{name}": the UID in the bound '
            f"object reference ({uid}) does not match the UID in record. The object might have been deleted "
            "and then recreated",
            {"name": name, "group": group, "kind": kind},
        )
    return bound, node.obj if node is not None else None
