"""The create-only review kinds: what authentication and authorization say about a user.

- authorization.k8s.io/v1 SelfSubjectAccessReview (`kubectl auth can-i`), SelfSubjectRulesReview
  (`kubectl auth can-i --list`), SubjectAccessReview and LocalSubjectAccessReview (asking about
  someone else: needs `create` on them, which only admins have by default);
- authentication.k8s.io/v1 (and v1beta1) SelfSubjectReview (`kubectl auth whoami`) and TokenReview.

Nothing is stored: a POST answers 201 with the object and its status, as kube-apiserver does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clusterset.apiserver.auth.attributes import Attributes
from clusterset.apiserver.auth.authn import Authenticator
from clusterset.apiserver.auth.authz import authorize
from clusterset.apiserver.auth.rbac import RbacAuthorizer, aggregate_errors
from clusterset.apiserver.auth.users import UserInfo, user_from_review
from clusterset.apiserver.meta import errors
from clusterset.apiserver.meta.errors import FieldError, field_invalid
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.registry.decoding import STRING, STRINGS, decode_as_go, struct

AUTHORIZATION = "authorization.k8s.io"
AUTHENTICATION = "authentication.k8s.io"

# (group, plural) → kind; the resources are declared in builtins.py (create only)
REVIEW_KINDS: dict[tuple[str, str], str] = {
    (AUTHORIZATION, "selfsubjectaccessreviews"): "SelfSubjectAccessReview",
    (AUTHORIZATION, "selfsubjectrulesreviews"): "SelfSubjectRulesReview",
    (AUTHORIZATION, "subjectaccessreviews"): "SubjectAccessReview",
    (AUTHORIZATION, "localsubjectaccessreviews"): "LocalSubjectAccessReview",
    (AUTHENTICATION, "selfsubjectreviews"): "SelfSubjectReview",
    (AUTHENTICATION, "tokenreviews"): "TokenReview",
}


def is_review(group: str, plural: str) -> bool:
    return (group, plural) in REVIEW_KINDS


def create_review(
    cluster: Cluster,
    authenticator: Authenticator,
    user: UserInfo,
    group: str,
    version: str,
    plural: str,
    namespace: str | None,
    body: Any,
) -> dict[str, Any]:
    """The answered review (the body to return with 201)."""
    kind = REVIEW_KINDS[(group, plural)]
    api_version = f"{group}/{version}"
    if not isinstance(body, dict):
        raise errors.bad_request(f"the object provided is unrecognized (must be of type {kind})")
    if body.get("apiVersion") not in (None, api_version):
        raise errors.bad_request(f"the API version in the data ({body.get('apiVersion')}) does not match the "
                                 f"expected API version ({api_version})")
    if body.get("kind") not in (None, kind):
        raise errors.bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: the kind in the '
                                 f"data ({body.get('kind')}) does not match the expected kind ({kind})")
    decode_as_go(body, _GO_TYPES[kind], version)
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    if namespace is not None and meta.get("namespace") not in (None, "", namespace):
        raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the "
                                 "request")
    out_meta = {k: v for k, v in meta.items() if k in ("name", "generateName", "namespace", "labels",
                                                          "annotations")}
    out_meta["creationTimestamp"] = None
    if namespace is not None:
        out_meta.setdefault("namespace", namespace)
    handler = _HANDLERS[kind]
    status = handler(_Review(cluster, authenticator, user, kind, group, meta.get("name") or "", namespace, spec))
    out: dict[str, Any] = {"kind": kind, "apiVersion": api_version, "metadata": out_meta}
    if kind != "SelfSubjectReview":
        out["spec"] = spec
    out["status"] = status
    return out


# the review kinds' fields as Go types: upstream decodes them, and refuses a value of the wrong type with a 400
_OBJECT_META = struct("ObjectMeta", name=STRING, generateName=STRING, namespace=STRING, labels=STRING.map(),
                      annotations=STRING.map())
_ACCESS_SPEC_FIELDS = {
    "resourceAttributes": struct("ResourceAttributes", namespace=STRING, verb=STRING, group=STRING, version=STRING,
                                 resource=STRING, subresource=STRING, name=STRING),
    "nonResourceAttributes": struct("NonResourceAttributes", path=STRING, verb=STRING),
}
_SUBJECT_ACCESS_SPEC = struct("SubjectAccessReviewSpec", **_ACCESS_SPEC_FIELDS, user=STRING, groups=STRINGS,
                              extra=STRING.slice("v1.ExtraValue").map(), uid=STRING)
_GO_TYPES = {kind: struct(kind, metadata=_OBJECT_META, **({"spec": spec} if spec else {})) for kind, spec in {
    "SelfSubjectAccessReview": struct("SelfSubjectAccessReviewSpec", **_ACCESS_SPEC_FIELDS),
    "SelfSubjectRulesReview": struct("SelfSubjectRulesReviewSpec", namespace=STRING),
    "SubjectAccessReview": _SUBJECT_ACCESS_SPEC,
    "LocalSubjectAccessReview": _SUBJECT_ACCESS_SPEC,
    "SelfSubjectReview": None,
    "TokenReview": struct("TokenReviewSpec", token=STRING, audiences=STRINGS),
}.items()}


class _Review:
    __slots__ = ("authenticator", "cluster", "group", "kind", "name", "namespace", "spec", "user")

    def __init__(self, cluster: Cluster, authenticator: Authenticator, user: UserInfo, kind: str, group: str,
                 name: str, namespace: str | None, spec: dict[str, Any]) -> None:
        self.cluster = cluster
        self.authenticator = authenticator
        self.user = user
        self.kind = kind
        self.group = group
        self.name = name
        self.namespace = namespace
        self.spec = spec

    def invalid(self, problems: list[FieldError]) -> errors.StatusError:
        return errors.invalid(self.kind, self.group, self.name, problems)


# ---------------------------------------------------------------- access reviews
def _attributes(review: _Review, more: list[FieldError] | None = None) -> Attributes:
    """The attributes asked about; 422 with every validation problem (the kind's own ones in `more`)."""
    spec = review.spec
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    problems = []
    if resource is not None and non_resource is not None:
        problems.append(field_invalid("spec.nonResourceAttributes", non_resource,
                                      "cannot be specified in combination with resourceAttributes"))
    if resource is None and non_resource is None:
        problems.append(field_invalid("spec.resourceAttributes", None,
                                      "exactly one of nonResourceAttributes or resourceAttributes must be specified"))
    problems += more or []
    if problems:
        raise review.invalid(problems)
    if non_resource is not None:
        return Attributes(verb=non_resource.get("verb") or "", path=non_resource.get("path") or "")
    resource = spec["resourceAttributes"]
    return Attributes(
        verb=resource.get("verb") or "",
        resource_request=True,
        namespace=resource.get("namespace") or "",
        group=resource.get("group") or "",
        version=resource.get("version") or "",
        resource=resource.get("resource") or "",
        subresource=resource.get("subresource") or "",
        name=resource.get("name") or "",
        path="",
    )


def _decide(review: _Review, user: UserInfo, attrs: Attributes) -> dict[str, Any]:
    decision = authorize(review.cluster, user, attrs)
    status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    return status


def _self_subject_access(review: _Review) -> dict[str, Any]:
    return _decide(review, review.user, _attributes(review))


def _subject_access(review: _Review) -> dict[str, Any]:
    spec = review.spec
    problems = []  # ValidateSubjectAccessReviewSpec, then ValidateLocalSubjectAccessReview's own checks
    if not spec.get("user") and not spec.get("groups"):
        problems.append(field_invalid("spec.user", spec.get("user") or "",
                                      "at least one of user or group must be specified"))
    if review.kind == "LocalSubjectAccessReview":
        resource = spec.get("resourceAttributes")
        if resource is not None and (resource.get("namespace") or "") != review.namespace:
            problems.append(field_invalid("spec.resourceAttributes.namespace", resource.get("namespace") or "",
                                          "must match metadata.namespace"))
        if spec.get("nonResourceAttributes") is not None:
            problems.append(field_invalid("spec.nonResourceAttributes", spec["nonResourceAttributes"],
                                          "disallowed on this kind of request"))
    return _decide(review, user_from_review(spec), _attributes(review, problems))


def _self_subject_rules(review: _Review) -> dict[str, Any]:
    namespace = review.spec.get("namespace") or ""
    if not namespace:
        raise errors.bad_request("no namespace on request")
    resource_rules: list[dict[str, Any]] = []
    non_resource_rules: list[dict[str, Any]] = []
    if review.user.master:  # the privileged group's rules come first, as upstream's union resolver
        resource_rules.append({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})
        non_resource_rules.append({"verbs": ["*"], "nonResourceURLs": ["*"]})
    rules, problems = review.cluster.part(RbacAuthorizer).rules_for(review.user, namespace)
    for rule in rules:  # as RBACAuthorizer.RulesFor: a rule with resources, one with URLs (or both)
        if rule.get("resources"):
            out = {"verbs": list(rule.get("verbs") or [])}
            for key in ("apiGroups", "resources", "resourceNames"):
                if rule.get(key):
                    out[key] = list(rule[key])
            resource_rules.append(out)
        if rule.get("nonResourceURLs"):
            non_resource_rules.append({"verbs": list(rule.get("verbs") or []),
                                       "nonResourceURLs": list(rule["nonResourceURLs"])})
    # RBAC's RulesFor reports unresolvable roles as an error, not as incomplete (only the Node authorizer,
    # absent here, says incomplete); the error is utilerrors' aggregate wording
    status: dict[str, Any] = {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules,
                              "incomplete": False}
    if problems:
        status["evaluationError"] = aggregate_errors(problems)
    return status


# ---------------------------------------------------------------- authentication reviews
def _self_subject(review: _Review) -> dict[str, Any]:
    return {"userInfo": review.user.to_json()}


def _token(review: _Review) -> dict[str, Any]:
    token = review.spec.get("token")
    if not token:
        raise review.invalid([errors.field_required("spec.token")])
    audiences = list(review.spec.get("audiences") or [])
    result = review.authenticator.token_review(token, review.cluster, audiences or None)
    if result.user is None:
        return {"user": {}, "error": f"[invalid bearer token, {result.error}]"
                if result.error != "invalid bearer token" else "invalid bearer token"}
    return {"authenticated": True, "user": result.user.to_json(), "audiences": result.audiences}


_HANDLERS: dict[str, Callable[[_Review], dict[str, Any]]] = {
    "SelfSubjectAccessReview": _self_subject_access,
    "SelfSubjectRulesReview": _self_subject_rules,
    "SubjectAccessReview": _subject_access,
    "LocalSubjectAccessReview": _subject_access,
    "SelfSubjectReview": _self_subject,
    "TokenReview": _token,
}
