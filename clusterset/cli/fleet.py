"""`clusterset up | agent | hub | status | crds`: run a fleet, embedded or on real clusters, and look at it."""

from __future__ import annotations

import argparse
import base64
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from clusterset.api import crds
from clusterset.api.inventory import (
    CLUSTER_REPORTS,
    CONTROL_PLANE_HEALTHY,
    HUB_KUBECONFIG_SECRET,
    JOINED,
    SYSTEM_NAMESPACE,
    member_namespace,
)
from clusterset.api.objects import condition
from clusterset.api.resources import CLUSTER_PROFILES, SECRETS
from clusterset.api.times import parse_time
from clusterset.cli.common import (
    DEFAULT_CLUSTERSET,
    async_command,
    kube_flags,
    kubeconfig_path,
    server_flags,
    server_port,
    table,
    wait_for_signal,
)
from clusterset.client import ClusterClient, NotFound
from clusterset.fleet.embedded import EmbeddedFleet, FleetOptions
from clusterset.fleet.hub import HubOptions, start_hub
from clusterset.fleet.member import MemberOptions, Members
from clusterset.inventory.profile_status import AccessProvider
from clusterset.inventory.registration import JoinRefused, member_id
from clusterset.runtime import LeaderElection, Manager


def add_parsers(sub: Any) -> None:
    up = sub.add_parser("up", help="run an embedded fleet: a hub and member clusters, joined, with their agents")
    server_flags(up)
    up.add_argument("--clusters", type=int, default=2, help="number of member clusters (default 2)")
    up.add_argument("--clusterset", default=DEFAULT_CLUSTERSET, help="ClusterSet name (default clusterset)")
    up.add_argument("--heartbeat", type=float, default=10.0, help="seconds between agent reports (default 10)")
    up.add_argument("--grace", type=float, default=40.0,
                    help="seconds without a report before a member's health is Unknown (default 40)")
    up.add_argument("--metrics-port", type=int, default=0, help="serve the hub's /metrics on this port (0: off)")
    up.set_defaults(run=async_command(_up))

    agent = sub.add_parser("agent", help="run a member's agent (reports the member to its hub)")
    kube_flags(agent)
    agent.add_argument("--hub-kubeconfig", help="the agent's hub kubeconfig (default: the member's Secret "
                       f"{SYSTEM_NAMESPACE}/{HUB_KUBECONFIG_SECRET} written by `clusterset join`)")
    agent.add_argument("--heartbeat", type=float, default=10.0)
    agent.set_defaults(run=async_command(_agent))

    hub = sub.add_parser("hub", help="run the hub's controllers (the ClusterProfile manager)")
    kube_flags(hub)
    hub.add_argument("--clusterset", default=DEFAULT_CLUSTERSET)
    hub.add_argument("--grace", type=float, default=40.0)
    hub.add_argument("--metrics-port", type=int, default=0)
    hub.add_argument("--no-leader-elect", dest="leader_elect", action="store_false",
                     help="act without holding the Lease <clusterset>/clusterset-hub (only one replica may run)")
    hub.add_argument("--access-provider", action="append", default=[], metavar="NAME",
                     help="advertise this access provider on every ClusterProfile, with exec config "
                          "{clusterName: <member id>} (repeatable; e.g. secretreader)")
    hub.set_defaults(run=async_command(_hub))

    status = sub.add_parser("status", help="show the fleet: clusters, health, version, properties")
    kube_flags(status)
    status.add_argument("--clusterset", default=DEFAULT_CLUSTERSET)
    status.set_defaults(run=async_command(_status))

    c = sub.add_parser("crds", help="print the CRDs clusterset uses, for kubectl apply -f -")
    c.add_argument("--side", choices=["hub", "member", "all"], default="all")
    c.set_defaults(run=_crds)


# ---------------------------------------------------------------------- up
async def _up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    fleet = EmbeddedFleet(
        FleetOptions(args.state_dir, members=args.clusters, host=args.host, port=server_port(args),
                     durable=args.durable, clusterset=args.clusterset, heartbeat=args.heartbeat, grace=args.grace,
                     metrics_port=args.metrics_port),
        progress=lambda line: print(f"  {line} ...", flush=True),
    )
    try:
        await fleet.start()
        fleet.progress("waiting for every member to report healthy")
        await fleet.wait_healthy(timeout=max(60.0, args.clusters * 0.5))
        _print_banner(fleet, time.monotonic() - started)
        await wait_for_signal()
        print("\nstopping ...", flush=True)
    finally:
        await fleet.stop()
    return 0


def _print_banner(fleet: EmbeddedFleet, elapsed: float) -> None:
    kubeconfig = (fleet.options.state_dir or Path(".")) / "kubeconfig"
    rows = [("CLUSTER", "ROLE", "ID", "HEALTHY", "SERVER")]
    health = fleet.health()
    for c in fleet.fleet_description()["clusters"]:
        rows.append((c["name"], c["role"], c.get("id", "-"), health.get(c["name"], "-"), c["server"]))
    resumed = f" (resumed {len(fleet.resumed)} clusters)" if fleet.resumed else ""
    print(f"\nclusterset fleet ready in {elapsed:.1f}s{resumed}")
    print(table(rows))
    print(f"""
Use it with kubectl:
  export KUBECONFIG={kubeconfig.resolve()}
  kubectl --context hub get clusterprofiles -A
  kubectl --context member-1 get clusterproperties
  kubectl --context member-1 create deployment hello --image=hello --replicas=3

See the fleet: clusterset status        Machine-readable: {(kubeconfig.parent / 'fleet.json').resolve()}
Add or remove clusters while it runs:  clusterset cluster add NAME   |   clusterset cluster remove NAME
Press Ctrl-C to stop; run `clusterset up` again in this directory to resume the same fleet.
""", flush=True)


