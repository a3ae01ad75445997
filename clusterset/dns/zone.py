"""The zone's answers, cached as wire bytes per question and dropped per service when its objects change.

`Zone.resolve(query)` finds where a name lies (apex, `dns-version`, `svc`, `<ns>.svc`, under a service),
answers from that service's records (computed once per change, `records.service_records`) and keeps the
packed answer under the query's lowercase question bytes. Every cached key is filed under the namespace and
service it depends on, so a change to one ServiceImport, its slices or its namespace drops only those keys;
the answers of a service that was being asked for are packed again at once (`warm`: its name and SRV names),
so the next query finds them ready; nothing is packed for services nobody asks about.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

from clusterset.api.mcs import CLUSTERSET_ZONE
from clusterset.dns import records
from clusterset.dns.records import ANY, IN, SRV, Names, Record, RRsets, Srv
from clusterset.dns.wire import NOERROR, NXDOMAIN, REFUSED, SERVFAIL, Answer, Entry, Query, key_of, pack

MAX_LABELS = 30  # a name this deep cannot be ours (ours have at most 6 labels under the zone): NXDOMAIN
MAX_ENTRIES = 100_000  # beyond this, answers are computed for each query but no longer kept (random names)
WARM_TYPES = (records.A, records.AAAA, SRV)  # what is packed ahead of the first query

ServiceKey = tuple[str, str]


class Source(Protocol):
    """What the zone reads: the member's namespaces, ServiceImports and imported EndpointSlices."""

    @property
    def synced(self) -> bool: ...

    def namespace_exists(self, namespace: str) -> bool: ...

    def service_import(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    def slices(self, namespace: str, name: str) -> list[Mapping[str, Any]]: ...


class Zone:
    def __init__(self, source: Source, zone: str = CLUSTERSET_ZONE, serial: int | None = None) -> None:
        self.source = source
        self.origin = zone.strip(".").lower()
        self.labels = tuple(label.encode() for label in self.origin.split("."))
        self.serial = serial if serial is not None else int(time.time())
        self.static = records.zone_records(self.origin, self.serial)
        self.soa = records.soa_record(self.origin, self.serial)
        self.entries: dict[bytes, Entry] = {}
        self._owned: dict[str, dict[str, set[bytes]]] = {}  # namespace → service ("": the namespace) → keys
        self._services: dict[ServiceKey, Names] = {}

    # ------------------------------------------------------------------ changes
    def service_changed(self, namespace: str, name: str) -> bool:
        """The ServiceImport or a slice of `namespace/name` changed: forget its answers. True if it had some (it
        is being asked for: worth packing again ahead of the next query)."""
        self._services.pop((namespace, name), None)
        keys = self._owned.get(namespace, {}).pop(name, set())
        self._drop(keys)
        return bool(keys)

    def namespace_changed(self, namespace: str) -> None:
        """A namespace appeared or went: forget every answer under it."""
        for name in [n for (ns, n) in self._services if ns == namespace]:
            del self._services[(namespace, name)]
        for keys in self._owned.pop(namespace, {}).values():
            self._drop(keys)

    def clear(self) -> None:
        self.entries.clear()
        self._owned.clear()
        self._services.clear()

    def _drop(self, keys: set[bytes]) -> None:
        for key in keys:
            self.entries.pop(key, None)

    def warm(self, namespace: str, name: str) -> int:
        """Packs the A, AAAA and SRV answers of a service's name and its `_port._proto` names ahead of queries;
        returns how many. Per-pod names are packed when first asked: a headless service of 1,000 pods changes with
        every pod, and packing 3,000 answers per change held the loop (an import of 10,000 endpoints took 30 times
        longer with DNS servers running)."""
        if not self.source.synced:
            return 0
        names = self._service(namespace, name)
        service = f"{name}.{namespace}.svc.{self.origin}"
        count = 0
        for owner in names:
            if owner != service and not owner.startswith("_"):
                continue
            labels = tuple(label.encode() for label in owner.split("."))
            for qtype in WARM_TYPES:
                question = b"".join(bytes((len(x),)) + x for x in labels) + b"\0" + qtype.to_bytes(2) + b"\0\1"
                if key_of(question) not in self.entries:
                    self._keep(key_of(question), (namespace, name),
                               pack(labels, qtype, IN, self._answer(names.get(owner), names, qtype)))
                    count += 1
        return count

    # ------------------------------------------------------------------ answers
    def resolve(self, query: Query) -> Entry | None:
        """The packed answer to a query in this zone (cached), or None when the name is outside the zone."""
        entry = self.entries.get(query.key)
        if entry is not None:
            return entry
        labels = query.labels
        depth = len(self.labels)
        if len(labels) < depth or labels[-depth:] != self.labels:
            return None
        if query.qclass not in (IN, ANY):
            return pack(labels, query.qtype, query.qclass, Answer(REFUSED))
        relative = [label.decode("ascii", "replace") for label in labels[:-depth]]
        if any("." in label for label in relative):
            return self._pack(query, Answer(NXDOMAIN, authority=(self.soa,)), None)  # not a name we could hold
        owner, rrsets, names = self._find(relative)
        if owner is False or owner is True:
            return pack(labels, query.qtype, query.qclass, Answer(SERVFAIL))  # not synced: never cached
        return self._pack(query, self._answer(rrsets, names, query.qtype), owner)

    def _find(self, relative: list[str]) -> tuple[ServiceKey | bool | None, RRsets | None, Names]:
        """Where a name lies: (what its answer depends on, its RRsets or None for NXDOMAIN, the names of its
        service for SRV targets). The first item is False while the caches are not synced."""
        name = ".".join([*relative, self.origin])
        static = self.static.get(name)
        if static is not None:
            return None, static, self.static
        if not relative or len(relative) > MAX_LABELS or relative[-1] != "svc":
            return None, ({} if not relative else None), {}
        if not self.source.synced:
            return False, None, {}
        if len(relative) == 1:
            return None, {}, {}  # `svc.<zone>`: an empty non-terminal, NODATA
        namespace = relative[-2]
        if len(relative) == 2:
            return (namespace, ""), ({} if self.source.namespace_exists(namespace) else None), {}
        service = relative[-3]
        names = self._service(namespace, service)
        return (namespace, service), names.get(name), names

    def _service(self, namespace: str, name: str) -> Names:
        key = (namespace, name)
        names = self._services.get(key)
        if names is None:
            names = {}
            service_import = self.source.service_import(namespace, name)
            if service_import is not None and self.source.namespace_exists(namespace):
                names = records.service_records(self.origin, namespace, name, service_import,
                                                self.source.slices(namespace, name))
            self._services[key] = names
        return names

    def _answer(self, rrsets: RRsets | None, names: Names, qtype: int) -> Answer:
        if rrsets is None:
            return Answer(NXDOMAIN, authority=(self.soa,))
        found = [r for rrset in rrsets.values() for r in rrset] if qtype == ANY else rrsets.get(qtype, [])
        if not found:
            return Answer(NOERROR, authority=(self.soa,))  # NODATA
        additional: list[Record] = []
        for record in found:
            if isinstance(record.data, Srv):
                for address_type in (records.A, records.AAAA):
                    for extra in (names.get(record.data.target) or {}).get(address_type, []):
                        if extra not in additional:
                            additional.append(extra)
        return Answer(NOERROR, tuple(found), (), tuple(additional))

    def _pack(self, query: Query, answer: Answer, owner: ServiceKey | None) -> Entry:
        entry = pack(query.labels, query.qtype, query.qclass, answer)
        self._keep(query.key, owner, entry)
        return entry

    def _keep(self, key: bytes, owner: ServiceKey | None, entry: Entry) -> None:
        if len(self.entries) >= MAX_ENTRIES:
            return
        self.entries[key] = entry
        if owner is not None:
            self._owned.setdefault(owner[0], {}).setdefault(owner[1], set()).add(key)
