"""Embedded clusters' built-in controllers: scale → EndpointSlices latency, and the CPU of idle clusters.

    .venv/bin/python -m bench.controllers_bench [--quick] [--before TREE]

- Latency: a Deployment behind a Service in one logical cluster of 12 nodes (pods Ready at once:
  podReadyDelay 0); `replicas` is patched to N and we time until the Service's EndpointSlices list
  N ready endpoints (polled every 10 ms over HTTPS), then back down to 1. N = 10, 100, 1,000.
- Idle CPU: 100 logical clusters with 3 nodes and a 10-replica Deployment + Service each; once
  every pod is Ready, the server's CPU time over an idle window, as cores (reference: the same
  server with the same 100 clusters without controllers).

The server runs in its own process pinned to CPU 0, the client on CPU 1 (bench/procs.py). `--before TREE`
measures the latency of another checkout (with its own .venv) in the same run, alternating sizes, with ratios.
"""

from __future__ import annotations

import argparse
import json
import ssl
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.apiserver_bench import table
from bench.machine import machine_info
from bench.procs import ApiserverProcess, pin_self


class Http:
    def __init__(self, server: ApiserverProcess) -> None:
        self.server = server
        self.ctx = ssl.create_default_context(cafile=str(server.ca_file))

    def call(self, method: str, path: str, token: str, body: Any = None,
             content_type: str = "application/json") -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server.url + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": content_type})
        with urllib.request.urlopen(req, context=self.ctx, timeout=60) as resp:
            return json.loads(resp.read())

    def add_cluster(self, name: str, controllers: bool = True, nodes: int = 3) -> str:
        info = self.call("POST", "/admin/clusters", self.server.admin_token(),
                         {"name": name, "nodes": nodes, "podReadyDelay": 0, "controllers": controllers})
        return str(info["token"])


def _app(http: Http, cluster: str, token: str, name: str, replicas: int) -> None:
    base = f"/clusters/{cluster}"
    labels = {"app": name}
    http.call("POST", f"{base}/apis/apps/v1/namespaces/default/deployments", token, {
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "app", "image": "app:1", "ports": [{"containerPort": 8080}]}]}}}})
    http.call("POST", f"{base}/api/v1/namespaces/default/services", token, {
        "metadata": {"name": name}, "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}})


def _ready_endpoints(http: Http, cluster: str, token: str, service: str) -> tuple[int, int]:
    slices = http.call("GET", f"/clusters/{cluster}/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
                       f"?labelSelector=kubernetes.io/service-name%3D{service}", token)["items"]
    ready = sum(1 for s in slices for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready"))
    return ready, len(slices)


def _wait_ready(http: Http, cluster: str, token: str, service: str, want: int, timeout: float) -> tuple[float, int]:
    start = time.perf_counter()
    while True:
        ready, slices = _ready_endpoints(http, cluster, token, service)
        if ready == want:
            return time.perf_counter() - start, slices
        if time.perf_counter() - start > timeout:
            raise RuntimeError(f"{service}: {ready} ready endpoints after {timeout}s, want {want}")
        time.sleep(0.01)


def scale_latency(http: Http, sizes: list[int]) -> list[list[str]]:
    token = http.add_cluster("lat", nodes=12)  # 110 pods per node, as a kubelet's default max-pods
    _app(http, "lat", token, "web", 1)
    _wait_ready(http, "lat", token, "web", 1, 60)
    rows = []
    for n in sizes:
        path = "/clusters/lat/apis/apps/v1/namespaces/default/deployments/web"
        start = time.perf_counter()
        http.call("PATCH", path, token, {"spec": {"replicas": n}}, "application/merge-patch+json")
        up, slices = _wait_ready(http, "lat", token, "web", n, 300)
        up = time.perf_counter() - start
        start = time.perf_counter()
        http.call("PATCH", path, token, {"spec": {"replicas": 1}}, "application/merge-patch+json")
        _wait_ready(http, "lat", token, "web", 1, 300)
        down = time.perf_counter() - start
        rows.append([f"{n:,}", f"{up * 1000:,.0f} ms", f"{up * 1000 / n:.2f} ms", str(slices),
                     f"{down * 1000:,.0f} ms"])
    return rows


def _ms(cell: str) -> float:
    return float(cell.split()[0].replace(",", ""))


def _best(kept: list[list[str]], rows: list[list[str]]) -> list[list[str]]:
    """Per size, the faster of two runs (the machine is shared: the slower one measured the noise)."""
    if not kept:
        return rows
    return [a if _ms(a[1]) + _ms(a[4]) <= _ms(b[1]) + _ms(b[4]) else b for a, b in zip(kept, rows, strict=True)]


def idle_cpu(work: Path, clusters: int, window: float) -> list[list[str]]:
    rows = []
    for controllers in (False, True):
        server = ApiserverProcess(work / f"idle-{controllers}", []).start()
        try:
            http = Http(server)
            tokens = {f"c{i}": http.add_cluster(f"c{i}", controllers) for i in range(clusters)}
            for name, token in tokens.items():
                _app(http, name, token, "app", 10)
            if controllers:
                for name, token in tokens.items():
                    _wait_ready(http, name, token, "app", 10, 120)
            time.sleep(2.0)  # let queues drain before the idle window
            before = server.proc.cpu() if server.proc else 0.0
            time.sleep(window)
            used = (server.proc.cpu() if server.proc else 0.0) - before
            rss = server.proc.rss() / 2**20 if server.proc else 0.0
            label = "with controllers (3 nodes, 10 Ready pods each)" if controllers else "API server alone"
            rows.append([label, f"{clusters}", f"{used / window:.4f} cores", f"{rss:,.0f} MiB"])
        finally:
            server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--before", type=Path, metavar="TREE", help="also measure this checkout's latency")
    args = parser.parse_args()
    pin_self()
    print(table(["machine", ""], [[k, v] for k, v in machine_info().items()]))
    with tempfile.TemporaryDirectory(prefix="controllers-bench-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        sizes = [10, 100] if args.quick else [10, 100, 1000]
        trees: list[tuple[str, Path | None]] = [("this checkout", None)]
        if args.before:
            trees.append((f"before ({args.before})", args.before))
        results: dict[str, list[list[str]]] = {}
        for label, tree in (trees * 2 if args.before else trees):  # twice, alternating, when comparing
            server = ApiserverProcess(work / f"latency-{len(results)}-{label[:6]}", [], tree=tree).start()
            try:
                rows = scale_latency(Http(server), sizes)
            finally:
                server.stop()
            results.setdefault(label, [])
            results[label] = _best(results[label], rows)
        for label, rows in results.items():
            print(f"\nreplicas change → every EndpointSlice updated (pods Ready at once): {label}")
            print(table(["replicas", "scale up", "per pod", "slices", "back to 1"], rows))
        if args.before:
            now, before = results[trees[0][0]], results[trees[1][0]]
            print("\nthis checkout ÷ before (lower is faster)")
            print(table(["replicas", "scale up", "back to 1"],
                        [[a[0], f"{_ms(a[1]) / _ms(b[1]):.2f}", f"{_ms(a[4]) / _ms(b[4]):.2f}"]
                         for a, b in zip(now, before, strict=True)]))
        idle = idle_cpu(work, 20 if args.quick else 100, 10.0 if args.quick else 30.0)
        print("\nCPU of idle logical clusters")
        print(table(["server", "clusters", "CPU while idle", "RSS"], idle))


if __name__ == "__main__":
    main()
