"""`clusterset` command line: up, apiserver, cluster add|remove|list."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

DEFAULT_STATE_DIR = Path(".clusterset")
DEFAULT_PORT = 16443


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="clusterset", description="A multi-cluster control plane for Kubernetes.")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run an embedded fleet: a hub and member clusters in one API server")
    _server_flags(up)
    up.add_argument("--clusters", type=int, default=2, help="number of member clusters (default 2)")

    api = sub.add_parser("apiserver", help="run only the embedded API server")
    _server_flags(api)
    api.add_argument("--cluster", action="append", default=[], help="logical cluster to create (repeatable)")

    cl = sub.add_parser("cluster", help="add, remove or list the logical clusters of a running server")
    cl.add_argument("action", choices=["add", "remove", "list"])
    cl.add_argument("name", nargs="?")
    cl.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    cl.add_argument("--nodes", type=int, default=3, help="simulated nodes of a new cluster (default 3)")
    cl.add_argument("--pod-ready-delay", type=float, default=0.5, help="seconds until a new pod is Ready (default 0.5)")
    cl.add_argument("--no-controllers", action="store_true", help="the API server alone: no nodes, pods or slices")
    cl.add_argument("--dual-stack", action="store_true", help="IPv4 and IPv6 service and pod ranges")

    plugin = sub.add_parser("credential-plugin",
                            help="a ClusterProfile access-provider credential plugin (exec, KEP-541)")
    plugin.add_argument("plugin", choices=["secretreader", "embedded"])

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "credential-plugin":
        from clusterset.inventory import access_plugins

        return access_plugins.main(args.plugin)
    if args.command == "up":
        names = ["hub", *(f"member-{i}" for i in range(1, args.clusters + 1))]
        return _run_server(args, names, banner=True)
    if args.command == "apiserver":
        return _run_server(args, args.cluster, banner=False)
    return _cluster_command(args)


def _server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                   help=f"where state, certificates and the kubeconfig live (default {DEFAULT_STATE_DIR})")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=None,
                   help=f"listen port (default: the port used last time in this state dir, else {DEFAULT_PORT})")
    p.add_argument("--durable", action="store_true", help="fsync every commit (survives power loss, slower)")
    p.add_argument("-v", "--verbose", action="store_true")


def _previous_port(state_dir: Path) -> int | None:
    try:
        url = json.loads((state_dir / "server.json").read_text())["url"]
        return int(url.rsplit(":", 1)[1])
    except (OSError, ValueError, KeyError, IndexError):
        return None


def _run_server(args: argparse.Namespace, names: list[str], banner: bool) -> int:
    port = args.port if args.port is not None else (_previous_port(args.state_dir) or DEFAULT_PORT)
    try:
        asyncio.run(_serve(args.state_dir, args.host, port, names, banner, args.durable))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"clusterset: cannot listen on {args.host}:{port}: {exc.strerror}. "
              f"Choose another port with --port.", file=sys.stderr)
        return 1
    return 0


async def _serve(state_dir: Path, host: str, port: int, names: list[str], banner: bool, durable: bool) -> None:
    from clusterset.apiserver.server import Apiserver

    started = time.monotonic()
    server = Apiserver(state_dir, host=host, port=port, durable=durable)
    resumed = [n for n in names if n in server.clusters]
    for name in names:
        if name not in server.clusters:
            print(f"  creating cluster {name} ...", flush=True)
            await server.add_cluster(name)
    await server.start()
    kubeconfig = state_dir / "kubeconfig"
    server.write_kubeconfig(kubeconfig, current=names[0] if names else None)
    elapsed = time.monotonic() - started
    if banner:
        _print_banner(server, kubeconfig, resumed, elapsed)
    else:
        print(f"clusterset apiserver listening on {server.url} (kubeconfig: {kubeconfig})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("\nstopping ...", flush=True)
    await server.stop()


def _print_banner(server: Any, kubeconfig: Path, resumed: list[str], elapsed: float) -> None:
    rows = [("CLUSTER", "ROLE", "SERVER")]
    for name in server.clusters:
        rows.append((name, "hub" if name == "hub" else "member", server.cluster_url(name)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    print(f"\nclusterset fleet ready in {elapsed:.1f}s" + (f" (resumed {len(resumed)} clusters)" if resumed else ""))
    for row in rows:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    print(f"""
Use it with kubectl:
  export KUBECONFIG={kubeconfig.resolve()}
  kubectl --context hub get namespaces
  kubectl --context member-1 create configmap hello --from-literal=greeting=hi

Add or remove clusters while it runs:  clusterset cluster add NAME   |   clusterset cluster remove NAME
Press Ctrl-C to stop; run `clusterset up` again in this directory to resume the same fleet.
""", flush=True)


def _cluster_command(args: argparse.Namespace) -> int:
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


if __name__ == "__main__":
    sys.exit(main())
