"""The pure parts of the work agent: feedback paths, per-manifest and whole-Work conditions, the Work label, and
which tracked objects a manifest still names."""

from __future__ import annotations

from typing import Any

import pytest

from clusterset.work.feedback import PathError, feedback, parse_path, read_path
from clusterset.work.manifests import names, work_label
from clusterset.work.status import Outcome, manifest_conditions, work_conditions

Obj = dict[str, Any]
DEPLOYMENT = {"ordinal": 0, "group": "apps", "version": "v1", "kind": "Deployment", "resource": "deployments",
              "namespace": "default", "name": "web"}


def deployment(replicas: int = 3, generation: int = 2, **status: Any) -> Obj:
    return {"metadata": {"name": "web", "generation": generation}, "spec": {"replicas": replicas},
            "status": {"observedGeneration": generation, **status}}


def by_type(conditions: list[Obj]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in conditions}


STATUS = {"readyReplicas": 2, "conditions": [{"type": "Progressing", "status": "True"},
                                             {"type": "Available", "status": "False", "reason": "MinimumReplicas"}],
          "nested": {"list": [{"a": 1}, {"a": True}]}}


@pytest.mark.parametrize(("path", "value"), [
    (".readyReplicas", 2),
    ("{.readyReplicas}", 2),
    ('.conditions[?(@.type=="Available")].reason', "MinimumReplicas"),
    (".conditions[?(@.type=='Progressing')].status", "True"),
    (".conditions[1].type", "Available"),
    (".nested.list[1].a", True),
    (".nested.list[5].a", None),
    (".missing.field", None),
    ('.conditions[?(@.type=="Nope")].status', None),
])
def test_paths_read_the_supported_subset(path: str, value: Any) -> None:
    assert read_path(STATUS, parse_path(path)) == value


@pytest.mark.parametrize("path", ["readyReplicas", ".a[*]", ".a..b", '.a[?(@.x>1)]', ""])
def test_paths_outside_the_subset_are_refused_with_what_is_supported(path: str) -> None:
    with pytest.raises(PathError):
        parse_path(path)


def test_feedback_values_are_typed_and_bad_rules_named() -> None:
    rules = [{"type": "WellKnownStatus"},
             {"type": "JSONPaths", "jsonPaths": [{"name": "conditions", "path": ".conditions[0]"},
                                                 {"name": "broken", "path": "x"}]},
             {"type": "Magic"}]
    values, problems = feedback(rules, "apps", "Deployment", {"status": {**STATUS, "replicas": 3}})
    assert {v["name"]: v["fieldValue"] for v in values} == {
        "replicas": {"type": "Integer", "integer": 3}, "readyReplicas": {"type": "Integer", "integer": 2},
        "conditions": {"type": "JsonRaw", "jsonRaw": '{"status":"True","type":"Progressing"}'}}
    assert len(problems) == 2 and "'broken'" in problems[0] and "'Magic'" in problems[1]
    _, problems = feedback([{"type": "WellKnownStatus"}], "", "ConfigMap", {})
    assert problems == ["WellKnownStatus has no fields for ConfigMap.core; use JSONPaths"]
    too_long = {"status": {"big": "x" * 2000}}
    values, problems = feedback([{"type": "JSONPaths", "jsonPaths": [{"name": "big", "path": ".big"}]}], "", "X",
                                too_long)
    assert values[0]["fieldValue"]["type"] == "String"  # strings are not JsonRaw, so not bounded by it


def test_a_deployment_rolling_out_is_progressing_and_not_available() -> None:
    live = deployment(replicas=3, availableReplicas=1, updatedReplicas=1)
    conditions = by_type(manifest_conditions(Outcome(DEPLOYMENT, live)))
    assert conditions == {"Applied": ("True", "AppliedManifestComplete"),
                          "Available": ("False", "ResourceNotAvailable"),
                          "Progressing": ("True", "Applying"), "Degraded": ("False", "AsExpected")}
    assert all(c["observedGeneration"] == 2 for c in manifest_conditions(Outcome(DEPLOYMENT, live)))
    done = deployment(replicas=3, availableReplicas=3, updatedReplicas=3)
    assert by_type(manifest_conditions(Outcome(DEPLOYMENT, done)))["Available"] == ("True", "ResourceAvailable")
    assert by_type(manifest_conditions(Outcome(DEPLOYMENT, done)))["Progressing"] == ("False", "Completed")
    unseen = {**done, "status": {**done["status"], "observedGeneration": 1}}
    assert by_type(manifest_conditions(Outcome(DEPLOYMENT, unseen)))["Progressing"] == ("True", "Applying")


