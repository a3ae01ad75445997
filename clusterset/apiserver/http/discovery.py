"""Discovery documents (legacy and aggregated apidiscovery.k8s.io/v2), built from a Registry."""

from __future__ import annotations

from typing import Any

from clusterset.apiserver.auth.reviews import is_review
from clusterset.apiserver.registry.registry import Registry, Served

SUBRESOURCE_VERBS = {
    "status": ["get", "patch", "update"],
    "scale": ["get", "patch", "update"],
    "finalize": ["update"],
    "token": ["create"],
    "log": ["get"],
    "exec": ["create", "get"],
    "attach": ["create", "get"],
    "portforward": ["create", "get"],
}
# what a connecting subresource answers with, as upstream's discovery names it (no group or version)
CONNECT_KINDS = {"exec": "PodExecOptions", "attach": "PodAttachOptions", "portforward": "PodPortForwardOptions"}


def _preferred_first(registry: Registry) -> dict[str, list[str]]:
    return registry.group_versions()


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list(registry: Registry) -> dict[str, Any]:
    groups = [_group(g, vs) for g, vs in _preferred_first(registry).items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    versions = _preferred_first(registry).get(group)
    if not versions or not group:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, versions)}


def api_resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    served = registry.in_group_version(group, version)
    if not served:
        return None
    resources: list[dict[str, Any]] = []
    for s in sorted(served, key=lambda s: s.rt.plural):
        rt = s.rt
        entry: dict[str, Any] = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": sorted(rt.verbs),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        if not is_review(rt.group, rt.plural):  # stored: its storage version named (a review is never stored)
            entry["storageVersionHash"] = rt.storage_version_hash
        resources.append(entry)
        for sub in rt.subresources:
            sub_entry: dict[str, Any] = {
                "name": f"{rt.plural}/{sub}",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": SUBRESOURCE_VERBS.get(sub, ["get"]),
            }
            if sub == "scale":
                sub_entry.update({"group": "autoscaling", "version": "v1", "kind": "Scale"})
            elif sub == "token":
                sub_entry.update({"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"})
            elif sub in CONNECT_KINDS:
                sub_entry["kind"] = CONNECT_KINDS[sub]
            resources.append(sub_entry)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


def _aggregated_resource(s: Served) -> dict[str, Any]:
    rt = s.rt
    entry: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": sorted(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    subs = []
    for sub in rt.subresources:
        kind = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        if sub == "scale":
            kind = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
        elif sub == "token":
            kind = {"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"}
        elif sub in CONNECT_KINDS:
            kind = {"group": "", "version": "", "kind": CONNECT_KINDS[sub]}
        subs.append({"subresource": sub, "responseKind": kind, "verbs": SUBRESOURCE_VERBS.get(sub, ["get"])})
    if subs:
        entry["subresources"] = subs
    return entry


def aggregated(registry: Registry, core: bool, api_version: str = "apidiscovery.k8s.io/v2") -> dict[str, Any]:
    """`/api` (core only, one item with an empty name) or `/apis` (every named group)."""
    items = []
    for group, versions in _preferred_first(registry).items():
        if bool(group) == core:
            continue
        item_versions = []
        for version in versions:
            served = sorted(registry.in_group_version(group, version), key=lambda s: s.rt.plural)
            item_versions.append(
                {"version": version, "freshness": "Current", "resources": [_aggregated_resource(s) for s in served]}
            )
        items.append({"metadata": {"name": group, "creationTimestamp": None}, "versions": item_versions})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items}


def aggregated_version(accept: str) -> str | None:
    """Which aggregated discovery version the Accept header asks for, if any (v2 preferred)."""
    for part in accept.split(","):
        params = {p.split("=", 1)[0].strip(): p.split("=", 1)[1].strip() for p in part.split(";")[1:] if "=" in p}
        wanted = params.get("g") == "apidiscovery.k8s.io" and params.get("as") == "APIGroupDiscoveryList"
        if wanted and params.get("v") in ("v2", "v2beta1"):
            return params["v"]
    return None
