"""RBAC authorization of every request, over real HTTPS, as kube-apiserver's RBAC authorizer decides."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from clusterset.apiserver.auth.attributes import Attributes, request_attributes
from clusterset.apiserver.auth.rbac import rule_allows
from clusterset.testing import ClusterInfo, ServerThread
from tests.apiserver.test_tokens import as_token, request, sa_kubeconfig, token_for
from tests.conftest import Kubectl
from tests.helpers import core, wait_until

RBAC = "rbac.authorization.k8s.io"
SA_USER = "system:serviceaccount:a:bot"


def rbac(info: ClusterInfo) -> client.RbacAuthorizationV1Api:
    return client.RbacAuthorizationV1Api(info.api_client())


@pytest.fixture
def bot(cluster: ClusterInfo) -> ClusterInfo:
    """The cluster as ServiceAccount a/bot (namespaces a and b exist), with no bindings of its own."""
    api = core(cluster)
    for ns in ("a", "b"):
        api.create_namespace({"metadata": {"name": ns}})
    api.create_namespaced_service_account("a", {"metadata": {"name": "bot"}})
    return as_token(cluster, token_for(cluster, "bot", "a"))


def forbidden(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The Status body of a call that must be 403."""
    with pytest.raises(ApiException) as exc:
        call(*args, **kwargs)
    assert exc.value.status == 403, exc.value.body
    body: dict[str, Any] = json.loads(exc.value.body)
    assert body["reason"] == "Forbidden" and body["code"] == 403 and body["status"] == "Failure"
    return body


def role(info: ClusterInfo, namespace: str, name: str, rules: list[dict[str, Any]]) -> None:
    rbac(info).create_namespaced_role(namespace, {"metadata": {"name": name}, "rules": rules})


def bind(info: ClusterInfo, namespace: str | None, name: str, role_kind: str, role_name: str,
         subjects: list[dict[str, Any]] | None = None) -> None:
    body = {"metadata": {"name": name}, "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role_name},
            "subjects": subjects or [{"kind": "ServiceAccount", "name": "bot", "namespace": "a"}]}
    if namespace is None:
        rbac(info).create_cluster_role_binding(body)
    else:
        rbac(info).create_namespaced_role_binding(namespace, body)


# ---------------------------------------------------------------------------- no bindings: 403, worded as upstream
def test_no_bindings_forbids_namespaced_resources(bot: ClusterInfo) -> None:
    api = core(bot)
    body = forbidden(api.list_namespaced_config_map, "a")
    assert body["message"] == (f'configmaps is forbidden: User "{SA_USER}" cannot list resource "configmaps" in '
                               'API group "" in the namespace "a"')
    assert body["details"] == {"kind": "configmaps"}
    body = forbidden(api.read_namespaced_config_map, "x", "a")
    assert body["message"] == (f'configmaps "x" is forbidden: User "{SA_USER}" cannot get resource "configmaps" '
                               'in API group "" in the namespace "a"')
    assert body["details"] == {"name": "x", "kind": "configmaps"}
    body = forbidden(api.create_namespaced_config_map, "a", {"metadata": {"name": "x"}})
    assert body["message"] == (f'configmaps is forbidden: User "{SA_USER}" cannot create resource "configmaps" '
                               'in API group "" in the namespace "a"')
    status, body = request(bot, "GET", "/api/v1/namespaces/a/configmaps?watch=true")
    assert status == 403
    assert body["message"] == (f'configmaps is forbidden: User "{SA_USER}" cannot watch resource "configmaps" '
                               'in API group "" in the namespace "a"')
    body = forbidden(client.AppsV1Api(bot.api_client()).read_namespaced_deployment_status, "d", "a")
    assert body["message"] == (f'deployments.apps "d" is forbidden: User "{SA_USER}" cannot get resource '
                               '"deployments/status" in API group "apps" in the namespace "a"')
    assert body["details"] == {"name": "d", "group": "apps", "kind": "deployments"}
    # authorization comes before routing: an unknown resource is 403 too, as upstream
    status, body = request(bot, "GET", "/apis/multicluster.x-k8s.io/v1alpha1/namespaces/ns/clusterprofiles/x")
    assert status == 403
    assert body["message"] == (f'clusterprofiles.multicluster.x-k8s.io "x" is forbidden: User "{SA_USER}" cannot '
                               'get resource "clusterprofiles" in API group "multicluster.x-k8s.io" in the namespace '
                               '"ns"')
    assert body["details"] == {"name": "x", "group": "multicluster.x-k8s.io", "kind": "clusterprofiles"}


def test_no_bindings_forbids_cluster_scoped_resources(bot: ClusterInfo) -> None:
    api = core(bot)
    body = forbidden(api.list_namespace)
    assert body["message"] == (f'namespaces is forbidden: User "{SA_USER}" cannot list resource "namespaces" in '
                               'API group "" at the cluster scope')
    # GET of a namespace is namespaced by that namespace (RequestInfo), as upstream words it
    body = forbidden(api.read_namespace, "b")
    assert body["message"] == (f'namespaces "b" is forbidden: User "{SA_USER}" cannot get resource "namespaces" '
                               'in API group "" in the namespace "b"')
    body = forbidden(api.read_node, "n1")
    assert body["message"] == (f'nodes "n1" is forbidden: User "{SA_USER}" cannot get resource "nodes" in API '
                               'group "" at the cluster scope')
    body = forbidden(rbac(bot).create_cluster_role, {"metadata": {"name": "mine"}, "rules": []})
    assert body["message"] == (f'clusterroles.{RBAC} is forbidden: User "{SA_USER}" cannot create resource '
                               f'"clusterroles" in API group "{RBAC}" at the cluster scope')
    status, body = request(bot, "GET", "/api/v1/nodes?watch=1")
    assert status == 403 and "cannot watch resource \"nodes\" in API group \"\" at the cluster scope" in \
        body["message"]
    # listing across namespaces is a cluster-scope request
    body = forbidden(api.list_config_map_for_all_namespaces)
    assert body["message"].endswith('cannot list resource "configmaps" in API group "" at the cluster scope')


