"""Server processes under test: our API server and etcd, each pinned to one CPU, plus /proc readings."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import yaml

from bench import machine
from clusterset.cli.common import fast_loop

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
SERVER_CPU = 0
CLIENT_CPU = 1

def run_as_up(coro: Coroutine[Any, Any, T]) -> T:
    """Runs an in-process fleet on the event loop `clusterset up` runs it on (uvloop when installed)."""
    with asyncio.Runner(loop_factory=fast_loop()) as runner:
        return runner.run(coro)


def pin_self(cpu: int = CLIENT_CPU) -> bool:
    """Pins this (load generator) process to `cpu` when the machine has more than one."""
    if (os.cpu_count() or 1) < 2 or not hasattr(os, "sched_setaffinity"):
        return False
    os.sched_setaffinity(0, {cpu})
    return True


def _pinned(cmd: list[str], cpu: int = SERVER_CPU) -> list[str]:
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu), *cmd]
    return cmd


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Proc:
    """A child process with a log file; `stop()` ends exactly this process."""

    def __init__(self, cmd: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.cmd = cmd
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                      start_new_session=True)
        machine.LIVE_CHILDREN[self.popen.pid] = 0.0

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        pid = self.popen.pid
        if pid in machine.LIVE_CHILDREN:
            try:
                last = self.cpu()
            except OSError:
                last = machine.LIVE_CHILDREN[pid]
            del machine.LIVE_CHILDREN[pid]
            machine.REAPED_CHILDREN[pid] = last
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._log.close()


def _wait_http(url: str, ctx: ssl.SSLContext | None, proc: Proc, timeout: float, headers: dict[str, str] | None = None,
               method: str = "GET", body: bytes | None = None) -> float:
    """Polls `url` until it answers 200; returns the seconds waited."""
    start = time.perf_counter()
    while True:
        if not proc.alive():
            raise RuntimeError(f"{proc.cmd[0]} exited: {proc.log_tail()}")
        try:
            req = urllib.request.Request(url, headers=headers or {}, method=method, data=body)
            with urllib.request.urlopen(req, context=ctx, timeout=2) as resp:
                if resp.status == 200:
                    return time.perf_counter() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.perf_counter() - start > timeout:
            raise RuntimeError(f"{url} not ready after {timeout}s: {proc.log_tail()}")
        time.sleep(0.02)


class ApiserverProcess:
    """`clusterset apiserver` in its own process pinned to CPU 0, with a throw-away state dir."""

    def __init__(self, state_dir: Path, clusters: list[str], *, durable: bool = False,
                 port: int | None = None, tree: Path | None = None) -> None:
        """`tree`: another checkout of the project (with its own `.venv`) to run instead of this one."""
        self.state_dir = state_dir
        self.tree = tree
        self.port = port or free_port()
        self.clusters = clusters
        self.durable = durable
        self.proc: Proc | None = None
        self.ready_seconds = 0.0

    def start(self, timeout: float = 120.0) -> ApiserverProcess:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        code = "import sys; from clusterset.cli.main import main; sys.exit(main(sys.argv[1:]))"
        args = ["apiserver", "--state-dir", str(self.state_dir), "--port", str(self.port)]
        for name in self.clusters:
            args += ["--cluster", name]
        if self.durable:
            args.append("--durable")
        python = str(self.tree / ".venv" / "bin" / "python") if self.tree else sys.executable
        cmd = _pinned([python, "-c", code, *args])
        start = time.perf_counter()
        log = self.state_dir.parent / f"{self.state_dir.name}.log"
        self.proc = Proc(cmd, log, env=env, cwd=self.tree or REPO)
        # the kubeconfig and the CA exist once the server listens; then poll a cluster URL
        deadline = start + timeout
        while not (self.state_dir / "server.json").exists() or not (self.state_dir / "kubeconfig").exists():
            if not self.proc.alive():
                raise RuntimeError(f"apiserver exited: {self.proc.log_tail()}")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"apiserver not up after {timeout}s: {self.proc.log_tail()}")
            time.sleep(0.02)
        _wait_http(f"{self.url}/healthz", self.ssl_context(), self.proc, timeout)
        self.ready_seconds = time.perf_counter() - start
        return self

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.state_dir / "pki" / "ca.crt"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def admin_token(self) -> str:
        return (self.state_dir / "admin.token").read_text().strip()

    def kubeconfig(self) -> dict[str, Any]:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        doc: dict[str, Any] = yaml.load((self.state_dir / "kubeconfig").read_text(), Loader=loader)
        return doc

    def tokens(self) -> dict[str, str]:
        """Every cluster's bearer token, from the kubeconfig the server wrote."""
        return {str(u["name"]): str(u["user"]["token"]) for u in self.kubeconfig()["users"]}

    def token(self, cluster: str) -> str:
        return self.tokens()[cluster]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


class EtcdProcess:
    """A single-member etcd (Debian's etcd-server) pinned to CPU 0 with a temp data dir."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.client_port = free_port()
        self.peer_port = free_port()
        self.proc: Proc | None = None
        self.ready_seconds = 0.0

    @staticmethod
    def available() -> bool:
        return shutil.which("etcd") is not None

    def start(self, timeout: float = 60.0) -> EtcdProcess:
        data = Path(tempfile.mkdtemp(prefix="etcd-data-", dir=self.work))
        client = f"http://127.0.0.1:{self.client_port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        cmd = _pinned([
            shutil.which("etcd") or "etcd", "--name", "bench", "--data-dir", str(data),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"bench={peer}", "--initial-cluster-state", "new",
            "--logger", "zap", "--log-level", "error",
        ])
        env = dict(os.environ)
        env.setdefault("ETCD_UNSUPPORTED_ARCH", "")
        start = time.perf_counter()
        self.proc = Proc(cmd, self.work / "etcd.log", env=env)
        _wait_http(f"{client}/health", None, self.proc, timeout)
        self.ready_seconds = time.perf_counter() - start
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


def install_etcd_hint() -> str:
    return "apt-get update && apt-get install -y etcd-server"


def try_install_etcd() -> bool:
    """Installs Debian's etcd-server when running as root with apt; False if not possible."""
    if EtcdProcess.available():
        return True
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", "etcd-server"], check=True, env=env, capture_output=True,
                       timeout=600)
    except (subprocess.SubprocessError, OSError):
        return False
    return EtcdProcess.available()
