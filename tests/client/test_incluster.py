"""In-cluster configuration: a process in a pod reaches its cluster with the mounted ServiceAccount token and CA,
re-reading the token as the kubelet rotates it; a kubeconfig, when one is named, still wins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clusterset.client import ClusterClient, CredentialError, auth, load_kubeconfig
from clusterset.client.incluster import in_cluster, in_cluster_config
from clusterset.testing import ClusterInfo, ServerThread
from tests.deploy.pods import ClusterService
from tests.helpers import core


def pod(tmp_path: Path, token: str = "t0ken", host: str = "10.96.0.1", port: str = "443", namespace: str = "apps",
        ca: bool = True) -> dict[str, str]:
    mount = tmp_path / "sa"
    mount.mkdir(exist_ok=True)
    (mount / "token").write_text(token)
    if ca:
        (mount / "ca.crt").write_text("not read until a request")
    (mount / "namespace").write_text(namespace)
    return {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port,
            "CLUSTERSET_SERVICEACCOUNT_DIR": str(mount)}


def test_the_pod_environment_makes_the_configuration(tmp_path: Path) -> None:
    env = pod(tmp_path)
    assert in_cluster(env)
    config = in_cluster_config(env)
    assert config.server == "https://10.96.0.1:443"
    assert config.token_file == str(tmp_path / "sa" / "token") and config.token is None  # re-read, never kept
    assert config.ca_file == str(tmp_path / "sa" / "ca.crt")
    assert config.namespace == "apps"
    assert in_cluster_config({**env, "POD_NAMESPACE": "mine"}).namespace == "mine"
    assert in_cluster_config({**env, "KUBERNETES_SERVICE_HOST": "fd00:10:96::1"}).server == "https://[fd00:10:96::1]:443"


def test_outside_a_pod_it_says_what_is_missing(tmp_path: Path) -> None:
    env = pod(tmp_path)
    assert not in_cluster({})
    with pytest.raises(CredentialError, match="not running in a pod: KUBERNETES_SERVICE_HOST and "
                                              "KUBERNETES_SERVICE_PORT must be set"):
        in_cluster_config({**env, "KUBERNETES_SERVICE_PORT": ""})
    (tmp_path / "sa" / "token").unlink()
    assert not in_cluster(env)
    with pytest.raises(CredentialError, match=r"cannot read the ServiceAccount token .*/sa/token"):
        in_cluster_config(env)
    (tmp_path / "sa" / "token").write_text("\n")
    with pytest.raises(CredentialError, match="is empty"):
        in_cluster_config(env)
    (tmp_path / "sa" / "ca.crt").unlink()
    (tmp_path / "sa" / "token").write_text("t")
    assert in_cluster_config(env).ca_file is None  # client-go: the system's roots then


def test_no_kubeconfig_named_in_a_pod_means_its_own_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            cluster: ClusterInfo) -> None:
    for name, value in pod(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_kubeconfig().name == "in-cluster"
    # one named (a path, $KUBECONFIG, a context) wins over the pod's ServiceAccount, as in controller-runtime
    assert load_kubeconfig(str(cluster.kubeconfig)).server == cluster.server
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    assert load_kubeconfig().server == cluster.server
    monkeypatch.delenv("KUBECONFIG")
    with pytest.raises(CredentialError, match=r"no kubeconfig found at ~/\.kube/config, and not running in a pod"):
        load_kubeconfig(context="elsewhere")


@pytest.fixture
def service(server: ServerThread, cluster: ClusterInfo) -> Iterator[ClusterService]:
    running = ClusterService(server, cluster.name)
    yield running
    running.stop()


async def test_a_rotated_token_is_read_again(tmp_path: Path, server: ServerThread, cluster: ClusterInfo,
                                             service: ClusterService, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("one", "two"):
        core(cluster).create_namespaced_service_account("default", {"metadata": {"name": name}})
    one, _ = server.server.mint_token(cluster.name, "default", "one", 3600)
    two, _ = server.server.mint_token(cluster.name, "default", "two", 3600)
    env = pod(tmp_path, token="not a token", host="127.0.0.1", port=str(service.port), namespace="default")
    (tmp_path / "sa" / "ca.crt").write_bytes(Path(server.ca_file).read_bytes())
    token_file = tmp_path / "sa" / "token"

    async def whoami(client: ClusterClient) -> str:
        review = await client.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body={
            "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        return str(review["status"]["userInfo"]["username"])

    async with ClusterClient(in_cluster_config(env)) as client:
        token_file.write_text(one)
        # read at first use, whatever the clock says: a node that just booted has a monotonic clock near 0, below
        # the re-read period (here made longer than any uptime)
        monkeypatch.setattr(auth, "TOKEN_FILE_TTL", 1e12)
        assert await whoami(client) == "system:serviceaccount:default:one"
        # the kubelet rotates the token: read again after a minute (client-go's period), here at once
        monkeypatch.setattr(auth, "TOKEN_FILE_TTL", 0.0)
        token_file.write_text(two)
        assert await whoami(client) == "system:serviceaccount:default:two"
        # a token refused (401) is read again before the request is retried
        monkeypatch.setattr(auth, "TOKEN_FILE_TTL", 3600.0)
        token_file.write_text(one)
        assert await whoami(client) == "system:serviceaccount:default:two"  # still the one it read
        core(cluster).delete_namespaced_service_account("two", "default")
        assert await whoami(client) == "system:serviceaccount:default:one"
