"""`clusterset dns` as a user runs it: a process serving one member of a kubeconfig."""

from __future__ import annotations

import re
import signal
import subprocess
import time

from clusterset.testing import ClusterInfo
from tests.dns.util import ZONE, eventually, query, rcode, service_import, values
from tests.helpers import custom
from tests.test_cli import _clusterset


def _line(proc: subprocess.Popen[str], pattern: str, timeout: float = 30) -> re.Match[str]:
    """Reads stdout until a line matches (the process prints its address, then that it synced)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise AssertionError(f"clusterset dns exited with {proc.returncode}")
        found = re.search(pattern, line)
        if found:
            return found
    raise AssertionError(f"no line matching {pattern!r} within {timeout}s")


async def test_clusterset_dns_serves_a_member_of_a_kubeconfig(member: ClusterInfo) -> None:
    custom(member).create_namespaced_custom_object("multicluster.x-k8s.io", "v1beta1", "default", "serviceimports",
                                                   service_import("web", ips=["10.42.0.9"]))
    proc = subprocess.Popen(_clusterset("dns", "--kubeconfig", str(member.kubeconfig), "--context", member.name,
                                        "--listen", "127.0.0.1:0"), stdout=subprocess.PIPE, text=True)
    try:
        port = int(_line(proc, r"serving clusterset\.local for \S+ on 127\.0\.0\.1:(\d+) \(udp\+tcp\)").group(1))
        _line(proc, "synced")

        async def answered() -> bool:
            return values(await query(port, f"web.default.svc.{ZONE}")) == {"10.42.0.9"}

        await eventually(answered, message="the import over the CLI's server")
        assert rcode(await query(port, f"web.default.svc.{ZONE}", tcp=True)) == "NOERROR"
        assert rcode(await query(port, "example.com")) == "REFUSED"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_a_bad_listen_address_is_refused_in_one_line() -> None:
    result = subprocess.run(_clusterset("dns", "--listen", "localhost"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == "clusterset dns: error: argument --listen: 'localhost' is not ADDR:PORT"
