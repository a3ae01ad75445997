"""The CronJob controller over real HTTPS (official client, kubectl oldest and newest).

No test waits for real minutes: the cluster setting `cronJobClockOffset` moves the CronJob controller's clock
ahead (the schedule is evaluated against it, everything else stays real), and a write to the CronJob makes
the controller look again, as the next reconcile after a clock jump would.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from kubernetes import client

from clusterset.testing import ClusterInfo, ServerThread
from tests.conftest import Kubectl
from tests.controllers import condition, get_json, wait_until
from tests.controllers.test_jobs import RUN, api_client, batch

MINUTE = 60


def cronjob(name: str, schedule: str = "* * * * *", run: str = "0.2", **cj_spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"schedule": schedule, **cj_spec, "jobTemplate": {
        "metadata": {"labels": {"app": name}, "annotations": {"note": "from-template"}},
        "spec": {"template": {"metadata": {"annotations": {RUN: run}}, "spec": {
            "restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}}}}}


def created_at(info: ClusterInfo, name: str) -> int:
    cj = batch(info).read_namespaced_cron_job(name, "default")
    return int(cj.metadata.creation_timestamp.timestamp())


def advance(server: ServerThread, info: ClusterInfo, name: str, to: float) -> None:
    """Sets the controller's clock to `to` (epoch seconds) and makes it reconcile the CronJob."""
    server.call(server.server.configure_cluster(info.name, cronJobClockOffset=to - time.time()))
    batch(info).patch_namespaced_cron_job(name, "default", {"metadata": {"annotations": {"poke": str(to)}}})


def job_names(info: ClusterInfo) -> list[str]:
    return sorted(j.metadata.name for j in batch(info).list_namespaced_job("default").items)


