"""The embedded Kubernetes-compatible API server: many logical clusters in one process.

Other packages (the fleet, the CLI, `clusterset.testing`) use it through this module only.
"""

from clusterset.apiserver.controllers.core.crds import ClusterCRDs
from clusterset.apiserver.inprocess import Answer, InProcess
from clusterset.apiserver.meta.offload import collector_paused
from clusterset.apiserver.server import Apiserver, CannotListen
from clusterset.apiserver.storage.statelock import StateDirInUse

__all__ = ["Answer", "Apiserver", "CannotListen", "ClusterCRDs", "InProcess", "StateDirInUse", "collector_paused"]
