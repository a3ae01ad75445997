"""CustomResourceDefinitions through kubectl: establishing, printer columns, explain, validation,
categories, subresources and deletion of a CRD together with its objects."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from kubernetes.client.rest import ApiException

from clusterset.testing import ClusterInfo
from tests.apiserver.test_gc_crd_discovery import AGGREGATED, _get
from tests.helpers import custom, table, wait_until

if TYPE_CHECKING:
    from tests.conftest import Kubectl

MERGE = "application/merge-patch+json"
GROUP, VERSION, PLURAL = "stable.example.com", "v1", "widgets"
CRD_NAME = f"{PLURAL}.{GROUP}"

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wd]
    categories: [all, toys]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
        labelSelectorPath: .status.selector
    additionalPrinterColumns:
    - name: Color
      type: string
      jsonPath: .spec.color
    - name: Size
      type: integer
      jsonPath: .spec.size
    - name: Replicas
      type: integer
      jsonPath: .spec.replicas
      priority: 1
    - name: Ready
      type: boolean
      jsonPath: .status.ready
    schema:
      openAPIV3Schema:
        type: object
        description: A Widget is a configurable toy part.
        required: [spec]
        properties:
          spec:
            type: object
            description: WidgetSpec is the desired state of a Widget.
            required: [color, size]
            properties:
              color:
                type: string
                description: The paint colour of the widget.
                enum: [red, blue]
              size:
                type: integer
                description: How many parts the widget has.
                minimum: 1
                maximum: 10
              replicas:
                type: integer
                description: How many copies to build.
                minimum: 0
          status:
            type: object
            properties:
              replicas: {type: integer}
              ready: {type: boolean}
              selector: {type: string}
"""


# ---------------------------------------------------------------------------- helpers
def names(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip()}


def widget_yaml(name: str, color: str = "red", size: int = 3, extra: str = "") -> str:
    return (f"apiVersion: stable.example.com/v1\nkind: Widget\nmetadata:\n  name: {name}\n"
            f"spec:\n  color: {color}\n  size: {size}\n{extra}")


def install_crd(kubectl: Kubectl) -> None:
    """`kubectl apply` the CRD, then wait (with a deadline) until kubectl can list its objects."""
    out = kubectl("apply", "-f", "-", input=CRD)
    assert out.strip() == f"customresourcedefinition.apiextensions.k8s.io/{CRD_NAME} created"
    wait_until(lambda: kubectl.run("get", PLURAL, check=False).returncode == 0, timeout=20,
               message="the widgets resource to be served")


def get_widget(info: ClusterInfo, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = custom(info).get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, name)
    return obj


def widget_gone(info: ClusterInfo, name: str) -> bool:
    try:
        get_widget(info, name)
    except ApiException as err:
        if err.status == 404:
            return True
        raise
    return False


# ---------------------------------------------------------------------------- establishing
def test_crd_is_established_and_served(kubectl: Kubectl) -> None:
    install_crd(kubectl)
    out = kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=20s")
    assert out.strip() == f"customresourcedefinition.apiextensions.k8s.io/{CRD_NAME} condition met"
    crd = json.loads(kubectl("get", "crd", CRD_NAME, "-o", "json"))
    conditions = {c["type"]: c for c in crd["status"]["conditions"]}
    assert conditions["NamesAccepted"]["status"] == "True" and conditions["NamesAccepted"]["reason"] == "NoConflicts"
    assert conditions["Established"]["status"] == "True"
    assert crd["status"]["acceptedNames"]["kind"] == "Widget"
    assert crd["status"]["storedVersions"] == ["v1"]

    empty = kubectl.run("get", "widgets")
    assert empty.stdout == "" and "No resources found in default namespace." in empty.stderr
    for alias in ("widget", "wd", "widgets.stable.example.com", "Widget"):
        assert kubectl.run("get", alias, check=False).returncode == 0, alias

    resources = kubectl("api-resources", "--api-group=stable.example.com")
    rows = table(resources)
    assert rows[1] == ["widgets", "wd", "stable.example.com/v1", "true", "Widget"]
    assert "stable.example.com/v1" in names(kubectl("api-versions"))


