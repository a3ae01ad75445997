"""The ReplicationController controller (upstream's ReplicationManager): the ReplicaSet controller on
core/v1 ReplicationControllers, whose selector is a plain map of labels. Pods get a `v1`
ReplicationController controller reference; adoption, release, status and the ReplicaFailure
condition are the ReplicaSet's."""

from __future__ import annotations

from clusterset.apiserver.controllers.workloads.replicasets import ReplicaSetController
from clusterset.apiserver.controllers.workloads.util import PODS, REPLICATIONCONTROLLERS, map_selector_of
from clusterset.apiserver.meta.selectors import LabelSelector
from clusterset.apiserver.storage.store import Obj


class ReplicationManager(ReplicaSetController):
    name = "replicationcontroller"
    watches: tuple[str, ...] = (REPLICATIONCONTROLLERS, PODS)
    resource = REPLICATIONCONTROLLERS
    kind = "ReplicationController"
    api_version = "v1"

    def selector(self, owner: Obj) -> LabelSelector | None:
        return map_selector_of(owner)
