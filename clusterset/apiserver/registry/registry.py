"""The resources a logical cluster serves: each (group, version, plural) with the strategy for its writes."""

from __future__ import annotations

from dataclasses import dataclass

from clusterset.apiserver.registry.resources import ResourceType, version_priority
from clusterset.apiserver.registry.strategy import Strategy


def storage_key(rt: ResourceType) -> str:
    """Objects are stored once per group/resource, whatever version they are served in."""
    return f"{rt.group}/{rt.plural}"


@dataclass
class Served:
    """A resource as served in one version, with the strategy that handles its writes."""

    rt: ResourceType
    strategy: Strategy

    @property
    def key(self) -> str:
        return storage_key(self.rt)


class Registry:
    """The resources a cluster serves: the built-ins the server seeds plus the cluster's established CRDs."""

    def __init__(self, served: list[Served] | None = None) -> None:
        self._by_gvr: dict[tuple[str, str, str], Served] = {}
        self.generation = 0  # bumped on every change; discovery/OpenAPI caches key on it
        for s in served or []:
            self.add(s)

    def add(self, served: Served) -> None:
        rt = served.rt
        self._by_gvr[(rt.group, rt.version, rt.plural)] = served
        self.generation += 1

    def remove_group_resource(self, group: str, plural: str) -> None:
        for key in [k for k in self._by_gvr if k[0] == group and k[2] == plural]:
            del self._by_gvr[key]
        self.generation += 1

    def get(self, group: str, version: str, plural: str) -> Served | None:
        return self._by_gvr.get((group, version, plural))

    def by_key(self, key: str) -> Served | None:
        """Any served version of the storage key `group/plural` (writes go through any of them alike)."""
        return next((s for s in self._by_gvr.values() if s.key == key), None)

    def of_group_resource(self, group: str, plural: str) -> list[Served]:
        return [s for (g, _, p), s in self._by_gvr.items() if g == group and p == plural]

    def all(self) -> list[Served]:
        return list(self._by_gvr.values())

    def group_versions(self) -> dict[str, list[str]]:
        """group → versions, preferred first: a built-in group's as registered, a group only CRDs serve in
        kube-aware version order (upstream sorts a CRD group's versions so: v1beta1 is preferred over v1alpha1 even
        when the CRD serving it was established after one serving only v1alpha1)."""
        out: dict[str, list[str]] = {}
        custom: dict[str, bool] = {}
        for (g, v, _), served in self._by_gvr.items():
            versions = out.setdefault(g, [])
            if v not in versions:
                versions.append(v)
            custom[g] = custom.get(g, True) and served.rt.is_crd
        for g, versions in out.items():
            if custom[g]:
                versions.sort(key=version_priority)
        return out

    def in_group_version(self, group: str, version: str) -> list[Served]:
        return [s for (g, v, _), s in self._by_gvr.items() if g == group and v == version]
