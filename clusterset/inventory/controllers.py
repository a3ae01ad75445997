"""The inventory's reconcilers wired to the runtime: what triggers them and what they read."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from clusterset.api.inventory import (
    CLUSTER_REPORTS,
    HUB_KUBECONFIG_SECRET,
    MEMBER_LABEL,
    SYSTEM_NAMESPACE,
    member_namespace,
    member_of_namespace,
)
from clusterset.api.mcs import ENDPOINT_LEASE, ENDPOINT_LEASE_SELECTOR
from clusterset.api.resources import CLUSTER_PROFILES, CLUSTER_PROPERTIES, LEASES, NAMESPACES, SECRETS, Resource
from clusterset.client.errors import Forbidden, NotFound, Unauthorized
from clusterset.inventory.agent import MemberAgent
from clusterset.inventory.profiles import ProfileManager
from clusterset.runtime import Controller, Event, RateLimiter, Request, Result, Watch
from clusterset.runtime.hubview import member_of

log = logging.getLogger(__name__)

REPORT_KEY = "report"
REFUSED_RETRY_SECONDS = 60.0
# a failed report is retried within this (the default backoff reaches 300 s: after a long hub outage its
# members would stay Unknown for minutes after the hub came back)
REPORT_RETRY_MAX_SECONDS = 30.0
# the agent's hub credentials in its member (in SYSTEM_NAMESPACE), as `clusterset join` and its renewals write them
HUB_SECRET_SELECTOR = f"metadata.name={HUB_KUBECONFIG_SECRET}"


def _member_of_namespace(_cluster: str, obj: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    cid = (obj.get("metadata", {}).get("labels") or {}).get(MEMBER_LABEL)
    return [(_cluster, cid)] if cid else []


def _member_by_name(_cluster: str, obj: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    return [(_cluster, obj["metadata"]["name"])]


def _member_of_lease(_cluster: str, obj: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    cid = member_of_namespace(str(obj.get("metadata", {}).get("namespace") or ""))
    return [(_cluster, cid)] if cid else []


def profile_controller(manager: ProfileManager, hub: str = "hub", workers: int = 4) -> Controller:
    """Hub: one key per member id; triggered by its hub namespace, its report, its agent's Lease and its profile."""

    async def reconcile(req: Request) -> Result | None:
        cid = req.name
        ns_name = member_namespace(cid)
        member_ns = req.cluster.cache(NAMESPACES, label_selector=MEMBER_LABEL).get(ns_name)
        report = req.cluster.cache(CLUSTER_REPORTS).get((ns_name, cid))
        lease = req.cluster.cache(LEASES, field_selector=ENDPOINT_LEASE_SELECTOR).get((ns_name, ENDPOINT_LEASE))
        profile = req.cluster.cache(CLUSTER_PROFILES, namespace=manager.namespace).get((manager.namespace, cid))
        wait = await manager.reconcile(cid, member_ns, report, profile, lease)
        return Result(requeue_after=wait) if wait is not None else None

    return Controller(
        "inventory-profiles",
        reconcile,
        [
            Watch(NAMESPACES, label_selector=MEMBER_LABEL, map_to=_member_of_namespace),
            Watch(CLUSTER_REPORTS, map_to=_member_by_name),
            Watch(LEASES, field_selector=ENDPOINT_LEASE_SELECTOR, map_to=_member_of_lease),
            Watch(CLUSTER_PROFILES, namespace=manager.namespace, map_to=_member_by_name),
        ],
        clusters=hub,
        workers=workers,
    )


def agent_controller(agents: Mapping[str, MemberAgent], stop: Callable[[MemberAgent], None],
                     own_namespace: Callable[[str], str | None], workers: int = 4) -> Controller:
    """Members: one key per member; a ClusterProperty change reports at once, else every heartbeat; a change of
    the member's hub credentials, or its report or Lease deleted on the hub (`own_namespace(view)`: the member's
    namespace there), at once too. After the last report of a member that is gone, `stop(agent)`."""
    refused: set[str] = set()

    async def reconcile(req: Request) -> Result | None:
        agent = agents.get(req.cluster.name)
        if agent is None:
            return None
        hub_secret = req.cluster.cache(SECRETS, SYSTEM_NAMESPACE, field_selector=HUB_SECRET_SELECTOR)
        agent.follow_member_copy(hub_secret.get((SYSTEM_NAMESPACE, HUB_KUBECONFIG_SECRET)))
        try:
            wait = await agent.report(req.cluster.cache(CLUSTER_PROPERTIES))
        except (Unauthorized, Forbidden, NotFound) as exc:
            if agent.gone is not None:  # its last word is refused too: stop all the same
                stop(agent)
                return None
            # the hub refuses this agent: it left the set, or (on a real hub) its new RoleBinding has not
            # reached the authorizer yet. Say why once; ask again rarely rather than never
            if agent.cluster_id not in refused:
                log.warning("agent refused by the hub cluster=%s reason=%s; retrying every %gs",
                            agent.cluster_id, exc, REFUSED_RETRY_SECONDS)
                refused.add(agent.cluster_id)
            return Result(requeue_after=REFUSED_RETRY_SECONDS)
        if agent.cluster_id in refused:
            refused.discard(agent.cluster_id)
            log.info("agent accepted by the hub again cluster=%s", agent.cluster_id)
        if agent.gone is not None:
            stop(agent)
            return None
        return Result(requeue_after=wait)

    def report_key(cluster: str, _obj: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
        return [(cluster, REPORT_KEY)]

    def is_view(name: str) -> bool:
        return own_namespace(name) is not None

    def deleted(resource: Resource) -> Callable[[str, Mapping[str, Any]], Iterable[tuple[str, str]]]:
        """Its report or Lease deleted on the hub: the agent writes it again at once."""
        def keys(view: str, obj: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
            member = member_of(view) or ""
            agent = agents.get(member)
            if agent is None:
                return []
            agent.deleted(resource, str(obj.get("metadata", {}).get("name")))
            return [(member, REPORT_KEY)]
        return keys

    def is_deleted(event: Event) -> bool:
        return event.type == "DELETED"

    return Controller(
        "inventory-agent",
        reconcile,
        [Watch(CLUSTER_PROPERTIES, map_to=report_key),
         Watch(SECRETS, namespace=SYSTEM_NAMESPACE, field_selector=HUB_SECRET_SELECTOR, map_to=report_key),
         *(Watch(resource, namespace=own_namespace, clusters=is_view, predicate=is_deleted, map_to=deleted(resource))
           for resource in (CLUSTER_REPORTS, LEASES))],
        clusters=lambda name: name in agents,
        workers=workers,
        rate_limiter=RateLimiter(max_delay=REPORT_RETRY_MAX_SECONDS),
    )