def test_non_resource_paths(bot: ClusterInfo) -> None:
    for path in ("/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1", "/openapi/v3", "/openapi/v2",
                 "/version", "/healthz"):
        status, body = request(bot, "GET", path)
        assert status == 200, (path, body)
    status, body = request(bot, "GET", "/openapi/v3/api/v1")
    assert status == 200 and "paths" in body
    status, body = request(bot, "GET", "/")
    assert status == 403
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Forbidden",
                    "message": f'forbidden: User "{SA_USER}" cannot get path "/"', "details": {}, "code": 403}
    status, body = request(bot, "GET", "/foo")
    assert status == 403 and body["message"] == f'forbidden: User "{SA_USER}" cannot get path "/foo"'
    status, body = request(bot, "POST", "/api", {})
    assert status == 403 and body["message"] == f'forbidden: User "{SA_USER}" cannot post path "/api"'


# ---------------------------------------------------------------------------- roles and bindings
def test_role_binding_grants_in_its_namespace_only(cluster: ClusterInfo, bot: ClusterInfo) -> None:
    role(cluster, "a", "cm-rw", [{"apiGroups": [""], "resources": ["configmaps"],
                                  "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}])
    bind(cluster, "a", "bot-cm", "Role", "cm-rw")
    api = core(bot)
    api.create_namespaced_config_map("a", {"metadata": {"name": "mine"}, "data": {"k": "v"}})
    assert [c.metadata.name for c in api.list_namespaced_config_map("a").items] == ["kube-root-ca.crt", "mine"]
    api.patch_namespaced_config_map("mine", "a", {"data": {"k": "w"}})
    assert api.read_namespaced_config_map("mine", "a").data == {"k": "w"}
    api.delete_namespaced_config_map("mine", "a")
    body = forbidden(api.list_namespaced_config_map, "b")
    assert body["message"].endswith('cannot list resource "configmaps" in API group "" in the namespace "b"')
    body = forbidden(api.create_namespaced_config_map, "b", {"metadata": {"name": "x"}})
    assert 'cannot create resource "configmaps"' in body["message"]
    forbidden(api.list_namespaced_secret, "a")  # other resources stay forbidden
    forbidden(api.delete_collection_namespaced_config_map, "a")  # deletecollection was not granted


def test_resource_names_restrict(cluster: ClusterInfo, bot: ClusterInfo) -> None:
    api = core(cluster)
    for name in ("allowed", "other"):
        api.create_namespaced_config_map("a", {"metadata": {"name": name}})
    role(cluster, "a", "one", [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["allowed"],
                                "verbs": ["get", "list", "watch", "update", "create", "deletecollection"]}])
    bind(cluster, "a", "one", "Role", "one")
    mine = core(bot)
    assert mine.read_namespaced_config_map("allowed", "a").metadata.name == "allowed"
    body = forbidden(mine.read_namespaced_config_map, "other", "a")
    assert body["message"].startswith('configmaps "other" is forbidden')
    # a request without a name never matches a rule with resourceNames
    forbidden(mine.list_namespaced_config_map, "a")
    forbidden(mine.create_namespaced_config_map, "a", {"metadata": {"name": "allowed2"}})
    forbidden(mine.delete_collection_namespaced_config_map, "a")
    # ... except a list or watch pinned to the name by a field selector, as upstream's RequestInfo reads it
    listed = mine.list_namespaced_config_map("a", field_selector="metadata.name=allowed")
    assert [c.metadata.name for c in listed.items] == ["allowed"]
    forbidden(mine.list_namespaced_config_map, "a", field_selector="metadata.name=other")


def test_field_selector_name_is_read_as_the_list_filters_it(cluster: ClusterInfo, bot: ClusterInfo) -> None:
    # RBAC object names are path segments: `a,b` and `a\` are names; in a selector `\,` is a comma, `\\` a `\`
    api = rbac(cluster)
    for name in ("a,b", "a\\"):
        api.create_namespaced_role("a", {"metadata": {"name": name}, "rules": []})
    role(cluster, "a", "lister", [{"apiGroups": [RBAC], "resources": ["roles"], "resourceNames": ["a\\"],
                                   "verbs": ["list"]}])
    bind(cluster, "a", "lister", "Role", "lister")
    path = f"/apis/{RBAC}/v1/namespaces/a/roles?fieldSelector="
    status, body = request(bot, "GET", path + quote("metadata.name=a\\\\"))  # the name `a\`
    assert status == 200 and [r["metadata"]["name"] for r in body["items"]] == ["a\\"]
    status, body = request(bot, "GET", path + quote("metadata.name=a\\,b"))  # the name `a,b`: not granted
    assert status == 403
    assert body["message"].startswith(f'roles.{RBAC} "a,b" is forbidden: ')


def test_request_attributes_read_the_query_as_upstream() -> None:
    def verb(query: dict[str, str]) -> str:
        return request_attributes("GET", "/api/v1/namespaces/a/configmaps", query).verb

    for value in ("true", "1", "True", "yes", "t", ""):  # anything but 0 and false is a watch
        assert verb({"watch": value}) == "watch", value
    for value in ("false", "FALSE", "0"):
        assert verb({"watch": value}) == "list", value
    assert verb({}) == "list"
    named = request_attributes("GET", "/api/v1/namespaces/a/configmaps", {"fieldSelector": "metadata.name==x,a=b"})
    assert named.name == "x"
    assert request_attributes("GET", "/api/v1/configmaps", {"fieldSelector": "metadata.name!=x"}).name == ""
    assert request_attributes("GET", "/api/v1/configmaps", {"fieldSelector": "metadata.name=x/y"}).name == ""
    assert request_attributes("DELETE", "/api/v1/namespaces/a/configmaps", {}).verb == "deletecollection"


def test_watch_needs_the_watch_verb_however_it_is_spelled(cluster: ClusterInfo, bot: ClusterInfo) -> None:
    role(cluster, "a", "list-only", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}])
    bind(cluster, "a", "list-only", "Role", "list-only")
    for value in ("true", "1", "yes", "tRuE", "t", ""):
        status, body = request(bot, "GET", f"/api/v1/namespaces/a/configmaps?timeoutSeconds=1&watch={value}")
        assert status == 403 and 'cannot watch resource "configmaps"' in body["message"], (value, body)
    for value in ("false", "FALSE", "0"):
        status, body = request(bot, "GET", f"/api/v1/namespaces/a/configmaps?watch={value}")
        assert status == 200 and body["kind"] == "ConfigMapList", value


