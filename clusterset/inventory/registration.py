"""`clusterset join` and `clusterset leave`: the authority above a member that admits it into the set.

Joining gives the member a hub namespace (`clusterset-<id>`) and an agent identity that can write only
there: a ServiceAccount with a Role and RoleBinding, and a token from TokenRequest — the same objects on
the embedded hub as on a real one. The hub's credentials for the agent go into the member as a Secret,
and the member gets `clusterset.k8s.io` (KEP-2149: it exists exactly while the cluster is a member).
A join is refused, with what to do, when the member has no id or another member already uses it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from clusterset.api import crds
from clusterset.api.inventory import (
    AGENT_ROLE,
    AGENT_SERVICE_ACCOUNT,
    CLUSTER_ID_PROPERTY,
    CLUSTER_REPORTS,
    CLUSTERSET_NAMESPACE_LABEL,
    CLUSTERSET_PROPERTY,
    FIELD_MANAGER,
    HUB_KUBECONFIG_SECRET,
    MEMBER_LABEL,
    MEMBER_SERVER_ANNOTATION,
    MEMBER_UID_ANNOTATION,
    SYSTEM_NAMESPACE,
    cluster_id_problem,
    member_namespace,
)
from clusterset.api.mcs import CLUSTERSET_ENDPOINTS, CLUSTERSET_SERVICES, EXPORTED_ENDPOINTS, EXPORTED_SERVICES
from clusterset.api.placement import APPLIED_WORKS, WORK_CLEANUP_FINALIZER, WORKS
from clusterset.api.resources import (
    CLUSTER_PROPERTIES,
    CRDS,
    LEASES,
    NAMESPACES,
    ROLE_BINDINGS,
    ROLES,
    SECRETS,
    SERVICE_ACCOUNTS,
    Resource,
)
from clusterset.client import ClusterClient
from clusterset.client.errors import AlreadyExists, NotFound
from clusterset.client.kubeconfig import parse_kubeconfig
from clusterset.inventory.endpoint import endpoint_of
from clusterset.runtime.roles import ensure_role

log = logging.getLogger(__name__)

AGENT_TOKEN_SECONDS = 365 * 24 * 3600
MANIFEST_ANNOTATION = "clusterset.io/manifest-digest"
READ_WRITE = ["get", "list", "watch", "create", "update", "patch", "delete"]
MERGED_READER_ROLE = "clusterset-agent-mcs-reader"


class JoinRefused(Exception):
    """The member cannot join as asked; the message says why and what to do."""


@dataclass
class Membership:
    cluster_id: str
    clusterset: str
    hub_namespace: str
    agent_kubeconfig: dict[str, Any]


def with_digest(crd: dict[str, Any]) -> dict[str, Any]:
    """The CRD annotated with the digest of its content: what `ensure_crds` installs, and what the manifests
    (deploy/) carry, so that a join finds them current."""
    digest = hashlib.sha256(orjson.dumps(crd, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    return {**crd, "metadata": {**crd["metadata"], "annotations": {
        **(crd["metadata"].get("annotations") or {}), MANIFEST_ANNOTATION: digest}}}


async def ensure_crds(client: ClusterClient, manifests: list[dict[str, Any]]) -> None:
    """Install or update CRDs: a GET of each one's metadata first (applying a large CRD is costly, and joins repeat
    it; a list would read every CRD of a real cluster), then only what is missing (created) or changed (applied), at
    once."""
    await _ensure_digested(client, [with_digest(crd) for crd in manifests])


async def ensure_member_crds(member: ClusterClient) -> None:
    """`ensure_crds` of the member CRDs, digested once per process: every join and resume of a fleet needs them.
    A member that has them as `member_crd_manifests` says (the embedded fleet's are created with them) gets no
    write."""
    await _ensure_digested(member, member_crd_manifests())


@functools.cache
def member_crd_manifests() -> list[dict[str, Any]]:
    """The member CRDs as a join installs them (digested, created by FIELD_MANAGER). Shared by every join: never
    changed, only sent."""
    return [with_digest(crd) for crd in crds.member_crds()]


async def _ensure_digested(client: ClusterClient, wanted: list[dict[str, Any]]) -> None:
    # their metadata only: the digest annotation is all that is compared, and a CRD's schema is most of its size
    have = await asyncio.gather(*(get_or_none(client, CRDS, crd["metadata"]["name"], metadata_only=True)
                                  for crd in wanted))
    writes = []
    for crd, current in zip(wanted, have, strict=True):
        digest = crd["metadata"]["annotations"][MANIFEST_ANNOTATION]
        if current is not None and (current["metadata"].get("annotations") or {}).get(MANIFEST_ANNOTATION) == digest:
            continue
        writes.append(_install_crd(client, crd, current is None))
    await asyncio.gather(*writes)


async def _install_crd(client: ClusterClient, crd: dict[str, Any], missing: bool) -> None:
    if missing:
        try:  # a create costs less than an apply; a later apply (forced) takes the fields over
            await client.create(CRDS, crd, field_manager=FIELD_MANAGER)
            return
        except AlreadyExists:
            pass
    await client.apply(CRDS, crd, FIELD_MANAGER)


async def prepare_hub(hub: ClusterClient, clusterset: str) -> None:
    """What every join needs on the hub: the CRDs and the ClusterSet's labelled namespace, and the Role agents read
    the merged services with. Read first, written only when different: on a hub installed from the manifests
    (deploy/hub) the hub controllers' ServiceAccount may only read them."""
    await ensure_crds(hub, crds.hub_crds())
    labels = {CLUSTERSET_NAMESPACE_LABEL: clusterset}
    ns = await get_or_none(hub, NAMESPACES, clusterset)
    if ns is None:
        await _create(hub, NAMESPACES, {"metadata": {"name": clusterset, "labels": labels}})
    else:
        current = (ns["metadata"].get("labels") or {}).get(CLUSTERSET_NAMESPACE_LABEL)
        if current is None:  # an existing namespace of that name becomes the ClusterSet's
            await hub.patch(NAMESPACES, clusterset, {"metadata": {"labels": labels}})
        elif current != clusterset:
            raise JoinRefused(f"the hub's namespace {clusterset!r} holds ClusterSet {current!r} "
                              f"({CLUSTERSET_NAMESPACE_LABEL}); choose another --clusterset name")
    await ensure_role(hub, ROLES, merged_reader_role(clusterset), FIELD_MANAGER)


async def get_or_none(client: ClusterClient, res: Resource, name: str, namespace: str | None = None, *,
                      metadata_only: bool = False) -> dict[str, Any] | None:
    """The object (`metadata_only`: only its metadata, a PartialObjectMetadata), or None if there is none."""
    try:
        if metadata_only:
            return await client.get_metadata(res, name, namespace)
        return await client.get(res, name, namespace)
    except NotFound:
        return None


async def _create(client: ClusterClient, res: Resource, obj: dict[str, Any]) -> None:
    with contextlib.suppress(AlreadyExists):
        await client.create(res, obj, field_manager=FIELD_MANAGER)


def _property(name: str, value: str) -> dict[str, Any]:
    return {"apiVersion": "about.k8s.io/v1beta1", "kind": "ClusterProperty", "metadata": {"name": name},
            "spec": {"value": value}}


async def member_id(member: ClusterClient) -> str | None:
    return await _property_value(member, CLUSTER_ID_PROPERTY)


async def clusterset_of(member: ClusterClient) -> str | None:
    """The ClusterSet a member belongs to (`clusterset.k8s.io`): also its namespace on the hub."""
    return await _property_value(member, CLUSTERSET_PROPERTY)


async def _property_value(member: ClusterClient, name: str) -> str | None:
    prop = await get_or_none(member, CLUSTER_PROPERTIES, name)
    return property_value(prop) if prop is not None else None


def property_value(prop: Mapping[str, Any]) -> str | None:
    """A ClusterProperty's value (None: not a string)."""
    value = (prop.get("spec") or {}).get("value")
    return value if isinstance(value, str) else None


async def properties(member: ClusterClient) -> dict[str, str | None]:
    """The member's ClusterProperties, name → value (None: not a string), in one list."""
    try:
        items = (await member.list(CLUSTER_PROPERTIES)).get("items") or []
    except NotFound:  # the CRD is not served (yet)
        return {}
    return property_values(items)


def property_values(props: Iterable[Mapping[str, Any]]) -> dict[str, str | None]:
    """ClusterProperties by name → value (None: not a string)."""
    return {str(prop["metadata"]["name"]): property_value(prop) for prop in props}


async def cluster_uid(member: ClusterClient) -> str:
    """The member's identity across ids: kube-system's uid, as KEP-2149 suggests for ids."""
    ns = await member.get(NAMESPACES, "kube-system")
    return str(ns["metadata"]["uid"])


async def join(
    hub: ClusterClient,
    member: ClusterClient,
    *,
    clusterset: str,
    cluster_id: str | None = None,
    hub_server: str | None = None,
    hub_prepared: bool = False,
    member_prepared: bool = False,
    token_seconds: int = AGENT_TOKEN_SECONDS,
) -> Membership:
    """Register `member` in `clusterset` on `hub`. Idempotent for the same member; refuses a taken id.

    `hub_prepared`: the caller already ran `prepare_hub` (the embedded fleet joins many members).
    `member_prepared`: the member has the member CRDs as `member_crd_manifests` says (the embedded fleet creates its
    members with them), so they are not looked at.
    `token_seconds`: the agent token's lifetime (the agent renews it before it expires).
    Writes that do not depend on each other are sent together (a join is a dozen of them)."""
    if not member_prepared:
        await ensure_member_crds(member)
    props, uid = await asyncio.gather(properties(member), cluster_uid(member))
    existing_id = props.get(CLUSTER_ID_PROPERTY)
    if existing_id is None and cluster_id is None:
        raise JoinRefused(
            f"{member.name or member.server} has no ClusterProperty {CLUSTER_ID_PROPERTY} (its cluster id); "
            f"give it one with `clusterset join --id <dns-label>` or create it: kubectl create -f - <<< "
            f"'{{\"apiVersion\": \"about.k8s.io/v1beta1\", \"kind\": \"ClusterProperty\", "
            f"\"metadata\": {{\"name\": \"{CLUSTER_ID_PROPERTY}\"}}, \"spec\": {{\"value\": \"<id>\"}}}}'"
        )
    if existing_id is not None and cluster_id is not None and cluster_id != existing_id:
        raise JoinRefused(
            f"{member.name or member.server} already has the id {existing_id!r} ({CLUSTER_ID_PROPERTY}); "
            f"join without --id, or change the property first (allowed only while not in a ClusterSet)"
        )
    cid = existing_id or cluster_id
    assert cid is not None
    problem = cluster_id_problem(cid)
    if problem is not None:
        raise JoinRefused(f"cluster id {cid!r} {problem}; fix {CLUSTER_ID_PROPERTY} and retry")
    in_set = CLUSTERSET_PROPERTY in props
    current_value = props.get(CLUSTERSET_PROPERTY)
    if in_set and current_value != clusterset:
        raise JoinRefused(
            f"cluster {cid!r} is already a member of ClusterSet {current_value!r} ({CLUSTERSET_PROPERTY}); "
            f"run `clusterset leave` for it first"
        )

    namespace = member_namespace(cid)
    _check_member_namespace(await get_or_none(hub, NAMESPACES, namespace), cid, uid)
    if not hub_prepared:
        await prepare_hub(hub, clusterset)

    async def member_id_property() -> None:
        if existing_id is None:
            await member.create(CLUSTER_PROPERTIES, _property(CLUSTER_ID_PROPERTY, cid), field_manager=FIELD_MANAGER)

    async def hub_side() -> str:
        try:
            await hub.create(NAMESPACES, {"metadata": {
                "name": namespace,
                "labels": {MEMBER_LABEL: cid},
                "annotations": {MEMBER_UID_ANNOTATION: uid, MEMBER_SERVER_ANNOTATION: member.server},
            }}, field_manager=FIELD_MANAGER)
            fresh = True
        except AlreadyExists:  # ours from an earlier join, or another cluster's joining with the same id just now
            _check_member_namespace(await get_or_none(hub, NAMESPACES, namespace), cid, uid)
            fresh = False

        async def put(res: Resource, obj: dict[str, Any]) -> None:
            """Created in a namespace this join made (nothing can be there yet; a create costs half an apply),
            else applied over what an earlier join left."""
            if fresh:
                with contextlib.suppress(AlreadyExists):
                    await hub.create(res, obj, field_manager=FIELD_MANAGER)
                    return
            await hub.apply(res, obj, FIELD_MANAGER)

        await asyncio.gather(
            _create(hub, SERVICE_ACCOUNTS, {"metadata": {"name": AGENT_SERVICE_ACCOUNT, "namespace": namespace}}),
            put(ROLES, agent_role(namespace)),
            put(ROLE_BINDINGS, agent_role_binding(namespace)),
            hub.apply(ROLE_BINDINGS, merged_reader_binding(clusterset, cid), FIELD_MANAGER))
        return await request_token(hub, namespace, AGENT_SERVICE_ACCOUNT, token_seconds)

    token, _ = await asyncio.gather(hub_side(), member_id_property())
    kubeconfig = agent_kubeconfig(hub, hub_server or hub.server, namespace, token)

    async def credentials() -> None:
        await _create(member, NAMESPACES, {"metadata": {"name": SYSTEM_NAMESPACE}})
        await store_hub_kubeconfig(member, kubeconfig)

    async def membership_property() -> None:  # after the id (the About API refuses it before)
        if not in_set:
            await member.create(CLUSTER_PROPERTIES, _property(CLUSTERSET_PROPERTY, clusterset),
                                field_manager=FIELD_MANAGER)

    await asyncio.gather(credentials(), membership_property())
    log.info("joined cluster=%s clusterset=%s hub_namespace=%s", cid, clusterset, namespace)
    return Membership(cid, clusterset, namespace, kubeconfig)


def _check_member_namespace(ns: dict[str, Any] | None, cid: str, uid: str) -> None:
    """Refuses when the member's hub namespace is another cluster's (told apart by kube-system's uid)."""
    if ns is None:
        return
    annotations = ns["metadata"].get("annotations") or {}
    if ns["metadata"].get("deletionTimestamp"):
        raise JoinRefused(f"member {cid!r} is still leaving the ClusterSet; retry in a few seconds")
    if annotations.get(MEMBER_UID_ANNOTATION) != uid:
        where = annotations.get(MEMBER_SERVER_ANNOTATION, "another cluster")
        raise JoinRefused(
            f"the cluster id {cid!r} is already used by another member of the ClusterSet (at {where}); "
            f"give this cluster a different {CLUSTER_ID_PROPERTY}, or run `clusterset leave` for the other one"
        )


async def leave(hub: ClusterClient | None, member: ClusterClient | None, cluster_id: str | None = None) -> str:
    """Undo a join. Either side may be gone: a dead member can still be removed from the hub by id."""
    if cluster_id is None:
        if member is None:
            raise JoinRefused("leave needs the member's kubeconfig context or its --id")
        cluster_id = await member_id(member)
        if cluster_id is None:
            raise JoinRefused(f"{member.name or member.server} has no {CLUSTER_ID_PROPERTY}; it is not a member")
    elif member is not None and (actual := await member_id(member)) not in (None, cluster_id):
        raise JoinRefused(f"{member.name or member.server} has the id {actual!r}, not {cluster_id!r}; "
                          f"nothing was changed")
    namespace = member_namespace(cluster_id)
    if hub is not None and member is not None:
        ns = await get_or_none(hub, NAMESPACES, namespace)
        annotations = (ns["metadata"].get("annotations") or {}) if ns is not None else {}
        owner = annotations.get(MEMBER_UID_ANNOTATION)
        if owner is not None and owner != await cluster_uid(member):  # same id, another cluster: not ours to undo
            where = annotations.get(MEMBER_SERVER_ANNOTATION, "another cluster")
            raise JoinRefused(
                f"the hub's member {cluster_id!r} is another cluster (at {where}), so "
                f"{member.name or member.server} is not a member of this hub; nothing was changed"
            )
    if member is not None:
        with contextlib.suppress(NotFound):  # first: membership ends, so the id may change again
            await member.delete(CLUSTER_PROPERTIES, CLUSTERSET_PROPERTY)
        with contextlib.suppress(NotFound):
            await member.delete(SECRETS, HUB_KUBECONFIG_SECRET, SYSTEM_NAMESPACE)
    await end_works(hub, member, namespace)
    if hub is not None:
        bindings = await hub.list(ROLE_BINDINGS, label_selector=f"{MEMBER_LABEL}={cluster_id}")
        for binding in bindings.get("items") or []:
            with contextlib.suppress(NotFound):
                await hub.delete(ROLE_BINDINGS, binding["metadata"]["name"], binding["metadata"]["namespace"])
        with contextlib.suppress(NotFound):
            await hub.delete(NAMESPACES, namespace)
    log.info("left cluster=%s", cluster_id)
    return cluster_id


async def end_works(hub: ClusterClient | None, member: ClusterClient | None, namespace: str) -> None:
    """The Works of a member that leaves (or whose cluster is gone) end on both sides: on the hub they are deleted
    without waiting for their finalizer (the agent, cut off, could never run it, and the namespace, or a WorkSet
    being deleted, would stay Terminating), and on the member their AppliedWorks are deleted, so the garbage
    collector removes what they applied there."""
    if hub is not None:
        with contextlib.suppress(NotFound):  # NotFound: a hub without the Work CRD
            for work in (await hub.list(WORKS, namespace)).get("items") or []:
                name = work["metadata"]["name"]
                with contextlib.suppress(NotFound):
                    await hub.delete(WORKS, name, namespace)
                    finalizers = (await hub.get(WORKS, name, namespace))["metadata"].get("finalizers") or []
                    if WORK_CLEANUP_FINALIZER in finalizers:
                        rest = [f for f in finalizers if f != WORK_CLEANUP_FINALIZER]
                        await hub.patch(WORKS, name, {"metadata": {"finalizers": rest or None}}, namespace)
    if member is not None:
        with contextlib.suppress(NotFound):  # a member without the AppliedWork CRD
            for applied in (await member.list(APPLIED_WORKS)).get("items") or []:
                if (applied.get("spec") or {}).get("workNamespace") == namespace:
                    with contextlib.suppress(NotFound):
                        await member.delete(APPLIED_WORKS, applied["metadata"]["name"])


async def store_hub_kubeconfig(member: ClusterClient, kubeconfig: dict[str, Any]) -> None:
    """The agent's hub credentials, in the member: where `clusterset agent` finds them when it (re)starts. Written as
    JSON, which is YAML to any kubeconfig reader and read back by orjson (a fleet's restart reads one per member)."""
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": {"name": HUB_KUBECONFIG_SECRET, "namespace": SYSTEM_NAMESPACE},
              "type": "Opaque",
              "data": {"kubeconfig": base64.b64encode(orjson.dumps(kubeconfig, option=orjson.OPT_INDENT_2)).decode()}}
    await member.apply(SECRETS, secret, FIELD_MANAGER)


