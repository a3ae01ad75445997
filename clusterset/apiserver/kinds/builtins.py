"""The built-in kinds served by every logical cluster, in discovery order, with their strategies."""

from __future__ import annotations

from clusterset.apiserver.kinds.apiextensions import CRD_TYPE, CRDStrategy
from clusterset.apiserver.kinds.apiregistration import APISERVICE_TYPE, APIServiceStrategy
from clusterset.apiserver.kinds.apps import (
    ControllerRevisionStrategy,
    DaemonSetStrategy,
    ReplicaSetStrategy,
    workload_strategy,
)
from clusterset.apiserver.kinds.batch import CronJobStrategy, JobStrategy
from clusterset.apiserver.kinds.core import (
    ConfigMapStrategy,
    EventStrategy,
    NamespaceStrategy,
    NodeStrategy,
    SecretStrategy,
)
from clusterset.apiserver.kinds.discovery import EndpointSliceStrategy
from clusterset.apiserver.kinds.pods import PodStrategy
from clusterset.apiserver.kinds.rbac import rbac_strategy
from clusterset.apiserver.kinds.replication import ReplicationControllerStrategy
from clusterset.apiserver.kinds.services import ServiceStrategy
from clusterset.apiserver.registry.registry import Served
from clusterset.apiserver.registry.resources import ResourceType
from clusterset.apiserver.registry.strategy import NoGenerationStrategy, Strategy


# ---------------------------------------------------------------------------- the registry
def _rt(
    group: str,
    version: str,
    plural: str,
    kind: str,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    cats: tuple[str, ...] = (),
    sub: tuple[str, ...] = (),
    verbs: tuple[str, ...] | None = None,
) -> ResourceType:
    rt = ResourceType(group, version, plural, kind.lower(), kind, namespaced, short, cats, subresources=sub)
    if verbs is not None:
        rt.verbs = verbs
    return rt


def _reviews() -> list[tuple[ResourceType, Strategy]]:
    """The create-only review kinds (reviews.py answers them; nothing is stored)."""
    authn, authz = "authentication.k8s.io", "authorization.k8s.io"
    kinds = [
        (authn, "v1", "selfsubjectreviews", "SelfSubjectReview", False),
        (authn, "v1", "tokenreviews", "TokenReview", False),
        (authn, "v1beta1", "selfsubjectreviews", "SelfSubjectReview", False),  # kubectl 1.27's `auth whoami`
        (authz, "v1", "localsubjectaccessreviews", "LocalSubjectAccessReview", True),
        (authz, "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False),
        (authz, "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview", False),
        (authz, "v1", "subjectaccessreviews", "SubjectAccessReview", False),
    ]
    return [(_rt(g, v, plural, kind, namespaced, verbs=("create",)), NoGenerationStrategy())
            for g, v, plural, kind, namespaced in kinds]


BUILTINS: list[tuple[ResourceType, Strategy]] = [
    (
        _rt(
            "",
            "v1",
            "namespaces",
            "Namespace",
            False,
            ("ns",),
            sub=("status", "finalize"),
            verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
        ),
        NamespaceStrategy(),
    ),
    (_rt("", "v1", "services", "Service", short=("svc",), cats=("all",), sub=("status",)), ServiceStrategy()),
    (_rt("", "v1", "endpoints", "Endpoints", short=("ep",)), NoGenerationStrategy()),
    (_rt("", "v1", "configmaps", "ConfigMap", short=("cm",)), ConfigMapStrategy()),
    (_rt("", "v1", "secrets", "Secret"), SecretStrategy()),
    (_rt("", "v1", "serviceaccounts", "ServiceAccount", short=("sa",), sub=("token",)), NoGenerationStrategy()),
    (_rt("", "v1", "events", "Event", short=("ev",)), EventStrategy()),
    (
        _rt("", "v1", "pods", "Pod", short=("po",), cats=("all",),
            sub=("status", "log", "exec", "attach", "portforward")),
        PodStrategy(),
    ),
    (
        _rt("", "v1", "replicationcontrollers", "ReplicationController", short=("rc",), cats=("all",),
            sub=("status", "scale")),
        ReplicationControllerStrategy(),
    ),
    (_rt("", "v1", "nodes", "Node", False, ("no",), sub=("status",)), NodeStrategy()),
    (_rt("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"), EndpointSliceStrategy()),
    (
        _rt("apps", "v1", "deployments", "Deployment", short=("deploy",), cats=("all",), sub=("status", "scale")),
        workload_strategy("Deployment"),
    ),
    (
        _rt("apps", "v1", "replicasets", "ReplicaSet", short=("rs",), cats=("all",), sub=("status", "scale")),
        ReplicaSetStrategy(),
    ),
    (
        _rt("apps", "v1", "statefulsets", "StatefulSet", short=("sts",), cats=("all",), sub=("status", "scale")),
        workload_strategy("StatefulSet"),
    ),
    (
        _rt("apps", "v1", "daemonsets", "DaemonSet", short=("ds",), cats=("all",), sub=("status",)),
        DaemonSetStrategy(),
    ),
    (_rt("apps", "v1", "controllerrevisions", "ControllerRevision"), ControllerRevisionStrategy()),
    (_rt("coordination.k8s.io", "v1", "leases", "Lease"), Strategy()),
    (_rt("rbac.authorization.k8s.io", "v1", "roles", "Role"), rbac_strategy("Role")),
    (_rt("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"), rbac_strategy("RoleBinding")),
    (_rt("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False), rbac_strategy("ClusterRole")),
    (
        _rt("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
        rbac_strategy("ClusterRoleBinding"),
    ),
    *_reviews(),
    (_rt("batch", "v1", "jobs", "Job", cats=("all",), sub=("status",)), JobStrategy()),
    (_rt("batch", "v1", "cronjobs", "CronJob", short=("cj",), cats=("all",), sub=("status",)), CronJobStrategy()),
    (_rt("", "v1", "resourcequotas", "ResourceQuota", short=("quota",), sub=("status",)), Strategy()),
    (_rt("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short=("pdb",), sub=("status",)), Strategy()),
    (_rt("networking.k8s.io", "v1", "ingresses", "Ingress", short=("ing",), sub=("status",)), Strategy()),
    (_rt("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False, ("pc",)), NoGenerationStrategy()),
    (APISERVICE_TYPE, APIServiceStrategy()),
]

# the CRD kind comes last in discovery, as before custom resources
_SERVED = [Served(rt, strategy) for rt, strategy in [*BUILTINS, (CRD_TYPE, CRDStrategy())]]


def builtin_resources() -> list[Served]:
    """What every logical cluster serves before any CRD: shared (strategies keep no per-cluster state)."""
    return list(_SERVED)