def test_server_side_apply_that_creates_needs_create(cluster: ClusterInfo, bot: ClusterInfo) -> None:
    core(cluster).create_namespaced_config_map("a", {"metadata": {"name": "exists"}})
    role(cluster, "a", "patcher", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch"]}])
    bind(cluster, "a", "patcher", "Role", "patcher")
    http = urllib3.PoolManager(ca_certs=bot.ca_file)

    def apply(name: str) -> tuple[int, dict[str, Any]]:
        resp = http.request("PATCH", f"{bot.server}/api/v1/namespaces/a/configmaps/{name}?fieldManager=bot",
                            body=json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                                             "data": {"k": "v"}}),
                            headers={"Authorization": f"Bearer {bot.token}",
                                     "Content-Type": "application/apply-patch+yaml"})
        return resp.status, json.loads(resp.data)

    assert apply("exists")[0] == 200  # `patch` is enough to apply to an existing object
    status, body = apply("new")  # creating one also needs `create`, and upstream's reason is RBAC's (empty)
    assert status == 403
    assert body == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Forbidden",
                    "message": 'configmaps "new" is forbidden: ', "details": {"name": "new", "kind": "configmaps"},
                    "code": 403}
    assert [c.metadata.name for c in core(cluster).list_namespaced_config_map("a").items] == [
        "exists", "kube-root-ca.crt"]
    role(cluster, "a", "creator", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"],
                                    "resourceNames": ["new"]}])
    bind(cluster, "a", "creator", "Role", "creator")
    assert apply("new")[0] == 201


def test_malformed_rules_match_nothing() -> None:
    get = Attributes("get", True, namespace="a", version="v1", resource="configmaps", name="b")
    assert rule_allows(get, {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]})
    for bad in ({"verbs": "forget"}, {"apiGroups": "apps"}, {"resources": "configmaps"}, {"resourceNames": "abc"},
                {"verbs": ["*"], "resources": "*/b"}):
        assert not rule_allows(get, {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], **bad}), bad
    path = Attributes("get", path="/apis")
    assert not rule_allows(path, {"verbs": ["get"], "nonResourceURLs": "/apis"})


def test_cluster_role_through_a_role_binding_is_namespace_limited(cluster: ClusterInfo, bot: ClusterInfo) -> None:
    bind(cluster, "a", "view-a", "ClusterRole", "view")
    api = core(bot)
    assert api.list_namespaced_pod("a").items == []
    assert api.read_namespace("a").metadata.name == "a"  # view reads namespaces: its own, through the binding
    body = forbidden(api.list_namespaced_pod, "b")
    assert body["message"].endswith('in the namespace "b"')
    forbidden(api.read_namespace, "b")
    body = forbidden(api.list_pod_for_all_namespaces)
    assert body["message"].endswith("at the cluster scope")
    forbidden(api.create_namespaced_pod, "a", {"metadata": {"name": "p"},
                                               "spec": {"containers": [{"name": "c", "image": "x"}]}})
    forbidden(api.list_namespaced_secret, "a")  # view does not read secrets


def test_cluster_role_binding_is_cluster_wide(cluster: ClusterInfo, bot: ClusterInfo) -> None:
    bind(cluster, None, "bot-edit", "ClusterRole", "edit")
    api = core(bot)
    for ns in ("a", "b", "default"):
        api.create_namespaced_config_map(ns, {"metadata": {"name": "from-bot"}})
    names = {(c.metadata.namespace, c.metadata.name) for c in api.list_config_map_for_all_namespaces().items}
    assert {("a", "from-bot"), ("b", "from-bot"), ("default", "from-bot")} <= names
    forbidden(api.list_node)  # edit has no nodes
    forbidden(rbac(bot).create_namespaced_role, "a", {"metadata": {"name": "r"}, "rules": []})  # nor roles


def test_deleting_a_binding_revokes_at_once(cluster: ClusterInfo, bot: ClusterInfo) -> None:
    bind(cluster, "a", "temp", "ClusterRole", "view")
    api = core(bot)
    assert api.list_namespaced_config_map("a").items
    rbac(cluster).delete_namespaced_role_binding("temp", "a")
    forbidden(api.list_namespaced_config_map, "a")  # the very next request
    bind(cluster, None, "temp", "ClusterRole", "view")
    assert api.list_namespaced_config_map("b").items
    rbac(cluster).delete_cluster_role_binding("temp")
    forbidden(api.list_namespaced_config_map, "b")


