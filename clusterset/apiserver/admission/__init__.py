"""Admission plugins of the embedded API server; each says which resources it handles."""

from __future__ import annotations

from clusterset.apiserver.admission.about import AboutAPI
from clusterset.apiserver.admission.customresources import TerminatingCRD
from clusterset.apiserver.admission.namespaces import NamespaceLifecycle
from clusterset.apiserver.registry.admission import AdmissionPlugin


def default_plugins() -> list[AdmissionPlugin]:
    """In kube-apiserver's order: NamespaceLifecycle first."""
    return [NamespaceLifecycle(), TerminatingCRD(), AboutAPI()]