# ---------------------------------------------------------------------- agent / hub
async def _agent(args: argparse.Namespace) -> int:
    member = await ClusterClient.from_kubeconfig(kubeconfig_path(args), args.context)
    cid = await member_id(member)
    if cid is None:
        await member.close()
        raise JoinRefused("this cluster has not joined a ClusterSet (no cluster.clusterset.k8s.io); "
                          "run `clusterset join` first")
    hub_path = args.hub_kubeconfig
    with tempfile.TemporaryDirectory() as tmp:
        if hub_path is None:
            try:
                secret = await member.get(SECRETS, HUB_KUBECONFIG_SECRET, SYSTEM_NAMESPACE)
            except NotFound:
                await member.close()
                raise JoinRefused(f"{cid} has no hub credentials (Secret {SYSTEM_NAMESPACE}/{HUB_KUBECONFIG_SECRET}): "
                                  f"run `clusterset join` for it first, or pass --hub-kubeconfig") from None
            hub_path = str(Path(tmp) / "hub.kubeconfig")
            Path(hub_path).write_bytes(base64.b64decode(secret["data"]["kubeconfig"]))
            Path(hub_path).chmod(0o600)
        hub = await ClusterClient.from_kubeconfig(hub_path, None)
    manager = Manager(name="agent")
    members = Members(manager, MemberOptions(heartbeat=args.heartbeat))
    await manager.start()
    await members.add(cid, member, hub, hub.namespace or member_namespace(cid))
    print(f"agent for {cid} reporting to {hub.server} (namespace {hub.namespace})", flush=True)
    try:
        await wait_for_signal()
    finally:
        await manager.stop()
        await members.close()
        await member.close()
    return 0


async def _hub(args: argparse.Namespace) -> int:
    hub = await ClusterClient.from_kubeconfig(kubeconfig_path(args), args.context)
    providers = tuple(AccessProvider(name, {"clusterName": "{cluster}"}) for name in args.access_provider)
    election = LeaderElection(hub, args.clusterset, "clusterset-hub") if args.leader_elect else None
    manager = Manager(name="hub", metrics_port=args.metrics_port, leader_election=election)
    await start_hub(manager, hub, HubOptions(args.clusterset, grace=args.grace, access_providers=providers))
    print(f"hub controllers running against {hub.server} (ClusterSet {args.clusterset})", flush=True)
    try:
        await wait_for_signal()
    finally:
        await manager.stop()
        await hub.close()
    return 0


# ---------------------------------------------------------------------- status / crds
async def _status(args: argparse.Namespace) -> int:
    hub = await ClusterClient.from_kubeconfig(kubeconfig_path(args), args.context or "hub")
    try:
        profiles = (await hub.list(CLUSTER_PROFILES, args.clusterset)).get("items") or []
        # a member's report is the one in its own hub namespace (an agent may write any name there)
        reports = {r["metadata"]["name"]: r for r in (await hub.list(CLUSTER_REPORTS)).get("items") or []
                   if r["metadata"].get("namespace") == member_namespace(r["metadata"]["name"])}
    finally:
        await hub.close()
    print(status_table(profiles, reports, datetime.now(UTC)))
    return 0


def status_table(profiles: list[dict[str, Any]], reports: dict[str, dict[str, Any]], now: datetime) -> str:
    rows: list[tuple[str, ...]] = [("CLUSTER", "HEALTHY", "JOINED", "VERSION", "REPORTED", "REASON", "PROPERTIES")]
    for p in sorted(profiles, key=lambda p: str(p["metadata"]["name"])):
        status = p.get("status") or {}
        healthy = condition(status.get("conditions"), CONTROL_PLANE_HEALTHY) or {}
        joined = condition(status.get("conditions"), JOINED) or {}
        observed = ((reports.get(p["metadata"]["name"]) or {}).get("status") or {}).get("observedTime")
        props = ",".join(f"{x['name']}={x['value']}" for x in status.get("properties") or [])
        problem = next((c.get("reason") for c in (healthy, joined) if c and c.get("status") != "True"), None)
        rows.append((p["metadata"]["name"], healthy.get("status", "Unknown"), joined.get("status", "Unknown"),
                     (status.get("version") or {}).get("kubernetes", "-"), _ago(observed, now), problem or "-",
                     props or "-"))
    if len(rows) == 1:
        return "no clusters have joined (clusterset join, or clusterset up)"
    return table(rows)


def _ago(stamp: str | None, now: datetime) -> str:
    """Like kubectl's ages: 5s, 3m, 2h."""
    when = parse_time(stamp)
    if when is None:
        return "never"
    seconds = max(0, int((now - when).total_seconds()))
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m" if seconds < 7200 else f"{seconds // 3600}h"


def _crds(args: argparse.Namespace) -> int:
    manifests = {"hub": crds.hub_crds(), "member": crds.member_crds()}
    chosen = manifests["hub"] + manifests["member"] if args.side == "all" else manifests[args.side]
    print(yaml.safe_dump_all(chosen, sort_keys=False), end="")
    return 0
