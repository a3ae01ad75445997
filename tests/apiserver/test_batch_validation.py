"""Jobs and CronJobs refused as kube-apiserver refuses them: 422 naming the field and what is wrong."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from clusterset.testing import ClusterInfo
from tests.conftest import Kubectl

POD_SPEC = {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}


def cronjob(**cj_spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "cj"}, "spec": {"schedule": "*/5 * * * *", **cj_spec,
                                                 "jobTemplate": {"spec": {"template": {"spec": POD_SPEC}}}}}


def refused(create: Any) -> tuple[str, list[dict[str, Any]]]:
    with pytest.raises(ApiException) as caught:
        create()
    assert caught.value.status == 422
    body = json.loads(caught.value.body)
    assert body["reason"] == "Invalid"
    return body["message"], body["details"]["causes"]


@pytest.mark.parametrize(("cj_spec", "field", "message"), [
    ({"schedule": "0 0 * * * *"}, "spec.schedule", 'Invalid value: "0 0 * * * *": expected exactly 5 fields, found 6'),
    ({"schedule": "61 * * * *"}, "spec.schedule", "end of range (61) above maximum (59): 61"),
    ({"schedule": "0 0 L * *"}, "spec.schedule", "failed to parse int from L"),
    ({"schedule": "@fortnightly"}, "spec.schedule", "unrecognized descriptor: @fortnightly"),
    ({"schedule": "TZ=Europe/Berlin 0 * * * *"}, "spec.schedule",
     "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
    ({"timeZone": "Mars/Olympus_Mons"}, "spec.timeZone",
     'Invalid value: "Mars/Olympus_Mons": unknown time zone Mars/Olympus_Mons'),
    ({"timeZone": "Local"}, "spec.timeZone", "timeZone must be an explicit time zone"),
    ({"concurrencyPolicy": "Sometimes"}, "spec.concurrencyPolicy", 'Unsupported value: "Sometimes"'),
    ({"successfulJobsHistoryLimit": -1}, "spec.successfulJobsHistoryLimit", "must be greater than or equal to 0"),
], ids=lambda v: str(v)[:40] if not isinstance(v, dict) else next(iter(v)))
def test_bad_cronjob_is_refused(cluster: ClusterInfo, cj_spec: dict[str, Any], field: str, message: str) -> None:
    api = client.BatchV1Api(cluster.api_client())
    text, causes = refused(lambda: api.create_namespaced_cron_job("default", cronjob(**cj_spec)))
    assert text.startswith('CronJob.batch "cj" is invalid: ')
    assert message in text
    assert field in [c["field"] for c in causes]


def test_schedules_upstream_accepts(cluster: ClusterInfo) -> None:
    api = client.BatchV1Api(cluster.api_client())
    for i, (schedule, zone) in enumerate([("@hourly", None), ("@every 1h30m", None), ("0 9 ? * MON-FRI", None),
                                          ("30 2 * * *", "Europe/Berlin"), ("0 0 31 2 *", None)]):
        body = cronjob(schedule=schedule, **({"timeZone": zone} if zone else {}))
        body["metadata"]["name"] = f"ok-{i}"
        created = api.create_namespaced_cron_job("default", body)
        assert created.spec.schedule == schedule and created.spec.concurrency_policy == "Allow"
        assert created.spec.successful_jobs_history_limit == 3 and created.spec.failed_jobs_history_limit == 1


def test_cronjob_job_template_is_validated(cluster: ClusterInfo) -> None:
    api = client.BatchV1Api(cluster.api_client())
    body = cronjob()
    body["spec"]["jobTemplate"]["spec"]["template"]["spec"] = {"containers": [{"name": "c", "image": "busybox"}]}
    text, causes = refused(lambda: api.create_namespaced_cron_job("default", body))
    assert "spec.jobTemplate.spec.template.spec.restartPolicy" in [c["field"] for c in causes]
    assert 'Unsupported value: "Always": supported values: "OnFailure", "Never"' in text


def test_job_template_and_selector_are_immutable(cluster: ClusterInfo) -> None:
    api = client.BatchV1Api(cluster.api_client())
    api.create_namespaced_job("default", {"metadata": {"name": "fixed"},
                                          "spec": {"suspend": True, "template": {"spec": POD_SPEC}}})
    api.patch_namespaced_job("fixed", "default", {"spec": {"suspend": False, "activeDeadlineSeconds": 60}})
    text, causes = refused(lambda: api.patch_namespaced_job("fixed", "default", {"spec": {"template": {"spec": {
        "containers": [{"name": "main", "image": "nginx"}]}}}}))
    assert text.startswith('Job.batch "fixed" is invalid: ') and "spec.template: Invalid value" in text
    assert "field is immutable" in text and [c["field"] for c in causes] == ["spec.template"]
    _, causes = refused(lambda: api.patch_namespaced_job("fixed", "default", {"spec": {"completions": 3}}))
    assert [c["field"] for c in causes] == ["spec.completions"]


def test_bad_job_numbers_are_refused(cluster: ClusterInfo) -> None:
    api = client.BatchV1Api(cluster.api_client())
    body = {"metadata": {"name": "neg"},
            "spec": {"backoffLimit": -1, "parallelism": -2, "template": {"spec": POD_SPEC}}}
    text, causes = refused(lambda: api.create_namespaced_job("default", body))
    assert {c["field"] for c in causes} == {"spec.backoffLimit", "spec.parallelism"}
    assert "must be greater than or equal to 0" in text


def test_kubectl_create_cronjob_with_a_bad_schedule(kubectl: Kubectl) -> None:
    result = kubectl.run("create", "cronjob", "bad", "--image=busybox", "--schedule=61 * * * *", check=False)
    assert result.returncode != 0
    assert 'CronJob.batch "bad" is invalid' in result.stderr
    assert "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61" in result.stderr
    assert "created" in kubectl("create", "cronjob", "good", "--image=busybox", "--schedule=*/5 * * * *")
