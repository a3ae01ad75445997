"""clusterset.local DNS: queries per second and latency of our server against NSD, same records, same run.

    .venv/bin/python -m bench.dns_bench [--services 1000] [--seconds 10]

Needs `dnsperf` and `nsd` (Debian: `apt-get install -y dnsperf nsd`). One embedded API server holds a member with
N ClusterSetIP ServiceImports (one named port each) and 10 headless ones (10 ready endpoints each, one cluster).
Our server (`clusterset.dns.DnsServer`, as `clusterset dns` runs it: uvloop, and again on asyncio's loop) reads
them through the API; NSD serves a zone file written from the same records (`records.service_records`), with
`server-count: 1` and `rrl-ratelimit: 0` (Debian's default rate limit stalls dnsperf on loopback). Each server
is pinned to CPU 0 (`taskset -c 0`), dnsperf to CPU 1: `dnsperf -l SECONDS -c 4 -q 200` (UDP, no EDNS).
Query sets: **ClusterSetIP** (98% A of the services, 2% SRV `_http._tcp`) and **headless** (A of the headless
names: 10 records each, and per-pod A). The machine is shared: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.apiserver_bench import machine_line, table
from bench.machine import machine_info
from clusterset.api import crds
from clusterset.api.mcs import CLUSTERSET_ZONE, SERVICE_IMPORTS, SERVICE_NAME_LABEL, SOURCE_CLUSTER_LABEL
from clusterset.api.resources import ENDPOINT_SLICES
from clusterset.client import ClientConfig, ClusterClient
from clusterset.dns import records
from clusterset.inventory.registration import ensure_crds
from clusterset.testing import ServerThread

HEADLESS, ENDPOINTS = 10, 10


def objects(services: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    imports, slices = [], []
    for i in range(services):
        imports.append({"metadata": {"name": f"svc-{i}", "namespace": "default"}, "spec": {
            "type": "ClusterSetIP", "ips": [f"10.{100 + i // 65536}.{i // 256 % 256}.{i % 256}"],
            "ports": [{"name": "http", "protocol": "TCP", "port": 80}]}})
    for h in range(HEADLESS):
        imports.append({"metadata": {"name": f"hl-{h}", "namespace": "default"}, "spec": {
            "type": "Headless", "ports": [{"name": "http", "protocol": "TCP", "port": 80}]}})
        slices.append({"metadata": {"name": f"hl-{h}-a", "namespace": "default", "labels": {
            SERVICE_NAME_LABEL: f"hl-{h}", SOURCE_CLUSTER_LABEL: "cluster-a",
            "endpointslice.kubernetes.io/managed-by": "mcs-controller.clusterset.io"}},
            "addressType": "IPv4", "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
            "endpoints": [{"addresses": [f"10.200.{h}.{e + 1}"], "hostname": f"pod-{e}", "conditions": {"ready": True}}
                          for e in range(ENDPOINTS)]})
    return imports, slices


def zone_file(imports: list[dict[str, Any]], slices: list[dict[str, Any]]) -> str:
    """The same records as a master file for NSD."""
    zone = CLUSTERSET_ZONE
    lines = [f"$ORIGIN {zone}.", f"@ 5 IN SOA ns.dns.{zone}. hostmaster.{zone}. 1 7200 1800 86400 5",
             f"@ 5 IN NS ns.dns.{zone}.", f'dns-version 28800 IN TXT "{records.DNS_VERSION}"']
    for imp in imports:
        name = imp["metadata"]["name"]
        own = [s for s in slices if s["metadata"]["labels"][SERVICE_NAME_LABEL] == name]
        for owner, rrsets in records.service_records(zone, "default", name, imp, own).items():
            for rrset in rrsets.values():
                for r in rrset:
                    data = r.data
                    if isinstance(data, records.Srv):
                        text = f"{data.priority} {data.weight} {data.port} {data.target}."
                    else:
                        text = str(data)
                    kind = {records.A: "A", records.AAAA: "AAAA", records.SRV: "SRV"}[r.type]
                    lines.append(f"{owner}. {r.ttl} IN {kind} {text}")
    return "\n".join(lines) + "\n"


def query_files(folder: Path, services: int) -> dict[str, Path]:
    zone = CLUSTERSET_ZONE
    clusterset_ip = []
    for i in range(services):
        clusterset_ip.append(f"svc-{i}.default.svc.{zone} A")
        if i % 49 == 0:
            clusterset_ip.append(f"_http._tcp.svc-{i}.default.svc.{zone} SRV")
    headless = []
    for h in range(HEADLESS):
        headless.append(f"hl-{h}.default.svc.{zone} A")
        headless += [f"pod-{e}.cluster-a.hl-{h}.default.svc.{zone} A" for e in range(ENDPOINTS)]
    out = {}
    for name, lines in (("ClusterSetIP", clusterset_ip), ("headless", headless)):
        path = folder / f"{name}.txt"
        path.write_text("\n".join(lines) + "\n")
        out[name] = path
    return out


def dnsperf(port: int, queries: Path, seconds: int) -> dict[str, float]:
    out = subprocess.run(["taskset", "-c", "1", "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries),
                          "-l", str(seconds), "-c", "4", "-q", "200"], capture_output=True, text=True,
                         timeout=seconds + 60).stdout
    qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = re.search(r"Average Latency \(s\):\s+([\d.]+) \(min ([\d.]+), max ([\d.]+)\)", out)
    lost = re.search(r"Queries lost:\s+(\d+) \(([\d.]+)%\)", out)
    return {"qps": qps, "avg_ms": float(lat.group(1)) * 1000 if lat else 0.0,
            "max_ms": float(lat.group(3)) * 1000 if lat else 0.0, "lost_pct": float(lost.group(2)) if lost else 0.0}


def wait_answering(port: int, name: str, timeout: float = 30) -> None:
    import dns.message
    import dns.query
    import dns.rcode

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            answer = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=0.5)
            if answer.rcode() == dns.rcode.NOERROR and answer.answer:
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"no answer for {name} on port {port}")


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
        u.bind(("127.0.0.1", 0))
        port: int = u.getsockname()[1]
        t.bind(("127.0.0.1", port))
        return port


def serve(kubeconfig: str, context: str, port: int, loop: str) -> None:
    """The server process: `clusterset dns` on the loop asked for."""
    from clusterset.dns import DnsServer

    async def main() -> None:
        client = await ClusterClient.from_kubeconfig(kubeconfig, context)
        server = DnsServer(client)
        await server.start("127.0.0.1", port)
        await server.wait_synced(30)
        print("ready", flush=True)
        await asyncio.Event().wait()

    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
    else:
        asyncio.run(main())


def run_ours(info: Any, loop: str, files: dict[str, Path], seconds: int) -> dict[str, dict[str, float]]:
    port = free_port()
    proc = subprocess.Popen(["taskset", "-c", "0", sys.executable, "-m", "bench.dns_bench", "--serve",
                             str(info.kubeconfig), info.name, str(port), loop], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        wait_answering(port, f"svc-0.default.svc.{CLUSTERSET_ZONE}")
        return {name: dnsperf(port, path, seconds) for name, path in files.items()}
    finally:
        proc.terminate()
        proc.wait(10)


def run_nsd(folder: Path, zone: str, files: dict[str, Path], seconds: int) -> dict[str, dict[str, float]]:
    port = free_port()
    (folder / "zone").write_text(zone)
    conf = folder / "nsd.conf"
    conf.write_text(f"""server:
  ip-address: 127.0.0.1@{port}
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "{folder}"
  pidfile: "{folder}/nsd.pid"
  database: ""
  xfrdfile: "{folder}/xfrd.state"
  zonelistfile: "{folder}/zone.list"
  rrl-ratelimit: 0
  verbosity: 0
