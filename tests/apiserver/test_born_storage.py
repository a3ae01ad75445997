"""What a cluster is born with (RBAC policy, APIServices, CRDs, system namespaces) is stored as references to a
template shared by the clusters born in the same second (`storage.store.Born`): a restart must bring back every copy
as it was, byte for byte, the ones changed or deleted since as they were left, and nothing of a removed cluster."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from clusterset.api.resources import CLUSTER_ROLES, CRDS
from clusterset.apiserver import Apiserver
from clusterset.apiserver import server as server_module
from clusterset.apiserver.storage.encoding import go_json
from clusterset.apiserver.storage.sqlite import Database
from clusterset.apiserver.storage.store import Born, ClusterStore
from clusterset.client import NotFound
from clusterset.fleet.embedded import member_crds
from tests.inventory.test_member_crds import client_of

BORN_KINDS = ("/apis/rbac.authorization.k8s.io/v1/clusterroles",
              "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "/apis/apiregistration.k8s.io/v1/apiservices",
              "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "/api/v1/namespaces",
              "/api/v1/serviceaccounts", "/api/v1/configmaps")


async def born_objects(server: Apiserver, name: str, session: aiohttp.ClientSession) -> dict[str, str]:
    """Every born object of the cluster as its HTTP list encodes it (keys in the server's order), by uid."""
    headers = {"Authorization": f"Bearer {server.cluster_token(name)}"}
    out: dict[str, str] = {}
    for path in BORN_KINDS:
        async with session.get(server.cluster_url(name) + path, headers=headers, ssl=False) as resp:
            assert resp.status == 200, await resp.text()
            for item in json.loads(await resp.read())["items"]:
                out[item["metadata"]["uid"]] = json.dumps(item)
    return out


def stored_rows(state: Path, sql: str) -> Any:
    db = sqlite3.connect(state / "apiserver.db")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


async def test_born_copies_come_back_from_a_restart_as_they_were_left(
        tmp_path: Path, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state"
    server = Apiserver(state)
    try:
        with monkeypatch.context() as earlier:  # born in a second of its own: templates no other cluster shares
            earlier.setattr(server_module, "now_rfc3339", lambda: "2026-01-02T03:04:05Z")
            await server.add_cluster("first", crds=member_crds())
        for name in ("b", "c"):
            await server.add_cluster(name, crds=member_crds())
        await server.start()
        before = {n: await born_objects(server, n, session) for n in ("b", "c")}
        assert len(before["b"]) >= 45
        assert not set(before["b"]) & set(before["c"])  # each cluster's own uids

        b = client_of(server, "b", session)
        view = await b.patch(CLUSTER_ROLES, "view", {"metadata": {"labels": {"changed": "yes"}}})
        crd = next(o for o in map(json.loads, before["b"].values()) if o["kind"] == "CustomResourceDefinition")
        await b.delete(CRDS, crd["metadata"]["name"])
        await server.remove_cluster("first")
    finally:
        await server.stop()
    templates = stored_rows(state, "SELECT count(*) FROM born_templates")[0][0]
    assert stored_rows(state, "SELECT count(*) FROM born WHERE cluster='first'") == [(0,)]
    for gone in (crd["metadata"]["name"], "view"):  # stored in full once changed, or not at all once deleted
        assert stored_rows(state, f"SELECT count(*) FROM born WHERE cluster='b' AND name='{gone}'") == [(0,)]

    again = Apiserver(state)
    try:
        await again.start()
        after = {n: await born_objects(again, n, session) for n in ("b", "c")}
        assert after["c"] == before["c"]  # untouched by b's changes: the copies share nothing that changes
        b = client_of(again, "b", session)
        assert (await b.get(CLUSTER_ROLES, "view"))["metadata"] == view["metadata"]
        with pytest.raises(NotFound):
            await b.get(CRDS, crd["metadata"]["name"])
        changed = {view["metadata"]["uid"], crd["metadata"]["uid"]}
        assert {u: o for u, o in after["b"].items() if u not in changed} == {
            u: o for u, o in before["b"].items() if u not in changed}
    finally:
        await again.stop()
    # the templates only the removed cluster referred to were dropped at the restart
    referred = stored_rows(state, "SELECT count(DISTINCT template) FROM born")[0][0]
    assert stored_rows(state, "SELECT count(*) FROM born_templates") == [(referred,)]
    assert referred < templates


def test_a_copy_is_encoded_as_the_object_it_is() -> None:
    """A copy's bytes are the template's with its uid and resourceVersion filled in: the right ones, whatever the
    strings around them hold."""
    store = ClusterStore("c", Database(None), typed={"/configmaps"})
    tricky = '"uid":"" "resourceVersion":""'
    born = Born("/configmaps", {
        "kind": "ConfigMap", "apiVersion": "v1",
        "metadata": {"name": tricky, "namespace": tricky, "creationTimestamp": "2026-01-02T03:04:05Z",
                     "labels": {"uid": ""}, "annotations": {"resourceVersion": "", "x": tricky}},
        "data": {"uid": "", "resourceVersion": "", "y": tricky}})
    for uid in ("5e1f0c3a-0000-4000-8000-000000000001", "5e1f0c3a-0000-4000-8000-000000000002"):
        entry = store.put_born(born, uid)
        assert entry.obj["metadata"]["uid"] == uid
        assert entry.raw == go_json(entry.obj)
    assert born.obj["metadata"]["uid"] == ""  # the template is not changed by its copies


def test_born_references_written_together_keep_their_order_with_the_changes_after_them() -> None:
    """A cluster's born references go to SQLite in one statement, before the next statement or commit: a copy
    changed in the same commit group is stored in full and its reference is gone, as when they were written one by
    one."""
    db = Database(None)
    store = ClusterStore("c", db, typed={"/configmaps"})
    born = [Born("/configmaps", {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {
        "name": name, "namespace": "default", "creationTimestamp": "2026-01-02T03:04:05Z"}, "data": {"k": name}})
        for name in ("kept", "changed")]
    entries = [store.put_born(b, f"5e1f0c3a-0000-4000-8000-00000000000{i}") for i, b in enumerate(born)]
    changed = entries[1].copy()
    changed["data"]["k"] = "new"
    changed["metadata"]["resourceVersion"] = str(store.next_rv())
    store.put("/configmaps", changed, "MODIFIED")
    db.commit_now()
    assert db.execute("SELECT name FROM born") == [("kept",)]
    assert [json.loads(data)["data"] for (data,) in db.execute("SELECT data FROM objects")] == [{"k": "new"}]
    third = Born("/configmaps", {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {
        "name": "third", "namespace": "default", "creationTimestamp": "2026-01-02T03:04:05Z"}})
    store.put_born(third, "5e1f0c3a-0000-4000-8000-000000000009")
    assert db.execute("SELECT count(*) FROM born") == [(2,)]  # a read sees what was handed over, committed or not
    db.close()
