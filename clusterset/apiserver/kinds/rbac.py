"""rbac.authorization.k8s.io: Roles, ClusterRoles and their bindings (upstream's defaulting and validation)."""

from __future__ import annotations

from typing import Any

from clusterset.apiserver.meta.errors import (
    FieldError,
    field_not_supported,
    field_required,
)
from clusterset.apiserver.registry.strategy import ClusterView, NoGenerationStrategy
from clusterset.apiserver.storage.store import Obj

RBAC_GROUP = "rbac.authorization.k8s.io"


class RbacStrategy(NoGenerationStrategy):
    """Roles and bindings: upstream's defaulting (subject and roleRef apiGroups) and validation."""

    name_rule = "path"
    kind = ""

    def default(self, cluster: ClusterView, obj: Obj) -> None:
        if self.kind.endswith("Binding"):
            ref = obj.get("roleRef")
            if isinstance(ref, dict) and not ref.get("apiGroup"):
                ref["apiGroup"] = RBAC_GROUP
            for subject in obj.get("subjects") or []:
                if isinstance(subject, dict) and not subject.get("apiGroup") and subject.get("kind") in (
                        "User", "Group"):
                    subject["apiGroup"] = RBAC_GROUP

    def validate(self, cluster: ClusterView, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        if self.kind.endswith("Binding"):
            errors += _validate_binding(obj, old, namespaced)
            return errors
        rules = obj.get("rules")
        for i, rule in enumerate(rules if isinstance(rules, list) else []):
            errors += _validate_policy_rule(rule if isinstance(rule, dict) else {}, namespaced, f"rules[{i}]")
        aggregation = obj.get("aggregationRule")
        if isinstance(aggregation, dict) and not aggregation.get("clusterRoleSelectors"):
            errors.append(field_required("aggregationRule.clusterRoleSelectors"))
        return errors


def _go_strings(values: Any) -> str:
    return "[]string{" + ", ".join(f'"{v}"' for v in values or []) + "}"


def _validate_policy_rule(rule: dict[str, Any], namespaced: bool, path: str) -> list[FieldError]:
    errors = []
    if not rule.get("verbs"):
        errors.append(field_required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = rule.get("nonResourceURLs")
    if urls:
        shown = f"Invalid value: {_go_strings(urls)}: "
        if namespaced:
            errors.append(FieldError(f"{path}.nonResourceURLs", "FieldValueInvalid",
                                     shown + "namespaced rules cannot apply to non-resource URLs"))
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            errors.append(FieldError(f"{path}.nonResourceURLs", "FieldValueInvalid",
                                     shown + "rules cannot apply to both regular resources and non-resource URLs"))
        return errors
    if not rule.get("apiGroups"):
        errors.append(field_required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not rule.get("resources"):
        errors.append(field_required(f"{path}.resources", "resource rules must supply at least one resource"))
    return errors


def _validate_binding(obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
    errors = []
    ref: dict[str, Any] = obj["roleRef"] if isinstance(obj.get("roleRef"), dict) else {}
    if ref.get("apiGroup") != RBAC_GROUP:
        errors.append(field_not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), [RBAC_GROUP]))
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if ref.get("kind") not in kinds:
        errors.append(field_not_supported("roleRef.kind", ref.get("kind", ""), kinds))
    if not ref.get("name"):
        errors.append(field_required("roleRef.name"))
    subjects = obj.get("subjects")
    for i, subject in enumerate(subjects if isinstance(subjects, list) else []):
        subject = subject if isinstance(subject, dict) else {}
        path = f"subjects[{i}]"
        if not subject.get("name"):
            errors.append(field_required(f"{path}.name"))
        kind, group = subject.get("kind"), subject.get("apiGroup", "")
        if kind == "ServiceAccount":
            if group:
                errors.append(field_not_supported(f"{path}.apiGroup", group, [""]))
            if not namespaced and not subject.get("namespace"):
                errors.append(field_required(f"{path}.namespace"))
        elif kind in ("User", "Group"):
            if group != RBAC_GROUP:
                errors.append(field_not_supported(f"{path}.apiGroup", group, [RBAC_GROUP]))
        else:
            errors.append(field_not_supported(f"{path}.kind", kind or "", ["ServiceAccount", "User", "Group"]))
    if old is not None and old.get("roleRef") != obj.get("roleRef"):
        shown = (f'rbac.RoleRef{{APIGroup:"{ref.get("apiGroup", "")}", Kind:"{ref.get("kind", "")}", '
                 f'Name:"{ref.get("name", "")}"}}')
        errors.append(FieldError("roleRef", "FieldValueInvalid", f"Invalid value: {shown}: cannot change roleRef"))
    return errors


def rbac_strategy(kind: str) -> RbacStrategy:
    strategy = RbacStrategy()
    strategy.kind = kind
    return strategy