def read_cronjob(info: ClusterInfo, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = api_client(info).sanitize_for_serialization(
        batch(info).read_namespaced_cron_job(name, "default"))
    return obj


def test_runs_on_schedule_with_upstream_names_and_status(live_cluster: ClusterInfo, server: ServerThread) -> None:
    batch(live_cluster).create_namespaced_cron_job("default", cronjob("tick", successfulJobsHistoryLimit=5))
    first = (created_at(live_cluster, "tick") // MINUTE + 1) * MINUTE
    assert job_names(live_cluster) == []

    advance(server, live_cluster, "tick", first + 5)
    name = f"tick-{first // MINUTE}"
    wait_until(lambda: job_names(live_cluster) == [name], message="the first run")
    job = api_client(live_cluster).sanitize_for_serialization(batch(live_cluster).read_namespaced_job(name, "default"))
    cj = read_cronjob(live_cluster, "tick")
    assert job["metadata"]["labels"]["app"] == "tick"
    assert job["metadata"]["annotations"]["note"] == "from-template"
    scheduled = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(first))
    assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == scheduled
    (owner,) = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == ("CronJob", "tick",
                                                                               cj["metadata"]["uid"], True)
    status = batch(live_cluster).read_namespaced_cron_job("tick", "default").status
    assert status.last_schedule_time.timestamp() == first and [a.name for a in status.active] == [name]

    done = wait_until(lambda: (lambda c: c if c["status"].get("lastSuccessfulTime") else None)(
        read_cronjob(live_cluster, "tick")), message="lastSuccessfulTime")
    assert "active" not in done["status"]
    assert done["status"]["lastSuccessfulTime"] == job_status(live_cluster, name)["completionTime"]

    advance(server, live_cluster, "tick", first + MINUTE + 5)
    wait_until(lambda: job_names(live_cluster) == [name, f"tick-{first // MINUTE + 1}"], message="the second run")


def job_status(info: ClusterInfo, name: str) -> dict[str, Any]:
    job = api_client(info).sanitize_for_serialization(batch(info).read_namespaced_job(name, "default"))
    result: dict[str, Any] = job["status"]
    return result


def test_time_zone_decides_when_it_runs(live_cluster: ClusterInfo, server: ServerThread) -> None:
    """Hourly at minute 0 in Kolkata (UTC+05:30) is at half past the hour in UTC."""
    batch(live_cluster).create_namespaced_cron_job("default", cronjob("kolkata", "0 * * * *",
                                                                      timeZone="Asia/Kolkata"))
    created = created_at(live_cluster, "kolkata")
    due = created - created % 3600 + 1800 + (3600 if created % 3600 >= 1800 else 0)
    advance(server, live_cluster, "kolkata", due - 5)
    advance(server, live_cluster, "kolkata", due + 5)
    (name,) = wait_until(lambda: job_names(live_cluster), message="a run")
    assert name == f"kolkata-{due // MINUTE}"
    annotations = batch(live_cluster).read_namespaced_job(name, "default").metadata.annotations
    assert annotations["batch.kubernetes.io/cronjob-scheduled-timestamp"].endswith(":00:00+05:30")


@pytest.mark.parametrize("policy", ["Forbid", "Replace", "Allow"])
def test_concurrency_policy(policy: str, live_cluster: ClusterInfo, server: ServerThread) -> None:
    batch(live_cluster).create_namespaced_cron_job("default", cronjob("busy", run="300", concurrencyPolicy=policy))
    first = (created_at(live_cluster, "busy") // MINUTE + 1) * MINUTE
    advance(server, live_cluster, "busy", first + 5)
    first_job = f"busy-{first // MINUTE}"
    wait_until(lambda: job_names(live_cluster) == [first_job], message="the first run")

    advance(server, live_cluster, "busy", first + MINUTE + 5)
    second_job = f"busy-{first // MINUTE + 1}"
    expected = {"Forbid": [first_job], "Replace": [second_job], "Allow": [first_job, second_job]}[policy]
    wait_until(lambda: job_names(live_cluster) == expected, message=f"{policy}: {expected}")
    wait_until(lambda: sorted(r["name"] for r in read_cronjob(live_cluster, "busy")["status"]["active"]) == expected,
               message="status.active")


def test_suspended_cronjob_starts_only_the_latest_missed_run_when_resumed(live_cluster: ClusterInfo,
                                                                        server: ServerThread) -> None:
    api = batch(live_cluster)
    api.create_namespaced_cron_job("default", cronjob("paused", suspend=True))
    api.create_namespaced_cron_job("default", cronjob("marker"))
    first = (max(created_at(live_cluster, "paused"), created_at(live_cluster, "marker")) // MINUTE + 1) * MINUTE
    advance(server, live_cluster, "paused", first + 3 * MINUTE + 5)
    advance(server, live_cluster, "marker", first + 3 * MINUTE + 5)
    # reconciles start in queue order and one that writes nothing never waits: "paused" was looked at
    wait_until(lambda: job_names(live_cluster) == [f"marker-{first // MINUTE + 3}"], message="the marker's run")

    api.patch_namespaced_cron_job("paused", "default", {"spec": {"suspend": False}})
    wait_until(lambda: f"paused-{first // MINUTE + 3}" in job_names(live_cluster), message="the latest run")
    assert [n for n in job_names(live_cluster) if n.startswith("paused-")] == [f"paused-{first // MINUTE + 3}"]


def test_too_many_missed_runs_start_the_latest_and_deadlines_skip_late_runs(live_cluster: ClusterInfo,
                                                                           server: ServerThread) -> None:
    api = batch(live_cluster)
    api.create_namespaced_cron_job("default", cronjob("late"))
    api.create_namespaced_cron_job("default", cronjob("strict", startingDeadlineSeconds=10))
    base = max(created_at(live_cluster, "late"), created_at(live_cluster, "strict"))
    now = (base // MINUTE + 200) * MINUTE + 30  # 200 runs missed; the last one 30 s ago
    advance(server, live_cluster, "strict", now)
    advance(server, live_cluster, "late", now)
    # "strict" was reconciled first (queue order, and a reconcile that writes nothing never waits)
    wait_until(lambda: job_names(live_cluster) == [f"late-{now // MINUTE}"], message="only the latest run")
    assert "lastScheduleTime" not in read_cronjob(live_cluster, "strict")["status"]  # missed its 10 s window


def test_history_limits_keep_the_newest_finished_jobs(live_cluster: ClusterInfo, server: ServerThread) -> None:
    batch(live_cluster).create_namespaced_cron_job("default", cronjob("hist", successfulJobsHistoryLimit=1))
    first = (created_at(live_cluster, "hist") // MINUTE + 1) * MINUTE
    for run in range(3):
        advance(server, live_cluster, "hist", first + run * MINUTE + 5)
        name = f"hist-{first // MINUTE + run}"
        wait_until(lambda n=name: condition(job_status_obj(live_cluster, n), "Complete").get("status") == "True",
                   message=f"{name} complete")
    wait_until(lambda: job_names(live_cluster) == [f"hist-{first // MINUTE + 2}"], message="only the newest kept")


def job_status_obj(info: ClusterInfo, name: str) -> dict[str, Any]:
    try:
        return {"status": job_status(info, name)}
    except client.ApiException:
        return {}


def test_kubectl_create_job_from_cronjob(live_kubectl: Kubectl) -> None:
    live_kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "batch/v1", "kind": "CronJob",
                                                     **cronjob("nightly", "@daily")}))
    live_kubectl("create", "job", "manual", "--from=cronjob/nightly")
    live_kubectl("wait", "--for=condition=complete", "job/manual", "--timeout=30s")
    job = get_json(live_kubectl, "job", "manual")
    cj = get_json(live_kubectl, "cronjob", "nightly")
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    (owner,) = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("CronJob", "nightly", cj["metadata"]["uid"])
    assert job["spec"]["template"]["metadata"]["labels"]["job-name"] == "manual"
