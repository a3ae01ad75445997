"""ServiceAccount tokens: TokenRequest, what the tokens say and when they stop working, over real HTTPS."""

from __future__ import annotations

import base64
import dataclasses
import json
import stat
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from kubernetes import client
from kubernetes.client.rest import ApiException

from clusterset.testing import ClusterInfo, ServerThread
from tests.conftest import Kubectl
from tests.helpers import core, wait_until

ISSUER = "https://kubernetes.default.svc.cluster.local"


# ---------------------------------------------------------------------------- helpers (also used by test_rbac)
def token_for(info: ClusterInfo, sa: str = "default", namespace: str = "default", **spec: Any) -> str:
    """A token from TokenRequest, asked for with the official client."""
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    result = core(info).create_namespaced_service_account_token(sa, namespace, body)
    token: str = result.status.token
    return token


def as_token(info: ClusterInfo, token: str) -> ClusterInfo:
    """The same cluster, reached with another bearer token (`.api_client()` then uses it)."""
    return dataclasses.replace(info, token=token)


def request(info: ClusterInfo, method: str, path: str, body: Any = None, token: str | None = None
            ) -> tuple[int, dict[str, Any]]:
    http = urllib3.PoolManager(ca_certs=info.ca_file)
    headers = {"Authorization": f"Bearer {token if token is not None else info.token}",
               "Content-Type": "application/json"}
    resp = http.request(method, info.server + path, body=None if body is None else json.dumps(body),
                        headers=headers, timeout=30)
    try:
        parsed = json.loads(resp.data) if resp.data else {}
    except ValueError:
        parsed = {"_raw": resp.data.decode(errors="replace")}
    return resp.status, parsed


