"""The bootstrap RBAC policy of every logical cluster, and ClusterRole aggregation.

At creation a cluster gets kube-apiserver's essential defaults (labelled
`kubernetes.io/bootstrapping: rbac-defaults`, annotated `rbac.authorization.kubernetes.io/autoupdate`):
the ClusterRoles `cluster-admin`, `admin`, `edit`, `view` (aggregated from `system:aggregate-to-*`,
as upstream, so CRD roles labelled `rbac.authorization.k8s.io/aggregate-to-view: "true"` extend them),
`system:discovery`, `system:basic-user`, `system:public-info-viewer`, and the ClusterRoleBindings of
`cluster-admin` to `system:masters` and of the other three to `system:authenticated` (public-info
also to `system:unauthenticated`). Upstream's component roles (system:node, kube-scheduler, ...) are
left out: their components run in-process here. The `extensions` group rules are left out too.

The objects are written straight into the store from shared templates (no REST pipeline), so a new
cluster costs a few dict copies and SQLite rows. At start, clusters missing any (created by an older
version) get them, as upstream's bootstrap-roles post-start hook does (missing objects only).

`aggregate_rules` is what kube-controller-manager's clusterrole-aggregation controller computes (the
controller itself: `controllers/core/clusterroles.py`).
"""

from __future__ import annotations

import functools
from typing import Any

import orjson

from clusterset.apiserver.auth.rbac import CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, GROUP
from clusterset.apiserver.meta.errors import StatusError
from clusterset.apiserver.meta.names import new_uid
from clusterset.apiserver.meta.selectors import label_selector_from_object
from clusterset.apiserver.patch.apply import update_managed_fields
from clusterset.apiserver.patch.typeinfo import builtin_field_types
from clusterset.apiserver.storage.store import Born, ClusterStore, Obj

API_VERSION = f"{GROUP}/v1"
BOOTSTRAP_LABEL = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
AGGREGATE_TO = "rbac.authorization.k8s.io/aggregate-to-"
MANAGER = "kube-apiserver"


READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
ALL = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> Obj:
    return {"verbs": verbs, "apiGroups": groups, "resources": resources}


def _urls(urls: list[str], verbs: list[str]) -> Obj:
    return {"verbs": verbs, "nonResourceURLs": urls}


