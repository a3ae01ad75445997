"""RBAC escalation prevention: nobody grants more than it holds (kube-apiserver's policybased RBAC storages).

- A Role or ClusterRole write may grant only rules its requester holds in that scope (`ConfirmNoEscalation`),
  unless the requester may `escalate` roles (clusterroles); an `aggregationRule` (which can gather anything)
  needs everything (`*` on `*`, and every URL).
- A RoleBinding or ClusterRoleBinding write may reference only a role whose rules its requester holds in the
  binding's scope, unless the requester may `bind` that role (`resourceNames` match the role's name); a
  reference to a missing role is a 404, as upstream reads it from the registry.
- system:masters pass without a look; an update that changes only what the garbage collector changes
  (ownerReferences, finalizers) is not judged. Deletes never are.

Refusals are upstream's 403 (`roles.rbac.authorization.k8s.io "r" is forbidden: user "u" (groups=["g"]) is
attempting to grant RBAC permissions not currently held:` and one line per missing rule). Upstream judges
before the kind's validation, here after it (a plugin's `validate` sees only valid objects), so an invalid
object that would also escalate is a 422. `escalate` is asked with the request's name only on updates.
"""

from __future__ import annotations

from typing import Any

from clusterset.apiserver.auth.attributes import Attributes
from clusterset.apiserver.auth.authz import authorize, go_quote, go_quote_list
from clusterset.apiserver.auth.covers import MAX_COMBINATIONS, TooBroad, compact, describe, uncovered
from clusterset.apiserver.auth.rbac import GROUP, RbacAuthorizer, aggregate_errors, registry_not_found
from clusterset.apiserver.meta import errors
from clusterset.apiserver.meta.errors import FieldError
from clusterset.apiserver.registry.admission import AdmissionPlugin
from clusterset.apiserver.registry.context import Ctx
from clusterset.apiserver.registry.resources import ResourceType
from clusterset.apiserver.storage.store import Obj

ROLE_RESOURCES = {"Role": "roles", "ClusterRole": "clusterroles"}
FULL_AUTHORITY = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]
# what the garbage collector changes, and managedFields: an update of nothing else grants nothing new
_GC_FIELDS = ("ownerReferences", "finalizers", "managedFields")


class RbacEscalation(AdmissionPlugin):
    """Refuses role and binding writes that would grant what their requester does not hold."""

    def handles(self, rt: ResourceType) -> bool:
        return rt.group == GROUP and rt.plural in ("roles", "clusterroles", "rolebindings", "clusterrolebindings")

    def validate(self, ctx: Ctx, obj: Obj, old: Obj | None) -> list[FieldError]:
        """Raises the 403 (this hook is the one that sees creates and updates alike); no field errors."""
        if ctx.user.master or (old is not None and _only_gc_fields_change(obj, old)):
            return []
        if ctx.rt.plural in ROLE_RESOURCES.values():
            _check_role(ctx, obj, old)
        else:
            _check_binding(ctx, obj)
        return []


def _check_role(ctx: Ctx, role: Obj, old: Obj | None) -> None:
    name = role["metadata"]["name"]
    escalate = Attributes("escalate", True, namespace=ctx.namespace or "", group=GROUP, version="*",
                          resource=ctx.rt.plural, name=name if old is not None else "")
    if authorize(ctx.cluster, ctx.user, escalate).allowed:
        return
    reason = _not_held(ctx, role.get("rules") or [])
    if not reason and (_aggregates(role) or (old is not None and _aggregates(old))) and \
            _not_held(ctx, FULL_AUTHORITY):
        reason = "must have cluster-admin privileges to use the aggregationRule"
    if reason:
        raise errors.forbidden(ctx.rt.plural, GROUP, name, reason)


def _check_binding(ctx: Ctx, binding: Obj) -> None:
    ref: dict[str, Any] = binding["roleRef"]
    namespace, role_resource, role_name = ctx.namespace or "", ROLE_RESOURCES[ref["kind"]], ref["name"]
    bind = Attributes("bind", True, namespace=namespace, group=ref["apiGroup"], version="*", resource=role_resource,
                      name=role_name)
    if authorize(ctx.cluster, ctx.user, bind).allowed:
        return
    rules, missing = ctx.cluster.part(RbacAuthorizer).role_rules(ref, namespace, registry_not_found)
    if missing:
        raise errors.not_found(role_resource, GROUP, role_name)
    reason = _not_held(ctx, rules)
    if reason:
        raise errors.forbidden(ctx.rt.plural, GROUP, binding["metadata"]["name"], reason)


def _not_held(ctx: Ctx, granted: list[Obj]) -> str:
    """ConfirmNoEscalation: why the rules the requester holds here do not cover `granted` ("" if they do)."""
    user = ctx.user
    held, problems = ctx.cluster.part(RbacAuthorizer).rules_for(user, ctx.namespace or "", registry_not_found)
    prefix = (f"user {go_quote(user.name)} (groups={go_quote_list(user.groups)}) is attempting to grant RBAC "
              "permissions not currently held")
    try:
        missing = uncovered(held, granted)
    except TooBroad:
        return (f"{prefix}: the rules expand to more than {MAX_COMBINATIONS} combinations of group, resource, verb "
                "and name, too many to check: grant them in smaller roles, or ask for the escalate or bind verb")
    if not missing:
        return ""
    reason = f"{prefix}:\n" + "\n".join(sorted({describe(rule) for rule in compact(missing)}))
    if problems:
        reason += f"; resolution errors: [{aggregate_errors(problems)}]"
    return reason


def _aggregates(role: Obj) -> bool:
    return bool((role.get("aggregationRule") or {}).get("clusterRoleSelectors"))


def _only_gc_fields_change(obj: Obj, old: Obj) -> bool:
    """IsOnlyMutatingGCFields: the objects are equal but for what the garbage collector changes."""
    def without_gc_fields(o: Obj) -> Obj:
        meta = {k: v for k, v in o["metadata"].items() if k not in _GC_FIELDS}
        return {**o, "metadata": meta}

    return without_gc_fields(obj) == without_gc_fields(old)
