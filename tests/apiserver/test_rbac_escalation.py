"""RBAC escalation prevention over real HTTPS, as kube-apiserver's policybased RBAC storages judge role and
binding writes: nobody grants what it does not hold, unless it may `escalate` or `bind`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import urllib3

from clusterset.apiserver.auth.covers import MAX_COMBINATIONS, TooBroad, compact, describe, uncovered
from clusterset.testing import ClusterInfo
from tests.apiserver.test_rbac import RBAC, SA_USER, bind, forbidden, rbac, role
from tests.apiserver.test_rbac import bot as bot  # the fixture: ServiceAccount a/bot with no bindings
from tests.apiserver.test_tokens import request, sa_kubeconfig
from tests.conftest import Kubectl
from tests.helpers import core

BOT_GROUPS = '["system:serviceaccounts" "system:serviceaccounts:a" "system:authenticated"]'
NOT_HELD = f'user "{SA_USER}" (groups={BOT_GROUPS}) is attempting to grant RBAC permissions not currently held:\n'
EVERYTHING = '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}'
EVERY_URL = '{NonResourceURLs:["*"], Verbs:["*"]}'
ALL_RULE = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}


@pytest.fixture
def writer(cluster: ClusterInfo, bot: ClusterInfo) -> ClusterInfo:
    """The issue's ServiceAccount: it may write Roles and RoleBindings in its namespace `a` and create
    ClusterRoleBindings, and nothing else."""
    role(cluster, "a", "rbac-writer", [{"apiGroups": [RBAC], "resources": ["roles", "rolebindings"],
                                        "verbs": ["get", "list", "create", "update", "patch", "delete"]}])
    bind(cluster, "a", "rbac-writer", "Role", "rbac-writer")
    rbac(cluster).create_cluster_role({"metadata": {"name": "crb-creator"}, "rules": [
        {"apiGroups": [RBAC], "resources": ["clusterrolebindings"], "verbs": ["create"]}]})
    bind(cluster, None, "crb-creator", "ClusterRole", "crb-creator")
    return bot


def send(info: ClusterInfo, method: str, path: str, body: Any, **headers: str) -> tuple[int, dict[str, Any]]:
    """A raw request with its own headers (a content type, impersonation)."""
    http = urllib3.PoolManager(ca_certs=info.ca_file)
    resp = http.request(method, info.server + path, body=json.dumps(body), timeout=30,
                        headers={"Authorization": f"Bearer {info.token}", "Content-Type": "application/json",
                                 **headers})
    return resp.status, json.loads(resp.data)


def binding(name: str, kind: str, role_name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "roleRef": {"apiGroup": RBAC, "kind": kind, "name": role_name},
            "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "a"}]}


# ---------------------------------------------------------------------------- the issue's attack
def test_a_service_account_cannot_grant_itself_cluster_admin(cluster: ClusterInfo, writer: ClusterInfo) -> None:
    mine = rbac(writer)
    body = forbidden(mine.create_namespaced_role_binding, "a", binding("bot-admin", "ClusterRole", "cluster-admin"))
    assert body["message"] == (f'rolebindings.{RBAC} "bot-admin" is forbidden: {NOT_HELD}{EVERYTHING}\n{EVERY_URL}')
    assert body["details"] == {"name": "bot-admin", "group": RBAC, "kind": "rolebindings"}
    body = forbidden(mine.create_cluster_role_binding, binding("bot-admin", "ClusterRole", "cluster-admin"))
    assert body["message"] == (f'clusterrolebindings.{RBAC} "bot-admin" is forbidden: {NOT_HELD}{EVERYTHING}\n'
                               f"{EVERY_URL}")
    body = forbidden(mine.create_namespaced_role, "a", {"metadata": {"name": "all"}, "rules": [ALL_RULE]})
    assert body["message"] == f'roles.{RBAC} "all" is forbidden: {NOT_HELD}{EVERYTHING}'
    # nor by changing a role it may patch, nor by a server-side apply that creates one
    role(cluster, "a", "harmless", [])
    body = forbidden(mine.patch_namespaced_role, "harmless", "a", {"rules": [ALL_RULE]})
    assert body["message"] == f'roles.{RBAC} "harmless" is forbidden: {NOT_HELD}{EVERYTHING}'
    status, body = send(writer, "PATCH", f"/apis/{RBAC}/v1/namespaces/a/roles/applied?fieldManager=bot",
                        {"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": {"name": "applied"},
                         "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]},
                        **{"Content-Type": "application/apply-patch+yaml"})
    assert status == 403 and body["message"] == (
        f'roles.{RBAC} "applied" is forbidden: {NOT_HELD}{{APIGroups:[""], Resources:["secrets"], '
        'Verbs:["get" "list"]}')
    # nothing was written, and the Secrets stay out of reach
    admin = rbac(cluster)
    assert [b.metadata.name for b in admin.list_namespaced_role_binding("a").items] == ["rbac-writer"]
    assert "bot-admin" not in {b.metadata.name for b in admin.list_cluster_role_binding().items}
    assert {r.metadata.name for r in admin.list_namespaced_role("a").items} == {"harmless", "rbac-writer"}
    assert admin.read_namespaced_role("harmless", "a").rules == []
    forbidden(core(writer).list_namespaced_secret, "a")
    forbidden(core(writer).list_secret_for_all_namespaces)


def test_missing_rules_are_listed_compactly_with_resolution_errors(cluster: ClusterInfo, writer: ClusterInfo
                                                                   ) -> None:
    bind(cluster, "a", "dangling", "Role", "missing")  # a role the bot is bound to, but that does not exist
    body = forbidden(rbac(writer).create_namespaced_role, "a", {"metadata": {"name": "r"}, "rules": [
        {"apiGroups": ["", "apps"], "resources": ["pods", "deployments/scale"], "verbs": ["get", "list"]},
        {"apiGroups": [RBAC], "resources": ["roles"], "verbs": ["get", "escalate"]},
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["x", "y"], "verbs": ["get"]}]})
    assert body["message"] == (
        f'roles.{RBAC} "r" is forbidden: {NOT_HELD}'
        '{APIGroups:[""], Resources:["configmaps"], ResourceNames:["x"], Verbs:["get"]}\n'
        '{APIGroups:[""], Resources:["configmaps"], ResourceNames:["y"], Verbs:["get"]}\n'
        '{APIGroups:[""], Resources:["deployments/scale"], Verbs:["get" "list"]}\n'
        '{APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]}\n'
        '{APIGroups:["apps"], Resources:["deployments/scale"], Verbs:["get" "list"]}\n'
        '{APIGroups:["apps"], Resources:["pods"], Verbs:["get" "list"]}\n'
        f'{{APIGroups:["{RBAC}"], Resources:["roles"], Verbs:["escalate"]}}'
        f'; resolution errors: [roles.{RBAC} "missing" not found]')


# ---------------------------------------------------------------------------- what may be granted
def test_what_the_requester_holds_may_be_granted(cluster: ClusterInfo, writer: ClusterInfo) -> None:
    mine = rbac(writer)
    subset = [{"apiGroups": [RBAC], "resources": ["roles"], "verbs": ["get", "list"]},
              {"apiGroups": [RBAC], "resources": ["rolebindings"], "resourceNames": ["x"], "verbs": ["delete"]}]
    mine.create_namespaced_role("a", {"metadata": {"name": "reader"}, "rules": subset})
    mine.create_namespaced_role_binding("a", {
        "metadata": {"name": "reader"}, "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "reader"},
        "subjects": [{"kind": "User", "apiGroup": RBAC, "name": "alice"}]})
    mine.patch_namespaced_role("reader", "a", {"rules": subset[:1]})  # narrowing is granting less
    assert rbac(cluster).read_namespaced_role("reader", "a").rules[0].verbs == ["get", "list"]
    # what it holds in its namespace it may bind there, and nowhere else
    rbac(cluster).create_cluster_role({"metadata": {"name": "role-reader"}, "rules": subset[:1]})
    alice_reads = {"metadata": {"name": "role-reader"},
                   "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "role-reader"},
                   "subjects": [{"kind": "User", "apiGroup": RBAC, "name": "alice"}]}
    mine.create_namespaced_role_binding("a", alice_reads)
    body = forbidden(mine.create_cluster_role_binding, alice_reads)
    assert body["message"] == (f'clusterrolebindings.{RBAC} "role-reader" is forbidden: {NOT_HELD}'
                               f'{{APIGroups:["{RBAC}"], Resources:["roles"], Verbs:["get" "list"]}}')


def test_binding_a_missing_role_is_404(writer: ClusterInfo) -> None:
    status, body = request(writer, "POST", f"/apis/{RBAC}/v1/namespaces/a/rolebindings",
                           binding("dangling", "Role", "nope"))
    assert (status, body["reason"], body["message"]) == (404, "NotFound", f'roles.{RBAC} "nope" not found')
    assert body["details"] == {"name": "nope", "group": RBAC, "kind": "roles"}


def test_escalate_allows_any_role_and_bind_any_binding(cluster: ClusterInfo, writer: ClusterInfo) -> None:
    role(cluster, "a", "escalator", [{"apiGroups": [RBAC], "resources": ["roles"], "verbs": ["escalate"]}])
    bind(cluster, "a", "escalator", "Role", "escalator")
    mine = rbac(writer)
    mine.create_namespaced_role("a", {"metadata": {"name": "all"}, "rules": [ALL_RULE]})
    # escalating a role grants nothing until it is bound, and binding it needs `bind` on it (or holding it)
    body = forbidden(mine.create_namespaced_role_binding, "a", binding("all", "Role", "all"))
    assert body["message"] == f'rolebindings.{RBAC} "all" is forbidden: {NOT_HELD}{EVERYTHING}'
    role(cluster, "a", "binder", [{"apiGroups": [RBAC], "resources": ["roles"], "verbs": ["bind"],
                                   "resourceNames": ["all"]}])
    bind(cluster, "a", "binder", "Role", "binder")
    mine.create_namespaced_role_binding("a", binding("all", "Role", "all"))
    assert core(writer).list_namespaced_secret("a").items is not None  # the namespace is its own now
    forbidden(core(writer).list_namespaced_secret, "b")  # and only that one


def test_bind_is_by_role_name_and_binding_scope(cluster: ClusterInfo, writer: ClusterInfo) -> None:
    rbac(cluster).create_cluster_role({"metadata": {"name": "bind-view"}, "rules": [
        {"apiGroups": [RBAC], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["view"]}]})
    bind(cluster, "a", "bind-view", "ClusterRole", "bind-view")  # in namespace a only
    mine = rbac(writer)
    mine.create_namespaced_role_binding("a", binding("view", "ClusterRole", "view"))
    assert core(writer).list_namespaced_pod("a").items == []
    body = forbidden(mine.create_namespaced_role_binding, "a", binding("edit", "ClusterRole", "edit"))
    assert body["message"].startswith(f'rolebindings.{RBAC} "edit" is forbidden: {NOT_HELD}')
    body = forbidden(mine.create_cluster_role_binding, binding("view", "ClusterRole", "view"))
    assert body["message"].startswith(f'clusterrolebindings.{RBAC} "view" is forbidden: {NOT_HELD}')


def test_masters_and_holders_of_everything_pass(cluster: ClusterInfo, bot: ClusterInfo) -> None:
    status, _ = request(cluster, "POST", f"/apis/{RBAC}/v1/clusterrolebindings",
                        binding("by-admin", "ClusterRole", "cluster-admin"))
    assert status == 201
    # anyone in system:masters (here alice, impersonated by the admin) is not judged
    status, body = send(cluster, "POST", f"/apis/{RBAC}/v1/namespaces/a/roles",
                        {"metadata": {"name": "by-alice"}, "rules": [ALL_RULE]},
                        **{"Impersonate-User": "alice", "Impersonate-Group": "system:masters"})
    assert status == 201, body
    # and who holds everything (bound to cluster-admin, not in system:masters) may grant anything
    bind(cluster, None, "bot-admin", "ClusterRole", "cluster-admin")
    mine = rbac(bot)
    mine.create_cluster_role({"metadata": {"name": "by-bot"}, "rules": [ALL_RULE],
                              "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}})
    mine.create_cluster_role_binding(binding("by-bot", "ClusterRole", "cluster-admin"))


def test_aggregation_rules_need_everything(cluster: ClusterInfo, bot: ClusterInfo) -> None:
    rbac(cluster).create_cluster_role({"metadata": {"name": "role-writer"}, "rules": [
        {"apiGroups": [RBAC], "resources": ["clusterroles"], "verbs": ["create", "update", "patch", "get"]}]})
    bind(cluster, None, "role-writer", "ClusterRole", "role-writer")
    mine = rbac(bot)
    body = forbidden(mine.create_cluster_role, {"metadata": {"name": "gatherer"}, "aggregationRule": {
        "clusterRoleSelectors": [{"matchLabels": {"anything": "true"}}]}})
    assert body["message"] == (f'clusterroles.{RBAC} "gatherer" is forbidden: must have cluster-admin privileges to '
                               "use the aggregationRule")
    # nor may it touch one that has an aggregation rule (`view`), even to change what it holds
    forbidden(mine.patch_cluster_role, "view", {"metadata": {"labels": {"touched": "yes"}}})


def test_garbage_collector_fields_alone_are_not_judged(cluster: ClusterInfo, writer: ClusterInfo) -> None:
    role(cluster, "a", "powerful", [ALL_RULE])
    mine = rbac(writer)
    owner = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": "0c2c5c5a-0000-4000-8000-000000000001"}]
    mine.patch_namespaced_role("powerful", "a", {"metadata": {"ownerReferences": owner, "finalizers": ["x.io/y"]}})
    assert rbac(cluster).read_namespaced_role("powerful", "a").metadata.finalizers == ["x.io/y"]
    body = forbidden(mine.patch_namespaced_role, "powerful", "a", {"metadata": {"labels": {"a": "b"}}})
    assert body["message"] == f'roles.{RBAC} "powerful" is forbidden: {NOT_HELD}{EVERYTHING}'


def test_dry_run_is_judged_too(writer: ClusterInfo) -> None:
    status, body = request(writer, "POST", f"/apis/{RBAC}/v1/namespaces/a/roles?dryRun=All",
                           {"metadata": {"name": "all"}, "rules": [ALL_RULE]})
    assert status == 403 and "not currently held" in body["message"]


def test_a_rule_too_broad_to_check_is_refused_at_once(writer: ClusterInfo, cluster: ClusterInfo) -> None:
    many = [f"r{i}" for i in range(400)]
    started = time.monotonic()
    status, body = request(writer, "POST", f"/apis/{RBAC}/v1/namespaces/a/roles", {
        "metadata": {"name": "huge"}, "rules": [{"apiGroups": many, "resources": many, "verbs": many}]})
    assert status == 403
    assert body["message"] == (
        f'roles.{RBAC} "huge" is forbidden: {NOT_HELD[:-2]}: the rules expand to more than {MAX_COMBINATIONS} '
        "combinations of group, resource, verb and name, too many to check: grant them in smaller roles, or ask "
        "for the escalate or bind verb")
    assert time.monotonic() - started < 5  # upstream would expand 64 million combinations
    # who holds everything is not held up: one rule held covers the rule whole
    status, _ = request(cluster, "POST", f"/apis/{RBAC}/v1/namespaces/a/rolebindings",
                        binding("all", "ClusterRole", "cluster-admin"))
    assert status == 201
    started = time.monotonic()
    status, _ = request(writer, "POST", f"/apis/{RBAC}/v1/namespaces/a/roles", {
        "metadata": {"name": "huge"}, "rules": [{"apiGroups": many, "resources": many, "verbs": many}]})
    assert status == 201 and time.monotonic() - started < 5


# ---------------------------------------------------------------------------- kubectl, as the ServiceAccount
def test_kubectl_as_the_service_account(kubectl: Kubectl, tmp_path: Path) -> None:
    kubectl("create", "namespace", "a")
    kubectl("create", "serviceaccount", "bot", "-n", "a")
    kubectl("create", "role", "rbac-writer", "-n", "a", "--verb=get,list,create,update,patch,delete",
            f"--resource=roles.{RBAC},rolebindings.{RBAC}")
    kubectl("create", "rolebinding", "rbac-writer", "-n", "a", "--role=rbac-writer", "--serviceaccount=a:bot")
    kubectl("create", "clusterrole", "crb-creator", "--verb=create", f"--resource=clusterrolebindings.{RBAC}")
    kubectl("create", "clusterrolebinding", "crb-creator", "--clusterrole=crb-creator", "--serviceaccount=a:bot")
    token = kubectl("create", "token", "bot", "-n", "a").strip()
    as_bot = Kubectl(kubectl.binary, sa_kubeconfig(kubectl.info, token, tmp_path / "bot.yaml"), tmp_path / "c")

    def can_i(*args: str) -> str:
        return as_bot.run("auth", "can-i", *args, check=False).stdout.strip()

    assert can_i("create", "rolebindings", "-n", "a") == "yes"
    assert can_i("get", "secrets", "-n", "a") == "no"
    refused = as_bot.run("create", "rolebinding", "bot-admin", "-n", "a", "--clusterrole=cluster-admin",
                         "--serviceaccount=a:bot", check=False)
    assert refused.returncode == 1
    assert (f'rolebindings.{RBAC} "bot-admin" is forbidden: {NOT_HELD}{EVERYTHING}\n{EVERY_URL}') in refused.stderr
    refused = as_bot.run("create", "clusterrolebinding", "bot-admin", "--clusterrole=cluster-admin",
                         "--serviceaccount=a:bot", check=False)
    assert refused.returncode == 1 and "is attempting to grant RBAC permissions not currently held" in refused.stderr
    assert can_i("get", "secrets", "-n", "a") == "no"
    assert can_i("get", "secrets", "-A") == "no"
    # a binding to what it holds goes through, from kubectl as from any client
    as_bot("create", "role", "role-reader", "-n", "a", "--verb=get,list", f"--resource=roles.{RBAC}")
    assert "created" in as_bot("create", "rolebinding", "alice-reads", "-n", "a", "--role=role-reader",
                               "--user=alice")
    assert kubectl("auth", "can-i", "list", f"roles.{RBAC}", "-n", "a", "--as=alice").strip() == "yes"


# ---------------------------------------------------------------------------- Covers, as a pure function
def test_covers_breaks_rules_down_as_upstream() -> None:
    def missing(held: list[dict[str, Any]], granted: list[dict[str, Any]]) -> list[str]:
        return sorted({describe(r) for r in compact(uncovered(held, granted))})

    held = [{"apiGroups": ["apps"], "resources": ["deployments", "*/scale"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["x"], "verbs": ["*"]},
            {"nonResourceURLs": ["/healthz/*", "/version"], "verbs": ["get"]}]
    assert missing(held, [{"apiGroups": ["apps"], "resources": ["deployments", "statefulsets/scale"],
                           "verbs": ["get"]}]) == []
    # `*/scale` covers subresources only; `deployments` does not cover `deployments/status`
    assert missing(held, [{"apiGroups": ["apps"], "resources": ["deployments/status", "scale"], "verbs": ["get"]}]) \
        == ['{APIGroups:["apps"], Resources:["deployments/status"], Verbs:["get"]}',
            '{APIGroups:["apps"], Resources:["scale"], Verbs:["get"]}']
    # a rule held with names covers those names, never every name
    assert missing(held, [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["x"],
                           "verbs": ["update"]}]) == []
    assert missing(held, [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["update"]}]) == [
        '{APIGroups:[""], Resources:["configmaps"], Verbs:["update"]}']
    # what is missing is compacted per group, resource and name, as CompactRules does
    assert missing(held, [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["s", "t"],
                           "verbs": ["get", "update"]}]) == [
        '{APIGroups:[""], Resources:["secrets"], ResourceNames:["s"], Verbs:["get" "update"]}',
        '{APIGroups:[""], Resources:["secrets"], ResourceNames:["t"], Verbs:["get" "update"]}']
    assert missing(held, [{"nonResourceURLs": ["/healthz/etcd", "/version", "/metrics"], "verbs": ["get"]}]) == [
        '{NonResourceURLs:["/metrics"], Verbs:["get"]}']
    assert missing([], [{"apiGroups": ["a\"b"], "resources": ["r\n"], "verbs": ["get"]}]) == [
        '{APIGroups:["a\\"b"], Resources:["r\\n"], Verbs:["get"]}']  # Go's %q
    with pytest.raises(TooBroad):
        uncovered([], [{"apiGroups": ["*"], "resources": [f"r{i}" for i in range(MAX_COMBINATIONS + 1)],
                        "verbs": ["get"]}])
