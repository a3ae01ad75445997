"""`kubectl create <kind>` generators: typed creates (protobuf bodies from kubectl >= 1.32)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Kubectl

GENERATORS = [
    (["create", "job", "once", "--image=busybox"], "jobs.batch", "once"),
    (["create", "cronjob", "tick", "--image=busybox", "--schedule=*/5 * * * *"], "cronjobs.batch", "tick"),
    (["create", "quota", "small", "--hard=pods=2"], "resourcequotas", "small"),
    (["create", "pdb", "keep", "--selector=app=web", "--min-available=1"], "poddisruptionbudgets.policy", "keep"),
    (["create", "priorityclass", "high", "--value=1000"], "priorityclasses.scheduling.k8s.io", "high"),
    (["create", "ingress", "web", "--rule=example.com/app=web:8080"], "ingresses.networking.k8s.io", "web"),
    (["create", "serviceaccount", "robot"], "serviceaccounts", "robot"),
    (["create", "service", "clusterip", "api", "--tcp=80:8080"], "services", "api"),
    (["create", "role", "reader", "--verb=get,list", "--resource=pods"], "roles.rbac.authorization.k8s.io", "reader"),
]


@pytest.mark.parametrize(("args", "resource", "name"), GENERATORS, ids=[g[0][1] for g in GENERATORS])
def test_generator_creates_the_object(kubectl: Kubectl, args: list[str], resource: str, name: str) -> None:
    out = kubectl(*args)
    assert "created" in out
    obj = json.loads(kubectl("get", resource, name, "-o", "json"))
    assert obj["metadata"]["name"] == name and obj["metadata"]["uid"]


def test_job_gets_generated_selector(kubectl: Kubectl) -> None:
    kubectl("create", "job", "sel", "--image=busybox")
    job = json.loads(kubectl("get", "job", "sel", "-o", "json"))
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert job["spec"]["template"]["metadata"]["labels"]["job-name"] == "sel"
    assert job["spec"]["backoffLimit"] == 6 and job["spec"]["completionMode"] == "NonIndexed"