def _crd(plural: str, kind: str, versions: list[str], storage: str) -> str:
    listed = "".join(f"""
  - name: {v}
    served: true
    storage: {str(v == storage).lower()}
    schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}""" for v in versions)
    return f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: {plural}.order.example.com}}
spec:
  group: order.example.com
  scope: Namespaced
  names: {{plural: {plural}, singular: {kind.lower()}, kind: {kind}}}
  versions:{listed}
"""


def test_a_crd_groups_preferred_version_is_its_highest_whatever_came_first(kubectl: Kubectl) -> None:
    """Upstream sorts a CRD group's versions kube-aware (GA, beta, alpha; higher first), the first preferred:
    a CRD serving only v1alpha1 established first does not make v1alpha1 the group's preferred version."""
    for crd in (_crd("gadgets", "Gadget", ["v1alpha1"], "v1alpha1"),
                _crd("sprockets", "Sprocket", ["v1alpha1", "v1", "v1beta1"], "v1")):
        kubectl("apply", "-f", "-", input=crd)
    kubectl("wait", "--for=condition=Established", "crd/gadgets.order.example.com", "crd/sprockets.order.example.com",
            "--timeout=20s")
    status, _, group = _get(kubectl.info, "/apis/order.example.com")
    assert status == 200 and [v["version"] for v in group["versions"]] == ["v1", "v1beta1", "v1alpha1"], group
    assert group["preferredVersion"] == {"groupVersion": "order.example.com/v1", "version": "v1"}
    _, _, groups = _get(kubectl.info, "/apis")
    listed = next(g for g in groups["groups"] if g["name"] == "order.example.com")
    assert (listed["versions"], listed["preferredVersion"]) == (group["versions"], group["preferredVersion"])
    _, _, aggregated = _get(kubectl.info, "/apis", AGGREGATED)
    item = next(i for i in aggregated["items"] if i["metadata"]["name"] == "order.example.com")
    assert [v["version"] for v in item["versions"]] == ["v1", "v1beta1", "v1alpha1"]
    # kubectl takes each resource from the first version that has it
    rows = table(kubectl("api-resources", "--api-group=order.example.com"))
    assert [(r[0], r[-3]) for r in rows[1:]] == [("gadgets", "order.example.com/v1alpha1"),
                                                  ("sprockets", "order.example.com/v1")], rows
    kubectl("apply", "-f", "-", input="apiVersion: order.example.com/v1alpha1\nkind: Sprocket\nmetadata: {name: s}\n")
    assert json.loads(kubectl("get", "sprocket", "s", "-o", "json"))["apiVersion"] == "order.example.com/v1"


def test_get_crd_shows_created_at(kubectl: Kubectl) -> None:
    install_crd(kubectl)
    rows = table(kubectl("get", "crd", CRD_NAME))
    assert rows[0] == ["NAME", "CREATED AT"]
    assert rows[1][0] == CRD_NAME
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows[1][1])


def test_invalid_crd_is_rejected(kubectl: Kubectl) -> None:
    bad = CRD.replace("name: widgets.stable.example.com", "name: gizmos.stable.example.com").replace(
        "plural: widgets", "plural: gizmos").replace("singular: widget", "singular: gizmo").replace(
        "kind: Widget", "kind: Gizmo").replace("shortNames: [wd]", "shortNames: [gz]").replace(
        "      openAPIV3Schema:\n        type: object\n", "      openAPIV3Schema:\n")
    result = kubectl.run("apply", "-f", "-", input=bad, check=False)
    assert result.returncode != 0
    assert 'The CustomResourceDefinition "gizmos.stable.example.com" is invalid' in result.stderr
    assert "openAPIV3Schema.type: Required value" in result.stderr
    assert kubectl.run("get", "crd", "gizmos.stable.example.com", check=False).returncode != 0