remote-control:
  control-enable: no
zone:
  name: {CLUSTERSET_ZONE}
  zonefile: "{folder}/zone"
""")
    proc = subprocess.Popen(["taskset", "-c", "0", "nsd", "-c", str(conf), "-d"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_answering(port, f"svc-0.default.svc.{CLUSTERSET_ZONE}")
        return {name: dnsperf(port, path, seconds) for name, path in files.items()}
    finally:
        proc.terminate()
        proc.wait(10)


async def load(info: Any, imports: list[dict[str, Any]], slices: list[dict[str, Any]]) -> None:
    client = ClusterClient.from_config(ClientConfig(server=info.server, ca_file=info.ca_file, token=info.token))
    try:
        await ensure_crds(client, crds.member_crds())
        deadline = time.monotonic() + 30
        while True:  # the CRD is served once Established
            try:
                await client.list(SERVICE_IMPORTS, namespace="default")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        for obj in imports:
            await client.create(SERVICE_IMPORTS, obj, "default")
        for obj in slices:
            await client.create(ENDPOINT_SLICES, obj, "default")
    finally:
        await client.close()


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    for tool in ("dnsperf", "nsd", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install -y dnsperf nsd)")
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs 2 CPUs: the server on CPU 0, dnsperf on CPU 1")

    imports, slices = objects(args.services)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = ServerThread(folder / "apiserver")
        try:
            info = server.add_cluster("member-1", controllers=False)
            server.call(load(info, imports, slices), timeout=600)
            files = query_files(folder, args.services)
            results = {"clusterset dns (uvloop)": run_ours(info, "uvloop", files, args.seconds),
                       "clusterset dns (asyncio)": run_ours(info, "asyncio", files, args.seconds),
                       "NSD 1 server, rrl 0": run_nsd(folder, zone_file(imports, slices), files, args.seconds)}
        finally:
            server.stop()

    print(machine_line(machine_info()))
    nsd_version = subprocess.run(["nsd", "-v"], capture_output=True, text=True).stderr.splitlines()[0]
    print(f"nsd: {nsd_version}; {args.services} ClusterSetIP + {HEADLESS} headless services ({ENDPOINTS} endpoints)")
    headers = ["query set", "server", "QPS", "avg ms", "max ms", "lost %", "vs NSD"]
    rows: list[list[str]] = []
    for qset in files:
        base = results["NSD 1 server, rrl 0"][qset]["qps"]
        for server_name, by_set in results.items():
            r = by_set[qset]
            rows.append([qset, server_name, f"{r['qps']:,.0f}", f"{r['avg_ms']:.2f}", f"{r['max_ms']:.1f}",
                         f"{r['lost_pct']:.3f}", f"{r['qps'] / base:.2f}"])
    print(table(headers, rows))


if __name__ == "__main__":
    main()
