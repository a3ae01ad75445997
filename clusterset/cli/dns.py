"""`clusterset dns`: serve `clusterset.local` for one member cluster (Multi-Cluster Services DNS)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from clusterset.api.mcs import CLUSTERSET_ZONE
from clusterset.cli.common import async_command, fast_loop, kube_flags, kubeconfig_path, wait_for_signal
from clusterset.client import ClusterClient
from clusterset.dns import DnsServer, parse_address

DEFAULT_LISTEN = "127.0.0.1:10053"


def address(text: str) -> tuple[str, int]:
    """An argparse type: ADDR:PORT or [V6ADDR]:PORT."""
    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "dns", help=f"serve {CLUSTERSET_ZONE} for one member cluster (Multi-Cluster Services DNS)",
        description=f"Answers {CLUSTERSET_ZONE} over UDP and TCP as coredns/multicluster does, from the "
                    "ServiceImports, imported EndpointSlices and Namespaces of the member named by --context: "
                    f"<svc>.<ns>.svc.{CLUSTERSET_ZONE} (A/AAAA, SRV), _<port>._<proto>.<svc>... (SRV), "
                    f"<hostname>.<clusterid>.<svc>... for headless services, dns-version.{CLUSTERSET_ZONE} (TXT). "
                    "Names are SERVFAIL until the member's objects are loaded. Runs until Ctrl-C.")
    kube_flags(p)
    p.add_argument("--listen", type=address, default=parse_address(DEFAULT_LISTEN), metavar="ADDR:PORT",
                   help=f"UDP and TCP address (default {DEFAULT_LISTEN}: port 53 needs root, 5353 is mDNS's; "
                        "port 0 takes a free port)")
    p.add_argument("--upstream", type=address, default=None, metavar="ADDR:PORT",
                   help=f"forward names outside {CLUSTERSET_ZONE} to this DNS server (default: answer REFUSED)")
    p.set_defaults(run=async_command(_dns, loop_factory=fast_loop()))


async def _dns(args: argparse.Namespace) -> int:
    client = await ClusterClient.from_kubeconfig(kubeconfig_path(args), args.context)
    server = DnsServer(client, upstream=args.upstream)
    try:
        host, port = args.listen
        await server.start(host, port)
        forward = f", forwarding other names to {args.upstream[0]}:{args.upstream[1]}" if args.upstream else ""
        print(f"serving {CLUSTERSET_ZONE} for {client.name or args.context or 'the current context'} on "
              f"{server.address} (udp+tcp){forward}", flush=True)
        try:
            await server.wait_synced(30)
            print("synced: answering from the member's objects", flush=True)
        except TimeoutError:
            print("not synced after 30 s (are the Multi-Cluster Services CRDs installed?); answering SERVFAIL "
                  "meanwhile", file=sys.stderr, flush=True)
        await wait_for_signal()
    finally:
        await server.stop()
        await client.close()
    return 0
