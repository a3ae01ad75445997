"""Authentication: a bearer token → the user a logical cluster's request runs as.

Two kinds of token, as kube-apiserver with a static token file and ServiceAccount tokens:

- each logical cluster's admin token (in the kubeconfig) → `clusterset-admin` in `system:masters`
  (every request allowed without consulting RBAC, so the admin path costs one dict lookup);
- ServiceAccount JWTs from TokenRequest (`tokens.py`) → `system:serviceaccount:<ns>:<name>` in
  `system:serviceaccounts`, `system:serviceaccounts:<ns>`, `system:authenticated`, valid while the
  token has not expired (60 s leeway, as go-jose), names this cluster and one of the API audiences,
  and its ServiceAccount (and bound Pod or Secret) still exists with the uid in the token (and was not
  deleted, its deletionTimestamp set, longer ago than the leeway).

Anonymous requests are not authenticated (401), except the health endpoints, which are public.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from clusterset.apiserver.auth.authz import go_quote_list
from clusterset.apiserver.auth.tokens import (
    API_AUDIENCES,
    CLUSTER_CLAIM,
    PODS,
    SECRETS,
    SERVICE_ACCOUNTS,
    TokenIssuer,
    service_account_username,
)
from clusterset.apiserver.auth.users import (
    ADMIN,
    AUTHENTICATED,
    SERVICE_ACCOUNTS_GROUP,
    UserInfo,
)
from clusterset.apiserver.registry.cluster import Cluster

LEEWAY = 60  # seconds, go-jose's DefaultLeeway used by kube-apiserver's token validation


@dataclass
class TokenResult:
    user: UserInfo | None
    error: str = ""
    audiences: list[str] = field(default_factory=list)


class Authenticator:
    """Maps bearer tokens to users; holds no state of its own beyond the server's maps."""

    def __init__(self, clusters: dict[str, Cluster], by_token: dict[str, Cluster], issuer: TokenIssuer) -> None:
        self._clusters = clusters
        self._by_token = by_token
        self.issuer = issuer

    def authenticate(self, token: str | None, cluster_name: str) -> tuple[Cluster, UserInfo] | None:
        """The cluster and user of a request to `/clusters/<cluster_name>`, or None (401)."""
        if not token:
            return None
        cluster = self._by_token.get(token)
        if cluster is not None:  # the admin fast path
            return (cluster, ADMIN) if cluster.name == cluster_name else None
        if token.count(".") != 2:
            return None
        cluster = self._clusters.get(cluster_name)
        if cluster is None:
            return None
        user = self.service_account_token(token, cluster).user
        return (cluster, user) if user is not None else None

    def cluster_of(self, token: str | None) -> str | None:
        """The cluster a token was issued for (its admin token, or a ServiceAccount token's cluster claim), without
        checking more than its signature: `authenticate` checks the rest."""
        if not token:
            return None
        cluster = self._by_token.get(token)
        if cluster is not None:
            return cluster.name
        claims = self.issuer.verify(token) if token.count(".") == 2 else None
        name = claims.get(CLUSTER_CLAIM) if claims is not None else None
        return name if isinstance(name, str) else None

    def token_review(self, token: str, cluster: Cluster, audiences: Iterable[str] | None = None) -> TokenResult:
        """What TokenReview says about a token in this cluster (admin tokens included)."""
        if self._by_token.get(token) is cluster:
            wanted = list(audiences or [])
            if wanted and not set(wanted) & set(API_AUDIENCES):
                return TokenResult(None, "token audiences are invalid for the target audiences")
            return TokenResult(ADMIN, audiences=wanted or list(API_AUDIENCES))
        return self.service_account_token(token, cluster, audiences)

    def service_account_token(self, token: str, cluster: Cluster, audiences: Iterable[str] | None = None
                              ) -> TokenResult:
        claims = self.issuer.verify(token)
        if claims is None or claims.get(CLUSTER_CLAIM) != cluster.name:
            return TokenResult(None, "invalid bearer token")
        wanted = list(audiences or API_AUDIENCES)
        aud = claims.get("aud")
        token_auds = [aud] if isinstance(aud, str) else [str(a) for a in aud or []]
        matched = [a for a in wanted if a in token_auds]
        if not matched:
            return TokenResult(None, f"token audiences {go_quote_list(token_auds)} is invalid for the target "
                                     f"audiences {go_quote_list(wanted)}")
        now = self.issuer.clock()
        try:
            if now > int(claims["exp"]) + LEEWAY:
                return TokenResult(None, "service account token has expired")
            if now < int(claims.get("nbf", 0)) - LEEWAY:
                return TokenResult(None, "service account token is not valid yet")
            if now < int(claims.get("iat", 0)) - LEEWAY:
                return TokenResult(None, "service account token issued in the future")
            private = claims["kubernetes.io"]
            namespace = str(private["namespace"])
            sa_ref = private["serviceaccount"]
            sa_name, sa_uid = str(sa_ref["name"]), str(sa_ref["uid"])
        except (KeyError, TypeError, ValueError):
            return TokenResult(None, "invalid bearer token")
        # objects deleted (deletionTimestamp) longer ago than the leeway invalidate the token; a pod in its
        # grace period keeps its API access, as upstream's validator
        cutoff = now - LEEWAY
        store = cluster.store
        entry = store.get(SERVICE_ACCOUNTS, namespace, sa_name)
        if entry is None:
            return TokenResult(None, f'serviceaccounts "{sa_name}" not found')
        meta = entry.obj["metadata"]
        if meta.get("uid") != sa_uid:
            return TokenResult(None, f"service account UID ({meta.get('uid')}) does not match claim ({sa_uid})")
        if _deleted_before(meta, cutoff):
            return TokenResult(None, f"service account {namespace}/{sa_name} has been deleted")
        extra: dict[str, list[str]] = {}
        for kind, resource in (("secret", SECRETS), ("pod", PODS)):
            ref = private.get(kind)
            if isinstance(ref, dict):
                name, uid = str(ref.get("name", "")), str(ref.get("uid", ""))
                problem = _check_bound(store.get(resource, namespace, name), kind, uid, cutoff)
                if problem:
                    return TokenResult(None, problem)
                if kind == "pod":
                    extra["authentication.kubernetes.io/pod-name"] = [name]
                    extra["authentication.kubernetes.io/pod-uid"] = [uid]
        node = private.get("node")
        if isinstance(node, dict):
            extra["authentication.kubernetes.io/node-name"] = [str(node.get("name", ""))]
            extra["authentication.kubernetes.io/node-uid"] = [str(node.get("uid", ""))]
        if claims.get("jti"):
            extra["authentication.kubernetes.io/credential-id"] = [f"JTI={claims['jti']}"]
        user = UserInfo(
            service_account_username(namespace, sa_name),
            sa_uid,
            (SERVICE_ACCOUNTS_GROUP, f"{SERVICE_ACCOUNTS_GROUP}:{namespace}", AUTHENTICATED),
            dict(sorted(extra.items())),
        )
        return TokenResult(user, audiences=matched)


def _check_bound(entry: Any, kind: str, uid: str, cutoff: float) -> str:
    """Why a token bound to this pod or secret is no longer valid ("" if it is), worded as upstream."""
    if entry is None:
        return "service account token has been invalidated"
    meta = entry.obj["metadata"]
    if meta.get("uid") != uid:
        return f"{kind} UID ({meta.get('uid')}) does not match service account {kind} ref claim ({uid})"
    if _deleted_before(meta, cutoff):
        return "service account token has been invalidated"
    return ""


def _deleted_before(meta: dict[str, Any], cutoff: float) -> bool:
    stamp = meta.get("deletionTimestamp")
    if not stamp:
        return False
    try:
        when = datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return True
    return when < cutoff
