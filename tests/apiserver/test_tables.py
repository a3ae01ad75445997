"""Server-side Tables (`kubectl get`): built-in printers' columns and cells, CRD printer columns,
durations, JSONPath, and the includeObject modes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from clusterset.apiserver.http.tables import (
    eval_jsonpath,
    go_format_float,
    human_duration,
    parse_jsonpath,
    selector_string,
    to_table,
)
from clusterset.apiserver.registry.resources import ResourceType

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def ts(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def rt(group: str, version: str, plural: str, kind: str, namespaced: bool = True, **kw: Any) -> ResourceType:
    return ResourceType(group, version, plural, kind.lower(), kind, namespaced, **kw)


PODS = rt("", "v1", "pods", "Pod")
SERVICES = rt("", "v1", "services", "Service")
DEPLOYMENTS = rt("apps", "v1", "deployments", "Deployment")


def meta(name: str, age: float = 300, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": "default", "creationTimestamp": ts(age), "resourceVersion": "7", **extra}


def one_row(resource: ResourceType, obj: dict[str, Any], **kw: Any) -> tuple[list[str], list[Any]]:
    table = to_table(resource, [obj], now=NOW, **kw)
    return [c["name"] for c in table["columnDefinitions"]], table["rows"][0]["cells"]


def cells_by_name(resource: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    names, cells = one_row(resource, obj)
    assert len(names) == len(cells)
    return dict(zip(names, cells, strict=True))


# ---------------------------------------------------------------------------- durations
@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (59, "59s"), (119, "119s"), (120, "2m"), (125, "2m5s"),
    (599, "9m59s"), (600, "10m"), (179 * 60, "179m"), (3 * 3600 + 2 * 60, "3h2m"), (5 * 3600, "5h"),
    (8 * 3600 + 59 * 60, "8h"), (47 * 3600, "47h"), (48 * 3600, "2d"), (51 * 3600, "2d3h"), (8 * 86400, "8d"),
    (729 * 86400, "729d"), (730 * 86400, "2y"), (770 * 86400, "2y40d"), (9 * 365 * 86400, "9y"),
])
def test_human_duration_matches_kube(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_go_float_formatting() -> None:
    assert [go_format_float(v) for v in (1.5, 100000.0, 1e6, 123456789.0, 0.0001, 0.00001, -2.25)] == [
        "1.5", "100000", "1e+06", "1.23456789e+08", "0.0001", "1e-05", "-2.25"]


# ---------------------------------------------------------------------------- table shape
def test_table_shape_metadata_and_include_object_modes() -> None:
    cm = {"metadata": meta("cfg"), "data": {"a": "1", "b": "2"}}
    cms = rt("", "v1", "configmaps", "ConfigMap")
    table = to_table(cms, [cm], resource_version="812", continue_token="tok", now=NOW)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "812", "continue": "tok"}
    assert table["columnDefinitions"][0] == {
        "name": "Name", "type": "string", "format": "name", "description": table["columnDefinitions"][0]["description"],
        "priority": 0}
    assert table["columnDefinitions"][0]["description"].startswith("Name must be unique within a namespace")
    row = table["rows"][0]
    assert row["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": cm["metadata"]}
    full = to_table(cms, [cm], include_object="Object", now=NOW)["rows"][0]["object"]
    assert full["kind"] == "ConfigMap" and full["apiVersion"] == "v1" and full["data"] == cm["data"]
    assert "object" not in to_table(cms, [cm], include_object="None", now=NOW)["rows"][0]
    empty = to_table(cms, [], now=NOW)
    assert empty["rows"] == [] and empty["metadata"] == {}
    assert len(empty["columnDefinitions"]) == 3


def test_configmap_and_secret_counts() -> None:
    cm = {"metadata": meta("cfg", 45), "data": {"a": "1"}, "binaryData": {"b": "AA=="}}
    assert one_row(rt("", "v1", "configmaps", "ConfigMap"), cm) == (["Name", "Data", "Age"], ["cfg", 2, "45s"])
    secret = {"metadata": meta("s", 7200), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}
    assert one_row(rt("", "v1", "secrets", "Secret"), secret) == (
        ["Name", "Type", "Data", "Age"], ["s", "kubernetes.io/tls", 2, "120m"])


# ---------------------------------------------------------------------------- services
def test_service_columns_priorities_and_cluster_ip() -> None:
    svc = {"metadata": meta("web"), "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.10",
                                             "clusterIPs": ["10.96.0.10"], "selector": {"b": "2", "a": "1"},
                                             "ports": [{"port": 80, "protocol": "TCP"},
                                                       {"port": 53, "protocol": "UDP"}]}}
    table = to_table(SERVICES, [svc], now=NOW)
    cols = {c["name"]: c["priority"] for c in table["columnDefinitions"]}
    assert list(cols) == ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]
    assert cols["Selector"] == 1 and cols["Port(s)"] == 0
    assert table["rows"][0]["cells"] == ["web", "ClusterIP", "10.96.0.10", "<none>", "80/TCP,53/UDP", "5m",
                                         "a=1,b=2"]


def test_service_headless_nodeport_loadbalancer_externalname() -> None:
    headless = {"metadata": meta("h"), "spec": {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"]}}
    c = cells_by_name(SERVICES, headless)
    assert (c["Cluster-IP"], c["Port(s)"], c["Selector"]) == ("None", "<none>", "<none>")

    nodeport = {"metadata": meta("np"), "spec": {"type": "NodePort", "clusterIPs": ["10.96.0.5"],
                                                 "externalIPs": ["1.2.3.4"],
                                                 "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}}
    c = cells_by_name(SERVICES, nodeport)
    assert (c["Port(s)"], c["External-IP"]) == ("80:30080/TCP", "1.2.3.4")

    lb = {"metadata": meta("lb"), "spec": {"type": "LoadBalancer", "clusterIPs": ["10.96.0.6"]}}
    assert cells_by_name(SERVICES, lb)["External-IP"] == "<pending>"
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "a.example.com"}]}}
    assert cells_by_name(SERVICES, lb)["External-IP"] == "5.6.7.8,a.example.com"

    ext = {"metadata": meta("ext"), "spec": {"type": "ExternalName", "externalName": "db.example.com"}}
    c = cells_by_name(SERVICES, ext)
    assert (c["Cluster-IP"], c["External-IP"]) == ("<none>", "db.example.com")


# ---------------------------------------------------------------------------- workloads
def test_deployment_ready_counts_and_wide_cells() -> None:
    dep = {"metadata": meta("web", 3 * 86400),
           "spec": {"replicas": 3,
                    "selector": {"matchLabels": {"app": "web"},
                                 "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]},
                                                      {"key": "canary", "operator": "DoesNotExist"}]},
                    "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1"},
                                                         {"name": "side", "image": "busybox"}]}}},
           "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    names, cells = one_row(DEPLOYMENTS, dep)
    assert names == ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"]
    assert cells == ["web", "2/3", 3, 2, "3d", "web,side", "nginx:1,busybox", "app=web,!canary,tier in (a,b)"]
    fresh = {"metadata": meta("new"), "spec": {"replicas": 1}}
    assert one_row(DEPLOYMENTS, fresh)[1][:4] == ["new", "0/1", 0, 0]


def test_replicaset_statefulset_daemonset() -> None:
    rs = {"metadata": meta("web-abc"), "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}},
          "status": {"replicas": 3, "readyReplicas": 1}}
    names, cells = one_row(rt("apps", "v1", "replicasets", "ReplicaSet"), rs)
    assert names[:5] == ["Name", "Desired", "Current", "Ready", "Age"]
    assert cells[:5] == ["web-abc", 3, 3, 1, "5m"] and cells[-1] == "app=web"

    sts = {"metadata": meta("db"), "spec": {"replicas": 2, "template": {"spec": {"containers": [
        {"name": "pg", "image": "postgres"}]}}}, "status": {"readyReplicas": 2}}
    assert one_row(rt("apps", "v1", "statefulsets", "StatefulSet"), sts) == (
        ["Name", "Ready", "Age", "Containers", "Images"], ["db", "2/2", "5m", "pg", "postgres"])

    ds = {"metadata": meta("agent"), "spec": {"template": {"spec": {"nodeSelector": {"os": "linux"}}}},
          "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                     "updatedNumberScheduled": 3, "numberAvailable": 2}}
    c = cells_by_name(rt("apps", "v1", "daemonsets", "DaemonSet"), ds)
    assert (c["Desired"], c["Ready"], c["Available"], c["Node Selector"]) == (3, 2, 2, "os=linux")


# ---------------------------------------------------------------------------- pods
def running_pod(**status: Any) -> dict[str, Any]:
    return {
        "metadata": meta("p", 600),
        "spec": {"nodeName": "node-1", "containers": [{"name": "c"}]},
        "status": {"phase": "Running", "podIPs": [{"ip": "10.244.0.5"}], "podIP": "10.244.0.5",
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "c", "ready": True, "restartCount": 0,
                                          "state": {"running": {"startedAt": ts(500)}}}], **status},
    }


def test_pod_running_columns_and_wide_cells() -> None:
    table = to_table(PODS, [running_pod()], now=NOW)
    cols = [(c["name"], c["priority"]) for c in table["columnDefinitions"]]
    assert cols == [("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0), ("IP", 1), ("Node", 1),
                    ("Nominated Node", 1), ("Readiness Gates", 1)]
    assert table["rows"][0]["cells"] == ["p", "1/1", "Running", "0", "10m", "10.244.0.5", "node-1", "<none>", "<none>"]
    assert "conditions" not in table["rows"][0]


def test_pod_pending_unscheduled() -> None:
    pod = {"metadata": meta("p", 5), "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
           "status": {"phase": "Pending"}}
    assert one_row(PODS, pod)[1] == ["p", "0/2", "Pending", "0", "5s", "<none>", "<none>", "<none>", "<none>"]


def test_pod_waiting_reason_and_restarts_ago() -> None:
    pod = running_pod()
    pod["status"]["containerStatuses"] = [{
        "name": "c", "ready": False, "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "finishedAt": ts(300)}},
    }]
    c = cells_by_name(PODS, pod)
    assert (c["Ready"], c["Status"], c["Restarts"]) == ("0/1", "CrashLoopBackOff", "3 (5m ago)")


def test_pod_terminated_exit_code_and_signal() -> None:
    pod = running_pod()
    pod["status"]["containerStatuses"] = [{"name": "c", "restartCount": 0,
                                           "state": {"terminated": {"exitCode": 137, "signal": 9}}}]
    assert cells_by_name(PODS, pod)["Status"] == "Signal:9"
    pod["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 2}}
    assert cells_by_name(PODS, pod)["Status"] == "ExitCode:2"


def test_pod_terminating_and_completed() -> None:
    pod = running_pod()
    pod["metadata"]["deletionTimestamp"] = ts(1)
    assert cells_by_name(PODS, pod)["Status"] == "Terminating"

    done = {"metadata": meta("job-x"), "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [
                {"name": "c", "ready": False, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}}
    row = to_table(PODS, [done], now=NOW)["rows"][0]
    assert row["cells"][1:3] == ["0/1", "Completed"]
    assert row["conditions"] == [{"type": "Completed", "status": "True", "reason": "Succeeded",
                                  "message": "The pod has completed successfully."}]
    done["metadata"]["deletionTimestamp"] = ts(1)
    assert cells_by_name(PODS, done)["Status"] == "Completed"  # terminal phases are not "Terminating"


def test_pod_init_containers() -> None:
    pod = {"metadata": meta("p"), "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}],
                                           "containers": [{"name": "c"}]},
           "status": {"phase": "Pending", "initContainerStatuses": [
               {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
               {"name": "i2", "state": {"running": {}}}]}}
    assert cells_by_name(PODS, pod)["Status"] == "Init:1/2"
    pod["status"]["initContainerStatuses"][1] = {"name": "i2", "state": {"waiting": {"reason": "ImagePullBackOff"}}}
    assert cells_by_name(PODS, pod)["Status"] == "Init:ImagePullBackOff"
    pod["status"]["initContainerStatuses"][1] = {"name": "i2", "restartCount": 2,
                                                 "state": {"terminated": {"exitCode": 3}}}
    c = cells_by_name(PODS, pod)
    assert (c["Status"], c["Restarts"]) == ("Init:ExitCode:3", "2")


def test_pod_sidecar_counts_and_readiness_gates() -> None:
    pod = running_pod()
    pod["spec"]["initContainers"] = [{"name": "sidecar", "restartPolicy": "Always"}]
    pod["status"]["initContainerStatuses"] = [{"name": "sidecar", "started": True, "ready": True,
                                               "state": {"running": {}}}]
    pod["spec"]["readinessGates"] = [{"conditionType": "example.com/ok"}, {"conditionType": "example.com/lb"}]
    pod["status"]["conditions"].append({"type": "example.com/ok", "status": "True"})
    c = cells_by_name(PODS, pod)
    assert (c["Ready"], c["Status"], c["Readiness Gates"]) == ("2/2", "Running", "1/2")


# ---------------------------------------------------------------------------- networking
def test_endpointslice_ports_and_more() -> None:
    eps = {"metadata": meta("web-x"), "addressType": "IPv4",
           "ports": [{"port": 80, "name": "http"}, {"name": "named"}, {}],
           "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(1, 6)]}
    names, cells = one_row(rt("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"), eps)
    assert names == ["Name", "AddressType", "Ports", "Endpoints", "Age"]
    assert cells == ["web-x", "IPv4", "80,named,*", "10.0.0.1,10.0.0.2,10.0.0.3 + 2 more...", "5m"]
    empty = {"metadata": meta("e"), "addressType": "IPv4"}
    assert one_row(rt("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"), empty)[1][2:4] == [
        "<unset>", "<unset>"]


def test_endpoints_host_ports() -> None:
    ep = {"metadata": meta("web"), "subsets": [
        {"addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::2"}], "ports": [{"port": 80}]},
        {"addresses": [{"ip": "10.0.0.3"}, {"ip": "10.0.0.4"}], "ports": [{"port": 8080}]}]}
    resource = rt("", "v1", "endpoints", "Endpoints")
    assert one_row(resource, ep)[1] == ["web", "10.0.0.1:80,[fd00::2]:80,10.0.0.3:8080 + 1 more...", "5m"]
    assert one_row(resource, {"metadata": meta("none")})[1][1] == "<none>"


# ---------------------------------------------------------------------------- cluster objects
def test_namespace_and_node() -> None:
    ns = {"metadata": meta("team-a", 90000), "status": {"phase": "Terminating"}}
    assert one_row(rt("", "v1", "namespaces", "Namespace", False), ns)[1] == ["team-a", "Terminating", "25h"]

    node = {"metadata": meta("n1", labels={"node-role.kubernetes.io/control-plane": "",
                                             "node-role.kubernetes.io/worker": "", "kubernetes.io/role": "edge"}),
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": "False"}],
                       "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}],
                       "nodeInfo": {"kubeletVersion": "v1.30.0", "osImage": "Debian"}}}
    names, cells = one_row(rt("", "v1", "nodes", "Node", False), node)
    assert names == ["Name", "Status", "Roles", "Age", "Version", "Internal-IP", "External-IP", "OS-Image",
                     "Kernel-Version", "Container-Runtime"]
    assert cells == ["n1", "NotReady,SchedulingDisabled", "control-plane,edge,worker", "5m", "v1.30.0",
                     "172.18.0.2", "<none>", "Debian", "<unknown>", "<unknown>"]
    node["status"]["conditions"] = []
    node["spec"] = {}
    assert cells_by_name(rt("", "v1", "nodes", "Node", False), node)["Status"] == "Unknown"


def test_serviceaccount_lease_event() -> None:
    sa = {"metadata": meta("default"), "secrets": [{"name": "tok"}]}
    assert one_row(rt("", "v1", "serviceaccounts", "ServiceAccount"), sa)[1] == ["default", 1, "5m"]
    lease = {"metadata": meta("leader"), "spec": {"holderIdentity": "pod-1"}}
    assert one_row(rt("coordination.k8s.io", "v1", "leases", "Lease"), lease)[1] == ["leader", "pod-1", "5m"]

    event = {"metadata": meta("web.17a"), "type": "Warning", "reason": "BackOff", "message": " Back-off \n",
             "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{web}"},
             "source": {"component": "kubelet", "host": "node-1"}, "count": 4,
             "firstTimestamp": ts(3600), "lastTimestamp": ts(60)}
    names, cells = one_row(rt("", "v1", "events", "Event"), event)
    assert names == ["Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message", "First Seen",
                     "Count", "Name"]
    assert cells == ["60s", "Warning", "BackOff", "pod/web", "spec.containers{web}", "kubelet, node-1", "Back-off",
                     "60m", 4, "web.17a"]
    new_style = {"metadata": meta("e2"), "eventTime": "2024-05-01T11:59:30.000000Z", "reportingComponent": "ctrl",
                 "involvedObject": {"kind": "Node"}}
    c = dict(zip(names, one_row(rt("", "v1", "events", "Event"), new_style)[1], strict=True))
    assert (c["Last Seen"], c["First Seen"], c["Count"], c["Object"], c["Source"]) == ("30s", "30s", 1, "node", "ctrl")


def test_rbac_printers() -> None:
    role = {"metadata": meta("reader", creationTimestamp="2024-05-01T10:00:00Z")}
    assert one_row(rt("rbac.authorization.k8s.io", "v1", "roles", "Role"), role) == (
        ["Name", "Created At"], ["reader", "2024-05-01T10:00:00Z"])
    binding = {"metadata": meta("b"), "roleRef": {"kind": "ClusterRole", "name": "view"},
               "subjects": [{"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"},
                            {"kind": "Group", "name": "devs"},
                            {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"}]}
    names, cells = one_row(rt("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
                           binding)
    assert names == ["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"]
    assert cells == ["b", "ClusterRole/view", "5m", "alice, bob", "devs", "tools/ci"]


def test_default_printer_for_crds_and_unknown_builtins() -> None:
    crd = {"metadata": {"name": "crontabs.stable.example.com", "creationTimestamp": "2024-04-30T08:00:00Z"}}
    crds = rt("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False)
    table = to_table(crds, [crd], now=NOW)
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [("Name", "string"), ("Created At", "date")]
    assert table["rows"][0]["cells"] == ["crontabs.stable.example.com", "2024-04-30T08:00:00Z"]
    other = rt("batch", "v1", "jobs", "Job")
    assert one_row(other, {"metadata": meta("j", creationTimestamp="2024-05-01T11:00:00+02:00")})[1] == [
        "j", "2024-05-01T09:00:00Z"]


# ---------------------------------------------------------------------------- CRD printer columns
def crontabs(columns: list[dict[str, Any]]) -> ResourceType:
    return rt("stable.example.com", "v1", "crontabs", "CronTab", printer_columns=columns, is_crd=True)


CRONTAB = {
    "apiVersion": "stable.example.com/v1", "kind": "CronTab",
    "metadata": meta("c1", 3 * 3600 + 120),
    "spec": {"cronSpec": "* * * * */5", "replicas": 3, "ratio": 0.5, "paused": False, "tags": ["a", "b"],
             "image": {"name": "x", "tag": 1}},
    "status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True",
                                                                     "lastTransitionTime": ts(65)}]},
}


def test_crd_columns_name_first_and_no_age_when_declared() -> None:
    resource = crontabs([
        {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas", "description": "how many"},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
         "priority": 1},
    ])
    table = to_table(resource, [CRONTAB], now=NOW)
    cols = table["columnDefinitions"]
    assert [c["name"] for c in cols] == ["Name", "Spec", "Replicas", "Ready"]
    assert cols[0]["format"] == "name"
    assert cols[1]["description"] == "Custom resource definition column (in JSONPath format): .spec.cronSpec"
    assert cols[2]["description"] == "how many" and cols[2]["type"] == "integer"
    assert cols[3]["priority"] == 1
    assert table["rows"][0]["cells"] == ["c1", "* * * * */5", 3, "True"]


def test_crd_without_columns_gets_age() -> None:
    table = to_table(crontabs([]), [CRONTAB], now=NOW)
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [("Name", "string"), ("Age", "date")]
    assert table["rows"][0]["cells"] == ["c1", "3h2m"]


def test_crd_cells_typed_missing_and_dates() -> None:
    resource = crontabs([
        {"name": "Missing", "type": "string", "jsonPath": ".spec.nothing"},
        {"name": "ReadySince", "type": "date", "jsonPath": '.status.conditions[?(@.type=="Ready")].lastTransitionTime'},
        {"name": "Created", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "BadDate", "type": "date", "jsonPath": ".spec.cronSpec"},
        {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio"},
        {"name": "ReplicasNum", "type": "number", "jsonPath": ".spec.replicas"},
        {"name": "Paused", "type": "boolean", "jsonPath": ".spec.paused"},
        {"name": "WrongType", "type": "integer", "jsonPath": ".spec.cronSpec"},
        {"name": "AsText", "type": "string", "jsonPath": ".spec.replicas"},
        {"name": "FirstTag", "type": "string", "jsonPath": ".spec.tags[0]"},
        {"name": "AllTags", "type": "string", "jsonPath": ".spec.tags[*]"},
        {"name": "Map", "type": "string", "jsonPath": ".spec.image"},
        {"name": "List", "type": "string", "jsonPath": ".spec.tags"},
        {"name": "NoMatch", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Gone")].status'},
        {"name": "Broken", "type": "string", "jsonPath": ".spec..x"},
    ])
    cells = dict(zip([c["name"] for c in to_table(resource, [CRONTAB], now=NOW)["columnDefinitions"]],
                     to_table(resource, [CRONTAB], now=NOW)["rows"][0]["cells"], strict=True))
    assert cells == {
        "Name": "c1", "Missing": None, "ReadySince": "65s", "Created": "3h2m", "BadDate": "<invalid>",
        "Ratio": 0.5, "ReplicasNum": 3.0, "Paused": False, "WrongType": None, "AsText": "3", "FirstTag": "a",
        "AllTags": "a", "Map": "map[name:x tag:1]", "List": "[a b]", "NoMatch": None, "Broken": None,
    }


# ---------------------------------------------------------------------------- JSONPath and selectors
def test_jsonpath_subset() -> None:
    doc = {"a": {"b": [{"c": 1, "t": "x"}, {"c": 2, "t": "y"}, {"c": 3, "t": "y"}], "dotted.key": "v"}}
    assert eval_jsonpath(parse_jsonpath(".a.b[1].c"), doc) == [2]
    assert eval_jsonpath(parse_jsonpath(".a.b[-1].c"), doc) == [3]
    assert eval_jsonpath(parse_jsonpath(".a.b[*].c"), doc) == [1, 2, 3]
    assert eval_jsonpath(parse_jsonpath(".a.b[0:2].c"), doc) == [1, 2]
    assert eval_jsonpath(parse_jsonpath('.a.b[?(@.t=="y")].c'), doc) == [2, 3]
    assert eval_jsonpath(parse_jsonpath(".a.b[?(@.c>1)].t"), doc) == ["y", "y"]
    assert eval_jsonpath(parse_jsonpath("{.a['dotted.key']}"), doc) == ["v"]
    assert eval_jsonpath(parse_jsonpath(r".a.dotted\.key"), doc) == ["v"]
    assert eval_jsonpath(parse_jsonpath(".a.b[7].c"), doc) == []
    assert eval_jsonpath(parse_jsonpath(".a.missing.c"), doc) == []


def test_selector_string_sorts_requirements() -> None:
    sel = {"matchLabels": {"z": "1"}, "matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["2", "1"]},
                                                           {"key": "m", "operator": "Exists"}]}
    assert selector_string(sel) == "a notin (1,2),m,z=1"
    assert selector_string(None) == ""