@pytest.mark.parametrize(("kind", "status", "reason"), [
    ("Deployment", {"conditions": [{"type": "ReplicaFailure", "status": "True", "message": "quota"}]},
     "ReplicaFailure"),
    ("Deployment", {"conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]},
     "ProgressDeadlineExceeded"),
    ("Job", {"conditions": [{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]}, "JobFailed"),
])
def test_degraded_workloads_say_why(kind: str, status: Obj, reason: str) -> None:
    group = "batch" if kind == "Job" else "apps"
    ident = {**DEPLOYMENT, "group": group, "kind": kind}
    live = {"metadata": {"generation": 1}, "spec": {"replicas": 1}, "status": status}
    assert by_type(manifest_conditions(Outcome(ident, live)))["Degraded"] == ("True", reason)


def test_a_job_is_available_once_complete() -> None:
    ident = {**DEPLOYMENT, "group": "batch", "kind": "Job"}
    running = {"metadata": {}, "status": {"active": 1}}
    complete = {"metadata": {}, "status": {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}}
    assert by_type(manifest_conditions(Outcome(ident, running)))["Available"][0] == "False"
    assert by_type(manifest_conditions(Outcome(ident, running)))["Progressing"] == ("True", "Applying")
    assert by_type(manifest_conditions(Outcome(ident, complete)))["Available"] == ("True", "ResourceAvailable")


def test_the_work_names_its_failing_and_unavailable_manifests() -> None:
    ok = Outcome({**DEPLOYMENT, "ordinal": 0}, deployment(availableReplicas=3, updatedReplicas=3))
    failed = Outcome({"ordinal": 1, "kind": "Service", "namespace": "default", "name": "bad"},
                     error="Service \"bad\" is invalid: spec.ports[0].port: Invalid value: 70000")
    outcomes = [ok, failed]
    conditions = work_conditions(outcomes, [manifest_conditions(o) for o in outcomes], 4)
    applied = next(c for c in conditions if c["type"] == "Applied")
    assert (applied["status"], applied["reason"], applied["observedGeneration"]) == ("False", "AppliedWorkFailed", 4)
    assert applied["message"] == ("1 of 2 manifests failed: manifest 1 (Service default/bad): Service \"bad\" is "
                                  "invalid: spec.ports[0].port: Invalid value: 70000")
    assert by_type(conditions) == {"Applied": ("False", "AppliedWorkFailed"),
                                   "Available": ("False", "ResourcesNotAvailable"),
                                   "Progressing": ("False", "Failed"), "Degraded": ("True", "ResourcesDegraded")}
    assert by_type(work_conditions([], [], 1))["Applied"] == ("True", "AppliedWorkComplete")


def test_the_work_label_fits_a_label_value() -> None:
    assert work_label("clusterset-member-1", "web") == "clusterset-member-1.web"
    long = work_label("clusterset-member-1", "x" * 100)
    assert len(long) == 63 and long != work_label("clusterset-member-1", "x" * 99)
    assert long[-1].isalnum()


def test_a_manifest_that_fails_this_pass_still_names_its_object() -> None:
    tracked = {"ordinal": 2, "group": "example.com", "version": "v1", "kind": "Gadget", "resource": "gadgets",
               "namespace": "default", "name": "g", "uid": "u"}
    unserved = {"ordinal": 2, "group": "example.com", "version": "v1", "kind": "Gadget", "namespace": "default",
                "name": "g"}
    assert names(unserved, tracked)
    assert not names({**unserved, "name": "other"}, tracked)
    assert names({"ordinal": 2}, tracked) and not names({"ordinal": 3}, tracked)
