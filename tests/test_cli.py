"""`clusterset up` and `clusterset cluster ...` as a user runs them, in a real process."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from clusterset.testing import ClusterInfo


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _clusterset(*args: str) -> list[str]:
    return [sys.executable, "-m", "clusterset.cli.main", *args]


def _wait_for(path: Path, proc: subprocess.Popen[str], text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        if proc.poll() is not None:
            raise AssertionError(f"clusterset exited early with {proc.returncode}")
        time.sleep(0.05)
    raise AssertionError(f"{path} did not mention {text!r} within {timeout} s")


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str], Path]]:
    state = tmp_path / "state"
    log = tmp_path / "up.log"
    port = _free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(_clusterset("up", "--state-dir", str(state), "--port", str(port), "--clusters", "2"),
                                stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(log, proc, "Press Ctrl-C")
        yield state, proc, log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(20)


def _member(state: Path, name: str) -> ClusterInfo:
    config = yaml.safe_load((state / "kubeconfig").read_text())
    server = next(c["cluster"]["server"] for c in config["clusters"] if c["name"] == name)
    token = next(u["user"]["token"] for u in config["users"] if u["name"] == name)
    return ClusterInfo(name, server, token, str(state / "pki" / "ca.crt"), state / "kubeconfig")


def test_up_writes_kubeconfig_and_resumes(fleet: tuple[Path, subprocess.Popen[str], Path]) -> None:
    state, proc, log = fleet
    config = yaml.safe_load((state / "kubeconfig").read_text())
    assert [c["name"] for c in config["contexts"]] == ["hub", "member-1", "member-2"]
    assert config["current-context"] == "hub"
    assert "export KUBECONFIG=" in log.read_text()
    member = _member(state, "member-1")
    api = client.CoreV1Api(member.api_client())
    api.create_namespaced_config_map("default", {"metadata": {"name": "survives"}})
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 0
    # starting again on the same directory resumes the same fleet, same port, same tokens
    port = config["clusters"][0]["cluster"]["server"].split(":")[2].split("/")[0]
    log2 = log.with_suffix(".2")
    with log2.open("w") as out:
        again = subprocess.Popen(_clusterset("up", "--state-dir", str(state), "--clusters", "2"),
                                 stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(log2, again, "Press Ctrl-C")
        assert "resumed 3 clusters" in log2.read_text()
        assert f":{port}/" in (state / "kubeconfig").read_text()
        api = client.CoreV1Api(_member(state, "member-1").api_client())
        assert api.read_namespaced_config_map("survives", "default").metadata.name == "survives"
    finally:
        again.send_signal(signal.SIGINT)
        again.wait(20)


def test_cluster_add_and_remove_at_run_time(fleet: tuple[Path, subprocess.Popen[str], Path]) -> None:
    state, _proc, _log = fleet
    added = subprocess.run(_clusterset("cluster", "add", "member-3", "--state-dir", str(state)),
                           capture_output=True, text=True, timeout=30)
    assert added.returncode == 0, added.stderr
    config = yaml.safe_load((state / "kubeconfig").read_text())
    assert "member-3" in [c["name"] for c in config["contexts"]]
    api = client.CoreV1Api(_member(state, "member-3").api_client())
    assert "default" in [n.metadata.name for n in api.list_namespace().items]
    listed = subprocess.run(_clusterset("cluster", "list", "--state-dir", str(state)),
                            capture_output=True, text=True, timeout=30)
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == ["hub", "member-1", "member-2", "member-3"]
    dup = subprocess.run(_clusterset("cluster", "add", "member-3", "--state-dir", str(state)),
                         capture_output=True, text=True, timeout=30)
    assert dup.returncode == 1 and "already exists" in dup.stderr
    removed = subprocess.run(_clusterset("cluster", "remove", "member-3", "--state-dir", str(state)),
                             capture_output=True, text=True, timeout=30)
    assert removed.returncode == 0, removed.stderr
    config = yaml.safe_load((state / "kubeconfig").read_text())
    assert "member-3" not in [c["name"] for c in config["contexts"]]


@pytest.mark.parametrize("order", ["flag last", "flag first"])
def test_cluster_command_without_server(tmp_path: Path, order: str) -> None:
    flag = ["--state-dir", str(tmp_path)]
    args = ["cluster", "list", *flag] if order == "flag last" else ["cluster", *flag, "list"]
    result = subprocess.run(_clusterset(*args), capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and f"no running server found in {tmp_path}" in result.stderr


def _open_files_limits(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open files limit in /proc")


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="reads the limit from /proc (Linux)")
def test_the_server_lifts_its_open_files_limit(tmp_path: Path) -> None:
    """A fleet holds both ends of every member's connections: a default soft limit of 1,024 ran out at a few
    dozen members, so the server lifts it to the hard limit (a child started with 256 shows it lifted)."""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard <= 256:
        pytest.skip(f"the hard limit here is {hard}: nothing to lift")
    log = tmp_path / "apiserver.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            _clusterset("apiserver", "--state-dir", str(tmp_path / "state"), "--port", str(_free_port())),
            stdout=out, stderr=subprocess.STDOUT, text=True,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)))
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "state" / "kubeconfig").exists():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert _open_files_limits(proc.pid) == (hard, hard)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)


def test_settled_heap_is_out_of_the_collectors_reach_and_later_cycles_are_still_collected() -> None:
    """`clusterset up`, `hub` and `apiserver` settle the heap once started (in a child: it changes the process)."""
    script = """
import gc, weakref
from clusterset.cli.common import (MIDDLE_COLLECTION_THRESHOLD, OLDEST_COLLECTION_THRESHOLD,
                                   YOUNG_COLLECTION_THRESHOLD, settle_heap)

class Node:
    pass

before = gc.get_freeze_count()
started = Node()
started.me = started
settle_heap()
assert gc.get_freeze_count() > before, "start-up's objects are frozen"
assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, MIDDLE_COLLECTION_THRESHOLD, OLDEST_COLLECTION_THRESHOLD)
# full collections as often as with CPython's (700, 10, 10) per young collection: only the middle ones are smaller
assert MIDDLE_COLLECTION_THRESHOLD * OLDEST_COLLECTION_THRESHOLD == 10 * 10
assert gc.is_tracked(started) and gc.isenabled()
later = Node()
later.me = later
gone = weakref.ref(later)
del later
gc.collect()
assert gone() is None, "a cycle made after settling is collected"
print("settled")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "settled", done.stderr