def test_changing_a_role_changes_access(cluster: ClusterInfo, bot: ClusterInfo) -> None:
    role(cluster, "a", "r", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}])
    bind(cluster, "a", "r", "Role", "r")
    api = core(bot)
    forbidden(api.list_namespaced_config_map, "a")
    rbac(cluster).patch_namespaced_role("r", "a", {"rules": [{"apiGroups": [""], "resources": ["configmaps"],
                                                              "verbs": ["list"]}]})
    assert api.list_namespaced_config_map("a").items
    forbidden(api.list_namespaced_secret, "a")


def test_subresources(cluster: ClusterInfo, bot: ClusterInfo) -> None:
    apps = client.AppsV1Api(cluster.api_client())
    apps.create_namespaced_deployment("a", {"metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"app": "d"}},
        "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    role(cluster, "a", "deploy", [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}])
    bind(cluster, "a", "deploy", "Role", "deploy")
    mine = client.AppsV1Api(bot.api_client())
    assert mine.read_namespaced_deployment("d", "a").metadata.name == "d"
    # `deployments` does not grant `deployments/status` or `/scale`
    body = forbidden(mine.read_namespaced_deployment_status, "d", "a")
    assert '"deployments/status"' in body["message"]
    forbidden(mine.read_namespaced_deployment_scale, "d", "a")
    role(cluster, "a", "sub", [{"apiGroups": ["apps"], "resources": ["deployments/status"], "verbs": ["get"]},
                               {"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get"]}])
    bind(cluster, "a", "sub", "Role", "sub")
    assert mine.read_namespaced_deployment_status("d", "a").metadata.name == "d"
    assert mine.read_namespaced_deployment_scale("d", "a").spec.replicas == 1
    body = forbidden(mine.patch_namespaced_deployment_scale, "d", "a", {"spec": {"replicas": 2}})
    assert 'cannot patch resource "deployments/scale" in API group "apps"' in body["message"]


def test_subjects_groups_and_default_namespace(cluster: ClusterInfo, bot: ClusterInfo) -> None:
    # a ServiceAccount subject without a namespace is in the binding's namespace
    bind(cluster, "a", "unqualified", "ClusterRole", "view", [{"kind": "ServiceAccount", "name": "bot"}])
    assert core(bot).list_namespaced_pod("a").items == []
    forbidden(core(bot).list_namespaced_pod, "b")
    # groups: every ServiceAccount of namespace a
    bind(cluster, "b", "all-of-a", "ClusterRole", "view",
         [{"kind": "Group", "apiGroup": RBAC, "name": "system:serviceaccounts:a"}])
    assert core(bot).list_namespaced_pod("b").items == []
    # users by name
    bind(cluster, None, "by-name", "ClusterRole", "view", [{"kind": "User", "apiGroup": RBAC, "name": SA_USER}])
    assert core(bot).list_pod_for_all_namespaces().items is not None


def test_missing_role_is_in_the_reason(cluster: ClusterInfo, bot: ClusterInfo) -> None:
    bind(cluster, "a", "dangling", "Role", "missing")
    body = forbidden(core(bot).list_namespaced_pod, "a")
    assert body["message"] == (f'pods is forbidden: User "{SA_USER}" cannot list resource "pods" in API group "" '
                               f'in the namespace "a": RBAC: role.{RBAC} "missing" not found')
    bind(cluster, None, "dangling", "ClusterRole", "missing-too")
    body = forbidden(core(bot).list_namespaced_pod, "a")
    assert body["message"].endswith(f': RBAC: [clusterrole.{RBAC} "missing-too" not found, '
                                    f'role.{RBAC} "missing" not found]')


def test_cluster_admin_binding_allows_everything(cluster: ClusterInfo, bot: ClusterInfo) -> None:
    bind(cluster, None, "bot-admin", "ClusterRole", "cluster-admin")
    assert request(bot, "GET", "/")[0] == 200
    assert core(bot).list_node().items == []
    rbac(bot).create_cluster_role({"metadata": {"name": "made-by-bot"}, "rules": []})


# ---------------------------------------------------------------------------- watch
def test_watch_is_authorized_when_it_starts(cluster: ClusterInfo, bot: ClusterInfo) -> None:
    bind(cluster, "a", "watcher", "ClusterRole", "view")
    api = core(bot)
    seen: list[str] = []
    ready = threading.Event()
    w = watch.Watch()

    def run() -> None:
        for ev in w.stream(api.list_namespaced_config_map, "a", timeout_seconds=20):
            name = ev["object"].metadata.name
            seen.append(name)
            if name == "kube-root-ca.crt":
                ready.set()
            if name == "after-revoke":
                w.stop()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    rbac(cluster).delete_namespaced_role_binding("watcher", "a")
    # a new watch is refused; the running one goes on, as upstream
    status, body = request(bot, "GET", "/api/v1/namespaces/a/configmaps?watch=true")
    assert status == 403 and "cannot watch resource" in body["message"]
    core(cluster).create_namespaced_config_map("a", {"metadata": {"name": "after-revoke"}})
    thread.join(15)
    assert not thread.is_alive() and seen[-1] == "after-revoke"


# ---------------------------------------------------------------------------- policy
def test_bootstrap_policy(cluster: ClusterInfo) -> None:
    api = rbac(cluster)
    roles = api.list_cluster_role(label_selector="kubernetes.io/bootstrapping=rbac-defaults").items
    assert {r.metadata.name for r in roles} >= {"cluster-admin", "admin", "edit", "view", "system:discovery",
                                                "system:basic-user", "system:public-info-viewer"}
    bindings = {b.metadata.name: b for b in api.list_cluster_role_binding().items}
    groups = {name: sorted(s.name for s in b.subjects) for name, b in bindings.items()}
    assert groups == {"cluster-admin": ["system:masters"], "system:basic-user": ["system:authenticated"],
                      "system:discovery": ["system:authenticated"],
                      "system:public-info-viewer": ["system:authenticated", "system:unauthenticated"]}
    view = api.read_cluster_role("view")
    assert view.aggregation_rule.cluster_role_selectors[0].match_labels == {
        f"{RBAC}/aggregate-to-view": "true"}
    assert any("pods" in (r.resources or []) and r.verbs == ["get", "list", "watch"] for r in view.rules)
    assert view.metadata.annotations == {"rbac.authorization.kubernetes.io/autoupdate": "true"}


def test_aggregation_extends_view(cluster: ClusterInfo, bot: ClusterInfo) -> None:
    bind(cluster, "a", "view", "ClusterRole", "view")
    status, body = request(bot, "GET", "/apis/example.com/v1/namespaces/a/widgets")
    assert status == 403 and 'cannot list resource "widgets" in API group "example.com"' in body["message"]
    rule = {"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get", "list", "watch"]}
    rbac(cluster).create_cluster_role({"metadata": {"name": "widgets-view", "labels": {
        f"{RBAC}/aggregate-to-view": "true"}}, "rules": [rule]})

    def aggregated(name: str) -> bool:
        rules = [r.to_dict() for r in rbac(cluster).read_cluster_role(name).rules or []]
        return any(r["api_groups"] == ["example.com"] for r in rules)

    for name in ("view", "edit", "admin"):  # view is aggregated into edit, edit into admin
        wait_until(lambda name=name: aggregated(name), message=f"{name} to aggregate widgets-view")
    status, _body = request(bot, "GET", "/apis/example.com/v1/namespaces/a/widgets")
    assert status == 404  # allowed now: the resource itself does not exist
    rbac(cluster).delete_cluster_role("widgets-view")
    wait_until(lambda: not aggregated("view"), message="view to drop widgets-view")
    assert request(bot, "GET", "/apis/example.com/v1/namespaces/a/widgets")[0] == 403


