"""label_sync: a multi-cluster controller on clusterset.runtime, in one file.

For every member cluster (every kubeconfig context but the hub's), the hub gets a ConfigMap
`label-sync-<member>` whose data maps each member namespace carrying the label `--label` (default
`team`) to that label's value. Members come and go with the kubeconfig's contexts (the embedded fleet
rewrites its kubeconfig as clusters are added); editing or deleting a hub ConfigMap is undone.

    python examples/label_sync.py --kubeconfig .clusterset/kubeconfig [--hub hub] [--label team]

What it shows: one key per member (`"labels"` in the member's cluster), triggered both by the
member's Namespaces and by the hub's ConfigMaps (`map_to` + `clusters`); the desired state is a
pure function of a cache; the hub is written only when it differs, with server-side apply.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from typing import Any

from clusterset.api.resources import CONFIG_MAPS, NAMESPACES
from clusterset.runtime import Controller, KubeconfigProvider, Manager, Request, Result, Watch
from clusterset.runtime.logs import configure

FIELD_MANAGER = "label-sync"
MANAGED = {"app.kubernetes.io/managed-by": FIELD_MANAGER}
MEMBER_LABEL = "clusterset.io/member"
KEY = "labels"  # the one key per member cluster

log = logging.getLogger("label_sync")


def desired_data(namespaces: list[dict[str, Any]], label: str) -> dict[str, str]:
    """namespace name → label value, for the namespaces that carry the label (a pure function)."""
    return {ns["metadata"]["name"]: ns["metadata"]["labels"][label] for ns in namespaces}


def desired_configmap(member: str, namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"label-sync-{member}", "namespace": namespace,
                     "labels": {**MANAGED, MEMBER_LABEL: member}},
        "data": data,
    }


class LabelSync:
    """Reconciles one member: its labelled namespaces → its ConfigMap in the hub."""

    def __init__(self, manager: Manager, hub: str, label: str, namespace: str) -> None:
        self.manager = manager
        self.hub = hub
        self.label = label
        self.namespace = namespace

    def controller(self) -> Controller:
        members = self.is_member
        return Controller(
            "label-sync",
            self.reconcile,
            [
                # any change to a member's namespaces: reconcile that member (so a member with no labelled
                # namespace still gets its, empty, ConfigMap)
                Watch(NAMESPACES, clusters=members, map_to=lambda c, _: [(c, KEY)]),
                # any change to a hub ConfigMap we manage: reconcile the member it belongs to
                Watch(CONFIG_MAPS, namespace=self.namespace, label_selector=MANAGED, clusters=self.hub,
                      map_to=self.member_of),
            ],
            workers=4,
        )

    def is_member(self, name: str) -> bool:
        return name != self.hub

    @staticmethod
    def member_of(cluster: str, configmap: dict[str, Any]) -> list[tuple[str, str]]:
        member = (configmap["metadata"].get("labels") or {}).get(MEMBER_LABEL)
        return [(member, KEY)] if member else []

    async def reconcile(self, req: Request) -> Result:
        hub = self.manager.clusters.get(self.hub)
        if hub is None:  # the hub context is not (yet) in the kubeconfig
            return Result(requeue_after=5.0)
        namespaces = req.cluster.cache(NAMESPACES)  # the informer the watch above started: shared
        configmaps = hub.cache(CONFIG_MAPS, namespace=self.namespace, label_selector=MANAGED)
        await asyncio.wait_for(asyncio.gather(namespaces.wait_synced(), configmaps.wait_synced()), 30)
        labelled = namespaces.list(label_selector=self.label)
        want = desired_configmap(req.cluster.name, self.namespace, desired_data(labelled, self.label))
        have = configmaps.get((self.namespace, want["metadata"]["name"]))
        if have is not None and (have.get("data") or {}) == want["data"]:  # the server drops an empty map
            return Result.done()  # nothing to write
        await hub.client.apply(CONFIG_MAPS, want, field_manager=FIELD_MANAGER)
        log.info("synced member=%s namespaces=%d", req.cluster.name, len(want["data"]))
        return Result.done()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", required=True, help="one context per cluster (the hub's and the members')")
    parser.add_argument("--hub", default="hub", help="the hub's context (default hub)")
    parser.add_argument("--label", default="team", help="the namespace label to copy (default team)")
    parser.add_argument("--namespace", default="default", help="the hub namespace for the ConfigMaps")
    parser.add_argument("--metrics-port", type=int, default=0, help="serve /metrics on this port (0: off)")
    parser.add_argument("--json-logs", action="store_true")
    args = parser.parse_args()
    configure(json_lines=args.json_logs)

    manager = Manager(KubeconfigProvider(args.kubeconfig), name="label-sync", metrics_port=args.metrics_port)
    manager.add(LabelSync(manager, args.hub, args.label, args.namespace).controller())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await manager.run_until(stop)


if __name__ == "__main__":
    asyncio.run(main())
