"""End to end on the embedded fleet: join, profiles, health, properties, leave, RBAC of agent tokens."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from clusterset.api import crds
from clusterset.api.inventory import CLUSTER_ID_PROPERTY, CLUSTER_REPORTS, CLUSTERSET_PROPERTY
from clusterset.api.mcs import CLUSTERSET_SERVICES, ENDPOINT_LEASE, EXPORTED_SERVICES
from clusterset.api.objects import condition
from clusterset.api.placement import WORKS
from clusterset.api.resources import CLUSTER_PROFILES, NAMESPACES, SECRETS, SERVICE_ACCOUNTS
from clusterset.client import ClientConfig, ClusterClient, CredentialError, Forbidden
from clusterset.fleet.embedded import FleetOptions
from clusterset.fleet.hub import HubOptions, hub_controllers
from clusterset.fleet.member import Members
from clusterset.inventory.agent import jwt_lifetime
from clusterset.inventory.registration import JoinRefused, agent_watches, join, leave, prepare_hub
from clusterset.runtime import Controller, Manager
from clusterset.runtime.access import client_for
from clusterset.testing import FleetThread, ServerThread
from tests.helpers import custom, install, wait_until

CP = ("multicluster.x-k8s.io", "v1alpha1")


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[FleetThread]:
    thread = FleetThread(FleetOptions(tmp_path / "fleet", members=3, heartbeat=0.5, grace=6.0, probe_timeout=2.0))
    try:
        yield thread
    finally:
        thread.stop()


def profiles(fleet: FleetThread) -> dict[str, dict[str, Any]]:
    items = custom(fleet.info("hub")).list_namespaced_custom_object(*CP, "clusterset", "clusterprofiles")["items"]
    return {i["metadata"]["name"]: i for i in items}


def health(profile: dict[str, Any] | None) -> str | None:
    c = condition(((profile or {}).get("status") or {}).get("conditions"), "ControlPlaneHealthy")
    return None if c is None else str(c["status"])


def prop_values(profile: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in (profile.get("status") or {}).get("properties") or []}


def test_members_get_healthy_profiles_with_version_and_properties(fleet: FleetThread) -> None:
    wait_until(lambda: {n: health(p) for n, p in profiles(fleet).items()} ==
               {"member-1": "True", "member-2": "True", "member-3": "True"}, timeout=30)
    cps = profiles(fleet)
    m1 = cps["member-1"]
    assert m1["metadata"]["labels"]["x-k8s.io/cluster-manager"] == "clusterset"
    assert m1["spec"]["clusterManager"] == {"name": "clusterset"}
    assert m1["status"]["version"]["kubernetes"] == "1.30.0"
    assert prop_values(m1) == {CLUSTER_ID_PROPERTY: "member-1", CLUSTERSET_PROPERTY: "clusterset"}
    assert all(p.get("lastObservedTime") for p in m1["status"]["properties"])
    assert condition(m1["status"]["conditions"], "Joined")["status"] == "True"
    (provider,) = m1["status"]["accessProviders"]
    assert provider["cluster"]["server"] == fleet.server.cluster_url("member-1")
    assert provider["cluster"]["extensions"][0]["extension"]["clusterName"] == "member-1"
    ns = client.CoreV1Api(fleet.info("hub").api_client()).read_namespace("clusterset")
    assert ns.metadata.labels["multicluster.x-k8s.io/clusterset"] == "clusterset"
    # fleet.json describes the fleet for scripts
    described = json.loads((fleet.state_dir / "fleet.json").read_text())  # type: ignore[operator]
    assert [(c["name"], c["role"]) for c in described["clusters"]] == [
        ("hub", "hub"), ("member-1", "member"), ("member-2", "member"), ("member-3", "member")]
    assert described["clusters"][1]["id"] == "member-1"


def test_a_new_cluster_property_shows_up_in_the_profile(fleet: FleetThread) -> None:
    wait_until(lambda: health(profiles(fleet).get("member-2")) == "True", timeout=30)
    custom(fleet.info("member-2")).create_cluster_custom_object(
        "about.k8s.io", "v1beta1", "clusterproperties",
        {"metadata": {"name": "zone.example.com"}, "spec": {"value": "eu-west"}})
    wait_until(lambda: prop_values(profiles(fleet)["member-2"]).get("zone.example.com") == "eu-west", timeout=10)


def test_a_removed_member_turns_unhealthy_and_leave_deletes_its_profile(fleet: FleetThread) -> None:
    wait_until(lambda: health(profiles(fleet).get("member-3")) == "True", timeout=30)
    fleet.remove_cluster("member-3")
    wait_until(lambda: health(profiles(fleet)["member-3"]) == "False", timeout=15)
    reason = condition(profiles(fleet)["member-3"]["status"]["conditions"], "ControlPlaneHealthy")
    assert reason["reason"] == "ReadyzFailed"
    assert health(profiles(fleet)["member-1"]) == "True"

    async def leave_by_id() -> str:
        return await leave(fleet.fleet.admin_client("hub"), None, "member-3")

    assert fleet.call(leave_by_id()) == "member-3"
    wait_until(lambda: "member-3" not in profiles(fleet), timeout=15)


def test_an_agent_that_stops_reporting_turns_health_unknown(fleet: FleetThread) -> None:
    wait_until(lambda: health(profiles(fleet).get("member-1")) == "True", timeout=30)
    fleet.call(fleet.fleet.members.remove("member-1"))
    assert "member-1" not in fleet.fleet.members.agents
    wait_until(lambda: health(profiles(fleet)["member-1"]) == "Unknown", timeout=30)
    c = condition(profiles(fleet)["member-1"]["status"]["conditions"], "ControlPlaneHealthy")
    assert c["reason"] == "AgentStoppedReporting"


def controller_names(controllers: list[Controller]) -> list[str]:
    return sorted(c.name for c in controllers)


def test_the_embedded_fleet_runs_the_controllers_of_fleet_hub_and_member(fleet: FleetThread) -> None:
    hub_side = hub_controllers(fleet.fleet.admin_client("hub"), HubOptions())
    assert controller_names(fleet.fleet.hub_manager.controllers) == controller_names(hub_side)
    member_side = Members(Manager()).manager.controllers
    assert controller_names(fleet.fleet.agent_manager.controllers) == controller_names(member_side)


def test_join_is_refused_for_a_missing_or_duplicate_id(fleet: FleetThread) -> None:
    # a cluster of another server: one the fleet would not join by itself
    other = ServerThread(None)
    try:
        stray_info = other.add_cluster("stray", controllers=False)
        stray_config = ClientConfig(server=stray_info.server, name="stray", token=stray_info.token,
                                    ca_file=stray_info.ca_file)

        async def try_join(cluster_id: str | None) -> str:
            async with ClusterClient(stray_config) as stray:
                try:
                    await join(fleet.fleet.admin_client("hub"), stray, clusterset="clusterset", cluster_id=cluster_id)
                except JoinRefused as exc:
                    return str(exc)
            return "joined"

        missing = fleet.call(try_join(None))
        assert "has no ClusterProperty cluster.clusterset.k8s.io" in missing and "--id" in missing
        duplicate = fleet.call(try_join("member-1"))
        assert "already used by another member" in duplicate
        assert "stray" not in profiles(fleet)
        assert fleet.call(try_join("stray")) == "joined"
        wait_until(lambda: "stray" in profiles(fleet), timeout=15)
        # no agent runs for it: once the manager has waited for a first report, its profile says so
        joined = wait_until(lambda: condition((profiles(fleet)["stray"].get("status") or {}).get("conditions"),
                                              "Joined"), timeout=15)
        assert joined["reason"] == "AgentNotConnected"

        # a cluster that calls itself member-1 is not the hub's member-1: leaving must not undo the real one
        twin_info = other.add_cluster("twin", controllers=False)
        install(twin_info, crds.member_crds())
        custom(twin_info).create_cluster_custom_object(
            "about.k8s.io", "v1beta1", "clusterproperties",
            {"metadata": {"name": CLUSTER_ID_PROPERTY}, "spec": {"value": "member-1"}})

        async def try_leave() -> str:
            twin_config = ClientConfig(server=twin_info.server, name="twin", token=twin_info.token,
                                       ca_file=twin_info.ca_file)
            async with ClusterClient(twin_config) as twin:
                try:
                    await leave(fleet.fleet.admin_client("hub"), twin)
                except JoinRefused as exc:
                    return str(exc)
            return "left"

        assert "is another cluster" in fleet.call(try_leave())
        assert "member-1" in profiles(fleet)
        client.CoreV1Api(fleet.info("hub").api_client()).read_namespace("clusterset-member-1")
    finally:
        other.stop()


def agent_api(fleet: FleetThread, member: str) -> client.ApiClient:
    """The official client with the agent's own hub token (from the Secret that join wrote)."""
    secret = client.CoreV1Api(fleet.info(member).api_client()).read_namespaced_secret("clusterset-hub",
                                                                                      "clusterset-system")
    kubeconfig = yaml.safe_load(base64.b64decode(secret.data["kubeconfig"]))
    config = client.Configuration()
    config.host = kubeconfig["clusters"][0]["cluster"]["server"]
    config.ssl_ca_cert = fleet.ca_file
    config.api_key = {"authorization": "Bearer " + kubeconfig["users"][0]["user"]["token"]}
    return client.ApiClient(config)