def test_policy_is_added_to_clusters_made_before_it(tmp_path: Path) -> None:
    first = ServerThread(tmp_path)
    try:
        info = first.add_cluster("old", controllers=False)
        rbac(info).delete_cluster_role_binding("system:discovery")  # as if made by an older version
        rbac(info).delete_cluster_role("system:discovery")
    finally:
        first.stop()
    second = ServerThread(tmp_path)
    try:
        info = second.info("old")
        assert rbac(info).read_cluster_role("system:discovery").rules[0].non_resource_urls[0] == "/api"
        assert rbac(info).read_cluster_role_binding("system:discovery").subjects[0].name == "system:authenticated"
    finally:
        second.stop()


# ---------------------------------------------------------------------------- reviews
def test_self_subject_access_review(cluster: ClusterInfo, bot: ClusterInfo) -> None:
    reviews = client.AuthorizationV1Api(bot.api_client())

    def can(verb: str, resource: str, namespace: str = "a", **extra: str) -> Any:
        return reviews.create_self_subject_access_review({"spec": {"resourceAttributes": {
            "verb": verb, "resource": resource, "namespace": namespace, **extra}}}).status

    assert can("list", "pods").allowed is False
    bind(cluster, "a", "viewer", "ClusterRole", "view")
    status = can("list", "pods")
    assert status.allowed is True
    assert status.reason == ('RBAC: allowed by RoleBinding "viewer/a" of ClusterRole "view" to ServiceAccount '
                             '"bot/a"')
    assert can("list", "pods", "b").allowed is False
    # the reason names the binding's first subject that applies, as upstream's appliesTo
    bind(cluster, "b", "viewer", "ClusterRole", "view", [
        {"kind": "User", "apiGroup": RBAC, "name": "someone-else"},
        {"kind": "Group", "apiGroup": RBAC, "name": "system:serviceaccounts:a"},
        {"kind": "ServiceAccount", "name": "bot", "namespace": "a"}])
    assert can("list", "pods", "b").reason == ('RBAC: allowed by RoleBinding "viewer/b" of ClusterRole "view" to '
                                               'Group "system:serviceaccounts:a"')
    rbac(cluster).delete_namespaced_role_binding("viewer", "b")
    assert can("create", "pods").allowed is False
    assert can("get", "deployments", group="apps", subresource="scale").allowed is True
    path = reviews.create_self_subject_access_review(
        {"spec": {"nonResourceAttributes": {"path": "/apis/apps", "verb": "get"}}}).status
    assert path.allowed is True
    assert path.reason == ('RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole '
                           '"system:discovery" to Group "system:authenticated"')
    status_code, body = request(bot, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {"spec": {}})
    assert status_code == 422
    assert body["message"] == ('SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: '
                               "Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes "
                               "must be specified")
    # an admin asking about the bot; the bot may not ask about others
    admin = client.AuthorizationV1Api(cluster.api_client())
    review = admin.create_subject_access_review({"spec": {"user": SA_USER, "groups": ["system:serviceaccounts"],
                                                          "resourceAttributes": {"verb": "list", "resource": "pods",
                                                                                 "namespace": "a"}}})
    assert review.status.allowed is True
    local = admin.create_namespaced_local_subject_access_review("b", {"spec": {
        "user": SA_USER, "resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "b"}}})
    assert local.status.allowed is False
    code, body = request(cluster, "POST", "/apis/authorization.k8s.io/v1/namespaces/b/localsubjectaccessreviews",
                         {"spec": {"user": SA_USER, "resourceAttributes": {"verb": "list", "resource": "pods",
                                                                           "namespace": "a"}}})
    assert code == 422
    assert body["message"] == ('LocalSubjectAccessReview.authorization.k8s.io "" is invalid: '
                               'spec.resourceAttributes.namespace: Invalid value: "a": must match metadata.namespace')
    body = forbidden(reviews.create_subject_access_review, {"spec": {"user": "x", "resourceAttributes": {
        "verb": "get", "resource": "pods"}}})
    assert body["message"] == (f'subjectaccessreviews.authorization.k8s.io is forbidden: User "{SA_USER}" cannot '
                               'create resource "subjectaccessreviews" in API group "authorization.k8s.io" at the '
                               "cluster scope")


def test_self_subject_rules_review(cluster: ClusterInfo, bot: ClusterInfo) -> None:
    role(cluster, "a", "cm", [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["x"],
                               "verbs": ["get"]}])
    bind(cluster, "a", "cm", "Role", "cm")
    reviews = client.AuthorizationV1Api(bot.api_client())
    status = reviews.create_self_subject_rules_review({"spec": {"namespace": "a"}}).status
    assert {"verbs": ["get"], "api_groups": [""], "resources": ["configmaps"], "resource_names": ["x"]} in [
        r.to_dict() for r in status.resource_rules]
    assert any("/api" in r.non_resource_urls for r in status.non_resource_rules)
    assert status.incomplete is False
    other = reviews.create_self_subject_rules_review({"spec": {"namespace": "b"}}).status
    assert all("configmaps" not in (r.resources or []) for r in other.resource_rules)
    # a role that cannot be found is an evaluation error (RBAC never says incomplete)
    bind(cluster, "a", "dangling", "Role", "missing")
    status = reviews.create_self_subject_rules_review({"spec": {"namespace": "a"}}).status
    assert status.incomplete is False and status.evaluation_error == f'role.{RBAC} "missing" not found'
    code, body = request(bot, "POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", {"spec": {}})
    assert code == 400 and body["message"] == "no namespace on request"


# ---------------------------------------------------------------------------- kubectl
def test_kubectl_auth_can_i(kubectl: Kubectl, tmp_path: Path) -> None:
    kubectl("create", "namespace", "a")
    kubectl("create", "serviceaccount", "bot", "-n", "a")
    token = kubectl("create", "token", "bot", "-n", "a").strip()
    as_bot = Kubectl(kubectl.binary, sa_kubeconfig(kubectl.info, token, tmp_path / "bot.yaml"), tmp_path / "c")
    no = as_bot.run("auth", "can-i", "list", "configmaps", "-n", "a", check=False)
    assert (no.returncode, no.stdout.strip()) == (1, "no")
    kubectl("create", "rolebinding", "bot-edit", "--clusterrole=edit", "--serviceaccount=a:bot", "-n", "a")
    yes = as_bot.run("auth", "can-i", "list", "configmaps", "-n", "a", check=False)
    assert (yes.returncode, yes.stdout.strip()) == (0, "yes")
    assert as_bot.run("auth", "can-i", "create", "deployments.apps", "-n", "a").stdout.strip() == "yes"
    assert as_bot.run("auth", "can-i", "list", "configmaps", "-n", "b", check=False).stdout.strip() == "no"
    assert as_bot.run("auth", "can-i", "get", "/apis").stdout.strip() == "yes"
    assert as_bot.run("auth", "can-i", "get", "/", check=False).stdout.strip() == "no"
    listed = as_bot("auth", "can-i", "--list", "-n", "a")
    assert "configmaps" in listed and "/apis/*" in listed
    # the admin asks as the bot (impersonation), and for itself
    assert kubectl("auth", "can-i", "list", "secrets", "-n", "a", "--as=system:serviceaccount:a:bot").strip() == "yes"
    as_bot_by_admin = kubectl.run("auth", "can-i", "list", "secrets", "-n", "b", "--as=system:serviceaccount:a:bot",
                                  check=False)
    assert as_bot_by_admin.stdout.strip() == "no"
    assert kubectl("auth", "can-i", "delete", "nodes").strip() == "yes"
    # and the bot's kubectl sees the 403
    denied = as_bot.run("get", "pods", "-n", "b", check=False)
    assert denied.returncode != 0 and ('pods is forbidden: User "system:serviceaccount:a:bot" cannot list resource '
                                       '"pods" in API group "" in the namespace "b"') in denied.stderr
    assert "kube-root-ca.crt" in as_bot("get", "configmaps", "-n", "a")  # allowed now


def test_kubectl_auth_whoami(kubectl: Kubectl, tmp_path: Path) -> None:
    token = kubectl("create", "token", "default").strip()
    as_default = Kubectl(kubectl.binary, sa_kubeconfig(kubectl.info, token, tmp_path / "d.yaml"), tmp_path / "c")
    out = json.loads(as_default("auth", "whoami", "-o", "json"))
    assert out["status"]["userInfo"]["username"] == "system:serviceaccount:default:default"
    assert json.loads(kubectl("auth", "whoami", "-o", "json"))["status"]["userInfo"]["username"] == \
        "clusterset-admin"


# ---------------------------------------------------------------------------- validation and impersonation
def test_binding_validation(cluster: ClusterInfo) -> None:
    api = rbac(cluster)
    bind(cluster, "default", "b", "ClusterRole", "view", [{"kind": "User", "name": "alice"}])
    made = api.read_namespaced_role_binding("b", "default")
    assert made.subjects[0].api_group == RBAC  # defaulted, as upstream
    body = expect_status(api.patch_namespaced_role_binding, 422, "b", "default", {"roleRef": {"name": "edit"}})
    assert body["message"] == (f'RoleBinding.{RBAC} "b" is invalid: roleRef: Invalid value: rbac.RoleRef{{'
                               f'APIGroup:"{RBAC}", Kind:"ClusterRole", Name:"edit"}}: cannot change roleRef')
    body = expect_status(api.create_cluster_role_binding, 422, {
        "metadata": {"name": "bad"}, "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "sa"}, {"kind": "Robot", "name": "r2d2"}]})
    assert body["message"] == (f'ClusterRoleBinding.{RBAC} "bad" is invalid: [roleRef.kind: Unsupported value: '
                               '"Role": supported values: "ClusterRole", subjects[0].namespace: Required value, '
                               'subjects[1].kind: Unsupported value: "Robot": supported values: "ServiceAccount", '
                               '"User", "Group"]')
    body = expect_status(api.create_namespaced_role, 422, "default", {"metadata": {"name": "r"}, "rules": [
        {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}, {"resources": ["pods"], "verbs": []}]})
    assert body["message"] == (f'Role.{RBAC} "r" is invalid: [rules[0].nonResourceURLs: Invalid value: '
                               '[]string{"/metrics"}: namespaced rules cannot apply to non-resource URLs, '
                               "rules[1].verbs: Required value: verbs must contain at least one value, "
                               "rules[1].apiGroups: Required value: resource rules must supply at least one api "
                               "group]")


def expect_status(call: Any, code: int, *args: Any) -> dict[str, Any]:
    with pytest.raises(ApiException) as exc:
        call(*args)
    assert exc.value.status == code, exc.value.body
    body: dict[str, Any] = json.loads(exc.value.body)
    return body


def test_names_and_selectors_are_validated_as_upstream(cluster: ClusterInfo) -> None:
    api = rbac(cluster)
    body = expect_status(api.create_namespaced_role_binding, 422, "default", {
        "metadata": {"name": "b"}, "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "a/b"},
        "subjects": [{"kind": "ServiceAccount", "name": "Not_A_Name"}, {"kind": "User", "name": ""}]})
    assert body["message"] == (
        f'RoleBinding.{RBAC} "b" is invalid: [roleRef.name: Invalid value: "a/b": may not contain \'/\', '
        'subjects[0].name: Invalid value: "Not_A_Name": a lowercase RFC 1123 subdomain must consist of lower case '
        "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
        "'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*'), subjects[1].name: Required value]")
    body = expect_status(api.create_cluster_role, 422, {"metadata": {"name": "agg"}, "aggregationRule": {
        "clusterRoleSelectors": [{"matchExpressions": [{"key": "a", "operator": "Bogus"},
                                                       {"key": "-b", "operator": "In"}]}]}})
    assert body["message"] == (
        f'ClusterRole.{RBAC} "agg" is invalid: [aggregationRule.clusterRoleSelectors[0].matchExpressions[0].operator: '
        'Invalid value: "Bogus": not a valid selector operator, '
        "aggregationRule.clusterRoleSelectors[0].matchExpressions[1].values: Required value: must be specified when "
        "`operator` is 'In' or 'NotIn', aggregationRule.clusterRoleSelectors[0].matchExpressions[1].key: Invalid "
        'value: "-b": name part must consist of alphanumeric characters, \'-\', \'_\' or \'.\', and must start and '
        "end with an alphanumeric character]")
    body = expect_status(api.create_cluster_role, 422, {"metadata": {"name": "agg"}, "aggregationRule": {}})
    assert body["message"] == (f'ClusterRole.{RBAC} "agg" is invalid: aggregationRule.clusterRoleSelectors: Required '
                               "value: at least one clusterRoleSelector required if aggregationRule is non-nil")


def test_wrong_types_are_refused_as_upstream_decodes_them(cluster: ClusterInfo) -> None:
    """A rule whose verbs are a string used to be stored (and matched nothing): upstream's decoder refuses it."""
    path = f"/apis/{RBAC}/v1"
    cases = [
        ("namespaces/default/roles", "Role", {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": "get"}]},
         "string into Go struct field PolicyRule.rules.verbs of type []string"),
        ("namespaces/default/roles", "Role", {"rules": [{"verbs": ["get", 1]}]},
         "number into Go struct field PolicyRule.rules.verbs of type string"),
        ("namespaces/default/roles", "Role", {"rules": "all"},
         "string into Go struct field Role.rules of type []v1.PolicyRule"),
        ("clusterroles", "ClusterRole", {"aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": True}}]}},
         "bool into Go struct field LabelSelector.aggregationRule.clusterRoleSelectors.matchLabels of type string"),
        ("namespaces/default/rolebindings", "RoleBinding", {"roleRef": "view"},
         "string into Go struct field RoleBinding.roleRef of type v1.RoleRef"),
        ("clusterrolebindings", "ClusterRoleBinding",
         {"roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": ["system:masters"]},
         "string into Go struct field ClusterRoleBinding.subjects of type v1.Subject"),
    ]
    for resource, kind, fields, error in cases:
        status, body = request(cluster, "POST", f"{path}/{resource}", {"metadata": {"name": "typed"}, **fields})
        assert (status, body["reason"]) == (400, "BadRequest"), (kind, body)
        assert body["message"] == (f'{kind} in version "v1" cannot be handled as a {kind}: json: cannot unmarshal '
                                   f"{error}")
        assert request(cluster, "GET", f"{path}/{resource}/typed")[0] == 404


def test_nulls_in_lists_are_zero_values_as_go_decodes_them(cluster: ClusterInfo) -> None:
    """A null selector requirement used to crash validation (a 500); Go decodes it as an empty requirement."""
    status, body = request(cluster, "POST", f"/apis/{RBAC}/v1/clusterroles", {
        "metadata": {"name": "nulls"}, "aggregationRule": {"clusterRoleSelectors": [{"matchExpressions": [None]}]}})
    assert (status, body["message"]) == (422, (
        f'ClusterRole.{RBAC} "nulls" is invalid: [aggregationRule.clusterRoleSelectors[0].matchExpressions[0].'
        'operator: Invalid value: "": not a valid selector operator, aggregationRule.clusterRoleSelectors[0].'
        'matchExpressions[0].key: Invalid value: "": name part must be non-empty]'))
    status, body = request(cluster, "POST", f"/apis/{RBAC}/v1/clusterroles", {
        "metadata": {"name": "nulls"}, "rules": [{"apiGroups": [None], "resources": ["pods"], "verbs": ["get"]}],
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": None}}, None]}})
    assert status == 201, body
    assert body["rules"][0]["apiGroups"] == [""]
    assert body["aggregationRule"] == {"clusterRoleSelectors": [{"matchLabels": {"a": ""}}, {}]}


def test_review_specs_are_typed(cluster: ClusterInfo) -> None:
    path = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
    pods = {"verb": "list", "resource": "pods", "namespace": "a"}
    cases = [  # groups as a string were read letter by letter; a number as a verb was turned into "3"
        ({"user": "x", "groups": "system:masters", "resourceAttributes": pods},
         "string into Go struct field SubjectAccessReviewSpec.spec.groups of type []string"),
        ({"user": "x", "extra": {"k": "v"}, "resourceAttributes": pods},
         "string into Go struct field SubjectAccessReviewSpec.spec.extra of type v1.ExtraValue"),
        ({"user": "x", "resourceAttributes": {**pods, "verb": 3}},
         "number into Go struct field ResourceAttributes.spec.resourceAttributes.verb of type string"),
        ({"user": "x", "resourceAttributes": "pods"},
         "string into Go struct field SubjectAccessReviewSpec.spec.resourceAttributes of type v1.ResourceAttributes"),
    ]
    for spec, error in cases:
        status, body = request(cluster, "POST", path, {"spec": spec})
        assert (status, body["message"]) == (400, 'SubjectAccessReview in version "v1" cannot be handled as a '
                                                  f"SubjectAccessReview: json: cannot unmarshal {error}"), spec
    status, body = request(cluster, "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {"spec": []})
    assert (status, body["message"]) == (400, 'SelfSubjectAccessReview in version "v1" cannot be handled as a '
                                              "SelfSubjectAccessReview: json: cannot unmarshal array into Go struct "
                                              "field SelfSubjectAccessReview.spec of type "
                                              "v1.SelfSubjectAccessReviewSpec")
    status, body = request(cluster, "POST", path, {"spec": {"user": "x", "groups": ["system:masters"],
                                                            "resourceAttributes": pods}})
    assert status == 201 and body["status"]["allowed"] is True


def test_impersonation(cluster: ClusterInfo, bot: ClusterInfo) -> None:
    def as_(token: str, path: str, **headers: str) -> tuple[int, dict[str, Any]]:
        http = urllib3.PoolManager(ca_certs=cluster.ca_file)
        resp = http.request("GET", cluster.server + path, headers={"Authorization": f"Bearer {token}", **headers})
        return resp.status, json.loads(resp.data)

    # the admin may impersonate anyone, and then has only their rights
    status, body = as_(cluster.token, "/api/v1/namespaces/a/pods", **{"Impersonate-User": "alice"})
    assert status == 403
    assert body["message"] == ('pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the '
                               'namespace "a"')
    status, _ = as_(cluster.token, "/api/v1/namespaces/a/pods",
                    **{"Impersonate-User": "alice", "Impersonate-Group": "system:masters"})
    assert status == 200
    bind(cluster, "a", "bot-view", "ClusterRole", "view")
    assert as_(cluster.token, "/api/v1/namespaces/a/pods", **{"Impersonate-User": SA_USER})[0] == 200
    # ServiceAccounts may not impersonate without the `impersonate` verb
    status, body = as_(bot.token, "/api/v1/namespaces/a/pods", **{"Impersonate-User": "alice"})
    assert status == 403
    assert body["message"] == (f'users "alice" is forbidden: User "{SA_USER}" cannot impersonate resource "users" '
                               'in API group "" at the cluster scope')
    rbac(cluster).create_cluster_role({"metadata": {"name": "be-alice"}, "rules": [
        {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["alice"]}]})
    bind(cluster, None, "be-alice", "ClusterRole", "be-alice")
    status, body = as_(bot.token, "/api/v1/namespaces/a/pods", **{"Impersonate-User": "alice"})
    assert status == 403 and body["message"].startswith('pods is forbidden: User "alice"')
    status, body = as_(bot.token, "/api/v1/namespaces/a/pods", **{"Impersonate-User": "bob"})
    assert status == 403 and body["message"].startswith('users "bob" is forbidden')
    # system:anonymous is in system:unauthenticated, and whoever is given that group is not authenticated
    bind(cluster, None, "anonymous-view", "ClusterRole", "view",
         [{"kind": "Group", "apiGroup": RBAC, "name": "system:unauthenticated"}])
    assert as_(cluster.token, "/api/v1/namespaces/a/pods", **{"Impersonate-User": "system:anonymous"})[0] == 200
    status, body = as_(cluster.token, "/api", **{"Impersonate-User": "carol",
                                                  "Impersonate-Group": "system:unauthenticated"})
    assert status == 403 and body["message"] == 'forbidden: User "carol" cannot get path "/api"'
    # an empty Impersonate-User alone impersonates nobody; groups without a user are an error
    assert as_(cluster.token, "/api/v1/nodes", **{"Impersonate-User": ""})[0] == 200
    assert as_(cluster.token, "/api/v1/nodes", **{"Impersonate-Group": "g"})[0] == 500