def hub_kubeconfig_of(secret: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The agent's hub kubeconfig that `store_hub_kubeconfig` put in the Secret, or None if it holds none."""
    try:
        data = base64.b64decode((secret or {})["data"]["kubeconfig"])
        return parse_kubeconfig(data, f"Secret {SYSTEM_NAMESPACE}/{HUB_KUBECONFIG_SECRET}") or None
    except (KeyError, TypeError, ValueError):
        return None


async def request_token(client: ClusterClient, namespace: str, service_account: str, seconds: int) -> str:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": seconds}}
    out = await client.request("POST", SERVICE_ACCOUNTS.path(namespace, service_account, "token"), body=body)
    return str(out["status"]["token"])


def agent_role(namespace: str) -> dict[str, Any]:
    """What an agent may do in its own hub namespace: its report, its MCS records, its Works, and renew its own
    token."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": AGENT_ROLE, "namespace": namespace},
        "rules": [
            {"apiGroups": [CLUSTER_REPORTS.group], "resources": [CLUSTER_REPORTS.plural], "verbs": READ_WRITE},
            # Multi-Cluster Services: its exports, their endpoints, and the Lease that keeps them imported
            {"apiGroups": [EXPORTED_SERVICES.group], "resources": [EXPORTED_SERVICES.plural, EXPORTED_ENDPOINTS.plural],
             "verbs": READ_WRITE},
            {"apiGroups": [LEASES.group], "resources": [LEASES.plural], "verbs": READ_WRITE},
            # Work: the Works it applies (their finalizer) and their status; it never creates or deletes them
            {"apiGroups": [WORKS.group], "resources": [WORKS.plural], "verbs": ["get", "list", "watch", "update",
                                                                               "patch"]},
            {"apiGroups": [WORKS.group], "resources": [f"{WORKS.plural}/status"], "verbs": ["update", "patch"]},
            # its own token, renewed before it expires
            {"apiGroups": [""], "resources": ["serviceaccounts/token"], "resourceNames": [AGENT_SERVICE_ACCOUNT],
             "verbs": ["create"]},
        ],
    }


def agent_watches(namespace: str, clusterset: str) -> Callable[[Resource, str], bool]:
    """What the agent of hub namespace `namespace` may list and watch on the hub, by its own Roles: (resource,
    namespace) → bool. The embedded fleet serves exactly these from informers its agents share."""
    roles = {namespace: agent_role(namespace), clusterset: merged_reader_role(clusterset)}

    def may(resource: Resource, where: str) -> bool:
        role = roles.get(where)
        return role is not None and any(
            resource.group in rule.get("apiGroups", ()) and resource.plural in rule.get("resources", ())
            and not rule.get("resourceNames") and {"list", "watch"} <= set(rule.get("verbs", ()))
            for rule in role["rules"])

    return may


def agent_role_binding(namespace: str, role_namespace: str | None = None, role: str = AGENT_ROLE,
                       name: str = AGENT_ROLE) -> dict[str, Any]:
    """Binds the agent of the member namespace `namespace` to `role` in `role_namespace` (default: its own)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": role_namespace or namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": AGENT_SERVICE_ACCOUNT, "namespace": namespace}],
    }