def test_an_agent_token_writes_only_its_own_hub_namespace(fleet: FleetThread) -> None:
    wait_until(lambda: health(profiles(fleet).get("member-1")) == "True", timeout=30)
    api = client.CustomObjectsApi(agent_api(fleet, "member-1"))
    own = api.get_namespaced_custom_object("clusterset.io", "v1alpha1", "clusterset-member-1", "clusterreports",
                                           "member-1")
    assert own["metadata"]["name"] == "member-1"

    def forbidden(call: Any) -> str:
        with pytest.raises(ApiException) as exc:
            call()
        assert exc.value.status == 403, exc.value.body
        body = json.loads(exc.value.body)
        assert body["reason"] == "Forbidden"
        return str(body["message"])

    user = 'User "system:serviceaccount:clusterset-member-1:clusterset-agent"'
    message = forbidden(lambda: api.get_namespaced_custom_object(
        "clusterset.io", "v1alpha1", "clusterset-member-2", "clusterreports", "member-2"))
    assert message == (f'clusterreports.clusterset.io "member-2" is forbidden: {user} cannot get resource '
                       f'"clusterreports" in API group "clusterset.io" in the namespace "clusterset-member-2"')
    message = forbidden(lambda: api.list_namespaced_custom_object(*CP, "clusterset", "clusterprofiles"))
    assert f"{user} cannot list resource \"clusterprofiles\" in API group \"multicluster.x-k8s.io\"" in message
    message = forbidden(lambda: api.patch_namespaced_custom_object_status(
        *CP, "clusterset", "clusterprofiles", "member-1", {"status": {"version": {"kubernetes": "9.9.9"}}}))
    assert "cannot patch resource \"clusterprofiles/status\"" in message
    forbidden(lambda: api.create_namespaced_custom_object(
        "clusterset.io", "v1alpha1", "clusterset-member-2", "clusterreports",
        {"apiVersion": "clusterset.io/v1alpha1", "kind": "ClusterReport", "metadata": {"name": "fake"}}))
    # the agent's own hub client, answered in the server's process, is held to the same Role
    hub = fleet.fleet.members.agents["member-1"].hub
    assert hub.in_process is not None

    async def refused() -> str:
        try:
            await hub.get(CLUSTER_REPORTS, "member-2", "clusterset-member-2")
        except Forbidden as exc:
            return str(exc)
        return "allowed"

    assert hub.config.token == agent_api(fleet, "member-1").configuration.api_key["authorization"][len("Bearer "):]
    assert f'{user} cannot get resource "clusterreports"' in fleet.call(refused())
    assert fleet.call(hub.get(CLUSTER_REPORTS, "member-1", "clusterset-member-1"))["metadata"]["name"] == "member-1"


