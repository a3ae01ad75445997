"""Names of Multi-Cluster Services (KEP-1645, mcs-api v0.5.0) and of clusterset's own MCS records on the hub."""

from __future__ import annotations

import base64
import functools
import hashlib

from clusterset.api.resources import Resource

# the standard (`../shared/specs/mcs.md`)
SERVICE_IMPORTS = Resource("multicluster.x-k8s.io", "v1beta1", "serviceimports", "ServiceImport")
SERVICE_EXPORTS = Resource("multicluster.x-k8s.io", "v1beta1", "serviceexports", "ServiceExport")
SERVICE_NAME_LABEL = "multicluster.kubernetes.io/service-name"
SOURCE_CLUSTER_LABEL = "multicluster.kubernetes.io/source-cluster"
CLUSTERSET_ZONE = "clusterset.local"
DERIVED_SERVICE_ANNOTATION = "multicluster.kubernetes.io/derived-service"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
KUBE_SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MCS_CONTROLLER = "mcs-controller.clusterset.io"  # our managed-by: never endpointslice-controller.k8s.io

CLUSTERSET_IP = "ClusterSetIP"
HEADLESS = "Headless"

# ServiceExport conditions and reasons
VALID = "Valid"
READY = "Ready"
CONFLICT = "Conflict"
NO_SERVICE = "NoService"
INVALID_SERVICE_TYPE = "InvalidServiceType"
PENDING = "Pending"
NO_CONFLICTS = "NoConflicts"
IP_FAMILY_NOT_SUPPORTED = "IPFamilyNotSupported"

# clusterset's own records on the hub. A member's agent writes its exports (`ExportedService`) and their
# endpoints (`ExportedEndpoints`, one per source EndpointSlice) into its own hub namespace; the hub merges
# them into the ClusterSet's namespace (`ClusterSetService`, and `ClusterSetEndpoints` per source slice with
# ports already mapped to the import's), which every agent reads and mirrors into its member.
EXPORTED_SERVICES = Resource("clusterset.io", "v1alpha1", "exportedservices", "ExportedService")
EXPORTED_ENDPOINTS = Resource("clusterset.io", "v1alpha1", "exportedendpoints", "ExportedEndpoints")
CLUSTERSET_SERVICES = Resource("clusterset.io", "v1alpha1", "clustersetservices", "ClusterSetService")
CLUSTERSET_ENDPOINTS = Resource("clusterset.io", "v1alpha1", "clustersetendpoints", "ClusterSetEndpoints")
SERVICE_NAMESPACE_LABEL = "clusterset.io/service-namespace"  # with SERVICE_NAME_LABEL on every record
ENDPOINT_LEASE = "clusterset-endpoints"  # a member's agent's Lease in its hub namespace: its heartbeat, and what keeps
# its endpoints imported (the agent renews it while its member answers)
ENDPOINT_LEASE_SELECTOR = f"metadata.name={ENDPOINT_LEASE}"
FIELD_MANAGER = "clusterset-mcs"


def record_name(namespace: str, name: str) -> str:
    """A service's records' name on the hub: `<namespace>.<name>` (both are DNS labels, so it is unique and a
    valid object name)."""
    return f"{namespace}.{name}"


def split_record_name(record: str) -> tuple[str, str] | None:
    namespace, dot, name = record.partition(".")
    return (namespace, name) if dot and namespace and name and "." not in name else None


@functools.lru_cache(maxsize=8192)  # every reconcile of an import names its derived Service and slices again
def short_hash(text: str, length: int = 10) -> str:
    """Lowercase unpadded base32hex of sha256(text), as mcs-api's reference controller names derived Services."""
    return base64.b32hexencode(hashlib.sha256(text.encode()).digest()).decode().lower().rstrip("=")[:length]


def derived_service_name(namespace: str, name: str) -> str:
    """The ClusterIP Service that holds an import's ClusterSet IPs in a member (mcs-api's convention)."""
    return "derived-" + short_hash(f"{namespace}/{name}")


def bounded_name(*parts: str, limit: int = 253) -> str:
    """`parts` joined by dots, or, when that is too long for an object name, the first part and a hash."""
    joined = ".".join(parts)
    return joined if len(joined) <= limit else f"{parts[0][:limit - 21]}.{short_hash(joined, 20)}"
