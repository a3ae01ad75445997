"""What RBAC sees in a request, and the rules the manifests give each ServiceAccount: to compare the grants with
the requests the controllers make."""

from __future__ import annotations

from typing import Any

from tests.deploy.pods import Seen

Grant = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)


def attributes(seen: Seen) -> Grant | None:
    """The (group, resource, verb) RBAC authorizes a request by; None for discovery and non-resource paths."""
    parts = seen.path.strip("/").split("/")
    if parts[0] == "api" and len(parts) > 2:
        group, rest = "", parts[2:]
    elif parts[0] == "apis" and len(parts) > 3:
        group, rest = parts[1], parts[3:]
    else:
        return None
    if rest[0] == "namespaces" and len(rest) > 2:
        rest = rest[2:]
    resource = rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")
    named = len(rest) > 1
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete" if named else "deletecollection"
            }.get(seen.method)
    if verb is None:
        verb = "get" if named else "watch" if "watch=true" in seen.query else "list"
    return group, resource, verb


def granted(manifest: list[dict[str, Any]], namespace: str, account: str) -> set[Grant]:
    """Every (group, resource, verb) the manifest's roles give the ServiceAccount (aggregated roles excluded: their
    rules come from elsewhere)."""
    roles = {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in manifest
             if d["kind"] in ("Role", "ClusterRole")}
    out: set[Grant] = set()
    for binding in manifest:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if {"kind": "ServiceAccount", "name": account, "namespace": namespace} not in binding["subjects"]:
            continue
        ref = binding["roleRef"]
        role = roles[(ref["kind"], binding["metadata"].get("namespace", "") if ref["kind"] == "Role" else "",
                      ref["name"])]
        for rule in role.get("rules") or []:
            out |= {(g, r, v) for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    return out