# ---------------------------------------------------------------------------- custom resources
def test_create_and_get_custom_resources(kubectl: Kubectl) -> None:
    install_crd(kubectl)
    out = kubectl("apply", "-f", "-", input=widget_yaml("w1", "red", 3, "  replicas: 2\n"))
    assert out.strip() == "widget.stable.example.com/w1 created"
    assert kubectl("create", "-f", "-", input=widget_yaml("w2", "blue", 5)).strip() == \
        "widget.stable.example.com/w2 created"

    obj = json.loads(kubectl("get", "widget", "w1", "-o", "json"))
    assert obj["apiVersion"] == "stable.example.com/v1" and obj["kind"] == "Widget"
    assert obj["spec"] == {"color": "red", "size": 3, "replicas": 2}
    assert obj["metadata"]["generation"] == 1
    assert names(kubectl("get", "wd", "-o", "name")) == {"widget.stable.example.com/w1",
                                                         "widget.stable.example.com/w2"}
    assert kubectl("get", "widget", "w2", "-o", "jsonpath={.spec.color}") == "blue"


def test_printer_columns(kubectl: Kubectl) -> None:
    install_crd(kubectl)
    kubectl("apply", "-f", "-", input=widget_yaml("w1", "red", 3, "  replicas: 2\n"))
    kubectl("apply", "-f", "-", input=widget_yaml("w2", "blue", 5))
    custom(kubectl.info).patch_namespaced_custom_object_status(
        GROUP, VERSION, "default", PLURAL, "w1", {"status": {"ready": True, "replicas": 2}}, _content_type=MERGE)

    rows = table(kubectl("get", "widgets"))
    assert rows[0] == ["NAME", "COLOR", "SIZE", "READY"]  # declared columns: no AGE
    # A missing value is a null cell, which kubectl prints as an empty cell.
    assert rows[1:] == [["w1", "red", "3", "true"], ["w2", "blue", "5", ""]]

    wide = table(kubectl("get", "widgets", "-o", "wide"))
    assert wide[0] == ["NAME", "COLOR", "SIZE", "REPLICAS", "READY"]
    assert wide[1] == ["w1", "red", "3", "2", "true"]
    assert wide[2] == ["w2", "blue", "5", "", ""]

    assert kubectl("get", "widget", "w2", "--no-headers").split() == ["w2", "blue", "5"]


def test_label_and_field_selectors_on_custom_resources(kubectl: Kubectl) -> None:
    install_crd(kubectl)
    kubectl("apply", "-f", "-", input=widget_yaml("w1").replace("  name: w1\n", "  name: w1\n  labels: {team: a}\n"))
    kubectl("apply", "-f", "-", input=widget_yaml("w2", "blue"))
    assert names(kubectl("get", "widgets", "-l", "team=a", "-o", "name")) == {"widget.stable.example.com/w1"}
    assert names(kubectl("get", "widgets", "--field-selector", "metadata.name=w2", "-o", "name")) == {
        "widget.stable.example.com/w2"}
    bad = kubectl.run("get", "widgets", "--field-selector", "spec.color=red", check=False)
    assert bad.returncode != 0
    assert '"spec.color" is not a known field selector: only "metadata.name", "metadata.namespace"' in bad.stderr


def test_explain_uses_the_schema(kubectl: Kubectl) -> None:
    install_crd(kubectl)

    def explained() -> str | None:
        result = kubectl.run("explain", "widget.spec", check=False)
        return result.stdout if result.returncode == 0 else None

    out = wait_until(explained, timeout=20, message="kubectl explain to find Widget in the OpenAPI")
    assert "KIND:" in out and "Widget" in out
    assert "WidgetSpec is the desired state of a Widget." in out
    assert re.search(r"^\s+color\s+<string> -required-$", out, re.M)
    assert re.search(r"^\s+size\s+<integer> -required-$", out, re.M)
    assert "How many parts the widget has." in out and "The paint colour of the widget." in out

    field = kubectl("explain", "widgets.spec.size")
    assert "How many parts the widget has." in field
    top = kubectl("explain", "wd")
    assert "A Widget is a configurable toy part." in top


