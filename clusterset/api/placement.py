"""Names of Placement and Work: the standards' (KEP-5313 PlacementDecision, KEP-6456 Work/AppliedWork) and
clusterset's own (Placement, ClusterSetBinding, WorkSet, taints)."""

from __future__ import annotations

from clusterset.api.resources import Resource

# the standards (`../shared/specs/inventory-about-placement-work.md` §3-4)
PLACEMENT_DECISIONS = Resource("multicluster.x-k8s.io", "v1alpha1", "placementdecisions", "PlacementDecision")
WORKS = Resource("multicluster.x-k8s.io", "v1alpha1", "works", "Work")
APPLIED_WORKS = Resource("multicluster.x-k8s.io", "v1alpha1", "appliedworks", "AppliedWork", namespaced=False)
DECISION_KEY_LABEL = "multicluster.x-k8s.io/decision-key"
DECISION_INDEX_LABEL = "multicluster.x-k8s.io/decision-index"
PLACEMENT_KEY_LABEL = "multicluster.x-k8s.io/placement-key"
MAX_DECISIONS_PER_SLICE = 100
WORK_CLEANUP_FINALIZER = "multicluster.x-k8s.io/work-cleanup"
# Work and per-manifest condition types (KEP-6456)
APPLIED = "Applied"
AVAILABLE = "Available"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"

# clusterset's own
PLACEMENTS = Resource("clusterset.io", "v1alpha1", "placements", "Placement")
CLUSTERSET_BINDINGS = Resource("clusterset.io", "v1alpha1", "clustersetbindings", "ClusterSetBinding")
WORK_SETS = Resource("clusterset.io", "v1alpha1", "worksets", "WorkSet")
SCHEDULER_NAME = "clusterset"  # PlacementDecision.schedulerName
SATISFIED = "Satisfied"  # the Placement's condition
# "true" on a Placement: another scheduler writes its PlacementDecisions, ours leaves it alone (OCM's
# `cluster.open-cluster-management.io/experimental-scheduling-disable`)
SCHEDULING_DISABLED_ANNOTATION = "clusterset.io/scheduling-disabled"
# A cluster's taints: a JSON list of {key, value?, effect, timeAdded} on its ClusterProfile (whose spec and status
# are the standard's), as `clusterset taint` writes it.
TAINTS_ANNOTATION = "clusterset.io/taints"
NO_SELECT = "NoSelect"
PREFER_NO_SELECT = "PreferNoSelect"


def decision_name(placement: str, index: int) -> str:
    """A Placement's PlacementDecision slice `index`, as OCM names its own: `<placement>-decision-<index>`."""
    return f"{placement}-decision-{index}"
