"""What the server knows about each resource type: names, scope, verbs, subresources, schema."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS: tuple[str, ...] = (
    "create", "delete", "deletecollection", "get", "list", "patch", "update", "watch",
)


@dataclass
class ResourceType:
    """One served resource (built-in or from a CRD) in one group/version."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # "status", "scale" (and for built-ins e.g. "finalize", "token", "binding")
    subresources: tuple[str, ...] = ()
    # openAPIV3Schema of the kind: a CRD's, or the generated one of a built-in; None = unknown
    schema: dict[str, Any] | None = None
    # CRD additionalPrinterColumns (None for built-ins, which have their own printers)
    printer_columns: list[dict[str, Any]] | None = None
    # CRD `scale` subresource paths (specReplicasPath, statusReplicasPath, labelSelectorPath)
    scale_paths: dict[str, str] | None = None
    is_crd: bool = False
    storage_version: str | None = None  # the version its objects are stored in (a CRD's); None: its own
    deprecated: bool = False
    deprecation_warning: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # caches derived from the fields above

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def qualified(self) -> str:
        """`deployments.apps`: how error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def storage_version_hash(self) -> str:
        """What discovery names its storage version by, as kube-apiserver does (`discovery.StorageVersionHash`):
        base64 of the first 8 bytes of sha256(`group/version/kind`) of the version it is stored in."""
        gvk = f"{self.group}/{self.storage_version or self.version}/{self.kind}"
        return base64.b64encode(hashlib.sha256(gvk.encode()).digest()[:8]).decode()


def version_priority(name: str) -> tuple[int, int, int, str]:
    """A sort key in upstream's kube-aware version order (`CompareKubeAwareVersionStrings`): GA > beta > alpha,
    higher numbers first, then any other name, in lexical order."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", name)
    if not m:
        return (3, 0, 0, name)
    major = int(m.group(1))
    stage = {"": 0, None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, name)
