"""Shared fixtures: one embedded API server per test session, one fresh logical cluster per test."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from clusterset.api import crds
from clusterset.testing import ClusterInfo, ServerThread
from tests.helpers import install


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    running = ServerThread(tmp_path_factory.mktemp("apiserver"), bookmark_interval=1.0)
    yield running
    running.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A connection pool for a test's own clients of a server it runs in its event loop."""
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def cluster(server: ServerThread) -> ClusterInfo:
    """A new, empty logical cluster without built-in controllers: the API server alone, as kube-apiserver.

    Tests never see each other's objects.
    """
    return server.add_cluster(controllers=False)


@pytest.fixture
def member(cluster: ClusterInfo) -> ClusterInfo:
    """A new logical cluster with the CRDs every member of a fleet gets (About API, Multi-Cluster Services)."""
    install(cluster, crds.member_crds())
    return cluster


@pytest.fixture
def live_cluster(server: ServerThread) -> ClusterInfo:
    """A new logical cluster with its built-in controllers (nodes, workloads, kubelet, endpoint slices)."""
    return server.add_cluster(controllers=True)


def kubectl_binaries() -> dict[str, str]:
    """The oldest and newest kubectl on this machine, by version label."""
    found = shutil.which("kubectl")
    if not found:
        return {}
    folder = Path(os.path.realpath(found)).parent
    out = {}
    for version in ("1.27", "1.33"):
        candidate = folder / f"kubectl.{version}"
        if candidate.exists():
            out[version] = str(candidate)
    return out or {"default": found}


KUBECTLS = kubectl_binaries()


class Kubectl:
    """Runs a real kubectl against one cluster, with its own discovery cache."""

    def __init__(self, binary: str, info: ClusterInfo, cache_dir: Path) -> None:
        self.binary = binary
        self.info = info
        self.cache_dir = cache_dir

    def run(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
            ) -> subprocess.CompletedProcess[str]:
        cmd = [self.binary, f"--kubeconfig={self.info.kubeconfig}", f"--cache-dir={self.cache_dir}", *args]
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def __call__(self, *args: str, input: str | None = None) -> str:
        return self.run(*args, input=input).stdout


@pytest.fixture(params=sorted(KUBECTLS) or ["missing"])
def kubectl(request: pytest.FixtureRequest, cluster: ClusterInfo, tmp_path: Path) -> Kubectl:
    if request.param == "missing":
        pytest.skip("kubectl is not installed on this machine (CI requires it: .ci/run fails without it)")
    return Kubectl(KUBECTLS[request.param], cluster, tmp_path / "kubectl-cache")


@pytest.fixture(params=sorted(KUBECTLS) or ["missing"])
def live_kubectl(request: pytest.FixtureRequest, live_cluster: ClusterInfo, tmp_path: Path) -> Kubectl:
    """kubectl (oldest and newest) against a cluster whose built-in controllers run."""
    if request.param == "missing":
        pytest.skip("kubectl is not installed on this machine (CI requires it: .ci/run fails without it)")
    return Kubectl(KUBECTLS[request.param], live_cluster, tmp_path / "kubectl-cache")