def test_agents_read_the_hub_through_shared_watches_and_each_sees_only_its_own_namespace(fleet: FleetThread) -> None:
    wait_until(lambda: {n: health(p) for n, p in profiles(fleet).items()} ==
               {"member-1": "True", "member-2": "True", "member-3": "True"}, timeout=30)
    embedded = fleet.fleet

    async def look() -> tuple[list[str], list[str], list[tuple[str, str | None]], bool, str]:
        view = embedded.agent_manager.cluster("member-1@hub")
        own = view.informer(CLUSTER_REPORTS, "clusterset-member-1")
        await own.cache.wait_synced(10)
        # another member's namespace is not served from the shared watch: the agent's own token asks, and is refused
        other = view.informer(CLUSTER_REPORTS, "clusterset-member-2")
        try:
            await other.cache.wait_synced(1.5)
            other_synced = True
        except TimeoutError:
            other_synced = False
        other.cancel()
        hub = embedded.hub_manager.cluster("hub")
        hub_views = [(str(i.resource), i.namespace) for i in hub.informers()]
        return ([o["metadata"]["name"] for o in own.cache.list()], [str(key) for key in own.cache],
                hub_views, other_synced, type(other).__name__)

    names, keys, hub_views, other_synced, other_type = fleet.call(look())
    assert names == ["member-1"] and keys == ["clusterset-member-1/member-1"]
    assert not other_synced and other_type == "Informer"
    # the hub's watches do not grow with the members: none is of one member's namespace
    assert not [v for v in hub_views if (v[1] or "").startswith("clusterset-member-")]
    assert ("clusterreports.clusterset.io", None) in hub_views


