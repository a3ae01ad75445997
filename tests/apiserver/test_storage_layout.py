"""A state directory written with the earlier table layout (WITHOUT ROWID tables) opens with everything in it:
objects, resourceVersions and the watch history."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kubernetes import client, watch

from clusterset.testing import ServerThread

EARLIER_LAYOUT = """
CREATE TABLE objects_earlier (
  cluster TEXT NOT NULL, resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
  data BLOB NOT NULL, PRIMARY KEY (cluster, resource, namespace, name)) WITHOUT ROWID;
INSERT INTO objects_earlier SELECT cluster, resource, namespace, name, data FROM objects;
DROP TABLE objects;
ALTER TABLE objects_earlier RENAME TO objects;
CREATE TABLE events_earlier (
  cluster TEXT NOT NULL, rv INTEGER NOT NULL, type TEXT NOT NULL, resource TEXT NOT NULL,
  data BLOB NOT NULL, PRIMARY KEY (cluster, rv)) WITHOUT ROWID;
INSERT INTO events_earlier SELECT cluster, rv, type, resource, data FROM events;
DROP TABLE events;
ALTER TABLE events_earlier RENAME TO events;
"""


def test_a_state_directory_in_the_earlier_layout_is_converted(tmp_path: Path) -> None:
    first = ServerThread(tmp_path)
    try:
        api = client.CoreV1Api(first.add_cluster("old", controllers=False).api_client())
        start_rv = api.list_namespaced_config_map("default").metadata.resource_version
        made = [api.create_namespaced_config_map("default", {"metadata": {"name": f"c{i}"}, "data": {"i": str(i)}})
                for i in range(5)]
        api.delete_namespaced_config_map("c0", "default")
    finally:
        first.stop()
    with sqlite3.connect(tmp_path / "apiserver.db") as db:
        db.executescript(EARLIER_LAYOUT)
        assert "id" not in [row[1] for row in db.execute("PRAGMA table_info(objects)")]
    second = ServerThread(tmp_path)
    try:
        with sqlite3.connect(tmp_path / "apiserver.db") as db:
            assert "id" in [row[1] for row in db.execute("PRAGMA table_info(objects)")]
        api = client.CoreV1Api(second.info("old").api_client())
        items = api.list_namespaced_config_map("default").items
        listed = {cm.metadata.name: cm.metadata.resource_version for cm in items}
        assert {name: listed.get(name) for name in ("c1", "c2", "c3", "c4")} == {
            cm.metadata.name: cm.metadata.resource_version for cm in made[1:]}
        assert "c0" not in listed
        events = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
            api.list_namespaced_config_map, "default", resource_version=start_rv, timeout_seconds=1)]
        assert events == [("ADDED", f"c{i}") for i in range(5)] + [("DELETED", "c0")]
        after = api.create_namespaced_config_map("default", {"metadata": {"name": "after"}})
        assert int(after.metadata.resource_version) > max(int(cm.metadata.resource_version) for cm in made)
    finally:
        second.stop()
