"""The controllers every logical cluster runs, as any kube-apiserver with its controller manager: namespaces,
garbage collection, CRDs, ClusterRole aggregation, APIServices."""

from __future__ import annotations

from clusterset.apiserver.controllers.core.apiservices import APIServiceRegistration
from clusterset.apiserver.controllers.core.clusterroles import ClusterRoleAggregation
from clusterset.apiserver.controllers.core.crds import CRDEstablishing, CRDFinalizer
from clusterset.apiserver.controllers.core.garbagecollector import GarbageCollector
from clusterset.apiserver.controllers.core.namespaces import NamespaceController, NamespaceDefaults
from clusterset.apiserver.controllers.manager import Controller


def core_controllers(ca_pem: str) -> list[Controller]:
    """`ca_pem`: the CA every namespace's kube-root-ca.crt publishes."""
    return [NamespaceDefaults(ca_pem), NamespaceController(), GarbageCollector(), CRDEstablishing(), CRDFinalizer(),
            ClusterRoleAggregation(), APIServiceRegistration()]
