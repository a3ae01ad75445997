"""CRD manifests clusterset installs (and `clusterset crds` prints)."""

from __future__ import annotations

import copy
import functools
from importlib import resources
from typing import Any

import yaml

HUB_CRDS = (
    "multicluster.x-k8s.io_clusterprofiles.yaml",
    "clusterset.io_clusterreports.yaml",
    # Multi-Cluster Services: the members' exports and the merged services (clusterset/mcs)
    "clusterset.io_exportedservices.yaml",
    "clusterset.io_exportedendpoints.yaml",
    "clusterset.io_clustersetservices.yaml",
    "clusterset.io_clustersetendpoints.yaml",
    # Placement and Work: requests, bindings and the scheduler's standard output; work for each member (clusterset/
    # placement, clusterset/work, clusterset/workset)
    "clusterset.io_placements.yaml",
    "clusterset.io_clustersetbindings.yaml",
    "multicluster.x-k8s.io_placementdecisions.yaml",
    "multicluster.x-k8s.io_works.yaml",
    "clusterset.io_worksets.yaml",
)
# Multi-Cluster Services live in the members, as in upstream implementations: users export from, and
# consume imports in, their own clusters. The hub keeps clusterset's own records of exports instead.
MEMBER_CRDS = (
    "about.k8s.io_clusterproperties.yaml",
    "multicluster.x-k8s.io_serviceexports.yaml",
    "multicluster.x-k8s.io_serviceimports.yaml",
    "multicluster.x-k8s.io_appliedworks.yaml",
)


def load(filename: str) -> dict[str, Any]:
    """A fresh copy of a CRD manifest (parsed once: YAML parsing is slow, and joins need them often)."""
    return copy.deepcopy(_parsed(filename))


@functools.cache
def _parsed(filename: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath(filename).read_text()
    crd: dict[str, Any] = yaml.safe_load(text)
    return crd


def hub_crds() -> list[dict[str, Any]]:
    return [load(f) for f in HUB_CRDS]


def member_crds() -> list[dict[str, Any]]:
    return [load(f) for f in MEMBER_CRDS]