def test_only_what_a_role_lets_the_agent_list_and_watch_is_shared() -> None:
    may = agent_watches("clusterset-member-1", "clusterset")
    assert may(CLUSTER_REPORTS, "clusterset-member-1") and may(WORKS, "clusterset-member-1")
    assert may(EXPORTED_SERVICES, "clusterset-member-1") and may(CLUSTERSET_SERVICES, "clusterset")
    assert not may(CLUSTER_REPORTS, "clusterset-member-2")  # another member's namespace
    assert not may(EXPORTED_SERVICES, "clusterset")  # the ClusterSet's namespace: only the merged services
    assert not may(CLUSTER_PROFILES, "clusterset")
    assert not may(SECRETS, "clusterset-member-1")
    assert not may(SERVICE_ACCOUNTS, "clusterset-member-1")  # its token only


def hub_secret(fleet: FleetThread, member: str) -> Any:
    return client.CoreV1Api(fleet.info(member).api_client()).read_namespaced_secret("clusterset-hub",
                                                                                   "clusterset-system")


def test_the_fleet_resumes_after_a_restart(tmp_path: Path) -> None:
    """Complete joins resume without writing (the agent keeps its token); incomplete ones are joined again."""
    members = {"member-1": "True", "member-2": "True", "member-3": "True"}
    options = FleetOptions(tmp_path / "fleet", members=3, heartbeat=0.5, grace=6.0)
    first = FleetThread(options)
    try:
        wait_until(lambda: {n: health(p) for n, p in profiles(first).items()} == members, timeout=30)
        uids = {n: p["metadata"]["uid"] for n, p in profiles(first).items()}
        secrets = {n: hub_secret(first, n) for n in members}
        port = first.server.port
        hub = first.info("hub").api_client()
        # member-2's join loses its RoleBinding, member-3's its ServiceAccount (so its token is no longer valid)
        client.RbacAuthorizationV1Api(hub).delete_namespaced_role_binding("clusterset-agent", "clusterset-member-2")
        client.CoreV1Api(hub).delete_namespaced_service_account("clusterset-agent", "clusterset-member-3")
    finally:
        first.stop()
    options.port = port
    second = FleetThread(options)
    try:
        assert sorted(second.fleet.resumed) == ["hub", "member-1", "member-2", "member-3"]
        wait_until(lambda: {n: health(p) for n, p in profiles(second).items()} == members, timeout=30)
        assert {n: p["metadata"]["uid"] for n, p in profiles(second).items()} == uids
        after = {n: hub_secret(second, n) for n in members}
        assert after["member-1"].metadata.resource_version == secrets["member-1"].metadata.resource_version
        assert after["member-1"].data == secrets["member-1"].data
        assert after["member-3"].data != secrets["member-3"].data  # a new token, for the new ServiceAccount
        hub = second.info("hub").api_client()
        binding = client.RbacAuthorizationV1Api(hub).read_namespaced_role_binding("clusterset-agent",
                                                                                  "clusterset-member-2")
        assert binding.role_ref.name == "clusterset-agent"
    finally:
        second.stop()


