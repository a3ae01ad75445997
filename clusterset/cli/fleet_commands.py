"""`clusterset up | join | leave | agent | hub | status | crds`: the fleet and its inventory from a shell."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
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
    condition,
    member_namespace,
)
from clusterset.api.resources import CLUSTER_PROFILES, SECRETS
from clusterset.api.times import parse_time
from clusterset.client import ApiError, ClusterClient, ConnectionFailed, CredentialError, NotFound
from clusterset.fleet.embedded import EmbeddedFleet, FleetOptions
from clusterset.inventory.agent import MemberAgent
from clusterset.inventory.controllers import REPORT_KEY, agent_controller, profile_controller
from clusterset.inventory.profile_status import AccessProvider
from clusterset.inventory.profiles import ProfileManager
from clusterset.inventory.registration import JoinRefused, join, leave, member_id, prepare_hub
from clusterset.runtime import LeaderElection, Manager

DEFAULT_STATE_DIR = Path(".clusterset")
DEFAULT_PORT = 16443
DEFAULT_CLUSTERSET = "clusterset"


def add_parsers(sub: Any) -> None:
    up = sub.add_parser("up", help="run an embedded fleet: a hub and member clusters, joined, with their agents")
    server_flags(up)
    up.add_argument("--clusters", type=int, default=2, help="number of member clusters (default 2)")
    up.add_argument("--clusterset", default=DEFAULT_CLUSTERSET, help="ClusterSet name (default clusterset)")
    up.add_argument("--heartbeat", type=float, default=10.0, help="seconds between agent reports (default 10)")
    up.add_argument("--grace", type=float, default=40.0,
                    help="seconds without a report before a member's health is Unknown (default 40)")
    up.add_argument("--metrics-port", type=int, default=0, help="serve the hub's /metrics on this port (0: off)")

    for verb, text in (("join", "register a member cluster with a hub"), ("leave", "remove a member from a hub")):
        p = sub.add_parser(verb, help=text)
        kube_flags(p)
        p.add_argument("member", nargs="?", help="the member's kubeconfig context (default: --context)")
        p.add_argument("--hub-context", default="hub", help="the hub's kubeconfig context (default hub)")
        p.add_argument("--hub-kubeconfig", help="kubeconfig of the hub (default: --kubeconfig)")
        p.add_argument("--id", help="the member's cluster id (join: created if the member has none)")
        p.add_argument("--clusterset", default=DEFAULT_CLUSTERSET)
        if verb == "join":
            p.add_argument("--hub-server", help="the hub URL the agent should use (default: as in the kubeconfig)")

    agent = sub.add_parser("agent", help="run a member's agent (reports the member to its hub)")
    kube_flags(agent)
    agent.add_argument("--hub-kubeconfig", help="the agent's hub kubeconfig (default: the member's Secret "
                       f"{SYSTEM_NAMESPACE}/{HUB_KUBECONFIG_SECRET} written by `clusterset join`)")
    agent.add_argument("--heartbeat", type=float, default=10.0)

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

    status = sub.add_parser("status", help="show the fleet: clusters, health, version, properties")
    kube_flags(status)
    status.add_argument("--clusterset", default=DEFAULT_CLUSTERSET)

    c = sub.add_parser("crds", help="print the CRDs clusterset uses, for kubectl apply -f -")
    c.add_argument("--side", choices=["hub", "member", "all"], default="all")


def server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                   help=f"where state, certificates and the kubeconfig live (default {DEFAULT_STATE_DIR})")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=None,
                   help=f"listen port (default: the port used last time in this state dir, else {DEFAULT_PORT})")
    p.add_argument("--durable", action="store_true", help="fsync every commit (survives power loss, slower)")
    p.add_argument("-v", "--verbose", action="store_true")


def kube_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", help="kubeconfig file (default: <state-dir>/kubeconfig if it exists, "
                   "else $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context")
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    p.add_argument("-v", "--verbose", action="store_true")


def previous_port(state_dir: Path) -> int | None:
    try:
        url = json.loads((state_dir / "server.json").read_text())["url"]
        return int(url.rsplit(":", 1)[1])
    except (OSError, ValueError, KeyError, IndexError):
        return None


def run(args: argparse.Namespace) -> int | None:
    """Runs a command of this module; None if `args.command` is not one of ours."""
    commands: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, int]]] = {
        "up": _up, "join": _join, "leave": _leave, "agent": _agent, "hub": _hub, "status": _status,
    }
    if args.command == "crds":
        manifests = {"hub": crds.hub_crds(), "member": crds.member_crds()}
        chosen = manifests["hub"] + manifests["member"] if args.side == "all" else manifests[args.side]
        print(yaml.safe_dump_all(chosen, sort_keys=False), end="")
        return 0
    command = commands.get(args.command)
    if command is None:
        return None
    try:
        return asyncio.run(command(args))
    except KeyboardInterrupt:
        return 0
    except (JoinRefused, CredentialError) as exc:
        print(f"clusterset {args.command}: {exc}", file=sys.stderr)
        return 1
    except ApiError as exc:
        print(f"clusterset {args.command}: {exc.status} {exc.reason}: {exc.message}", file=sys.stderr)
        return 1
    except (ConnectionFailed, OSError) as exc:
        print(f"clusterset {args.command}: {exc}", file=sys.stderr)
        return 1


def _kubeconfig(args: argparse.Namespace) -> str | None:
    if args.kubeconfig:
        return str(args.kubeconfig)
    default = args.state_dir / "kubeconfig"
    return str(default) if default.exists() else None


async def _client(path: str | None, context: str | None) -> ClusterClient:
    return await ClusterClient.from_kubeconfig(path, context)


async def _wait_for_stop() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


# ---------------------------------------------------------------------- up
async def _up(args: argparse.Namespace) -> int:
    port = args.port if args.port is not None else (previous_port(args.state_dir) or DEFAULT_PORT)
    started = time.monotonic()
    fleet = EmbeddedFleet(
        FleetOptions(args.state_dir, members=args.clusters, host=args.host, port=port, durable=args.durable,
                     clusterset=args.clusterset, heartbeat=args.heartbeat, grace=args.grace,
                     metrics_port=args.metrics_port),
        progress=lambda line: print(f"  {line} ...", flush=True),
    )
    try:
        await fleet.start()
        fleet.progress("waiting for every member to report healthy")
        await fleet.wait_healthy(timeout=max(60.0, args.clusters * 0.5))
        _print_banner(fleet, time.monotonic() - started)
        await _wait_for_stop()
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
    print(_table(rows))
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


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


# ---------------------------------------------------------------------- join / leave
async def _join(args: argparse.Namespace) -> int:
    path = _kubeconfig(args)
    member_ctx = args.member or args.context
    hub = await _client(args.hub_kubeconfig or path, args.hub_context)
    member = await _client(path, member_ctx)
    try:
        m = await join(hub, member, clusterset=args.clusterset, cluster_id=args.id, hub_server=args.hub_server)
    finally:
        await hub.close()
        await member.close()
    print(f"{m.cluster_id} joined ClusterSet {m.clusterset}: hub namespace {m.hub_namespace}; run its agent with "
          f"`clusterset agent --context {member_ctx or '<member>'}`")
    return 0


async def _leave(args: argparse.Namespace) -> int:
    path = _kubeconfig(args)
    hub = await _client(args.hub_kubeconfig or path, args.hub_context)
    member: ClusterClient | None = None
    member_ctx = args.member or args.context
    if member_ctx:  # with --id alone, a member that is gone is removed from the hub only
        member = await _client(path, member_ctx)
    try:
        cid = await leave(hub, member, args.id)
    finally:
        await hub.close()
        if member is not None:
            await member.close()
    print(f"{cid} left the ClusterSet; its ClusterProfile is deleted by the hub")
    return 0


# ---------------------------------------------------------------------- agent / hub
async def _agent(args: argparse.Namespace) -> int:
    member = await _client(_kubeconfig(args), args.context)
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
        hub = await _client(hub_path, None)
    agent = MemberAgent(cid, member, hub, hub.namespace or member_namespace(cid), heartbeat=args.heartbeat)
    manager = Manager(name="agent")
    reports = agent_controller({cid: agent})
    manager.add(reports)
    await manager.add_cluster(cid, member, owned=False)
    await manager.start()
    reports.enqueue(cid, REPORT_KEY)
    print(f"agent for {cid} reporting to {hub.server} (namespace {hub.namespace})", flush=True)
    try:
        await _wait_for_stop()
    finally:
        await manager.stop()
        await agent.close()
        await hub.close()
        await member.close()
    return 0


async def _hub(args: argparse.Namespace) -> int:
    hub = await _client(_kubeconfig(args), args.context)
    await prepare_hub(hub, args.clusterset)
    providers = tuple(AccessProvider(name, {"clusterName": "{cluster}"}) for name in args.access_provider)
    profiles = ProfileManager(hub, args.clusterset, grace_seconds=args.grace, providers=providers)
    election = LeaderElection(hub, args.clusterset, "clusterset-hub") if args.leader_elect else None
    manager = Manager(name="hub", metrics_port=args.metrics_port, leader_election=election)
    manager.add(profile_controller(profiles, "hub"))
    await manager.add_cluster("hub", hub, owned=False)
    await manager.start()
    print(f"hub controllers running against {hub.server} (ClusterSet {args.clusterset})", flush=True)
    try:
        await _wait_for_stop()
    finally:
        await manager.stop()
        await hub.close()
    return 0


# ---------------------------------------------------------------------- status
async def _status(args: argparse.Namespace) -> int:
    hub = await _client(_kubeconfig(args), args.context or "hub")
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
    return _table(rows)


def _ago(stamp: str | None, now: datetime) -> str:
    """Like kubectl's ages: 5s, 3m, 2h."""
    when = parse_time(stamp)
    if when is None:
        return "never"
    seconds = max(0, int((now - when).total_seconds()))
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m" if seconds < 7200 else f"{seconds // 3600}h"

