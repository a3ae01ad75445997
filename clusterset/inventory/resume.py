"""Resuming members whose join is complete, without writing: the embedded fleet's restart.

`join` is idempotent but pays for it: a dozen requests per member, a new agent token and a rewritten Secret each
time. A fleet that starts again on its state directory finds its joins done, so it reads the hub's side of every
member at once (`HubMembers.read`: four lists) and each member's side from the caches of the member informers its
agent reads anyway, and its CRDs' metadata, and takes the agent token
the member already holds while it is the same ServiceAccount's and has most of its life ahead. Anything missing or
different (a CRD upgrade excepted, which `ensure_crds` applies) makes `resume` answer None: then `join`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from clusterset.api.inventory import (
    AGENT_ROLE,
    AGENT_SERVICE_ACCOUNT,
    CLUSTER_ID_PROPERTY,
    CLUSTERSET_PROPERTY,
    HUB_KUBECONFIG_SECRET,
    MEMBER_LABEL,
    MEMBER_UID_ANNOTATION,
    SYSTEM_NAMESPACE,
    member_namespace,
)
from clusterset.api.resources import CLUSTER_PROPERTIES, NAMESPACES, ROLE_BINDINGS, ROLES, SECRETS, SERVICE_ACCOUNTS
from clusterset.client import ClusterClient
from clusterset.inventory.agent import TOKEN_RENEW_AT
from clusterset.inventory.controllers import HUB_SECRET_SELECTOR
from clusterset.inventory.registration import (
    Membership,
    agent_kubeconfig,
    agent_role,
    agent_role_binding,
    ensure_member_crds,
    hub_kubeconfig_of,
    merged_reader_binding,
    property_values,
)
from clusterset.runtime import Cluster

Obj = dict[str, Any]


@dataclass(frozen=True)
class HubMembers:
    """What the hub holds of every member's join, by namespace."""

    namespaces: Mapping[str, Obj]
    service_accounts: Mapping[str, Obj]
    roles: Mapping[str, Obj]
    bindings: Mapping[tuple[str, str], Obj]

    @classmethod
    async def read(cls, hub: ClusterClient) -> HubMembers:
        namespaces, accounts, roles, bindings = await asyncio.gather(
            hub.list(NAMESPACES, label_selector=MEMBER_LABEL),
            hub.list(SERVICE_ACCOUNTS, field_selector=f"metadata.name={AGENT_SERVICE_ACCOUNT}"),
            hub.list(ROLES, field_selector=f"metadata.name={AGENT_ROLE}"),
            hub.list(ROLE_BINDINGS))
        return cls(
            {o["metadata"]["name"]: o for o in namespaces.get("items") or []},
            {o["metadata"]["namespace"]: o for o in accounts.get("items") or []},
            {o["metadata"]["namespace"]: o for o in roles.get("items") or []},
            {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in bindings.get("items") or []})

    def agent_uid(self, cluster_id: str, member_uid: str, clusterset: str) -> str | None:
        """The uid of the member's agent ServiceAccount if the hub's side of its join is complete and the member's
        (told by its kube-system uid), else None."""
        namespace = member_namespace(cluster_id)
        ns = self.namespaces.get(namespace)
        if ns is None or ns["metadata"].get("deletionTimestamp"):
            return None
        meta = ns["metadata"]
        if (meta.get("labels") or {}).get(MEMBER_LABEL) != cluster_id \
                or (meta.get("annotations") or {}).get(MEMBER_UID_ANNOTATION) != member_uid:
            return None
        role = self.roles.get(namespace)
        if role is None or role.get("rules") != agent_role(namespace)["rules"]:
            return None
        for want in (agent_role_binding(namespace), merged_reader_binding(clusterset, cluster_id)):
            have = self.bindings.get((want["metadata"]["namespace"], want["metadata"]["name"]))
            if have is None or have.get("roleRef") != want["roleRef"] or have.get("subjects") != want["subjects"]:
                return None
        account = self.service_accounts.get(namespace)
        return str(account["metadata"]["uid"]) if account is not None else None


async def resume(hub_members: HubMembers, hub: ClusterClient, member: ClusterClient, reads: Cluster, *,
                 clusterset: str, cluster_id: str, hub_server: str | None = None) -> Membership | None:
    """The member's membership as its complete join left it, or None (then `join`). Writes only CRD upgrades.
    `reads`: the member's informers, which its agent reads anyway; the member's side is read from their caches."""
    await ensure_member_crds(member)
    side = await _member_side(reads, member.config.timeout)
    if side is None:
        return None
    props, uid, secret = side
    if props.get(CLUSTER_ID_PROPERTY) != cluster_id or props.get(CLUSTERSET_PROPERTY) != clusterset:
        return None
    account_uid = hub_members.agent_uid(cluster_id, uid, clusterset)
    kubeconfig = hub_kubeconfig_of(secret)
    if account_uid is None or kubeconfig is None:
        return None
    try:
        token = str(kubeconfig["users"][0]["user"]["token"])
    except (KeyError, IndexError, TypeError):
        return None
    namespace = member_namespace(cluster_id)
    if kubeconfig != agent_kubeconfig(hub, hub_server or hub.server, namespace, token) \
            or not _fresh(token, account_uid):
        return None
    return Membership(cluster_id, clusterset, namespace, kubeconfig)


MemberSide = tuple[Mapping[str, str | None], str, Obj | None]  # properties, kube-system's uid, the hub Secret


async def _member_side(reads: Cluster, timeout: float) -> MemberSide | None:
    """The member's side from the views its agent watches (the same keys, so the same informers); None when they do
    not load in `timeout` (then `join`, which asks)."""
    props = reads.cache(CLUSTER_PROPERTIES)
    namespaces = reads.cache(NAMESPACES)
    secrets = reads.cache(SECRETS, SYSTEM_NAMESPACE, field_selector=HUB_SECRET_SELECTOR)
    try:
        await asyncio.wait_for(asyncio.gather(*(c.synced.wait() for c in (props, namespaces, secrets))), timeout)
    except TimeoutError:
        return None
    kube_system = namespaces.get("kube-system")
    if kube_system is None:
        return None
    return (property_values(props.list()), str(kube_system["metadata"]["uid"]),
            secrets.get((SYSTEM_NAMESPACE, HUB_KUBECONFIG_SECRET)))


def _fresh(token: str, account_uid: str) -> bool:
    """The token is the ServiceAccount's (its uid: not one deleted and made again) and younger than the agent's
    renewal point. Read without verifying: it is the fleet's own credential, kept in its own member."""
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        issued, expires = float(claims["iat"]), float(claims["exp"])
        uid = claims["kubernetes.io"]["serviceaccount"]["uid"]
    except (IndexError, ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        return False
    return uid == account_uid and time.time() < issued + TOKEN_RENEW_AT * (expires - issued)
