"""Names of the inventory standards (KEP-4322 ClusterProfile, KEP-2149 About API) and clusterset's own."""

from __future__ import annotations

import re
from typing import Any

from clusterset.api.objects import condition
from clusterset.api.resources import Resource

# About API well-known properties (KEP-2149)
CLUSTER_ID_PROPERTY = "cluster.clusterset.k8s.io"
CLUSTERSET_PROPERTY = "clusterset.k8s.io"

# ClusterProfile (KEP-4322)
CLUSTER_MANAGER_LABEL = "x-k8s.io/cluster-manager"
CLUSTERSET_NAMESPACE_LABEL = "multicluster.x-k8s.io/clusterset"
CONTROL_PLANE_HEALTHY = "ControlPlaneHealthy"
JOINED = "Joined"
EXEC_EXTENSION = "client.authentication.k8s.io/exec"

# clusterset's own
MANAGER_NAME = "clusterset"
MEMBER_LABEL = "clusterset.io/member"  # on a member's hub namespace: the member's id
MEMBER_UID_ANNOTATION = "clusterset.io/cluster-uid"  # the member's kube-system namespace uid
MEMBER_SERVER_ANNOTATION = "clusterset.io/server"
AGENT_SERVICE_ACCOUNT = "clusterset-agent"
AGENT_ROLE = "clusterset-agent"
SYSTEM_NAMESPACE = "clusterset-system"  # in members: the agent's hub credentials live here
HUB_KUBECONFIG_SECRET = "clusterset-hub"
FIELD_MANAGER = "clusterset"

CLUSTER_REPORTS = Resource("clusterset.io", "v1alpha1", "clusterreports", "ClusterReport")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


MEMBER_NAMESPACE_PREFIX = "clusterset-"


def member_namespace(cluster_id: str) -> str:
    """The hub namespace a member's agent may write: all of its hub state lives there."""
    return MEMBER_NAMESPACE_PREFIX + cluster_id


def member_of_namespace(namespace: str) -> str | None:
    """The member whose hub namespace this is, by its name (None: not a member's)."""
    if not namespace.startswith(MEMBER_NAMESPACE_PREFIX):
        return None
    return namespace.removeprefix(MEMBER_NAMESPACE_PREFIX) or None


def cluster_id_problem(value: Any) -> str | None:
    """Why a value is not a valid `cluster.clusterset.k8s.io` id (KEP-2149: an RFC 1123 DNS label), or None."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if len(value) > 63:
        return "must be no more than 63 characters (an RFC 1123 DNS label)"
    if not _DNS_LABEL.match(value):
        return (
            "must be an RFC 1123 DNS label: lower case alphanumeric characters or '-', "
            "starting and ending with an alphanumeric character (e.g. 'member-1')"
        )
    return None




def set_condition(
    conditions: list[dict[str, Any]] | None, new: dict[str, Any], now: str
) -> list[dict[str, Any]]:
    """meta.SetStatusCondition: lastTransitionTime changes only when status does."""
    out = [dict(c) for c in conditions or [] if isinstance(c, dict)]
    old = condition(out, new["type"])
    merged = {"message": "", **new}
    if old is None:
        out.append({**merged, "lastTransitionTime": new.get("lastTransitionTime") or now})
        return out
    transition = old.get("lastTransitionTime") if old.get("status") == new["status"] else None
    old.clear()
    old.update({**merged, "lastTransitionTime": transition or new.get("lastTransitionTime") or now})
    return out
