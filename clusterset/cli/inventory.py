"""`clusterset join | leave | credential-plugin`: a member's membership of a hub, and access to members."""

from __future__ import annotations

import argparse
from typing import Any

from clusterset.cli.common import DEFAULT_CLUSTERSET, async_command, kube_flags, kubeconfig_path, program
from clusterset.client import ClusterClient
from clusterset.inventory import access_plugins
from clusterset.inventory.registration import join, leave

JOIN = ("Registers a member cluster with a hub: the member's namespace on the hub, an agent identity that may "
        "write only there, the agent's hub credentials in the member (Secret clusterset-system/clusterset-hub), "
        "and its About API properties. Refused, with the reason, when the member has no id or its id is taken. "
        "A running agent of the member takes the new credentials at once.")
LEAVE = ("Removes a member from a hub: its hub namespace (and so its ClusterProfile), its credentials and its "
         "clusterset.k8s.io property. With --id alone, a member that is gone is removed from the hub only.")


def add_parsers(sub: Any) -> None:
    for verb, text, description in (("join", "register a member cluster with a hub", JOIN),
                                    ("leave", "remove a member from a hub", LEAVE)):
        p = sub.add_parser(verb, help=text, description=description)
        kube_flags(p)
        p.add_argument("member", nargs="?", help="the member's kubeconfig context (default: --context)")
        p.add_argument("--hub-context", default="hub", help="the hub's kubeconfig context (default hub)")
        p.add_argument("--hub-kubeconfig", help="kubeconfig of the hub (default: --kubeconfig)")
        p.add_argument("--id", help="the member's cluster id (join: created if the member has none)")
        p.add_argument("--clusterset", default=DEFAULT_CLUSTERSET, help="ClusterSet name (default clusterset)")
        if verb == "join":
            p.add_argument("--hub-server", help="the hub URL the agent should use (default: as in the kubeconfig)")
        p.set_defaults(run=async_command(_join if verb == "join" else _leave))

    plugin = sub.add_parser(
        "credential-plugin", help="a ClusterProfile access-provider credential plugin (exec, KEP-5339)",
        description="An exec credential plugin for ClusterProfile access providers (KEP-5339), run by a consumer's "
                    "client: reads KUBERNETES_EXEC_INFO, prints one ExecCredential. `secretreader`: the token of "
                    "the Secret <namespace>/<clusterName> of the consumer's cluster. `embedded`: a token for the "
                    "embedded fleet's cluster, from its state directory.")
    plugin.add_argument("plugin", choices=["secretreader", "embedded"], help="which plugin to run")
    plugin.set_defaults(run=lambda args: access_plugins.main(args.plugin))


async def _join(args: argparse.Namespace) -> int:
    path = kubeconfig_path(args)
    member_ctx = args.member or args.context
    hub = await ClusterClient.from_kubeconfig(args.hub_kubeconfig or path, args.hub_context)
    member = await ClusterClient.from_kubeconfig(path, member_ctx)
    try:
        m = await join(hub, member, clusterset=args.clusterset, cluster_id=args.id, hub_server=args.hub_server)
    finally:
        await hub.close()
        await member.close()
    print(f"{m.cluster_id} joined ClusterSet {m.clusterset}: hub namespace {m.hub_namespace}; run its agent with "
          f"`{program()} agent --context {member_ctx or '<member>'}`")
    return 0


async def _leave(args: argparse.Namespace) -> int:
    path = kubeconfig_path(args)
    hub = await ClusterClient.from_kubeconfig(args.hub_kubeconfig or path, args.hub_context)
    member: ClusterClient | None = None
    member_ctx = args.member or args.context
    if member_ctx:  # with --id alone, a member that is gone is removed from the hub only
        member = await ClusterClient.from_kubeconfig(path, member_ctx)
    try:
        cid = await leave(hub, member, args.id)
    finally:
        await hub.close()
        if member is not None:
            await member.close()
    print(f"{cid} left the ClusterSet; its ClusterProfile is deleted by the hub")
    return 0
