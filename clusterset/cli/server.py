"""`clusterset apiserver | cluster add|remove|list`: the embedded API server alone, and its logical clusters."""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from clusterset.apiserver import Apiserver
from clusterset.cli.common import DEFAULT_STATE_DIR, server_flags, server_port, wait_for_signal


def add_parsers(sub: Any) -> None:
    api = sub.add_parser("apiserver", help="run only the embedded API server")
    server_flags(api)
    api.add_argument("--cluster", action="append", default=[], help="logical cluster to create (repeatable)")
    api.set_defaults(run=_apiserver)

    cl = sub.add_parser("cluster", help="add, remove or list the logical clusters of a running server")
    cl.add_argument("action", choices=["add", "remove", "list"])
    cl.add_argument("name", nargs="?")
    cl.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    cl.add_argument("--nodes", type=int, default=3, help="simulated nodes of a new cluster (default 3)")
    cl.add_argument("--pod-ready-delay", type=float, default=0.5, help="seconds until a new pod is Ready (default 0.5)")
    cl.add_argument("--no-controllers", action="store_true", help="the API server alone: no nodes, pods or slices")
    cl.add_argument("--dual-stack", action="store_true", help="IPv4 and IPv6 service and pod ranges")
    cl.set_defaults(run=_cluster)


def _apiserver(args: argparse.Namespace) -> int:
    port = server_port(args)
    try:
        asyncio.run(_serve(args.state_dir, args.host, port, args.cluster, args.durable))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"clusterset: cannot listen on {args.host}:{port}: {exc.strerror}. "
              f"Choose another port with --port.", file=sys.stderr)
        return 1
    return 0


async def _serve(state_dir: Path, host: str, port: int, names: list[str], durable: bool) -> None:
    server = Apiserver(state_dir, host=host, port=port, durable=durable)
    for name in names:
        if name not in server.cluster_names():
            print(f"  creating cluster {name} ...", flush=True)
            await server.add_cluster(name)
    await server.start()
    kubeconfig = state_dir / "kubeconfig"
    server.write_kubeconfig(kubeconfig, current=names[0] if names else None)
    print(f"clusterset apiserver listening on {server.url} (kubeconfig: {kubeconfig})", flush=True)
    await wait_for_signal()
    print("\nstopping ...", flush=True)
    await server.stop()


def _cluster(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir
    try:
        info = json.loads((state_dir / "server.json").read_text())
        token = (state_dir / "admin.token").read_text().strip()
    except OSError:
        print(f"clusterset: no running server found in {state_dir} (start one with `clusterset up`)", file=sys.stderr)
        return 1
    ctx = ssl.create_default_context(cafile=info["ca"])
    method, path, body = "GET", "/admin/clusters", None
    if args.action in ("add", "remove"):
        if not args.name:
            print(f"clusterset: cluster {args.action} needs a NAME", file=sys.stderr)
            return 2
        if args.action == "add":
            method, body = "POST", json.dumps({
                "name": args.name, "nodes": args.nodes, "podReadyDelay": args.pod_ready_delay,
                "controllers": not args.no_controllers, "dualStack": args.dual_stack}).encode()
        else:
            method, path = "DELETE", f"/admin/clusters/{args.name}"
    req = urllib.request.Request(info["url"] + path, data=body, method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
            result = json.loads(resp.read())
    except urllib.error.HTTPError as err:
        detail = json.loads(err.read() or b"{}")
        print(f"clusterset: {detail.get('message', err.reason)}", file=sys.stderr)
        return 1
    except urllib.error.URLError as err:
        print(f"clusterset: cannot reach the server at {info['url']}: {err.reason}", file=sys.stderr)
        return 1
    if args.action == "list":
        for c in result["clusters"]:
            print(f"{c['name']}\t{c['server']}")
    elif args.action == "add":
        print(f"cluster {args.name} added: {result['server']} (context {args.name} in {state_dir / 'kubeconfig'})")
    else:
        print(f"cluster {args.name} removed")
    return 0
