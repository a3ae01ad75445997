"""`clusterset up | agent | hub | status | crds`: run a fleet, embedded or on real clusters, and look at it."""

from __future__ import annotations

import argparse
import asyncio
import base64
import math
import sys
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
from clusterset.api.mcs import (
    CLUSTERSET_ENDPOINTS,
    CLUSTERSET_SERVICES,
    ENDPOINT_LEASE_SELECTOR,
    SERVICE_NAME_LABEL,
    SERVICE_NAMESPACE_LABEL,
    SOURCE_CLUSTER_LABEL,
)
from clusterset.api.objects import condition
from clusterset.api.placement import PLACEMENTS, WORK_SETS
from clusterset.api.resources import CLUSTER_PROFILES, LEASES, SECRETS, Resource
from clusterset.api.times import parse_time
from clusterset.cli.common import (
    DEFAULT_CLUSTERSET,
    DEFAULT_STATE_DIR,
    async_command,
    count,
    fast_loop,
    kube_flags,
    kubeconfig_path,
    natural_key,
    port_number,
    program,
    raise_open_files_limit,
    removed_if_cannot_listen,
    seconds,
    server_flags,
    server_port,
    settle_heap,
    table,
    wait_for_signal,
    whole_seconds,
)
from clusterset.cli.placement import placements_table, taints_of
from clusterset.client import ClusterClient, NotFound
from clusterset.fleet.embedded import EmbeddedFleet, FleetOptions
from clusterset.fleet.hub import HubOptions, start_hub
from clusterset.fleet.member import MemberOptions, Members
from clusterset.inventory.profile_status import AccessProvider
from clusterset.inventory.registration import JoinRefused, clusterset_of, member_id
from clusterset.runtime import LeaderElection, Manager


