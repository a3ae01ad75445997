"""Jobs, CronJobs and APIServices have their upstream OpenAPI schemas: `kubectl explain` describes them and
unknown fields are pruned with a warning, as kube-apiserver does for every built-in kind."""

from __future__ import annotations

import json

import urllib3

from clusterset.testing import ClusterInfo
from tests.conftest import Kubectl

JOBS = "/apis/batch/v1/namespaces/default/jobs"


def test_kubectl_explain_describes_jobs_cronjobs_and_apiservices(kubectl: Kubectl) -> None:
    assert "completions" in kubectl("explain", "job.spec")
    assert "concurrencyPolicy" in kubectl("explain", "cronjob.spec")
    assert "groupPriorityMinimum" in kubectl("explain", "apiservice.spec")


def test_unknown_job_fields_are_pruned_with_a_warning(cluster: ClusterInfo) -> None:
    http = urllib3.PoolManager(ca_certs=cluster.ca_file)
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pruned"}, "spec": {
        "bogus": 1, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}}
    resp = http.request("POST", cluster.server + JOBS, body=json.dumps(job), headers={
        "Authorization": f"Bearer {cluster.token}", "Content-Type": "application/json"})
    assert resp.status == 201, resp.data
    assert resp.headers.get("Warning") == '299 - "unknown field \\"spec.bogus\\""'
    assert "bogus" not in json.loads(resp.data)["spec"]