def test_invalid_custom_resource_is_rejected_with_field_errors(kubectl: Kubectl) -> None:
    install_crd(kubectl)
    result = kubectl.run("apply", "-f", "-", input=widget_yaml("bad", "pink", 0), check=False)
    assert result.returncode != 0
    assert 'The Widget "bad" is invalid' in result.stderr
    assert 'spec.color: Unsupported value: "pink": supported values: "red", "blue"' in result.stderr
    assert "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1" in result.stderr
    assert widget_gone(kubectl.info, "bad")

    missing = kubectl.run("create", "-f", "-", check=False, input=(
        "apiVersion: stable.example.com/v1\nkind: Widget\nmetadata:\n  name: empty\nspec:\n  size: 2\n"))
    assert missing.returncode != 0
    assert "spec.color: Required value" in missing.stderr

    wrong_type = kubectl.run("create", "-f", "-", input=widget_yaml("typed").replace("size: 3", 'size: "three"'),
                             check=False)
    assert wrong_type.returncode != 0
    assert "spec.size" in wrong_type.stderr and "must be of type integer" in wrong_type.stderr


def test_unknown_fields_are_refused_by_strict_validation(kubectl: Kubectl) -> None:
    install_crd(kubectl)
    manifest = widget_yaml("w1", extra="  bogus: 1\n")
    strict = kubectl.run("apply", "-f", "-", input=manifest, check=False)  # kubectl sends fieldValidation=Strict
    assert strict.returncode != 0
    assert 'unknown field "spec.bogus"' in strict.stderr
    assert widget_gone(kubectl.info, "w1")

    warned = kubectl.run("apply", "--validate=warn", "-f", "-", input=manifest)
    assert 'unknown field "spec.bogus"' in warned.stderr  # printed as a server warning
    assert get_widget(kubectl.info, "w1")["spec"] == {"color": "red", "size": 3}  # pruned

    ignored = kubectl.run("apply", "--validate=false", "-f", "-", input=widget_yaml("w2", extra="  bogus: 1\n"))
    assert "bogus" not in ignored.stderr
    assert get_widget(kubectl.info, "w2")["spec"] == {"color": "red", "size": 3}


def test_get_all_includes_category_members(kubectl: Kubectl) -> None:
    install_crd(kubectl)
    kubectl("apply", "-f", "-", input=widget_yaml("w1"))
    everything = names(kubectl("get", "all", "-o", "name"))
    assert "widget.stable.example.com/w1" in everything
    assert names(kubectl("get", "toys", "-o", "name")) == {"widget.stable.example.com/w1"}


def test_status_subresource(kubectl: Kubectl) -> None:
    install_crd(kubectl)
    with_status = widget_yaml("w1") + "status:\n  ready: true\n"
    kubectl("create", "-f", "-", input=with_status)
    obj = get_widget(kubectl.info, "w1")
    assert "ready" not in (obj.get("status") or {})  # the main resource ignores status

    kubectl("patch", "widget", "w1", "--subresource=status", "--type=merge",
            "-p", '{"status":{"ready":true},"spec":{"size":9}}')
    obj = get_widget(kubectl.info, "w1")
    assert obj["status"]["ready"] is True
    assert obj["spec"]["size"] == 3  # /status ignores spec
    assert obj["metadata"]["generation"] == 1  # status writes never bump generation

    kubectl("patch", "widget", "w1", "--type=merge", "-p", '{"spec":{"size":4}}')
    assert get_widget(kubectl.info, "w1")["metadata"]["generation"] == 2


