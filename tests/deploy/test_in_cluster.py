"""deploy/hub and deploy/member on embedded clusters, run as the real thing runs them.

kubectl (the oldest and the newest) applies the manifests, server-side dry-run and for real; `clusterset join`
registers the members; the ServiceAccounts the manifests make get their tokens; and the hub controllers (two
replicas), the agents and a DNS server run as processes in their in-cluster mode, with the args of their
Deployments, in an emulated pod (token, CA and namespace files, the service variables, no kubeconfig) whose
`kubernetes` Service records every request. So they hold exactly the manifests' RBAC, and the last test fails,
naming the request, if any of them was refused: a controller that needs a verb the manifests do not grant fails
here. One fleet for the module: the tests run in order.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.message
import dns.rdatatype
import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from clusterset.client import ClientConfig, ClusterClient, Forbidden
from clusterset.deploy import manifests
from clusterset.fleet.hub import HubOptions, hub_controllers
from clusterset.fleet.member import Members
from clusterset.inventory.registration import hub_kubeconfig_of, request_token
from clusterset.runtime import Manager
from clusterset.testing import ServerThread
from tests.conftest import KUBECTLS
from tests.deploy.pods import ClusterService, container_args, pod_environment
from tests.deploy.rbac import attributes, granted
from tests.helpers import apps, core, custom, gone, wait_until
from tests.test_cli import _clusterset, _free_port

pytestmark = pytest.mark.skipif(len(KUBECTLS) < 2 and "default" not in KUBECTLS,
                                reason="kubectl is not installed on this machine")

REPO = Path(__file__).resolve().parents[2]
MEMBERS = ("member-1", "member-2")
LEASE, RENEW, RETRY = 4.0, 3.0, 0.5  # the hub replicas' leader election, short so that a handover is quick here
SYSTEM = "clusterset-system"


@dataclass
class Fleet:
    server: ServerThread
    tmp: Path
    kubeconfig: Path
    services: dict[str, ClusterService]
    applied: dict[str, list[str]] = field(default_factory=dict)  # cluster → kubectl outputs, in order
    procs: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    metrics: dict[str, int] = field(default_factory=dict)
    dns_port: int = 0

    def api(self, cluster: str) -> Any:
        return self.server.info(cluster).api_client()

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()

    def profile_conditions(self, member: str) -> dict[str, str]:
        try:
            cp = custom(self.server.info("hub")).get_namespaced_custom_object(
                "multicluster.x-k8s.io", "v1alpha1", "clusterset", "clusterprofiles", member)
        except ApiException:
            return {}
        return {c["type"]: c["status"] for c in (cp.get("status") or {}).get("conditions") or []}

    def lease_holder(self) -> str:
        try:
            lease = client.CoordinationV1Api(self.api("hub")).read_namespaced_lease("clusterset-hub", "clusterset")
        except ApiException as err:
            if err.status == 404:  # no replica has started yet
                return ""
            raise
        return str(lease.spec.holder_identity or "")


def kubectl(binary: str, fleet_kubeconfig: Path, cache: Path, context: str, *args: str) -> str:
    out = subprocess.run([binary, f"--kubeconfig={fleet_kubeconfig}", f"--cache-dir={cache}", "--context", context,
                          *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"kubectl {' '.join(args)} on {context}:\n{out.stderr}"
    return out.stdout


def apply_both_ways(fleet: Fleet, context: str, side: str, first: str, then: str) -> None:
    """`first` applies for real (a server-side dry-run of a new namespace's objects fails on any cluster: the
    namespace is not there yet), `then` dry-runs and applies again, and `first` dry-runs the result; each kubectl
    with a fresh discovery cache."""
    outputs = []
    for n, (version, dry) in enumerate([(first, False), (then, True), (then, False), (first, True)]):
        cache = fleet.tmp / f"cache-{context}-{n}"
        extra = ["--dry-run=server"] if dry else []
        outputs.append(kubectl(KUBECTLS[version], fleet.kubeconfig, cache, context, "apply", "-k",
                               str(REPO / "deploy" / side), *extra))
    fleet.applied[context] = outputs


def start(fleet: Fleet, name: str, cluster: str, account: str, args: list[str]) -> subprocess.Popen[str]:
    """Runs `clusterset <args>` as a pod of ServiceAccount `account` (namespace clusterset-system) of `cluster`."""
    token = asyncio.run(_token(fleet, cluster, account))
    root = fleet.tmp / "pods" / name
    env = pod_environment(root, fleet.services[cluster], token, fleet.server.ca_file, SYSTEM)
    with (fleet.tmp / f"{name}.log").open("w") as out:
        proc = subprocess.Popen(_clusterset(*args), stdout=out, stderr=subprocess.STDOUT, text=True, env=env,
                                cwd=root)
    fleet.procs[name] = proc
    return proc


async def _token(fleet: Fleet, cluster: str, account: str) -> str:
    """A token of the ServiceAccount the manifests made, by TokenRequest as the kubelet asks for one."""
    async with await ClusterClient.from_kubeconfig(str(fleet.kubeconfig), cluster) as admin:
        return await request_token(admin, SYSTEM, account, 3600)


def unused_port(fleet: Fleet) -> int:
    """A free port that no process of the fleet was given yet (a port just freed may be handed out again)."""
    taken = {*fleet.metrics.values(), fleet.dns_port}
    return next(port for port in iter(_free_port, None) if port not in taken)


def with_ports(fleet: Fleet, name: str, args: list[str]) -> list[str]:
    """The Deployment's args with this host's free ports for the pod's ones."""
    out = []
    for arg in args:
        if arg.startswith("--metrics-port="):
            fleet.metrics[name] = unused_port(fleet)
            arg = f"--metrics-port={fleet.metrics[name]}"
        elif arg.startswith("--listen="):
            fleet.dns_port = unused_port(fleet)
            arg = f"--listen=127.0.0.1:{fleet.dns_port}"
        elif arg == "--metrics-host=0.0.0.0":
            arg = "--metrics-host=127.0.0.1"
        out.append(arg)
    return out


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("real")
    server = ServerThread(tmp / "server")
    services: dict[str, ClusterService] = {}
    running: Fleet | None = None
    try:
        server.add_cluster("hub", controllers=False)
        for member in MEMBERS:
            server.add_cluster(member, nodes=1)
        kubeconfig = tmp / "kubeconfig"
        server.server.write_kubeconfig(kubeconfig, ["hub", *MEMBERS], "hub")
        services = {name: ClusterService(server, name) for name in ("hub", *MEMBERS)}
        running = Fleet(server, tmp, kubeconfig, services)
        oldest, newest = sorted(KUBECTLS)[0], sorted(KUBECTLS)[-1]
        with ThreadPoolExecutor(3) as pool:
            for done in [pool.submit(apply_both_ways, running, "hub", "hub", oldest, newest),
                         pool.submit(apply_both_ways, running, "member-1", "member", newest, oldest),
                         pool.submit(apply_both_ways, running, "member-2", "member", oldest, newest)]:
                done.result()
        hub_url = f"https://127.0.0.1:{services['hub'].port}"
        joins = [subprocess.Popen(_clusterset("join", m, "--id", m, "--hub-server", hub_url, "--kubeconfig",
                                              str(kubeconfig)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for m in MEMBERS]
        for join in joins:
            _out, err = join.communicate(timeout=60)
            assert join.returncode == 0, err
        rendered = {side: list(yaml.safe_load_all(manifests(side))) for side in ("hub", "member")}
        hub_args = container_args(rendered["hub"], "clusterset-hub")
        timing = [f"--leader-elect-lease-duration={LEASE}", f"--leader-elect-renew-deadline={RENEW}",
                  f"--leader-elect-retry-period={RETRY}"]
        for replica in ("hub-a", "hub-b"):
            start(running, replica, "hub", "clusterset-hub", [*with_ports(running, replica, hub_args), *timing])
        for n, member in enumerate(MEMBERS, 1):
            start(running, f"agent-{n}", member, "clusterset-agent",
                  with_ports(running, f"agent-{n}", container_args(rendered["member"], "clusterset-agent")))
        start(running, "dns-2", "member-2", "clusterset-dns",
              with_ports(running, "dns-2", container_args(rendered["member"], "clusterset-dns")))
        yield running
    finally:
        if running is not None:
            for proc in running.procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in running.procs.values():
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for service in services.values():
            service.stop()
        server.stop()


def test_kubectl_applies_the_manifests_for_real_and_as_a_server_side_dry_run(fleet: Fleet) -> None:
    for context, (first, dry, again, dry_again) in fleet.applied.items():
        lines = first.splitlines()
        assert lines and all(line.endswith(" created") for line in lines), (context, first)
        # applying again changes nothing: no field of ours is one the server or a controller rewrites
        assert all(line.endswith(" unchanged") for line in again.splitlines()), (context, again)
        for out in (dry, dry_again):
            assert len(out.splitlines()) == len(lines) and all(
                line.endswith("(server dry run)") for line in out.splitlines()), (context, out)
    hub = fleet.applied["hub"][0]
    assert "deployment.apps/clusterset-hub created" in hub
    assert "customresourcedefinition.apiextensions.k8s.io/works.multicluster.x-k8s.io created" in hub
    member = fleet.applied["member-1"][0]
    assert "deployment.apps/clusterset-agent created" in member and "service/clusterset-dns created" in member
    deployment = apps(fleet.server.info("hub")).read_namespaced_deployment("clusterset-hub", SYSTEM)
    assert deployment.spec.replicas == 2


def test_the_fleet_goes_healthy_with_the_manifests_rbac(fleet: Fleet) -> None:
    for member in MEMBERS:
        wait_until(lambda m=member: fleet.profile_conditions(m) == {"ControlPlaneHealthy": "True", "Joined": "True"},
                   timeout=40, message=f"{member} healthy and joined")
    for name, proc in fleet.procs.items():
        assert proc.poll() is None, (name, fleet.log(name))
    for name, port in fleet.metrics.items():  # what the Deployments' probes ask
        for path in ("/healthz", "/readyz"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
                assert resp.status == 200, (name, path)
    # every feature's controllers run in the pods: the hub leader's are fleet/hub.py's, an agent's fleet/member.py's
    holder = wait_until(fleet.lease_holder, timeout=20, message="a leader")
    leader = next(name for name in ("hub-a", "hub-b") if holder.endswith(f"_{fleet.procs[name].pid}"))
    hub = ClusterClient(ClientConfig(server="https://unused"))
    assert queues(fleet.metrics[leader]) == sorted(c.name for c in hub_controllers(hub, HubOptions()))
    agent = Manager(name="agent")
    Members(agent)
    assert queues(fleet.metrics["agent-1"]) == sorted(c.name for c in agent.controllers)


# grants for paths the tests above do not take, and the code that needs each
NOT_EXERCISED = {
    ("multicluster.x-k8s.io", "placementdecisions", "update"),  # placement/writes.py: a decision that changes
    ("multicluster.x-k8s.io", "placementdecisions", "delete"),  # placement/controller.py: fewer slices needed
    ("multicluster.x-k8s.io", "works", "update"),  # workset/writes.py: a WorkSet's manifests changed, a rollout
    ("multicluster.x-k8s.io", "clusterprofiles", "delete"),  # inventory/profiles.py: a member left
    ("clusterset.io", "clustersetservices", "update"),  # mcs/sync.py: a merged service changes
    ("clusterset.io", "clustersetendpoints", "update"),  # mcs/sync.py: endpoints change
    ("multicluster.x-k8s.io", "serviceimports", "update"),  # mcs/imports.py: an import's spec changes
    ("discovery.k8s.io", "endpointslices", "update"),  # mcs/imports.py: imported endpoints change
    ("", "secrets", "patch"),  # inventory/agent.py: the renewed hub token into the member's copy
}


def queues(port: int) -> list[str]:
    """The controllers a process runs: one work queue each in its /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return sorted(re.findall(r'^workqueue_depth\{name="([^"]+)"\}', resp.read().decode(), re.MULTILINE))


def test_killing_the_leader_hands_over_within_the_lease_duration(fleet: Fleet) -> None:
    holder = wait_until(fleet.lease_holder, timeout=20, message="a leader")
    leader = next(name for name in ("hub-a", "hub-b") if holder.endswith(f"_{fleet.procs[name].pid}"))
    fleet.procs[leader].kill()  # no release: the follower must wait for the lease to expire
    killed = time.monotonic()
    new = wait_until(lambda: (h := fleet.lease_holder()) not in ("", holder) and h, timeout=LEASE + 10,
                     interval=0.1, message="another holder")
    handover = time.monotonic() - killed
    follower = "hub-b" if leader == "hub-a" else "hub-a"
    assert new.endswith(f"_{fleet.procs[follower].pid}")
    # the follower saw the last renewal at most one retry period late, and notices expiry within one more
    assert handover < LEASE + 2 * RETRY + 1.0, handover


def test_services_dns_placement_and_work_flow_through_least_privilege(fleet: Fleet) -> None:
    m1, m2 = fleet.server.info("member-1"), fleet.server.info("member-2")
    labels = {"app": "web"}
    apps(m1).create_namespaced_deployment("default", {
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    core(m1).create_namespaced_service("default", {"metadata": {"name": "web"}, "spec": {
        "selector": labels, "ports": [{"name": "http", "port": 80}]}})
    custom(m1).create_namespaced_custom_object("multicluster.x-k8s.io", "v1beta1", "default", "serviceexports",
                                               {"metadata": {"name": "web"}})

    def imported() -> list[str]:
        try:
            si = custom(m2).get_namespaced_custom_object("multicluster.x-k8s.io", "v1beta1", "default",
                                                         "serviceimports", "web")
        except ApiException:
            return []
        return list((si.get("spec") or {}).get("ips") or [])

    ips = wait_until(imported, timeout=40, message="the ServiceImport in member-2")

    async def resolve() -> list[str]:
        query = dns.message.make_query("web.default.svc.clusterset.local", dns.rdatatype.A)
        answer = await dns.asyncquery.udp(query, "127.0.0.1", port=fleet.dns_port, timeout=3)
        return [r.address for rrset in answer.answer for r in rrset]

    wait_until(lambda: asyncio.run(resolve()) == ips, timeout=20, message="member-2's DNS answering the import")

    hub = fleet.server.info("hub")
    custom(hub).create_namespaced_custom_object("clusterset.io", "v1alpha1", "clusterset", "clustersetbindings", {
        "metadata": {"name": "default"}, "spec": {"namespace": "default"}})
    custom(hub).create_namespaced_custom_object("clusterset.io", "v1alpha1", "default", "placements", {
        "metadata": {"name": "everywhere"}, "spec": {}})
    custom(hub).create_namespaced_custom_object("clusterset.io", "v1alpha1", "default", "worksets", {
        "metadata": {"name": "settings"}, "spec": {"placementRef": {"name": "everywhere"}, "manifests": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "default"},
             "data": {"placed": "yes"}}]}})

    def available() -> int:
        ws = custom(hub).get_namespaced_custom_object("clusterset.io", "v1alpha1", "default", "worksets", "settings")
        return int(((ws.get("status") or {}).get("summary") or {}).get("available") or 0)

    wait_until(lambda: available() == 2, timeout=40, message="the WorkSet available on both members")
    for member in (m1, m2):
        assert core(member).read_namespaced_config_map("settings", "default").data == {"placed": "yes"}

    # and the way back: every cleanup path runs with the same rights
    custom(hub).delete_namespaced_custom_object("clusterset.io", "v1alpha1", "default", "worksets", "settings")
    custom(m1).delete_namespaced_custom_object("multicluster.x-k8s.io", "v1beta1", "default", "serviceexports", "web")
    for member in (m1, m2):
        wait_until(lambda m=member: gone(lambda: core(m).read_namespaced_config_map("settings", "default")),
                   timeout=30, message="the Work's ConfigMap removed")
    wait_until(lambda: imported() == [] and gone(lambda: custom(m2).get_namespaced_custom_object(
        "multicluster.x-k8s.io", "v1beta1", "default", "serviceimports", "web")), timeout=30,
        message="the import withdrawn")


def test_an_agent_cannot_read_another_members_hub_namespace(fleet: Fleet) -> None:
    secret = core(fleet.server.info("member-1")).read_namespaced_secret("clusterset-hub", SYSTEM)
    kubeconfig = hub_kubeconfig_of(secret.to_dict())
    assert kubeconfig is not None
    kubeconfig["clusters"][0]["cluster"]["server"] = fleet.server.server.cluster_url("hub")  # not through the pods'
    path = fleet.tmp / "agent-1-hub.kubeconfig"
    path.write_text(json.dumps(kubeconfig))

    async def reports(namespace: str) -> list[str]:
        async with await ClusterClient.from_kubeconfig(str(path)) as agent:
            from clusterset.api.inventory import CLUSTER_REPORTS

            listed = await agent.list(CLUSTER_REPORTS, namespace)
            return [r["metadata"]["name"] for r in listed["items"]]

    assert asyncio.run(reports("clusterset-member-1")) == ["member-1"]
    with pytest.raises(Forbidden):
        asyncio.run(reports("clusterset-member-2"))


def test_nothing_the_controllers_asked_was_refused(fleet: Fleet) -> None:
    """Every request of the hub replicas, the agents and the DNS server went through their pod's Service: none was
    refused. Then, to show that a missing grant is caught, the leader loses a rule it uses and is refused."""
    refused = [str(s) for service in fleet.services.values() for s in service.refused()]
    assert refused == [], "requests refused by the manifests' RBAC:\n" + "\n".join(refused)
    users = {s.user for service in fleet.services.values() for s in service.seen}
    assert {"system:serviceaccount:clusterset-system:clusterset-hub",
            "system:serviceaccount:clusterset-system:clusterset-agent",
            "system:serviceaccount:clusterset-system:clusterset-dns",
            "system:serviceaccount:clusterset-member-1:clusterset-agent",
            "system:serviceaccount:clusterset-member-2:clusterset-agent"} <= users, users
    for name, proc in fleet.procs.items():
        assert "Forbidden" not in fleet.log(name) and "403" not in fleet.log(name), (name, fleet.log(name))
        assert name in ("hub-a", "hub-b") or proc.poll() is None
    # and nothing is granted that no request used, but for the paths this test does not take (named here)
    for side, cluster, account in (("hub", "hub", "clusterset-hub"), ("member", "member-1", "clusterset-agent"),
                                   ("member", "member-2", "clusterset-dns")):
        rendered = list(yaml.safe_load_all(manifests(side)))
        user = f"system:serviceaccount:{SYSTEM}:{account}"
        used = {a for name in ((cluster, *MEMBERS) if account == "clusterset-agent" else (cluster,))
                for s in fleet.services[name].seen if s.user == user and (a := attributes(s)) is not None}
        used |= {(g, r, "get") for g, r, v in used if v == "list"}  # a list tells all a get would
        unused = granted(rendered, SYSTEM, account) - used - NOT_EXERCISED
        assert unused == set(), f"{account} is granted what it never asked for: {sorted(unused)}"
    rbac = client.RbacAuthorizationV1Api(fleet.api("hub"))
    role = rbac.read_namespaced_role("clusterset-hub", "clusterset")
    role.rules = [r for r in role.rules if "leases" not in r.resources]
    rbac.replace_namespaced_role("clusterset-hub", "clusterset", role)
    wait_until(lambda: any("leases" in s.path for s in fleet.services["hub"].refused()), timeout=10,
               message="the leader refused when it renews its Lease")
