"""The RBAC authorizer of one logical cluster, evaluated from its in-memory store.

Semantics are kube-apiserver's (plugin/pkg/auth/authorizer/rbac and pkg/registry/rbac/validation):
a request is allowed when a rule of a role bound to the user allows it; ClusterRoleBindings apply
everywhere, RoleBindings only in their namespace (also when they reference a ClusterRole); there
are no denies. The 403's reason lists what could not be resolved (`RBAC: clusterrole... not found`).

Bindings are indexed by subject (user name or group; a ServiceAccount subject is the user name
`system:serviceaccount:<ns>:<name>`, which is how upstream matches it), so a request looks only at
the bindings of the user and its groups. The index is built on the cluster's first request by a
user outside system:masters and then follows every write through a store listener; roles are read
from the store when a binding is evaluated, so every change takes effect on the next request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from clusterset.apiserver.auth.attributes import Attributes, Decision
from clusterset.apiserver.auth.users import UserInfo
from clusterset.apiserver.registry.strategy import ClusterView
from clusterset.apiserver.storage.store import Event, Obj

GROUP = "rbac.authorization.k8s.io"
ROLES = f"{GROUP}/roles"
CLUSTER_ROLES = f"{GROUP}/clusterroles"
ROLE_BINDINGS = f"{GROUP}/rolebindings"
CLUSTER_ROLE_BINDINGS = f"{GROUP}/clusterrolebindings"

SubjectKey = tuple[str, str]  # ("User" | "Group", name)
BindingRef = tuple[Obj, int]  # a binding and the index of the first subject that applies
_DENY = Decision(False)


def subject_key(subject: Any, binding_namespace: str) -> SubjectKey | None:
    """How a binding subject is looked up (None: it can never apply)."""
    if not isinstance(subject, dict):
        return None
    kind, name = subject.get("kind"), subject.get("name")
    if not isinstance(name, str) or not name:
        return None
    if kind == "User":
        return ("User", name)
    if kind == "Group":
        return ("Group", name)
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return ("User", f"system:serviceaccount:{namespace}:{name}") if namespace else None
    return None


def user_keys(user: UserInfo) -> list[SubjectKey]:
    return [("User", user.name), *(("Group", g) for g in user.groups)]


# ---------------------------------------------------------------- rule matching (rbac/v1 helpers)
# A rule's fields are []string upstream. Anything else (stored before writes were type-checked as upstream
# decodes them) matches nothing: `"get" in "forget"` or `"" in "apps"` must never grant access.
def _strings(values: Any) -> list[Any]:
    return values if isinstance(values, list) else []


def _has(values: Any, wanted: str, star: str = "*") -> bool:
    values = _strings(values)
    return star in values or wanted in values


def resource_matches(rule: Obj, combined: str, subresource: str) -> bool:
    for resource in _strings(rule.get("resources")):
        if resource == "*" or resource == combined:
            return True
        if subresource and isinstance(resource, str) and len(resource) == len(subresource) + 2 \
                and resource.startswith("*/") and resource.endswith(subresource):
            return True
    return False


def non_resource_url_matches(rule: Obj, path: str) -> bool:
    for url in _strings(rule.get("nonResourceURLs")):
        if url == "*" or url == path:
            return True
        if isinstance(url, str) and url.endswith("*") and path.startswith(url.rstrip("*")):
            return True
    return False


def rule_allows(attrs: Attributes, rule: Obj) -> bool:
    if not _has(rule.get("verbs"), attrs.verb):
        return False
    if not attrs.resource_request:
        return non_resource_url_matches(rule, attrs.path)
    if not _has(rule.get("apiGroups"), attrs.group):
        return False
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    if not resource_matches(rule, combined, attrs.subresource):
        return False
    names = rule.get("resourceNames")
    if not names:
        return True
    return attrs.name in _strings(names)


# ---------------------------------------------------------------- describing sources (reasons)
def _describe_subject(subject: Obj, binding_namespace: str) -> str:
    kind, name = subject.get("kind", ""), subject.get("name", "")
    if kind == "ServiceAccount":
        return f'{kind} "{name}/{subject.get("namespace") or binding_namespace}"'
    return f'{kind} "{name}"'


def describe(binding: Obj, subject_index: int) -> str:
    meta, ref = binding["metadata"], binding.get("roleRef") or {}
    subject = binding["subjects"][subject_index]
    namespace = meta.get("namespace", "")
    if namespace:
        return (f'RoleBinding "{meta["name"]}/{namespace}" of {ref.get("kind", "")} "{ref.get("name", "")}" to '
                f"{_describe_subject(subject, namespace)}")
    return (f'ClusterRoleBinding "{meta["name"]}" of {ref.get("kind", "")} "{ref.get("name", "")}" to '
            f"{_describe_subject(subject, '')}")


def lister_not_found(resource: str, name: str) -> str:
    """How the authorizer's informers word a missing role: `role.rbac.authorization.k8s.io "x" not found`."""
    return f'{resource.removesuffix("s")}.{GROUP} "{name}" not found'


def registry_not_found(resource: str, name: str) -> str:
    """How the registry words it (the escalation check reads roles there): `roles.rbac... "x" not found`."""
    return f'{resource}.{GROUP} "{name}" not found'


NotFoundWording = Callable[[str, str], str]


