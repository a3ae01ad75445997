"""Typed errors carry the server's Status: reason, message, details and causes."""

from __future__ import annotations

import pytest

from clusterset.api.resources import CONFIG_MAPS, NAMESPACES
from clusterset.client import (
    AlreadyExists,
    ApiError,
    ClientConfig,
    ClusterClient,
    Conflict,
    Invalid,
    NotFound,
    Unauthorized,
)
from clusterset.testing import ClusterInfo


async def test_not_found(client: ClusterClient) -> None:
    with pytest.raises(NotFound) as exc:
        await client.get(CONFIG_MAPS, "nope", namespace="default")
    err = exc.value
    assert err.status == 404 and err.reason == "NotFound"
    assert err.message == 'configmaps "nope" not found'
    assert err.details == {"name": "nope", "kind": "configmaps"}
    with pytest.raises(NotFound):
        await client.delete(CONFIG_MAPS, "nope", namespace="default")


async def test_already_exists_and_conflict(client: ClusterClient) -> None:
    cm = {"metadata": {"name": "dup", "namespace": "default"}}
    first = await client.create(CONFIG_MAPS, cm)
    with pytest.raises(AlreadyExists) as exists:
        await client.create(CONFIG_MAPS, cm)
    assert exists.value.status == 409 and exists.value.message == 'configmaps "dup" already exists'
    await client.patch(CONFIG_MAPS, "dup", {"data": {"a": "1"}}, namespace="default")
    first["data"] = {"a": "stale"}
    with pytest.raises(Conflict) as conflict:
        await client.update(CONFIG_MAPS, first)  # carries the old resourceVersion
    assert not isinstance(conflict.value, AlreadyExists)
    assert "the object has been modified" in conflict.value.message
    with pytest.raises(Conflict):
        await client.delete(CONFIG_MAPS, "dup", namespace="default", preconditions={"uid": "not-the-uid"})


async def test_invalid_with_causes(client: ClusterClient) -> None:
    with pytest.raises(Invalid) as exc:
        await client.create(NAMESPACES, {"metadata": {"name": "Not_Valid"}})
    err = exc.value
    assert err.status == 422 and err.reason == "Invalid"
    assert [c["field"] for c in err.causes] == ["metadata.name"]
    assert err.message.startswith('Namespace "Not_Valid" is invalid')


async def test_unauthorized_token_is_not_retried(cluster: ClusterInfo) -> None:
    config = ClientConfig(server=cluster.server, ca_file=cluster.ca_file, token="wrong")
    async with ClusterClient.from_config(config) as c:
        with pytest.raises(Unauthorized) as exc:
            await c.list(NAMESPACES)
    assert exc.value.status == 401 and isinstance(exc.value, ApiError)


async def test_unknown_ca_is_a_connection_error(cluster: ClusterInfo, tmp_path: object) -> None:
    from clusterset.client import ConnectionFailed

    config = ClientConfig(server=cluster.server, token=cluster.token)  # system CAs do not know ours
    async with ClusterClient.from_config(config) as c:
        with pytest.raises(ConnectionFailed, match="TLS"):
            await c.list(NAMESPACES)
