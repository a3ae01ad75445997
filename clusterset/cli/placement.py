"""`clusterset taint`: taint or untaint a member cluster, as `kubectl taint` does nodes; and the placements section of
`clusterset status`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from clusterset.api.objects import annotations_of, condition
from clusterset.api.placement import SATISFIED, TAINTS_ANNOTATION
from clusterset.api.resources import CLUSTER_PROFILES
from clusterset.api.times import now_rfc3339
from clusterset.cli.common import DEFAULT_CLUSTERSET, async_command, kube_flags, kubeconfig_path, table
from clusterset.client import ClusterClient, Conflict
from clusterset.placement.taints import TaintError, apply_changes, format_annotation, parse_annotation, parse_change

TAINT = ("Adds or removes taints on a member cluster, as `kubectl taint` does on nodes. KEY[=VALUE]:EFFECT adds a "
         "taint (or replaces the one of the same key and effect); KEY:EFFECT- removes it; KEY- removes every effect "
         "of the key. Effects: NoSelect (Placements that do not tolerate it do not choose the cluster; those that "
         "chose it drop it) and PreferNoSelect (chosen only when needed). Taints are kept in the ClusterProfile's "
         f"annotation {TAINTS_ANNOTATION}.")
RETRIES = 5  # another writer changed the profile meanwhile: read it again


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("taint", help="taint or untaint a member cluster (NoSelect, PreferNoSelect)", description=TAINT)
    kube_flags(p)
    p.add_argument("cluster", help="the member's cluster id (its ClusterProfile's name)")
    p.add_argument("taints", nargs="+", metavar="KEY[=VALUE]:EFFECT[-]", help="taints to add, or to remove (-)")
    p.add_argument("--clusterset", default=DEFAULT_CLUSTERSET, help="ClusterSet name (default clusterset)")
    p.set_defaults(run=_taint_command)


def _taint_command(args: argparse.Namespace) -> int:
    try:
        changes = [parse_change(spec) for spec in args.taints]
    except TaintError as exc:
        print(f"clusterset taint: {exc}", file=sys.stderr)
        return 1
    args.changes = changes
    return async_command(_taint)(args)


async def _taint(args: argparse.Namespace) -> int:
    hub = await ClusterClient.from_kubeconfig(kubeconfig_path(args), args.context or "hub")
    try:
        for attempt in range(RETRIES):
            profile = await hub.get(CLUSTER_PROFILES, args.cluster, args.clusterset)
            try:
                taints = apply_changes(parse_annotation(annotations_of(profile).get(TAINTS_ANNOTATION)),
                                       args.changes, now_rfc3339())
            except TaintError as exc:
                print(f"clusterset taint: {exc}", file=sys.stderr)
                return 1
            patch = {"metadata": {"resourceVersion": profile["metadata"]["resourceVersion"],
                                  "annotations": {TAINTS_ANNOTATION: format_annotation(taints) if taints else None}}}
            try:
                await hub.patch(CLUSTER_PROFILES, args.cluster, patch, namespace=args.clusterset)
                break
            except Conflict:
                if attempt == RETRIES - 1:
                    raise
    finally:
        await hub.close()
    removed = all(c.remove for c in args.changes)
    print(f"clusterprofile/{args.cluster} {'untainted' if removed else 'tainted'}")
    return 0


def taints_of(profile: dict[str, Any]) -> str:
    """A profile's taints for `clusterset status` (a malformed annotation says so)."""
    try:
        taints = parse_annotation(annotations_of(profile).get(TAINTS_ANNOTATION))
    except TaintError:
        return "(malformed)"
    return ",".join(map(str, taints)) or "-"


def placements_table(placements: list[dict[str, Any]]) -> str:
    """Each Placement: namespace/name, selected of requested, and its Satisfied condition's reason."""
    rows: list[tuple[str, ...]] = [("PLACEMENT", "SELECTED", "SATISFIED", "REASON")]
    for p in sorted(placements, key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"])):
        status = p.get("status") or {}
        requested = (p.get("spec") or {}).get("numberOfClusters")
        satisfied = condition(status.get("conditions"), SATISFIED) or {}
        selected = str(status.get("numberOfSelectedClusters", 0))
        rows.append((f"{p['metadata'].get('namespace')}/{p['metadata']['name']}",
                     f"{selected}/{requested if requested is not None else 'all'}",
                     satisfied.get("status", "Unknown"), satisfied.get("reason", "-")))
    return table(rows)