def test_scale_subresource(kubectl: Kubectl) -> None:
    install_crd(kubectl)
    kubectl("apply", "-f", "-", input=widget_yaml("w1", extra="  replicas: 1\n"))
    custom(kubectl.info).patch_namespaced_custom_object_status(
        GROUP, VERSION, "default", PLURAL, "w1", {"status": {"replicas": 1, "selector": "app=w1"}},
        _content_type=MERGE)
    out = kubectl("scale", "widget", "w1", "--replicas=4")
    assert out.strip() == "widget.stable.example.com/w1 scaled"
    assert get_widget(kubectl.info, "w1")["spec"]["replicas"] == 4

    refused = kubectl.run("scale", "widget", "w1", "--current-replicas=2", "--replicas=5", check=False)
    assert refused.returncode != 0 and "Expected replicas to be 2, was 4" in refused.stderr

    scale = custom(kubectl.info).get_namespaced_custom_object_scale(GROUP, VERSION, "default", PLURAL, "w1")
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"]["replicas"] == 4
    assert scale["status"] == {"replicas": 1, "selector": "app=w1"}


def test_delete_custom_resource(kubectl: Kubectl) -> None:
    install_crd(kubectl)
    kubectl("apply", "-f", "-", input=widget_yaml("w1"))
    assert kubectl("delete", "widget", "w1").strip() == 'widget.stable.example.com "w1" deleted'
    assert widget_gone(kubectl.info, "w1")
    missing = kubectl.run("delete", "widget", "w1", check=False)
    assert missing.returncode != 0
    assert 'widgets.stable.example.com "w1" not found' in missing.stderr


# ---------------------------------------------------------------------------- deleting the CRD
def test_deleting_the_crd_removes_its_objects(kubectl: Kubectl) -> None:
    install_crd(kubectl)
    kubectl("apply", "-f", "-", input=widget_yaml("w1") + "---\n" + widget_yaml("w2", "blue"))
    assert len(names(kubectl("get", "widgets", "-o", "name"))) == 2

    out = kubectl.run("delete", "crd", CRD_NAME, timeout=90).stdout
    assert out.strip() == f'customresourcedefinition.apiextensions.k8s.io "{CRD_NAME}" deleted'
    assert kubectl.run("get", "crd", CRD_NAME, check=False).returncode != 0
    gone = kubectl.run("get", "widgets", check=False)
    assert gone.returncode != 0
    # Depending on kubectl's discovery cache: a fresh lookup fails, or the cached mapping gets a 404.
    assert ('the server doesn\'t have a resource type "widgets"' in gone.stderr
            or "the server could not find the requested resource" in gone.stderr), gone.stderr

    # Re-creating the CRD does not bring the old objects back.
    install_crd(kubectl)
    listed = kubectl.run("get", "widgets", "-o", "name")
    assert listed.stdout == ""


def test_crd_deletion_waits_for_custom_resource_finalizers(kubectl: Kubectl) -> None:
    install_crd(kubectl)
    held = widget_yaml("held").replace("  name: held\n", "  name: held\n  finalizers: [example.com/hold]\n")
    kubectl("apply", "-f", "-", input=held)

    kubectl("delete", "crd", CRD_NAME, "--wait=false")

    def terminating() -> bool:
        crd = json.loads(kubectl("get", "crd", CRD_NAME, "-o", "json"))
        return any(c["type"] == "Terminating" and c["status"] == "True" for c in crd["status"]["conditions"])

    wait_until(terminating, message="the CRD's Terminating condition")
    wait_until(lambda: get_widget(kubectl.info, "held")["metadata"].get("deletionTimestamp"),
               message="the held widget to be deleted")
    refused = kubectl.run("create", "-f", "-", input=widget_yaml("late"), check=False)
    assert refused.returncode != 0
    assert "create not allowed while custom resource definition is terminating" in refused.stderr

    kubectl("patch", "widget", "held", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    wait_until(lambda: kubectl.run("get", "crd", CRD_NAME, check=False).returncode != 0, timeout=30,
               message="the CRD to go")