def whoami(info: ClusterInfo, token: str) -> tuple[int, dict[str, Any]]:
    """SelfSubjectReview as the token's user: (HTTP status, userInfo or the Status body)."""
    status, body = request(info, "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                           {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}, token)
    return status, body.get("status", {}).get("userInfo", body) if status == 201 else body


def jwt(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    def part(text: str) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return decoded

    header, claims, _ = token.split(".")
    return part(header), part(claims)


def assert_unauthorized(status: int, body: dict[str, Any]) -> None:
    assert status == 401, body
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


def sa_kubeconfig(info: ClusterInfo, token: str, path: Path) -> ClusterInfo:
    """A kubeconfig like the cluster's, whose user is the token's."""
    config = yaml.safe_load(info.kubeconfig.read_text())
    config["users"][0]["user"] = {"token": token}
    path.write_text(yaml.safe_dump(config))
    return dataclasses.replace(info, token=token, kubeconfig=path)


@pytest.fixture
def clock(server: ServerThread) -> Iterator[Callable[[float], None]]:
    """Moves the token issuer's clock forward by the given seconds (restored afterwards)."""
    def advance(seconds: float) -> None:
        server.server.set_token_clock(lambda: time.time() + seconds)

    yield advance
    server.server.set_token_clock(None)


# ---------------------------------------------------------------------------- TokenRequest
def test_token_request_returns_an_upstream_shaped_jwt(cluster: ClusterInfo) -> None:
    api = core(cluster)
    sa = api.create_namespaced_service_account("default", {"metadata": {"name": "robot"}})
    before = int(time.time())
    result = api.create_namespaced_service_account_token(
        "robot", "default", {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
    assert result.metadata.name == "robot" and result.metadata.namespace == "default"
    assert result.spec.expiration_seconds == 3600 and result.spec.audiences == [ISSUER]
    header, claims = jwt(result.status.token)
    assert header["alg"] == "ES256" and header["kid"]
    assert len(base64.urlsafe_b64decode(result.status.token.split(".")[2] + "==")) == 64  # JWS: r || s
    assert claims["iss"] == ISSUER
    assert claims["sub"] == "system:serviceaccount:default:robot"
    assert claims["aud"] == [ISSUER]
    assert before <= claims["iat"] <= int(time.time()) and claims["nbf"] == claims["iat"]
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["kubernetes.io"] == {"namespace": "default",
                                       "serviceaccount": {"name": "robot", "uid": sa.metadata.uid}}
    assert claims["jti"]
    assert result.status.expiration_timestamp == datetime.fromtimestamp(claims["exp"], UTC)


def test_token_request_status_codes(cluster: ClusterInfo) -> None:
    status, body = request(cluster, "POST", "/api/v1/namespaces/default/serviceaccounts/missing/token",
                           {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
    assert status == 404 and body["message"] == 'serviceaccounts "missing" not found'
    status, body = request(cluster, "POST", "/api/v1/namespaces/default/serviceaccounts/default/token",
                           {"spec": {"expirationSeconds": 599}})
    assert status == 422
    assert body["message"] == ('TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: '
                               "Invalid value: 599: may not specify a duration less than 10 minutes")
    assert body["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "spec.expirationSeconds",
                                          "message": "Invalid value: 599: may not specify a duration less than "
                                                     "10 minutes"}]
    status, body = request(cluster, "POST", "/api/v1/namespaces/default/serviceaccounts/default/token",
                           {"spec": {"expirationSeconds": 600}})
    assert status == 201
    _, claims = jwt(body["status"]["token"])
    assert claims["exp"] - claims["iat"] == 600
    # the token subresource answers POST only
    status, body = request(cluster, "GET", "/api/v1/namespaces/default/serviceaccounts/default/token")
    assert status == 405 and body["reason"] == "MethodNotAllowed"


def test_token_authenticates_as_its_service_account(cluster: ClusterInfo) -> None:
    sa = core(cluster).read_namespaced_service_account("default", "default")
    token = token_for(cluster)
    review = client.AuthenticationV1Api(as_token(cluster, token).api_client()).create_self_subject_review(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    info = review.status.user_info
    assert info.username == "system:serviceaccount:default:default"
    assert info.uid == sa.metadata.uid
    assert info.groups == ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"]
    assert info.extra["authentication.kubernetes.io/credential-id"] == [f"JTI={jwt(token)[1]['jti']}"]
    # the cluster's admin token is the admin user
    status, admin = whoami(cluster, cluster.token)
    assert status == 201 and admin == {"username": "clusterset-admin",
                                       "groups": ["system:masters", "system:authenticated"]}


def test_token_of_a_deleted_or_recreated_service_account_is_401(cluster: ClusterInfo) -> None:
    api = core(cluster)
    api.create_namespaced_service_account("default", {"metadata": {"name": "short-lived"}})
    token = token_for(cluster, "short-lived")
    assert whoami(cluster, token)[0] == 201
    api.delete_namespaced_service_account("short-lived", "default")
    assert_unauthorized(*whoami(cluster, token))
    api.create_namespaced_service_account("default", {"metadata": {"name": "short-lived"}})  # a new uid
    assert_unauthorized(*whoami(cluster, token))
    assert whoami(cluster, token_for(cluster, "short-lived"))[0] == 201


def test_expired_token_is_401(server: ServerThread, cluster: ClusterInfo,
                              clock: Callable[[float], None]) -> None:
    token = token_for(cluster, expirationSeconds=600)
    assert whoami(cluster, token)[0] == 201
    clock(600 + 30)  # expired, but within the 60 s leeway kube-apiserver allows
    assert whoami(cluster, token)[0] == 201
    clock(600 + 61)
    assert_unauthorized(*whoami(cluster, token))
    clock(0)
    assert whoami(cluster, token)[0] == 201
    # the internal hook mints any lifetime (TokenRequest's floor is 10 minutes)
    short, expires = server.call(_mint(server, cluster.name, 1))
    assert jwt(short)[1]["exp"] == expires
    assert whoami(cluster, short)[0] == 201
    clock(62)
    assert_unauthorized(*whoami(cluster, short))


async def _mint(server: ServerThread, name: str, seconds: int) -> tuple[str, int]:
    return server.server.mint_token(name, "default", "default", seconds)


def test_token_is_bound_to_its_logical_cluster(server: ServerThread) -> None:
    a, b = server.add_cluster(controllers=False), server.add_cluster(controllers=False)
    token = token_for(a)  # default/default exists in both clusters
    assert whoami(a, token)[0] == 201
    assert_unauthorized(*whoami(b, token))
    assert_unauthorized(*request(b, "GET", "/api", token=token))


def test_foreign_and_tampered_tokens_are_401(cluster: ClusterInfo) -> None:
    token = token_for(cluster)
    header, payload, signature = token.split(".")
    claims = jwt(token)[1]
    claims["sub"] = "system:serviceaccount:kube-system:default"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert_unauthorized(*whoami(cluster, f"{header}.{forged}.{signature}"))
    assert_unauthorized(*whoami(cluster, f"{header}.{payload}.{signature[:-4]}AAAA"))
    assert_unauthorized(*whoami(cluster, "a.b.c"))
    assert whoami(cluster, token)[0] == 201


def test_audiences(cluster: ClusterInfo) -> None:
    token = token_for(cluster, audiences=["vault"], expirationSeconds=7200)
    claims = jwt(token)[1]
    assert claims["aud"] == ["vault"] and claims["exp"] - claims["iat"] == 7200
    # kube-apiserver accepts only tokens meant for it; TokenReview checks other audiences
    assert_unauthorized(*whoami(cluster, token))
    reviews = client.AuthenticationV1Api(cluster.api_client())
    review = reviews.create_token_review({"spec": {"token": token, "audiences": ["vault"]}})
    assert review.status.authenticated is True
    assert review.status.user.username == "system:serviceaccount:default:default"
    assert review.status.audiences == ["vault"]
    review = reviews.create_token_review({"spec": {"token": token}})
    assert not review.status.authenticated and "invalid for the target audiences" in review.status.error
    review = reviews.create_token_review({"spec": {"token": "garbage"}})
    assert not review.status.authenticated and review.status.error == "invalid bearer token"


def test_token_bound_to_a_pod(cluster: ClusterInfo) -> None:
    api = core(cluster)
    pod = api.create_namespaced_pod("default", {"metadata": {"name": "p"},
                                                "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    token = token_for(cluster, boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "p"})
    assert jwt(token)[1]["kubernetes.io"]["pod"] == {"name": "p", "uid": pod.metadata.uid}
    status, user = whoami(cluster, token)
    assert status == 201
    assert user["extra"]["authentication.kubernetes.io/pod-name"] == ["p"]
    assert user["extra"]["authentication.kubernetes.io/pod-uid"] == [pod.metadata.uid]
    # a pod runs as one ServiceAccount; a wrong uid is a conflict; an unknown kind a bad request
    api.create_namespaced_service_account("default", {"metadata": {"name": "other"}})
    status, body = request(cluster, "POST", "/api/v1/namespaces/default/serviceaccounts/other/token",
                           {"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p"}}})
    assert status == 400
    assert body["message"] == ('cannot bind token for serviceaccount "other" to pod running with different '
                               'serviceaccount name.')
    status, body = request(cluster, "POST", "/api/v1/namespaces/default/serviceaccounts/default/token",
                           {"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p",
                                                        "uid": "0000"}}})
    assert status == 409 and body["reason"] == "Conflict"
    assert body["message"] == ('Operation cannot be fulfilled on Pod "p": the UID in the bound object reference '
                               "(0000) does not match the UID in record. The object might have been deleted and "
                               "then recreated")
    status, body = request(cluster, "POST", "/api/v1/namespaces/default/serviceaccounts/default/token",
                           {"spec": {"boundObjectRef": {"kind": "ConfigMap", "apiVersion": "v1", "name": "c"}}})
    assert status == 400 and body["message"] == "cannot bind token to object of type /v1, Kind=ConfigMap"
    # the token dies with its pod
    api.delete_namespaced_pod("p", "default", grace_period_seconds=0)
    wait_until(lambda: whoami(cluster, token)[0] == 401, message="the pod-bound token to be rejected")


def test_pod_bound_token_outlives_its_pod_by_the_leeway(cluster: ClusterInfo, clock: Callable[[float], None]) -> None:
    api = core(cluster)
    api.create_namespaced_pod("default", {"metadata": {"name": "p"}, "spec": {
        "nodeName": "n1", "terminationGracePeriodSeconds": 30, "containers": [{"name": "c", "image": "nginx"}]}})
    token = token_for(cluster, boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "p"})
    api.delete_namespaced_pod("p", "default")  # a scheduled pod terminates gracefully: it is still there
    deleting = api.read_namespaced_pod("p", "default").metadata.deletion_timestamp
    assert deleting is not None
    assert whoami(cluster, token)[0] == 201  # kube-apiserver keeps a terminating pod's token working...
    clock(deleting.timestamp() - time.time() + 61)
    status, body = whoami(cluster, token)  # ...until the leeway after its deletionTimestamp
    assert_unauthorized(status, body)
    review = client.AuthenticationV1Api(cluster.api_client()).create_token_review({"spec": {"token": token}})
    assert review.status.error == "[invalid bearer token, service account token has been invalidated]"


def test_tokens_survive_a_restart(tmp_path: Path) -> None:
    first = ServerThread(tmp_path)
    try:
        info = first.add_cluster("keep", controllers=False)
        token = token_for(info)
        assert whoami(info, token)[0] == 201
    finally:
        first.stop()
    key = tmp_path / "pki" / "sa.key"
    assert key.exists() and stat.S_IMODE(key.stat().st_mode) == 0o600
    second = ServerThread(tmp_path)
    try:
        info = second.info("keep")
        status, user = whoami(info, token)
        assert status == 201 and user["username"] == "system:serviceaccount:default:default"
        assert jwt(token_for(info))[0]["kid"] == jwt(token)[0]["kid"]  # the same signing key
    finally:
        second.stop()


def test_an_rsa_key_made_before_keeps_signing_rs256_and_its_tokens_hold(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "sa.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    server = ServerThread(tmp_path)
    try:
        info = server.add_cluster("older", controllers=False)
        token = token_for(info)
        assert jwt(token)[0]["alg"] == "RS256"
        assert whoami(info, token)[0] == 201
        _, claims, signature = token.split(".")
        forged = ".".join([base64.urlsafe_b64encode(json.dumps({**jwt(token)[0], "alg": "ES256"}).encode())
                           .rstrip(b"=").decode(), claims, signature])
        assert whoami(info, forged)[0] == 401  # only the key's own algorithm
    finally:
        server.stop()


def test_in_memory_servers_sign_with_their_own_key(server: ServerThread, cluster: ClusterInfo) -> None:
    other = ServerThread(None)
    try:
        elsewhere = other.add_cluster(cluster.name, controllers=False)  # same cluster name, other server
        foreign = token_for(elsewhere)
        assert whoami(elsewhere, foreign)[0] == 201
        assert jwt(foreign)[0]["kid"] != jwt(token_for(cluster))[0]["kid"]
        assert_unauthorized(*whoami(cluster, foreign))
    finally:
        other.stop()


# ---------------------------------------------------------------------------- kubectl
def test_kubectl_create_token(kubectl: Kubectl, tmp_path: Path) -> None:
    kubectl("create", "serviceaccount", "ci", "-n", "default")
    token = kubectl("create", "token", "ci", "--duration=20m").strip()
    claims = jwt(token)[1]
    assert claims["sub"] == "system:serviceaccount:default:ci" and claims["exp"] - claims["iat"] == 1200
    status, user = whoami(kubectl.info, token)
    assert status == 201 and user["username"] == "system:serviceaccount:default:ci"
    as_ci = Kubectl(kubectl.binary, sa_kubeconfig(kubectl.info, token, tmp_path / "ci.yaml"), tmp_path / "c2")
    who = as_ci.run("auth", "whoami", "-o", "json")
    assert json.loads(who.stdout)["status"]["userInfo"]["username"] == "system:serviceaccount:default:ci"
    too_short = kubectl.run("create", "token", "ci", "--duration=1m", check=False)
    assert too_short.returncode != 0
    assert "may not specify a duration less than 10 minutes" in too_short.stderr
    missing = kubectl.run("create", "token", "nobody", check=False)
    assert missing.returncode != 0 and 'serviceaccounts "nobody" not found' in missing.stderr


def test_service_account_kubeconfig_without_rights_gets_403_from_kubectl(kubectl: Kubectl, tmp_path: Path) -> None:
    token = kubectl("create", "token", "default").strip()
    as_default = Kubectl(kubectl.binary, sa_kubeconfig(kubectl.info, token, tmp_path / "sa.yaml"), tmp_path / "c")
    denied = as_default.run("get", "configmaps", check=False)
    assert denied.returncode != 0
    assert ('configmaps is forbidden: User "system:serviceaccount:default:default" cannot list resource '
            '"configmaps" in API group "" in the namespace "default"') in denied.stderr
    with pytest.raises(ApiException) as exc:
        core(as_token(kubectl.info, token)).list_namespaced_config_map("default")
    assert exc.value.status == 403
