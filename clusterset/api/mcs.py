"""Names of Multi-Cluster Services (KEP-1645, mcs-api v0.5.0) and of clusterset's own MCS records on the hub."""

from __future__ import annotations

from clusterset.api.resources import Resource

# the standard (`../shared/specs/mcs.md`)
SERVICE_IMPORTS = Resource("multicluster.x-k8s.io", "v1beta1", "serviceimports", "ServiceImport")
SERVICE_EXPORTS = Resource("multicluster.x-k8s.io", "v1beta1", "serviceexports", "ServiceExport")
SERVICE_NAME_LABEL = "multicluster.kubernetes.io/service-name"
SOURCE_CLUSTER_LABEL = "multicluster.kubernetes.io/source-cluster"
CLUSTERSET_ZONE = "clusterset.local"
