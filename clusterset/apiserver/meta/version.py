"""The Kubernetes version the embedded server serves (its API, its simulated kubelets), and `/version`."""

from __future__ import annotations

KUBE_VERSION = "v1.30.0"

VERSION_INFO = {
    "major": "1",
    "minor": KUBE_VERSION.split(".")[1],
    "gitVersion": KUBE_VERSION,
    "gitCommit": "clusterset",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}