def merged_reader_role(clusterset: str) -> dict[str, Any]:
    """What every agent may read in the ClusterSet's namespace: the merged multi-cluster services (what it imports),
    nothing else there."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": MERGED_READER_ROLE, "namespace": clusterset},
        "rules": [{"apiGroups": [CLUSTERSET_SERVICES.group],
                   "resources": [CLUSTERSET_SERVICES.plural, CLUSTERSET_ENDPOINTS.plural],
                   "verbs": ["get", "list", "watch"]}],
    }


def merged_reader_binding(clusterset: str, cluster_id: str) -> dict[str, Any]:
    """Outside the member's namespace, so labelled with its id: `leave` finds and deletes it."""
    binding = agent_role_binding(member_namespace(cluster_id), clusterset, MERGED_READER_ROLE,
                                 f"{AGENT_ROLE}-{cluster_id}")
    binding["metadata"]["labels"] = {MEMBER_LABEL: cluster_id}
    return binding


def agent_kubeconfig(hub: ClusterClient, server: str, namespace: str, token: str) -> dict[str, Any]:
    """A kubeconfig for the agent: the hub's endpoint and CA, the agent's token, its namespace."""
    cluster = {**endpoint_of(hub), "server": server}
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "hub",
        "clusters": [{"name": "hub", "cluster": cluster}],
        "users": [{"name": AGENT_SERVICE_ACCOUNT, "user": {"token": token}}],
        "contexts": [
            {"name": "hub", "context": {"cluster": "hub", "user": AGENT_SERVICE_ACCOUNT, "namespace": namespace}}
        ],
    }
