"""rbac.authorization.k8s.io: Roles, ClusterRoles and their bindings (upstream's decoding, defaulting and validation).

What a write may grant is not judged here but by the escalation check (`auth/escalation.py`), which needs the
requester's rules.
"""

from __future__ import annotations

from typing import Any

from clusterset.apiserver.meta.errors import (
    FieldError,
    field_invalid,
    field_not_supported,
    field_required,
)
from clusterset.apiserver.meta.validation import (
    dns1123_subdomain_problems,
    path_segment_problems,
    validate_label_selector,
)
from clusterset.apiserver.registry.decoding import STRING, STRINGS, GoType, decode_as_go, struct
from clusterset.apiserver.registry.strategy import ClusterView, NoGenerationStrategy
from clusterset.apiserver.storage.store import Obj

RBAC_GROUP = "rbac.authorization.k8s.io"

# the fields of the four kinds as Go types, for the decoder's 400 on a value of the wrong type
_POLICY_RULES = struct("PolicyRule", verbs=STRINGS, apiGroups=STRINGS, resources=STRINGS, resourceNames=STRINGS,
                       nonResourceURLs=STRINGS).slice()
_LABEL_SELECTOR = struct("LabelSelector", matchLabels=STRING.map(), matchExpressions=struct(
    "LabelSelectorRequirement", key=STRING, operator=GoType("v1.LabelSelectorOperator"), values=STRINGS).slice())
_ROLE_REF = struct("RoleRef", apiGroup=STRING, kind=STRING, name=STRING)
_SUBJECTS = struct("Subject", kind=STRING, apiGroup=STRING, name=STRING, namespace=STRING).slice()
GO_TYPES = {
    "Role": struct("Role", rules=_POLICY_RULES),
    "ClusterRole": struct("ClusterRole", rules=_POLICY_RULES, aggregationRule=struct(
        "AggregationRule", clusterRoleSelectors=_LABEL_SELECTOR.slice())),
    "RoleBinding": struct("RoleBinding", subjects=_SUBJECTS, roleRef=_ROLE_REF),
    "ClusterRoleBinding": struct("ClusterRoleBinding", subjects=_SUBJECTS, roleRef=_ROLE_REF),
}


class RbacStrategy(NoGenerationStrategy):
    """Roles and bindings: upstream's decoding (field types), defaulting (subject and roleRef apiGroups) and
    validation."""

    name_rule = "path"
    kind = ""

    def default(self, cluster: ClusterView, obj: Obj) -> None:
        decode_as_go(obj, GO_TYPES[self.kind])  # upstream decodes, and so refuses wrong types, before defaulting
        if self.kind.endswith("Binding"):
            ref = obj["roleRef"] = obj.get("roleRef") or {}  # a struct upstream: never missing
            if not ref.get("apiGroup"):
                ref["apiGroup"] = RBAC_GROUP
            for subject in obj.get("subjects") or []:
                if not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
                    subject["apiGroup"] = RBAC_GROUP

    def validate(self, cluster: ClusterView, obj: Obj, old: Obj | None, namespaced: bool) -> list[FieldError]:
        errors = super().validate(cluster, obj, old, namespaced)
        if self.kind.endswith("Binding"):
            errors += _validate_binding(obj, old, namespaced)
            return errors
        for i, rule in enumerate(obj.get("rules") or []):
            errors += _validate_policy_rule(rule, namespaced, f"rules[{i}]")
        aggregation = obj.get("aggregationRule")
        if aggregation is not None:
            selectors = aggregation.get("clusterRoleSelectors") or []
            if not selectors:
                errors.append(field_required("aggregationRule.clusterRoleSelectors",
                                             "at least one clusterRoleSelector required if aggregationRule is non-nil"))
            for i, selector in enumerate(selectors):
                errors += validate_label_selector(selector, f"aggregationRule.clusterRoleSelectors[{i}]")
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
    ref: dict[str, Any] = obj["roleRef"]
    if ref.get("apiGroup") != RBAC_GROUP:
        errors.append(field_not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), [RBAC_GROUP]))
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if ref.get("kind") not in kinds:
        errors.append(field_not_supported("roleRef.kind", ref.get("kind", ""), kinds))
    role_name = ref.get("name") or ""
    if not role_name:
        errors.append(field_required("roleRef.name"))
    errors += [field_invalid("roleRef.name", role_name, p) for p in path_segment_problems(role_name)]
    for i, subject in enumerate(obj.get("subjects") or []):
        path, name = f"subjects[{i}]", subject.get("name") or ""
        if not name:
            errors.append(field_required(f"{path}.name"))
        kind, group = subject.get("kind"), subject.get("apiGroup", "")
        if kind == "ServiceAccount":
            errors += [field_invalid(f"{path}.name", name, p) for p in dns1123_subdomain_problems(name) if name]
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