def aggregate_errors(messages: list[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one message as is, several as `[a, b]`, duplicates once."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


class _Bindings:
    """Bindings of one scope (the cluster, or one namespace) by subject key."""

    __slots__ = ("by_subject",)

    def __init__(self) -> None:
        self.by_subject: dict[SubjectKey, dict[str, BindingRef]] = {}


class RbacAuthorizer:
    """RBAC for one logical cluster (a cluster part: `cluster.part(RbacAuthorizer)`): a subject index over its
    bindings, made on the first request that needs it and kept current by a store subscription."""

    def __init__(self, cluster: ClusterView) -> None:
        self.store = store = cluster.store
        self._cluster = _Bindings()
        self._namespaces: dict[str, _Bindings] = {}
        # (resource, namespace, name) → the keys the binding is indexed under (to unindex it)
        self._keys: dict[tuple[str, str, str], list[SubjectKey]] = {}
        for resource in (CLUSTER_ROLE_BINDINGS, ROLE_BINDINGS):
            for entry in store.entries(resource):
                self._index(resource, entry.obj)
            store.subscribe(resource, self._on_event)

    # ---------------------------------------------------------------- the index
    def _on_event(self, _cluster: str, event: Event) -> None:
        meta = event.entry.obj["metadata"]
        self._unindex(event.resource, meta.get("namespace", ""), meta["name"])
        if event.type != "DELETED":
            self._index(event.resource, event.entry.obj)

    def _scope(self, namespace: str, create: bool = False) -> _Bindings | None:
        if not namespace:
            return self._cluster
        scope = self._namespaces.get(namespace)
        if scope is None and create:
            scope = self._namespaces[namespace] = _Bindings()
        return scope

    def _index(self, resource: str, binding: Obj) -> None:
        meta = binding["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        scope = self._scope(namespace, create=True)
        assert scope is not None
        keys: dict[SubjectKey, None] = {}  # ordered and O(1) to test: bindings may list many subjects
        subjects = binding.get("subjects")
        for i, subject in enumerate(subjects if isinstance(subjects, list) else ()):
            key = subject_key(subject, namespace)
            if key is None or key in keys:
                continue
            keys[key] = None
            scope.by_subject.setdefault(key, {})[name] = (binding, i)
        self._keys[(resource, namespace, name)] = list(keys)

    def _unindex(self, resource: str, namespace: str, name: str) -> None:
        keys = self._keys.pop((resource, namespace, name), None)
        scope = self._scope(namespace)
        if not keys or scope is None:
            return
        for key in keys:
            bindings = scope.by_subject.get(key)
            if bindings is not None:
                bindings.pop(name, None)
                if not bindings:
                    del scope.by_subject[key]
        if namespace and not scope.by_subject:
            del self._namespaces[namespace]

    def _bindings(self, user: UserInfo, namespace: str) -> Iterator[BindingRef]:
        """Every binding that applies to the user: cluster-wide first, then the namespace's; each once."""
        keys = user_keys(user)
        for scope in (self._cluster, self._scope(namespace) if namespace else None):
            if scope is None:
                continue
            found: dict[str, BindingRef] = {}
            for key in keys:
                for name, ref in scope.by_subject.get(key, {}).items():
                    seen = found.get(name)
                    if seen is None or ref[1] < seen[1]:  # the first subject that applies, as appliesTo
                        found[name] = ref
            for name in sorted(found):
                yield found[name]

    # ---------------------------------------------------------------- roles
    def role_rules(self, ref: Any, binding_namespace: str, not_found: NotFoundWording = lister_not_found
                   ) -> tuple[list[Obj], str]:
        """The rules of a binding's roleRef, or the error that keeps them from counting."""
        if not isinstance(ref, dict):
            return [], 'unsupported role reference kind: ""'
        kind, name = ref.get("kind"), str(ref.get("name") or "")
        if kind == "Role":
            entry = self.store.get(ROLES, binding_namespace, name) if binding_namespace else None
            if entry is None:
                return [], not_found("roles", name)
        elif kind == "ClusterRole":
            entry = self.store.get(CLUSTER_ROLES, "", name)
            if entry is None:
                return [], not_found("clusterroles", name)
        else:
            return [], f'unsupported role reference kind: "{kind}"'
        rules = entry.obj.get("rules")
        return [r for r in rules if isinstance(r, dict)] if isinstance(rules, list) else [], ""

    # ---------------------------------------------------------------- decisions
    def authorize(self, user: UserInfo, attrs: Attributes) -> Decision:
        errors: list[str] = []
        for binding, index in self._bindings(user, attrs.namespace):
            rules, error = self.role_rules(binding.get("roleRef"), binding["metadata"].get("namespace", ""))
            if error:
                errors.append(error)
                continue
            for rule in rules:
                if rule_allows(attrs, rule):
                    return Decision(True, f"RBAC: allowed by {describe(binding, index)}")
        if errors:
            return Decision(False, f"RBAC: {aggregate_errors(errors)}")
        return _DENY

    def rules_for(self, user: UserInfo, namespace: str, not_found: NotFoundWording = lister_not_found
                  ) -> tuple[list[Obj], list[str]]:
        """Every rule that applies to the user in the namespace, and the resolution errors."""
        rules: list[Obj] = []
        errors: list[str] = []
        for binding, _ in self._bindings(user, namespace):
            found, error = self.role_rules(binding.get("roleRef"), binding["metadata"].get("namespace", ""),
                                           not_found)
            if error:
                errors.append(error)
            rules.extend(found)
        return rules, errors