def add_parsers(sub: Any) -> None:
    up = sub.add_parser(
        "up", help="run an embedded fleet: a hub and member clusters, joined, with their agents",
        description="Runs a whole fleet in this process until Ctrl-C: one API server hosting the logical clusters "
                    "`hub` and `member-1..N`, each member joined to the ClusterSet with its agent, and the hub's "
                    "controllers. Writes <state-dir>/kubeconfig (a context per cluster) and <state-dir>/fleet.json. "
                    "Run it again on the same directory to resume the same fleet.")
    server_flags(up)
    up.add_argument("--clusters", type=count, default=2,
                    help="number of member clusters made on the first start (default 2)")
    up.add_argument("--clusterset", default=DEFAULT_CLUSTERSET, help="ClusterSet name (default clusterset)")
    up.add_argument("--heartbeat", type=seconds, default=10.0,
                    help="seconds between agent heartbeats: a probe of the member and a renewal of its Lease "
                         "(default 10; at most a third of --endpoint-lease)")
    up.add_argument("--grace", type=seconds, default=40.0,
                    help="seconds without a report or Lease renewal before a member's health is Unknown "
                         "(default 40)")
    endpoint_lease_flag(up)
    up.add_argument("--metrics-port", type=port_number, default=0,
                    help="serve the hub's /metrics on this port (0: off)")
    up.set_defaults(run=async_command(_up, loop_factory=fast_loop()), check=heartbeat_problem, parser=up)

    agent = sub.add_parser(
        "agent", help="run a member's agent (reports the member, exports and imports its services, applies its Works)",
        description="Runs the agent of a member that has joined (`clusterset join`): it reports the member to its "
                    "own namespace on the hub, with the hub credentials that join stored in the member, publishes "
                    "the member's ServiceExports there and imports the ClusterSet's multi-cluster services into the "
                    "member (ServiceImports, ClusterSet IPs, EndpointSlices), and applies the Works in its hub "
                    "namespace to the member, reporting their status back. It takes new credentials from the "
                    "member when a join writes them, and stops when its member is gone.")
    kube_flags(agent)
    agent.add_argument("--hub-kubeconfig", help="the agent's hub kubeconfig (default: the member's Secret "
                       f"{SYSTEM_NAMESPACE}/{HUB_KUBECONFIG_SECRET} written by `clusterset join`)")
    agent.add_argument("--heartbeat", type=seconds, default=10.0,
                       help="seconds between heartbeats: a probe of the member and a renewal of its Lease "
                            "(default 10; at most a third of --endpoint-lease)")
    endpoint_lease_flag(agent)
    metrics_flags(agent)
    agent.set_defaults(run=async_command(_agent), check=heartbeat_problem, parser=agent)

    hub = sub.add_parser(
        "hub", help="run the hub's controllers (ClusterProfiles, the services' merge, placement, work sets)",
        description="Runs the hub's controllers against a hub cluster: one ClusterProfile per member, from the "
                    "reports of its agent, the merge of the members' service exports into the ClusterSet's "
                    "multi-cluster services, and the placement scheduler (PlacementDecisions for the Placements of "
                    "namespaces bound with a ClusterSetBinding) and the WorkSets (a Work per decided member). "
                    "Replicas elect a leader (Lease "
                    "<clusterset>/clusterset-hub).")
    kube_flags(hub)
    hub.add_argument("--clusterset", default=DEFAULT_CLUSTERSET, help="ClusterSet name (default clusterset)")
    hub.add_argument("--grace", type=seconds, default=40.0,
                     help="seconds without a report or Lease renewal before a member's health is Unknown "
                         "(default 40)")
    metrics_flags(hub)
    hub.add_argument("--no-leader-elect", dest="leader_elect", action="store_false",
                     help="act without holding the Lease <clusterset>/clusterset-hub (only one replica may run)")
    hub.add_argument("--leader-elect-lease-duration", type=seconds, default=15.0, metavar="SECONDS",
                     help="how long followers wait after the leader's last renewal before taking over (default 15)")
    hub.add_argument("--leader-elect-renew-deadline", type=seconds, default=10.0, metavar="SECONDS",
                     help="how long the leader keeps acting without a successful renewal (default 10; less than "
                          "the lease duration)")
    hub.add_argument("--leader-elect-retry-period", type=seconds, default=2.0, metavar="SECONDS",
                     help="how often replicas renew or try to acquire the lease (default 2)")
    hub.add_argument("--access-provider", action="append", default=[], metavar="NAME",
                     help="advertise this access provider on every ClusterProfile, with exec config "
                          "{clusterName: <member id>} (repeatable; e.g. secretreader)")
    hub.set_defaults(run=async_command(_hub))

    status = sub.add_parser(
        "status", help="show the fleet: clusters, health, version, properties, multi-cluster services",
        description="Shows the members of a ClusterSet as the hub's ClusterProfiles describe them: health, "
                    "joined, version, the time of the last report, what is wrong, taints and properties; then its "
                    "multi-cluster services: who exports each, their ready endpoints, and conflicts; then the "
                    "Placements: clusters selected of those requested, and whether they are satisfied. The hub is "
                    "the context `hub` unless --context names another.")
    kube_flags(status)
    status.add_argument("--clusterset", default=DEFAULT_CLUSTERSET, help="ClusterSet name (default clusterset)")
    status.set_defaults(run=async_command(_status))

    c = sub.add_parser("crds", help="print the CRDs clusterset uses, for kubectl apply -f -",
                       description="Prints the CustomResourceDefinitions a hub and its members need, as YAML.")
    c.add_argument("--side", choices=["hub", "member", "all"], default="all",
                   help="the hub's, the members', or all (default)")
    c.set_defaults(run=_crds)


def metrics_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics-port", type=port_number, default=0,
                        help="serve /metrics, /healthz and /readyz on this port (0: off)")
    parser.add_argument("--metrics-host", default="127.0.0.1",
                        help="the address they listen on (default 127.0.0.1; in a pod 0.0.0.0, for the kubelet's "
                             "probes and Prometheus)")


def endpoint_lease_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint-lease", type=whole_seconds, default=40, metavar="SECONDS",
                        help="seconds a member's exported endpoints stay imported everywhere after its agent last "
                             "saw the member answer (default 40)")


def heartbeat_problem(args: argparse.Namespace) -> str | None:
    """The agent renews its Lease every heartbeat: three renewals must fit in the Lease (as a kubelet's node Lease,
    40 s renewed every 10 s), or one late renewal lets the member's endpoints go. The hub (`up`'s) calls a member
    Unknown after `--grace` without one: a heartbeat as long would make every member flap."""
    most = args.endpoint_lease / 3
    if args.heartbeat > most:
        return (f"--heartbeat {args.heartbeat:g} is more than a third of --endpoint-lease {args.endpoint_lease}: "
                f"give --heartbeat at most {math.floor(most * 10) / 10:g}, or --endpoint-lease at least "
                f"{math.ceil(args.heartbeat * 3)}")
    grace = getattr(args, "grace", None)
    if grace is not None and args.heartbeat >= grace:
        return (f"--heartbeat {args.heartbeat:g} is not shorter than --grace {grace:g}: every member would turn "
                f"Unknown between two heartbeats; give --grace more than {args.heartbeat:g} (e.g. "
                f"{args.heartbeat * 4:g})")
    return None


