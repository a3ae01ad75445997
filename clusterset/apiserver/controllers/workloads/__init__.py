"""The simulated kube-controller-manager, kube-scheduler and kubelets of an embedded cluster.

With these, `kubectl create deployment hello --image=hello --replicas=3` ends with three Running,
Ready pods with IPs on nodes spread over zones, as on a real cluster. One job per module:

- `nodes.py`: the simulated nodes and their leases;
- `scheduler.py`: binds pending pods to nodes;
- `kubelet.py`: runs bound pods (IPs, phase, conditions, container statuses, termination);
- `replicasets.py`, `deployments.py`, `statefulsets.py`: the workload controllers;
- `jobs.py`, `cronjobs.py`, `ttlafterfinished.py`: Jobs, CronJobs and the cleanup of finished Jobs.
- `replicationcontrollers.py`: ReplicationControllers, on the ReplicaSet controller's loop;
- `daemonsets.py`: a pod per node; `history.py`: the ControllerRevisions it and StatefulSets keep;
- `predicates.py`: taints and node affinity, shared by the scheduler and the DaemonSet controller.

Test hooks (annotations, see kubelet.py and nodes.py): `clusterset.io/simulate-ready`,
`clusterset.io/simulate-phase`, `clusterset.io/simulate-termination-seconds`,
`clusterset.io/simulate-run-seconds`.
"""

from __future__ import annotations

from clusterset.apiserver.controllers.manager import Controller
from clusterset.apiserver.controllers.workloads.cronjobs import CronJobController
from clusterset.apiserver.controllers.workloads.daemonsets import DaemonSetController
from clusterset.apiserver.controllers.workloads.deployments import DeploymentController
from clusterset.apiserver.controllers.workloads.jobs import JobController, JobPodFinalizerController
from clusterset.apiserver.controllers.workloads.kubelet import KubeletController
from clusterset.apiserver.controllers.workloads.nodes import NodeController
from clusterset.apiserver.controllers.workloads.replicasets import ReplicaSetController
from clusterset.apiserver.controllers.workloads.replicationcontrollers import ReplicationManager
from clusterset.apiserver.controllers.workloads.scheduler import SchedulerController
from clusterset.apiserver.controllers.workloads.statefulsets import StatefulSetController
from clusterset.apiserver.controllers.workloads.ttlafterfinished import TTLAfterFinishedController


def workload_controllers() -> list[Controller]:
    """Fresh instances (the kubelet keeps per-server state: pod IPs and timers)."""
    return [
        NodeController(),
        SchedulerController(),
        KubeletController(),
        ReplicaSetController(),
        DeploymentController(),
        StatefulSetController(),
        JobController(),
        JobPodFinalizerController(),
        CronJobController(),
        TTLAfterFinishedController(),
        ReplicationManager(),
        DaemonSetController(),
    ]
