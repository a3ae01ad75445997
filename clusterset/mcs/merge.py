"""The hub's merge as pure functions: every member's export of one namespace/name → one multi-cluster service.

KEP-1645 §Constraints and Conflict Resolution: the exports are ordered by their ServiceExport's
creationTimestamp, oldest first (ties, since timestamps have one-second resolution, by cluster id); the
oldest wins each contested field; ports are the union, merged by name, then by (protocol, port); any field
that is not the same in every export is a conflict, reported on every export. Each port of the result is
routed only to the clusters whose Service exposes it (`route_ports`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Export:
    """One valid export: the exporting cluster's id and its ExportedService record's spec."""

    cluster: str
    spec: Obj
    generation: int = 0

    @property
    def created(self) -> str:
        return str(self.spec.get("exportCreationTimestamp") or "")


# (field of the merged spec, how it is read from an export, the conflict reason, its words in a message)
def _field(name: str, default: Any = None) -> Callable[[Obj], Any]:
    return lambda spec: spec.get(name, default)


FIELDS: tuple[tuple[str, Callable[[Obj], Any], str, str], ...] = (
    ("type", _field("type"), "TypeConflict", "type"),
    ("sessionAffinity", _field("sessionAffinity", "None"), "SessionAffinityConflict", "sessionAffinity"),
    ("sessionAffinityConfig", _field("sessionAffinityConfig"), "SessionAffinityConfigConflict",
     "sessionAffinityConfig"),
    ("labels", _field("exportedLabels", {}), "LabelsConflict", "exported labels"),
    ("annotations", _field("exportedAnnotations", {}), "AnnotationsConflict", "exported annotations"),
    ("internalTrafficPolicy", _field("internalTrafficPolicy"), "InternalTrafficPolicyConflict",
     "internalTrafficPolicy"),
    ("trafficDistribution", _field("trafficDistribution"), "TrafficDistributionConflict", "trafficDistribution"),
    ("ipFamilies", _field("ipFamilies", ["IPv4"]), "IPFamilyConflict", "ipFamilies"),
)
PORT_CONFLICT = "PortConflict"


@dataclass(frozen=True)
class Merged:
    spec: Obj  # the ServiceImport's fields, plus `labels` and `annotations` to put on it
    reasons: tuple[str, ...]  # conflict reasons, in the order of mcs-api's constants
    message: str


def ordered(exports: Sequence[Export]) -> list[Export]:
    """Oldest export first; equal timestamps by cluster id, so every hub decides alike."""
    return sorted(exports, key=lambda e: (e.created, e.cluster))


def port_key(port: Obj) -> tuple[str, int]:
    return str(port.get("protocol") or "TCP"), int(port.get("port") or 0)


def union_ports(exports: Sequence[Export]) -> list[Obj]:
    """mcs-api's algorithm: oldest first, a port is skipped when its name, or else its (protocol, port), is taken."""
    out: list[Obj] = []
    names: set[str] = set()
    keys: set[tuple[str, int]] = set()
    for export in exports:
        for port in export.spec.get("ports") or []:
            name, key = str(port.get("name") or ""), port_key(port)
            if name in names or key in keys:
                continue
            names.add(name)
            keys.add(key)
            out.append(port)
    return out


def port_text(port: Obj) -> str:
    """`http:80/TCP`, or `80/TCP` for an unnamed port."""
    name = port.get("name")
    return f"{name + ':' if name else ''}{port.get('port')}/{port.get('protocol') or 'TCP'}"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _port_set(export: Export) -> list[str]:
    return sorted(_canonical(p) for p in export.spec.get("ports") or [])


def merge(exports: Sequence[Export]) -> Merged | None:
    """The merged service of `exports` (all of one namespace/name), or None when there are none."""
    if not exports:
        return None
    order = ordered(exports)
    oldest = order[0]
    total = len(order)
    spec: Obj = {"ports": union_ports(order)}
    reasons: list[str] = []
    sentences: list[str] = []
    disagree = sum(1 for e in order if _port_set(e) != _port_set(oldest))
    if disagree:
        reasons.append(PORT_CONFLICT)
        used = ", ".join(port_text(p) for p in spec["ports"]) or "none"
        sentences.append(f"Conflicting ports. Using {used}: the union of every export's ports, merged by name and "
                         f"then by protocol and port, oldest service export first (\"{oldest.cluster}\"). "
                         f"{disagree}/{total} clusters disagree.")
    for name, read, reason, words in FIELDS:
        value = read(oldest.spec)
        if value is not None:
            spec[name] = value
        disagree = sum(1 for e in order if _canonical(read(e.spec)) != _canonical(value))
        if disagree:
            reasons.append(reason)
            shown = "no value" if value is None else _canonical(value)
            sentences.append(f"Conflicting {words}. Using {shown} from oldest service export in "
                             f"\"{oldest.cluster}\". {disagree}/{total} clusters disagree.")
    if spec.get("sessionAffinity") != "ClientIP":
        spec.pop("sessionAffinityConfig", None)
    return Merged(spec, tuple(reasons), " ".join(sentences))


def route_ports(import_ports: Sequence[Obj], cluster_ports: Sequence[Obj], slice_ports: Sequence[Obj]) -> list[Obj]:
    """The ports of one cluster's imported slice: each port of the import that this cluster's Service exposes
    (same protocol and port number), under the import's name, with the target port of this cluster's slice.

    KEP-1645 (StrictPortConflict): a port reaches only the clusters that expose it. Cluster A exporting tcp/42
    and cluster B tcp/4242 (target 42) give an import with tcp/42 only, and its traffic must reach only A."""
    by_name = {(str(p.get("name") or ""), str(p.get("protocol") or "TCP")): p for p in slice_ports}
    out = []
    for port in import_ports:
        key = port_key(port)
        exposed = next((p for p in cluster_ports if port_key(p) == key), None)
        if exposed is None:
            continue
        target = by_name.get((str(exposed.get("name") or ""), key[0]))
        if target is None or target.get("port") is None:
            continue
        routed: Obj = {"name": str(port.get("name") or ""), "protocol": key[0], "port": target["port"]}
        app_protocol = target.get("appProtocol") or port.get("appProtocol")
        if app_protocol:
            routed["appProtocol"] = app_protocol
        out.append(routed)
    return out
