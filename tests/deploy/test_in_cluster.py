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
import random
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
from tests.test_cli import _clusterset

pytestmark = pytest.mark.skipif(not KUBECTLS, reason="kubectl is not installed on this machine (CI requires it)")

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

    def lease_renewed_after(self, moment: float) -> bool:
        """Whether a replica holds the Lease and renewed it after `moment` (time.monotonic)."""
        try:
            lease = client.CoordinationV1Api(self.api("hub")).read_namespaced_lease("clusterset-hub", "clusterset")
        except ApiException:
            return False
        renewed = lease.spec.renew_time
        age = (datetime.now(UTC) - renewed).total_seconds() if renewed else float("inf")
        return bool(lease.spec.holder_identity) and age < time.monotonic() - moment

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


def apply_both_ways(fleet: Fleet, context: str, side: str, first: str, then: str, *, again: bool = True) -> None:
    """`first` applies for real (a server-side dry-run of a new namespace's objects fails on any cluster: the
    namespace is not there yet), `then` dry-runs; with `again`, `then` applies again and `first` dry-runs that. Each
    kubectl with a fresh discovery cache."""
    outputs = []
    steps = [(first, False), (then, True), (then, False), (first, True)] if again else [(first, False), (then, True)]
    for n, (version, dry) in enumerate(steps):
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
    """A free port below the kernel's ephemeral range (where outgoing connections would take it before the process
    binds it) that no process of the fleet was given yet."""
    taken = {*fleet.metrics.values(), fleet.dns_port}
    while True:
        port = random.randrange(20000, 32768)
        if port in taken:
            continue
        with socket.socket() as tcp, socket.socket(type=socket.SOCK_DGRAM) as udp:
            try:
                tcp.bind(("127.0.0.1", port))
                udp.bind(("127.0.0.1", port))  # the DNS server takes both
            except OSError:
                continue
        return port


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
        rendered = {side: list(yaml.safe_load_all(manifests(side))) for side in ("hub", "member")}
        timing = [f"--leader-elect-lease-duration={LEASE}", f"--leader-elect-renew-deadline={RENEW}",
                  f"--leader-elect-retry-period={RETRY}"]
        # as the README says: the hub, then `join` for each member, then the member's manifests, then its pods
        apply_both_ways(running, "hub", "hub", oldest, newest)
        hub_args = container_args(rendered["hub"], "clusterset-hub")
        for replica in ("hub-a", "hub-b"):  # starting while the members join and are installed
            start(running, replica, "hub", "clusterset-hub", [*with_ports(running, replica, hub_args), *timing])
        hub_url = f"https://127.0.0.1:{services['hub'].port}"
        joins = [subprocess.Popen(_clusterset("join", m, "--id", m, "--hub-server", hub_url, "--kubeconfig",
                                              str(kubeconfig)), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for m in MEMBERS]
        for join in joins:
            _out, err = join.communicate(timeout=60)
            assert join.returncode == 0, err
        with ThreadPoolExecutor(2) as pool:
            for done in [pool.submit(apply_both_ways, running, "member-1", "member", newest, oldest, again=False),
                         pool.submit(apply_both_ways, running, "member-2", "member", oldest, newest, again=False)]:
                done.result()
        start(running, "dns-2", "member-2", "clusterset-dns",
              with_ports(running, "dns-2", container_args(rendered["member"], "clusterset-dns")))
        for n, member in enumerate(MEMBERS, 1):
            start(running, f"agent-{n}", member, "clusterset-agent",
                  with_ports(running, f"agent-{n}", container_args(rendered["member"], "clusterset-agent")))
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
    for context, (first, dry, *more) in fleet.applied.items():
        lines = first.splitlines()
        # on a member, `join` made the CRDs and the namespace already (the same CRDs: it found none)
        made_by_join = ("customresourcedefinition", "namespace/clusterset-system ")
        assert lines and all(line.endswith(" configured" if context != "hub" and line.startswith(made_by_join)
                                           else " created") for line in lines), (context, first)
        if more:  # applying again changes nothing: no field of ours is one the server or a controller rewrites
            assert all(line.endswith(" unchanged") for line in more[0].splitlines()), (context, more[0])
        for out in (dry, *more[1:]):
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
    for name, port in fleet.metrics.items():  # what the Deployments' probes ask (a follower may start later)
        for path in ("/healthz", "/readyz"):
            wait_until(lambda u=f"http://127.0.0.1:{port}{path}": answers(u) == 200, timeout=30,
                       message=f"{name} answering {path}")
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


def answers(url: str) -> int:
    """The HTTP status of a GET, as a kubelet's probe sees it (0: no answer)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


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
        log = fleet.log(name)  # a whole 403, not the digits of a port (a server on :40333 is no refusal)
        assert "Forbidden" not in log and not re.search(r"\b403\b", log), (name, log)
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
    # applying the manifests again gives the rule back, and a replica leads again
    newest = KUBECTLS[sorted(KUBECTLS)[-1]]
    kubectl(newest, fleet.kubeconfig, fleet.tmp / "cache-restore", "hub", "apply", "-k", str(REPO / "deploy/hub"))
    last = time.monotonic()
    wait_until(lambda: fleet.lease_renewed_after(last), timeout=LEASE + 10, message="a leader renewing again")


def test_uninstall_keeps_the_crds_and_what_users_keep_in_them(fleet: Fleet) -> None:
    left = subprocess.run(_clusterset("leave", "member-2", "--hub-context", "hub", "--kubeconfig",
                                      str(fleet.kubeconfig)), capture_output=True, text=True, timeout=60)
    assert left.returncode == 0, left.stderr
    newest = KUBECTLS[sorted(KUBECTLS)[-1]]
    out = kubectl(newest, fleet.kubeconfig, fleet.tmp / "cache-uninstall", "member-2", "delete", "-k",
                  str(REPO / "deploy/member"), "-l", "app.kubernetes.io/part-of=clusterset")
    # the namespace first, and its objects with it
    assert 'namespace "clusterset-system" deleted' in out and "customresourcedefinition" not in out, out
    assert 'clusterrolebinding.rbac.authorization.k8s.io "clusterset:agent:work" deleted' in out, out
    m2 = fleet.server.info("member-2")
    assert gone(lambda: client.RbacAuthorizationV1Api(m2.api_client()).read_cluster_role("clusterset:agent"))
    ext = client.ApiextensionsV1Api(m2.api_client())
    assert {c.metadata.name for c in ext.list_custom_resource_definition().items} >= {
        "clusterproperties.about.k8s.io", "serviceexports.multicluster.x-k8s.io",
        "serviceimports.multicluster.x-k8s.io"}
    props = custom(m2).list_cluster_custom_object("about.k8s.io", "v1beta1", "clusterproperties")["items"]
    assert {p["metadata"]["name"]: p["spec"]["value"] for p in props} == {"cluster.clusterset.k8s.io": "member-2"}
    wait_until(lambda: not fleet.profile_conditions("member-2"), timeout=30, message="member-2's profile deleted")
    out = kubectl(newest, fleet.kubeconfig, fleet.tmp / "cache-uninstall-hub", "hub", "delete", "-k",
                  str(REPO / "deploy/hub"), "-l", "app.kubernetes.io/part-of=clusterset")
    assert 'namespace "clusterset-system" deleted' in out and "customresourcedefinition" not in out, out
    assert 'role.rbac.authorization.k8s.io "clusterset-hub" deleted' in out, out
    hub = fleet.server.info("hub")
    assert core(hub).read_namespace("clusterset").metadata.labels["multicluster.x-k8s.io/clusterset"] == "clusterset"
    assert fleet.profile_conditions("member-1")  # the ClusterSet's profiles stay with its namespace
