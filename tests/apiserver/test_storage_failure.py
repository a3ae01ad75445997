"""A full disk: the failing write gets a 500 `Status` saying why, then the server stops answering from a memory
that is ahead of its disk (fail-stop), its health endpoints fail, and a restart brings back the committed state."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from kubernetes import client
from kubernetes.client.rest import ApiException

from clusterset.testing import ServerThread


async def _limit_database_to_its_current_size(server: ServerThread) -> None:
    db = server.server._db
    pages = db.execute("PRAGMA page_count")[0][0]
    db.execute(f"PRAGMA max_page_count={pages + 1}")  # SQLite then fails the next growth with SQLITE_FULL


def test_a_full_disk_stops_the_server_and_a_restart_recovers(tmp_path: Path) -> None:
    server = ServerThread(tmp_path)
    try:
        info = server.add_cluster("full", controllers=False)
        api = client.CoreV1Api(info.api_client())
        api.create_namespaced_config_map("default", {"metadata": {"name": "kept"}, "data": {"a": "b"}})
        server.call(_limit_database_to_its_current_size(server))
        with pytest.raises(ApiException) as exc:
            api.create_namespaced_config_map("default", {"metadata": {"name": "lost"}, "data": {"a": "x" * 500_000}})
        assert exc.value.status == 500
        assert "storage failed, restart the server" in exc.value.body and "full" in exc.value.body
        with pytest.raises(ApiException) as exc:  # memory holds "lost"; nothing is answered from it any more
            api.read_namespaced_config_map("kept", "default")
        assert exc.value.status == 500 and "storage failed" in exc.value.body
        livez = requests.get(f"{info.server}/livez", verify=info.ca_file, timeout=10)
        assert livez.status_code == 500 and "storage failed" in livez.text
    finally:
        server.stop()
    restarted = ServerThread(tmp_path)
    try:
        api = client.CoreV1Api(restarted.info("full").api_client())
        names = {cm.metadata.name for cm in api.list_namespaced_config_map("default").items}
        assert "kept" in names and "lost" not in names
        kept = api.read_namespaced_config_map("kept", "default")
        created = api.create_namespaced_config_map("default", {"metadata": {"name": "after"}})
        assert int(created.metadata.resource_version) > int(kept.metadata.resource_version)
    finally:
        restarted.stop()