def test_a_consumer_reaches_a_member_from_its_profile_and_a_provider_file(fleet: FleetThread, tmp_path: Path) -> None:
    wait_until(lambda: health(profiles(fleet).get("member-2")) == "True", timeout=30)
    profile = profiles(fleet)["member-2"]
    plugin = {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
              "args": ["-m", "clusterset.cli.main", "credential-plugin", "embedded"], "provideClusterInfo": True}
    good = tmp_path / "providers.json"
    good.write_text(json.dumps({"providers": [{"name": "clusterset-embedded", "execConfig": plugin}]}))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"providers": [{"name": "clusterset-embedded",
                                              "execConfig": {**plugin, "command": str(tmp_path / "no-such-plugin")}}]}))
    client.CoreV1Api(fleet.info("member-2").api_client()).create_namespace({"metadata": {"name": "only-in-member-2"}})

    async def namespaces(provider_file: Path) -> set[str]:
        async with client_for(profile, str(provider_file)) as member:
            listed = await member.list(NAMESPACES)
            return {n["metadata"]["name"] for n in listed["items"]}

    assert "only-in-member-2" in asyncio.run(namespaces(good))
    with pytest.raises(CredentialError) as exc:
        asyncio.run(namespaces(bad))
    assert "no-such-plugin" in str(exc.value)


def test_heartbeats_do_not_rewrite_profiles(fleet: FleetThread) -> None:
    """A heartbeat renews the agent's Lease; the profile's status changes with what the agent says (and freshness
    alone at most every 30 s: `test_profile_status`)."""
    wait_until(lambda: {n: health(p) for n, p in profiles(fleet).items()} ==
               {"member-1": "True", "member-2": "True", "member-3": "True"}, timeout=30)
    hub = custom(fleet.info("hub"))
    leases = client.CoordinationV1Api(fleet.info("hub").api_client())
    start = hub.list_namespaced_custom_object(*CP, "clusterset", "clusterprofiles")["metadata"]["resourceVersion"]
    renewals = set()

    def heartbeats_seen() -> bool:
        renewals.add(leases.read_namespaced_lease(ENDPOINT_LEASE, "clusterset-member-1").spec.renew_time)
        return len(renewals) >= 6

    wait_until(heartbeats_seen, timeout=20, interval=0.1)  # the agent's heartbeat came ~6 times meanwhile
    events = list(watch.Watch().stream(hub.list_namespaced_custom_object, *CP, "clusterset", "clusterprofiles",
                                       resource_version=start, timeout_seconds=1))
    assert events == [], [(e["type"], e["object"]["metadata"]["name"]) for e in events]


def test_health_comes_back_when_the_agent_returns(fleet: FleetThread) -> None:
    wait_until(lambda: health(profiles(fleet).get("member-2")) == "True", timeout=30)
    agent = fleet.fleet.members.agents["member-2"]
    member = fleet.fleet.admin_client("member-2")
    fleet.call(fleet.fleet.agent_manager.remove_cluster("member-2"))
    wait_until(lambda: health(profiles(fleet)["member-2"]) == "Unknown", timeout=30)
    assert fleet.fleet.members.agents["member-2"] is agent
    # engaged again, its ClusterProperty watch lists them: the same agent reports
    fleet.call(fleet.fleet.agent_manager.add_cluster("member-2", member, owned=False))
    wait_until(lambda: health(profiles(fleet)["member-2"]) == "True", timeout=15)


def test_leave_and_join_refuse_what_is_not_theirs(fleet: FleetThread) -> None:
    hub, member1 = fleet.fleet.admin_client("hub"), fleet.fleet.admin_client("member-1")

    async def attempt(coro: Any) -> str:
        try:
            await coro
        except JoinRefused as exc:
            return str(exc)
        return "done"

    # member-1 is not the member with id member-2: nothing changes on either side
    refused = fleet.call(attempt(leave(hub, member1, "member-2")))
    assert "has the id 'member-1', not 'member-2'" in refused
    wait_until(lambda: health(profiles(fleet).get("member-2")) == "True", timeout=30)
    # a namespace that holds another ClusterSet is not taken over
    client.CoreV1Api(fleet.info("hub").api_client()).create_namespace(
        {"metadata": {"name": "fleet-b", "labels": {"multicluster.x-k8s.io/clusterset": "other"}}})
    refused = fleet.call(attempt(prepare_hub(hub, "fleet-b")))
    assert "holds ClusterSet 'other'" in refused
    # and a member of one set cannot join another before leaving
    refused = fleet.call(attempt(join(hub, fleet.fleet.admin_client("member-3"), clusterset="fleet-c")))
    assert "already a member of ClusterSet 'clusterset'" in refused


