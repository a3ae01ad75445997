"""`clusterset apiserver | cluster add|remove|list`: the embedded API server alone, and its logical clusters."""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from clusterset.apiserver import Apiserver
from clusterset.cli.common import (
    DEFAULT_STATE_DIR,
    async_command,
    count,
    fast_loop,
    raise_open_files_limit,
    removed_if_cannot_listen,
    server_flags,
    server_port,
    settle_heap,
    wait_for_signal,
)


def add_parsers(sub: Any) -> None:
    api = sub.add_parser(
        "apiserver", help="run only the embedded API server",
        description="Runs the embedded Kubernetes-compatible API server alone until Ctrl-C, with the logical "
                    "clusters named (and those made earlier in the state directory), and writes "
                    "<state-dir>/kubeconfig. No ClusterSet, no agents: see `clusterset up` for a fleet.")
    server_flags(api)
    api.add_argument("--cluster", action="append", default=[], metavar="NAME",
                     help="logical cluster to create if missing (repeatable)")
    api.set_defaults(run=async_command(_apiserver, loop_factory=fast_loop()))

    cl = sub.add_parser(
        "cluster", help="add, remove or list the logical clusters of a running server",
        description="Changes the logical clusters of the server (`clusterset up` or `clusterset apiserver`) "
                    "running on a state directory; the kubeconfig there is rewritten to match.")
    actions = cl.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add", help="add a logical cluster",
        description="Adds a logical cluster to the running server; under `clusterset up` it joins the fleet as "
                    "a member, with its agent.")
    add.add_argument("name", metavar="NAME", help="the new cluster's name (a DNS label)")
    add.add_argument("--nodes", type=count, default=3, help="simulated nodes of the cluster (default 3)")
    add.add_argument("--pod-ready-delay", type=float, default=0.5,
                     help="seconds until a new pod is Ready (default 0.5)")
    add.add_argument("--no-controllers", action="store_true",
                     help="the API server alone, as a bare kube-apiserver: no nodes, pods or slices")
    add.add_argument("--dual-stack", action="store_true", help="IPv4 and IPv6 service and pod ranges")
    remove = actions.add_parser(
        "remove", help="remove a logical cluster and everything in it",
        description="Removes a logical cluster and its objects from the running server. Under `clusterset up` its "
                    "agent reports it gone and stops, and the fleet does not make it again when it restarts; "
                    "its ClusterProfile stays until `clusterset leave --id NAME`.")
    remove.add_argument("name", metavar="NAME", help="the cluster to remove")
    listing = actions.add_parser("list", help="list the logical clusters and their URLs",
                                 description="Lists the running server's logical clusters and their URLs.")
    state_dir_help = f"the state directory of the running server (default {DEFAULT_STATE_DIR})"
    cl.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help=state_dir_help)
    for p in (add, remove, listing):  # before or after the action; SUPPRESS keeps one given before it
        p.add_argument("--state-dir", type=Path, default=argparse.SUPPRESS, help=state_dir_help)
    cl.set_defaults(run=_cluster)


async def _apiserver(args: argparse.Namespace) -> int:
    raise_open_files_limit()
    state_dir: Path = args.state_dir
    names: list[str] = args.cluster
    with removed_if_cannot_listen(state_dir):
        server = Apiserver(state_dir, host=args.host, port=server_port(args), durable=args.durable,
                           owner="clusterset apiserver")
        try:
            for name in names:
                if name not in server.cluster_names():
                    print(f"  creating cluster {name} ...", flush=True)
                    await server.add_cluster(name)
            await server.start()
            kubeconfig = state_dir / "kubeconfig"
            server.write_kubeconfig(kubeconfig, current=names[0] if names else None)
            print(f"clusterset apiserver listening on {server.url} (kubeconfig: {kubeconfig})", flush=True)
            settle_heap()
            await wait_for_signal()
            print("\nstopping ...", flush=True)
        finally:
            await server.stop()
    return 0


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
    if args.action == "add":
        method, body = "POST", json.dumps({
            "name": args.name, "nodes": args.nodes, "podReadyDelay": args.pod_ready_delay,
            "controllers": not args.no_controllers, "dualStack": args.dual_stack}).encode()
    elif args.action == "remove":
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