# ---------------------------------------------------------------------- up
async def _up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    raise_open_files_limit()
    with removed_if_cannot_listen(args.state_dir):
        fleet = EmbeddedFleet(
            FleetOptions(args.state_dir, members=args.clusters, host=args.host, port=server_port(args),
                         durable=args.durable, clusterset=args.clusterset, heartbeat=args.heartbeat,
                         grace=args.grace, endpoint_lease=args.endpoint_lease, metrics_port=args.metrics_port,
                         owner="clusterset up"),
            progress=lambda line: print(f"  {line} ...", flush=True),
        )
        try:
            await fleet.start()
            fleet.progress("waiting for every member to report healthy")
            await fleet.wait_healthy(timeout=max(60.0, args.clusters * 0.5))
            print(banner(fleet, args.state_dir, time.monotonic() - started), flush=True)
            settle_heap()
            await wait_for_signal()
            print("\nstopping ...", flush=True)
        finally:
            await fleet.stop()
    return 0


def banner(fleet: EmbeddedFleet, state_dir: Path, elapsed: float) -> str:
    """What `up` prints once the fleet is ready: its clusters, and commands to paste, as this user runs them."""
    rows = [("CLUSTER", "ROLE", "ID", "HEALTHY", "SERVER")]
    health = fleet.health()
    for c in fleet.fleet_description()["clusters"]:
        rows.append((c["name"], c["role"], c.get("id", "-"), health.get(c["name"], "-"), c["server"]))
    resumed = f" (resumed {len(fleet.resumed)} clusters)" if fleet.resumed else ""
    me = program()
    here = "" if state_dir == DEFAULT_STATE_DIR else f" --state-dir {state_dir}"
    lines = [f"\nclusterset fleet ready in {elapsed:.1f}s{resumed}", table(rows)]
    lines += [f"  {name} did not join: {why}" for name, why in fleet.not_joined.items()]
    lines += ["", "Use it with kubectl:", f"  export KUBECONFIG={(state_dir / 'kubeconfig').resolve()}",
              "  kubectl --context hub get clusterprofiles"]
    member = next((m for m in fleet.member_ids if m not in fleet.not_joined), None)
    if member is None:
        lines.append(f"  (no members yet: add one with `{me} cluster add member-1{here}`)")
    else:
        lines += [f"  kubectl --context {member} get clusterproperties",
                  f"  kubectl --context {member} create deployment hello --image=nginx --replicas=3"]
    dns = fleet.dns.servers.get(member) if member is not None else None
    if dns is not None:
        host = "127.0.0.1" if dns.host in ("0.0.0.0", "") else dns.host
        lines += ["", f"Query clusterset.local (a DNS server per member; addresses in fleet.json), e.g. {member}'s:",
                  f"  dig @{host} -p {dns.port} dns-version.clusterset.local TXT",
                  f"  dig @{host} -p {dns.port} <svc>.<ns>.svc.clusterset.local"]
    again = f"`{me} up{here}` again" if here else f"`{me} up` again in this directory"
    lines += ["",
              f"See the fleet:        {me} status{here}",
              f"Machine-readable:     {(state_dir / 'fleet.json').resolve()}",
              f"Add/remove clusters:  {me} cluster add NAME{here}  |  {me} cluster remove NAME{here}",
              f"Press Ctrl-C to stop; {again} resumes the same fleet.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------- agent / hub
async def _agent(args: argparse.Namespace) -> int:
    member = await ClusterClient.from_kubeconfig(kubeconfig_path(args), args.context)
    cid = await member_id(member)
    if cid is None:
        await member.close()
        raise JoinRefused("this cluster has not joined a ClusterSet (no cluster.clusterset.k8s.io); "
                          f"run `{program()} join` first")
    hub_path = args.hub_kubeconfig
    with tempfile.TemporaryDirectory() as tmp:
        if hub_path is None:
            try:
                secret = await member.get(SECRETS, HUB_KUBECONFIG_SECRET, SYSTEM_NAMESPACE)
            except NotFound:
                await member.close()
                raise JoinRefused(f"{cid} has no hub credentials (Secret {SYSTEM_NAMESPACE}/{HUB_KUBECONFIG_SECRET}): "
                                  f"run `{program()} join` for it first, or pass --hub-kubeconfig") from None
            hub_path = str(Path(tmp) / "hub.kubeconfig")
            Path(hub_path).write_bytes(base64.b64decode(secret["data"]["kubeconfig"]))
            Path(hub_path).chmod(0o600)
        hub = await ClusterClient.from_kubeconfig(hub_path, None)
    manager = Manager(name="agent", metrics_port=args.metrics_port, metrics_host=args.metrics_host)
    stop = asyncio.Event()
    gone: list[str] = []  # the member is gone for good: its agent said so in the log and stopped

    def member_gone(cluster_id: str) -> None:
        gone.append(cluster_id)
        stop.set()

    clusterset = await clusterset_of(member) or MemberOptions.clusterset
    members = Members(manager, MemberOptions(heartbeat=args.heartbeat, clusterset=clusterset,
                                             endpoint_lease=args.endpoint_lease), on_gone=member_gone)
    await manager.start()
    await members.add(cid, member, hub, hub.namespace or member_namespace(cid))
    print(f"agent for {cid} reporting to {hub.server} (namespace {hub.namespace})", flush=True)
    try:
        await wait_for_signal(stop)
    finally:
        await manager.stop()
        await members.close()
        await member.close()
    return 1 if gone else 0


async def _hub(args: argparse.Namespace) -> int:
    if not args.leader_elect_retry_period < args.leader_elect_renew_deadline < args.leader_elect_lease_duration:
        print("clusterset hub: leader election needs --leader-elect-retry-period < --leader-elect-renew-deadline < "
              "--leader-elect-lease-duration", file=sys.stderr)
        return 2
    hub = await ClusterClient.from_kubeconfig(kubeconfig_path(args), args.context)
    providers = tuple(AccessProvider(name, {"clusterName": "{cluster}"}) for name in args.access_provider)
    election = LeaderElection(hub, args.clusterset, "clusterset-hub", lease_duration=args.leader_elect_lease_duration,
                              renew_deadline=args.leader_elect_renew_deadline,
                              retry_period=args.leader_elect_retry_period) if args.leader_elect else None
    manager = Manager(name="hub", metrics_port=args.metrics_port, metrics_host=args.metrics_host,
                      leader_election=election)
    try:
        await start_hub(manager, hub, HubOptions(args.clusterset, grace=args.grace, access_providers=providers))
        print(f"hub controllers running against {hub.server} (ClusterSet {args.clusterset})", flush=True)
        settle_heap()
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
        # and its agent's Lease there, renewed every heartbeat (the report is written when it changes)
        leases = {str(holder): lease for lease in (await hub.list(LEASES, field_selector=ENDPOINT_LEASE_SELECTOR)
                                                   ).get("items") or []
                  if (holder := (lease.get("spec") or {}).get("holderIdentity"))
                  and lease["metadata"].get("namespace") == member_namespace(str(holder))}
        services = await _items(hub, CLUSTERSET_SERVICES, args.clusterset)
        endpoints = await _items(hub, CLUSTERSET_ENDPOINTS, args.clusterset)
        placements = await _items(hub, PLACEMENTS, None)
        worksets = await _items(hub, WORK_SETS, None)
    finally:
        await hub.close()
    print(status_table(profiles, reports, datetime.now(UTC), leases))
    if services:
        print()
        print(services_table(services, endpoints))
    if placements:
        print()
        print(placements_table(placements))
    if worksets:
        print()
        print(worksets_table(worksets))
    return 0


async def _items(hub: ClusterClient, resource: Resource, namespace: str | None) -> list[dict[str, Any]]:
    """The objects of a resource the hub may not serve (a hub older than the feature): none then."""
    try:
        return list((await hub.list(resource, namespace)).get("items") or [])
    except NotFound:
        return []


def services_table(services: list[dict[str, Any]], endpoints: list[dict[str, Any]]) -> str:
    """The multi-cluster services: who exports them, their ready endpoints per exporting cluster, conflicts."""
    ready: dict[tuple[str, str, str], int] = {}
    for record in endpoints:
        labels = record["metadata"].get("labels") or {}
        key = (labels.get(SERVICE_NAMESPACE_LABEL, ""), labels.get(SERVICE_NAME_LABEL, ""),
               labels.get(SOURCE_CLUSTER_LABEL, ""))
        ready[key] = ready.get(key, 0) + sum(1 for e in (record.get("spec") or {}).get("endpoints") or []
                                             if (e.get("conditions") or {}).get("ready") is not False)
    rows: list[tuple[str, ...]] = [("SERVICE", "TYPE", "EXPORTED BY (READY ENDPOINTS)", "CONFLICT")]
    for svc in sorted(services, key=lambda s: (s["spec"].get("namespace", ""), s["spec"].get("name", ""))):
        spec, status = svc.get("spec") or {}, svc.get("status") or {}
        namespace, name = spec.get("namespace", ""), spec.get("name", "")
        exporters = []
        for entry in status.get("clusters") or []:
            cluster = entry.get("cluster", "")
            count = "withdrawn" if entry.get("endpoints") == "Withdrawn" else ready.get((namespace, name, cluster), 0)
            exporters.append(f"{cluster} ({count})")
        rows.append((f"{namespace}/{name}", spec.get("type", "-"), ", ".join(exporters) or "-",
                     (status.get("conflict") or {}).get("reason") or "-"))
    return table(rows)


def status_table(profiles: list[dict[str, Any]], reports: dict[str, dict[str, Any]], now: datetime,
                 leases: dict[str, dict[str, Any]] | None = None) -> str:
    """HEARTBEAT: how long ago the member's agent last showed itself alive (renewed its Lease, or reported)."""
    rows: list[tuple[str, ...]] = [("CLUSTER", "HEALTHY", "JOINED", "VERSION", "HEARTBEAT", "REASON", "TAINTS",
                                    "PROPERTIES")]
    for p in sorted(profiles, key=lambda p: natural_key(str(p["metadata"]["name"]))):
        status = p.get("status") or {}
        healthy = condition(status.get("conditions"), CONTROL_PLANE_HEALTHY) or {}
        joined = condition(status.get("conditions"), JOINED) or {}
        name = p["metadata"]["name"]
        seen = [parse_time(((reports.get(name) or {}).get("status") or {}).get("observedTime")),
                parse_time((((leases or {}).get(name) or {}).get("spec") or {}).get("renewTime"))]
        last = max((t for t in seen if t is not None), default=None)
        props = ",".join(f"{x['name']}={x['value']}" for x in status.get("properties") or [])
        problem = next((c.get("reason") for c in (healthy, joined) if c and c.get("status") != "True"), None)
        rows.append((p["metadata"]["name"], healthy.get("status", "Unknown"), joined.get("status", "Unknown"),
                     (status.get("version") or {}).get("kubernetes", "-"), _ago(last, now), problem or "-",
                     taints_of(p), props or "-"))
    if len(rows) == 1:
        return "no clusters have joined (clusterset join, or clusterset up)"
    return table(rows)


def worksets_table(worksets: list[dict[str, Any]]) -> str:
    """The work sets: their placement, how many clusters are selected, applied, available, degraded, which fail."""
    rows: list[tuple[str, ...]] = [("WORKSET", "PLACEMENT", "SELECTED", "APPLIED", "AVAILABLE", "DEGRADED",
                                    "FAILING")]
    for ws in sorted(worksets, key=lambda w: (w["metadata"].get("namespace", ""), w["metadata"]["name"])):
        summary = (ws.get("status") or {}).get("summary") or {}
        failing = [f"{f.get('cluster')} ({f.get('reason')})" for f in summary.get("failing") or []]
        more = int(summary.get("failingCount") or 0) - len(failing)
        rows.append((f"{ws['metadata'].get('namespace')}/{ws['metadata']['name']}",
                     str(((ws.get("spec") or {}).get("placementRef") or {}).get("name") or "-"),
                     *(str(summary.get(k, 0)) for k in ("selected", "applied", "available", "degraded")),
                     ", ".join(failing) + (f", {more} more" if more > 0 else "") or "-"))
    return table(rows)


def _ago(when: datetime | None, now: datetime) -> str:
    """Like kubectl's ages: 5s, 3m, 2h."""
    if when is None:
        return "never"
    seconds = max(0, int((now - when).total_seconds()))
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m" if seconds < 7200 else f"{seconds // 3600}h"


def _crds(args: argparse.Namespace) -> int:
    manifests = {"hub": crds.hub_crds(), "member": crds.member_crds()}
    chosen = manifests["hub"] + manifests["member"] if args.side == "all" else manifests[args.side]
    print(yaml.safe_dump_all(chosen, sort_keys=False), end="")
    return 0