def test_an_agent_renews_its_own_hub_token(fleet: FleetThread) -> None:
    wait_until(lambda: health(profiles(fleet).get("member-1")) == "True", timeout=30)
    agent = fleet.fleet.members.agents["member-1"]
    first = agent.hub.config.token
    assert first is not None
    issued, expires = jwt_lifetime(first) or (0.0, 0.0)
    assert expires - issued >= 364 * 24 * 3600  # a year, as join asks
    leases = client.CoordinationV1Api(fleet.info("hub").api_client())

    def lease_version() -> str:
        return str(leases.read_namespaced_lease(ENDPOINT_LEASE, "clusterset-member-1").metadata.resource_version)

    def next_heartbeat() -> None:  # its Lease renewed with the agent's hub token
        seen = lease_version()
        wait_until(lambda: lease_version() != seen, timeout=15)

    agent.renew_at = 0.0  # due at once: the next heartbeat renews it
    wait_until(lambda: agent.hub.config.token != first, timeout=15)
    agent.renew_at = 0.8
    next_heartbeat()  # a renewal in flight when renew_at changed back has finished by now
    renewed = agent.hub.config.token
    assert renewed is not None and jwt_lifetime(renewed) is not None
    # the member's copy follows, so a restarted `clusterset agent` starts from the new token
    wait_until(lambda: agent_api(fleet, "member-1").configuration.api_key["authorization"] == f"Bearer {renewed}",
               timeout=15)
    # it keeps writing with the new token, which is not renewed again before it is due
    next_heartbeat()
    assert agent.hub.config.token == renewed


def test_a_member_s_readers_share_eight_watches(fleet: FleetThread) -> None:
    """The agent, its controllers and the DNS server of a member read it through one set of informers (one
    list+watch per kind; Services and EndpointSlices once for every selection), answered in the server's process:
    no connection, no HTTP, for any of them."""
    wait_until(lambda: health(profiles(fleet).get("member-1")) == "True", timeout=30)
    reads = fleet.fleet.member_reads["member-1"]
    assert reads.client is fleet.fleet.local_clients["member-1"] and reads.client.in_process is not None
    assert reads.client.server == fleet.fleet.server.cluster_url("member-1")  # what a join writes down is the same
    views = sorted((str(i.resource), i.namespace or "", i.label_selector or "") for i in reads.informers())
    assert views == [
        ("appliedworks.multicluster.x-k8s.io", "", ""), ("clusterproperties.about.k8s.io", "", ""),
        ("endpointslices.discovery.k8s.io", "", ""), ("namespaces", "", ""), ("secrets", "clusterset-system", ""),
        ("serviceexports.multicluster.x-k8s.io", "", ""), ("serviceimports.multicluster.x-k8s.io", "", ""),
        ("services", "", "")]


def test_a_new_profile_s_first_status_is_its_agent_s_report(fleet: FleetThread) -> None:
    """A profile made for a member whose agent runs gets one first status, from the agent's report: it does not first
    say `AgentNotConnected` and then, a moment later, what the report says (two writes per member)."""
    wait_until(lambda: {n: health(p) for n, p in profiles(fleet).items()} ==
               {"member-1": "True", "member-2": "True", "member-3": "True"}, timeout=30)
    api = custom(fleet.info("hub"))
    since = client.CoreV1Api(fleet.info("hub").api_client()).read_namespace("clusterset").metadata.resource_version
    first_status: dict[str, dict[str, Any]] = {}
    for event in watch.Watch().stream(api.list_namespaced_custom_object, *CP, "clusterset", "clusterprofiles",
                                      resource_version=since, timeout_seconds=2):
        obj = event["object"]
        if obj.get("status") and obj["metadata"]["name"] not in first_status:
            first_status[obj["metadata"]["name"]] = obj["status"]
    assert sorted(first_status) == ["member-1", "member-2", "member-3"]  # replayed from the profiles' creation
    for name, status in first_status.items():
        assert condition(status["conditions"], "Joined")["reason"] == "AgentConnected", (name, status)
