"""`clusterset manifests hub|member`: the manifests of deploy/, for `kubectl apply -f -` without kustomize."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from clusterset.deploy import IMAGE_NAME, SIDES, manifests


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "manifests", help="print the manifests that install clusterset into a hub or a member cluster",
        description="Prints what `kubectl kustomize deploy/hub` (or deploy/member) prints, from the installed "
                    "package: for the hub, the ClusterSet's namespace, the CRDs and the hub controllers (two "
                    "replicas electing a leader) with only the permissions they use; for a member, its CRDs, its "
                    "agent and its clusterset.local DNS server. Pipe it to `kubectl apply -f -`. Join a member "
                    "(`clusterset join`) before applying its manifests: the agent reads the credentials join writes.")
    p.add_argument("side", choices=SIDES, help="the hub's manifests, or a member's")
    p.add_argument("--image", metavar="IMAGE[:TAG|@DIGEST]",
                   help=f"the clusterset image to run (default {IMAGE_NAME}:<version>, which you build and push "
                        "from the Dockerfile)")
    p.set_defaults(run=_manifests)


def _manifests(args: argparse.Namespace) -> int:
    try:
        text = manifests(args.side, args.image)
    except ValueError as exc:
        print(f"clusterset manifests: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0