_AGGREGATE_TO_VIEW = [
    _rule([""], ["configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "pods",
                 "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services",
                 "services/status"], READ),
    _rule([""], ["bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
                 "replicationcontrollers/status", "resourcequotas", "resourcequotas/status"], READ),
    _rule([""], ["namespaces"], READ),
    _rule(["discovery.k8s.io"], ["endpointslices"], READ),
    _rule(["apps"], ["controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
                     "deployments/status", "replicasets", "replicasets/scale", "replicasets/status", "statefulsets",
                     "statefulsets/scale", "statefulsets/status"], READ),
    _rule(["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"], READ),
    _rule(["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"], READ),
    _rule(["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"], READ),
    _rule(["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"], READ),
]
_AGGREGATE_TO_EDIT = [
    _rule([""], ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"], READ),
    _rule([""], ["serviceaccounts"], ["impersonate"]),
    _rule([""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"], WRITE),
    _rule([""], ["pods/eviction"], ["create"]),
    _rule([""], ["configmaps", "events", "persistentvolumeclaims", "replicationcontrollers",
                 "replicationcontrollers/scale", "secrets", "serviceaccounts", "services", "services/proxy"], WRITE),
    _rule([""], ["serviceaccounts/token"], ["create"]),
    _rule(["apps"], ["daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets",
                     "replicasets/scale", "statefulsets", "statefulsets/scale"], WRITE),
    _rule(["autoscaling"], ["horizontalpodautoscalers"], WRITE),
    _rule(["batch"], ["cronjobs", "jobs"], WRITE),
    _rule(["policy"], ["poddisruptionbudgets"], WRITE),
    _rule(["networking.k8s.io"], ["ingresses", "networkpolicies"], WRITE),
    _rule(["coordination.k8s.io"], ["leases"], ALL),
]
_AGGREGATE_TO_ADMIN = [
    _rule(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"]),
    _rule([GROUP], ["rolebindings", "roles"], ALL),
]


def _aggregated(*selects: str) -> Obj:
    return {"clusterRoleSelectors": [{"matchLabels": {AGGREGATE_TO + s: "true"}} for s in selects]}


# (name, extra labels, rules, aggregationRule); the rules of aggregated roles are filled in below
_CLUSTER_ROLES: list[tuple[str, dict[str, str], list[Obj], Obj | None]] = [
    ("admin", {}, [], _aggregated("admin")),
    ("cluster-admin", {}, [_rule(["*"], ["*"], ["*"]), _urls(["*"], ["*"])], None),
    ("edit", {AGGREGATE_TO + "admin": "true"}, [], _aggregated("edit")),
    ("system:aggregate-to-admin", {AGGREGATE_TO + "admin": "true"}, _AGGREGATE_TO_ADMIN, None),
    ("system:aggregate-to-edit", {AGGREGATE_TO + "edit": "true"}, _AGGREGATE_TO_EDIT, None),
    ("system:aggregate-to-view", {AGGREGATE_TO + "view": "true"}, _AGGREGATE_TO_VIEW, None),
    ("system:basic-user", {}, [
        _rule(["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], ["create"]),
        _rule(["authentication.k8s.io"], ["selfsubjectreviews"], ["create"]),
    ], None),
    ("system:discovery", {}, [_urls(["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                                     "/openapi/*", "/readyz", "/version", "/version/"], ["get"])], None),
    ("system:public-info-viewer", {}, [_urls(["/healthz", "/livez", "/readyz", "/version", "/version/"],
                                             ["get"])], None),
    ("view", {AGGREGATE_TO + "edit": "true"}, [], _aggregated("view")),
]
_CLUSTER_ROLE_BINDINGS: list[tuple[str, list[str]]] = [
    ("cluster-admin", ["system:masters"]),
    ("system:basic-user", ["system:authenticated"]),
    ("system:discovery", ["system:authenticated"]),
    ("system:public-info-viewer", ["system:authenticated", "system:unauthenticated"]),
]


# ---------------------------------------------------------------- aggregation
def normal_rule(rule: Any) -> Any:
    """A rule as equality sees it (equality.Semantic: empty and missing lists are the same)."""
    if not isinstance(rule, dict):
        return rule
    return {k: v for k, v in rule.items() if v not in (None, [], "")}


def aggregate_rules(aggregation: Any, name: str, roles: list[Obj]) -> list[Obj]:
    """The rules an aggregated ClusterRole gets: each selector's matches by name, first occurrence kept."""
    rules: list[Obj] = []
    seen: set[bytes] = set()
    for selector in (aggregation or {}).get("clusterRoleSelectors") or []:
        try:
            matcher = label_selector_from_object(selector or {})
        except (ValueError, StatusError):
            continue
        for role in sorted(roles, key=lambda r: r["metadata"]["name"]):
            if role["metadata"]["name"] == name or not matcher.matches(role["metadata"].get("labels")):
                continue
            for rule in role.get("rules") or []:
                normal = orjson.dumps(normal_rule(rule), option=orjson.OPT_SORT_KEYS)
                if normal not in seen:
                    seen.add(normal)
                    rules.append(rule)
    return rules


def _templates() -> list[tuple[str, Obj]]:
    roles: list[Obj] = []
    for name, labels, rules, aggregation in _CLUSTER_ROLES:
        role: Obj = {
            "kind": "ClusterRole",
            "apiVersion": API_VERSION,
            "metadata": {"name": name, "labels": {**BOOTSTRAP_LABEL, **labels}, "annotations": dict(AUTOUPDATE)},
            "rules": rules,
        }
        if aggregation is not None:
            role["aggregationRule"] = aggregation
        roles.append(role)
    by_name = {r["metadata"]["name"]: r for r in roles}
    for name in ("view", "edit", "admin"):  # each aggregates the one before
        by_name[name]["rules"] = aggregate_rules(by_name[name]["aggregationRule"], name, roles)
    out = [(CLUSTER_ROLES, r) for r in roles]
    for name, groups in _CLUSTER_ROLE_BINDINGS:
        out.append((CLUSTER_ROLE_BINDINGS, {
            "kind": "ClusterRoleBinding",
            "apiVersion": API_VERSION,
            "metadata": {"name": name, "labels": dict(BOOTSTRAP_LABEL), "annotations": dict(AUTOUPDATE)},
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "Group", "apiGroup": GROUP, "name": g} for g in groups],
        }))
    for _, obj in out:  # managedFields as a create by kube-apiserver records them; only the time varies
        kind = obj["kind"]
        obj["metadata"]["managedFields"] = update_managed_fields(
            None, obj, manager=MANAGER, api_version=API_VERSION, now="", subresource=None,
            types=builtin_field_types(GROUP, kind), operation_is_create=True)
    return out


_TEMPLATES = _templates()
BOOTSTRAP_CLUSTER_ROLES = [obj["metadata"]["name"] for res, obj in _TEMPLATES if res == CLUSTER_ROLES]
BOOTSTRAP_CLUSTER_ROLE_BINDINGS = [obj["metadata"]["name"] for res, obj in _TEMPLATES if res == CLUSTER_ROLE_BINDINGS]


@functools.lru_cache(maxsize=1)
def _born(now: str) -> list[Born]:
    """The policy of the clusters born at `now`."""
    return [Born(resource, _instance(template, now)) for resource, template in _TEMPLATES]


def _instance(template: Obj, now: str) -> Obj:
    """A new object from a template; the template's nested values are shared (stored dicts are never mutated)."""
    meta = template["metadata"]
    obj = dict(template)
    obj["metadata"] = {
        "name": meta["name"],
        "uid": new_uid(),
        "resourceVersion": "",
        "creationTimestamp": now,
        "labels": meta["labels"],
        "annotations": meta["annotations"],
        "managedFields": [{**entry, "time": now} for entry in meta["managedFields"]],
    }
    return obj


def install(store: ClusterStore, now: str, *, new: bool = False) -> int:
    """Writes the bootstrap objects the cluster lacks (all of them for a new cluster); returns how many.

    A `new` cluster's objects predate its first event (no history rows: half the writes of a new cluster), and are
    stored as copies of the policy of every cluster born in the same second (`Born`).
    """
    written = 0
    for i, (resource, template) in enumerate(_TEMPLATES):
        if store.get(resource, "", template["metadata"]["name"]) is not None:
            continue
        if new:
            store.put_born(_born(now)[i], new_uid())
        else:
            obj = _instance(template, now)
            obj["metadata"]["resourceVersion"] = str(store.next_rv())
            store.put(resource, obj, "ADDED")
        written += 1
    return written
