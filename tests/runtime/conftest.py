"""Fixtures of the runtime tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from clusterset.client import ClusterClient
from clusterset.testing import ClusterInfo
from tests.runtime.util import client_of


@pytest.fixture
async def client(cluster: ClusterInfo) -> AsyncIterator[ClusterClient]:
    c = client_of(cluster)
    yield c
    await c.close()
