"""Which resource a manifest's (apiVersion, kind) is on a member: its plural and scope, from the member's discovery.

One group-version's answer is kept until a kind is missing from it; then it is asked again (at most once per
REFRESH seconds per group-version), so a CRD that an earlier manifest (or pass) created is found on a later pass.
"""

from __future__ import annotations

import time
from typing import Any

from clusterset.api.resources import Resource
from clusterset.client import ClusterClient
from clusterset.client.errors import NotFound

REFRESH = 1.0


class Discovery:
    """A member's kinds by group-version, asked on first use."""

    def __init__(self, client: ClusterClient) -> None:
        self.client = client
        self._kinds: dict[str, dict[str, Resource]] = {}
        self._asked: dict[str, float] = {}

    async def resource(self, api_version: str, kind: str) -> Resource | None:
        """The resource serving `kind` in `api_version`, or None if the member serves none (after asking again)."""
        found = self._kinds.get(api_version, {}).get(kind)
        if found is not None:
            return found
        asked = self._asked.get(api_version)
        if asked is None or time.monotonic() - asked >= REFRESH:
            self._kinds[api_version] = await self._ask(api_version)
            self._asked[api_version] = time.monotonic()
        return self._kinds[api_version].get(kind)

    async def _ask(self, api_version: str) -> dict[str, Resource]:
        group, _, version = api_version.rpartition("/")
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            answer: Any = await self.client.request("GET", path)
        except NotFound:
            return {}
        kinds = {}
        for entry in (answer or {}).get("resources") or []:
            name, kind = entry.get("name") or "", entry.get("kind") or ""
            if name and kind and "/" not in name:
                kinds[kind] = Resource(group, version, name, kind, namespaced=bool(entry.get("namespaced")))
        return kinds
