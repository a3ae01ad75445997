"""The Job and TTL-after-finished controllers and the kubelet's run-to-completion hook, over real HTTPS with
kubectl (oldest and newest) and the official client."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

from kubernetes import client

from clusterset.testing import ClusterInfo, ServerThread
from tests.conftest import Kubectl
from tests.controllers import condition, get_json, items, wait_until
from tests.helpers import gone

RUN = "clusterset.io/simulate-run-seconds"


@functools.cache
def api_client(info: ClusterInfo) -> Any:
    """One client per cluster (making one costs more than a request): polls see short-lived states."""
    return info.api_client()


def batch(info: ClusterInfo) -> client.BatchV1Api:
    return client.BatchV1Api(api_client(info))


def job_manifest(name: str, annotations: dict[str, str] | None = None, **job_spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {**job_spec, "template": {
        "metadata": {"annotations": annotations or {RUN: "0.2"}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}}}


def read_job(info: ClusterInfo, name: str) -> dict[str, Any]:
    job: dict[str, Any] = batch(info).api_client.sanitize_for_serialization(
        batch(info).read_namespaced_job(name, "default"))
    return job


def conditions(job: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(c["type"], c["status"], c.get("reason", "")) for c in job["status"].get("conditions") or []]


def wait_condition(info: ClusterInfo, name: str, ctype: str, timeout: float = 20) -> dict[str, Any]:
    return wait_until(lambda: (lambda j: j if condition(j, ctype).get("status") == "True" else None)(
        read_job(info, name)), timeout=timeout, message=f"job {name} {ctype}")


def job_pods(info: ClusterInfo, name: str) -> list[Any]:
    return list(client.CoreV1Api(api_client(info)).list_namespaced_pod(
        "default", label_selector=f"batch.kubernetes.io/job-name={name}").items)


# ---------------------------------------------------------------------------- kubectl
def test_kubectl_create_job_and_wait_for_complete(live_kubectl: Kubectl) -> None:
    live_kubectl("create", "job", "hello", "--image=busybox")
    live_kubectl("wait", "--for=condition=complete", "job/hello", "--timeout=30s")

    job = get_json(live_kubectl, "job", "hello")
    uid = job["metadata"]["uid"]
    assert [(c["type"], c["reason"]) for c in job["status"]["conditions"]] == [
        ("SuccessCriteriaMet", "CompletionsReached"), ("Complete", "CompletionsReached")]
    assert job["status"]["succeeded"] == 1 and "active" not in job["status"] and "failed" not in job["status"]
    assert job["status"]["startTime"] <= job["status"]["completionTime"]
    assert job["status"]["uncountedTerminatedPods"] == {} and job["status"]["ready"] == 0

    (pod,) = items(live_kubectl, "pods", "-l", "job-name=hello")
    assert pod["metadata"]["name"].startswith("hello-") and len(pod["metadata"]["name"]) == len("hello-") + 5
    assert pod["metadata"]["labels"] == {"batch.kubernetes.io/controller-uid": uid, "controller-uid": uid,
                                         "batch.kubernetes.io/job-name": "hello", "job-name": "hello"}
    (owner,) = pod["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == ("Job", "hello", uid, True)
    assert "finalizers" not in pod["metadata"]  # the tracking finalizer went once the pod was counted
    assert pod["status"]["phase"] == "Succeeded"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")

    live_kubectl("wait", "--for=condition=SuccessCriteriaMet", "job/hello", "--timeout=5s")


# ---------------------------------------------------------------------------- completions, failures, deadlines
def test_completions_run_at_most_parallelism_pods_at_once(live_cluster: ClusterInfo) -> None:
    assert not job_pods(live_cluster, "work")  # the client's first request is slow: not while polling
    batch(live_cluster).create_namespaced_job("default", job_manifest("work", {RUN: "0.5"}, completions=4,
                                                                      parallelism=2))
    most = 0

    def done() -> bool:
        nonlocal most
        pods = job_pods(live_cluster, "work")
        most = max(most, sum(p.status.phase not in ("Succeeded", "Failed") for p in pods))
        return condition(read_job(live_cluster, "work"), "Complete").get("status") == "True"

    wait_until(done, timeout=30, message="four completions")
    assert most == 2
    pods = job_pods(live_cluster, "work")
    assert len(pods) == 4 and {p.status.phase for p in pods} == {"Succeeded"}
    assert read_job(live_cluster, "work")["status"]["succeeded"] == 4


def test_failed_pods_are_retried_with_backoff_until_the_backoff_limit(server: ServerThread) -> None:
    info = server.add_cluster(controllers=True, pod_ready_delay=0)
    server.call(server.server.configure_cluster(info.name, jobPodFailureBackoff=0.2))
    started = time.monotonic()
    batch(info).create_namespaced_job("default", job_manifest(
        "flaky", {"clusterset.io/simulate-phase": "Failed"}, backoffLimit=2))

    job = wait_condition(info, "flaky", "Failed")
    assert time.monotonic() - started >= 0.6  # two retries, waiting 0.2 s then 0.4 s
    assert conditions(job) == [("FailureTarget", "True", "BackoffLimitExceeded"),
                               ("Failed", "True", "BackoffLimitExceeded")]
    assert job["status"]["failed"] == 3 and "succeeded" not in job["status"] and "completionTime" not in job["status"]
    assert len(job_pods(info, "flaky")) == 3


def test_active_deadline_fails_the_job_and_stops_its_pods(live_cluster: ClusterInfo) -> None:
    batch(live_cluster).create_namespaced_job("default", job_manifest(
        "slow", {RUN: "300", "clusterset.io/simulate-termination-seconds": "0"}, activeDeadlineSeconds=1))
    wait_until(lambda: job_pods(live_cluster, "slow"), message="a pod")

    job = wait_condition(live_cluster, "slow", "Failed")
    assert conditions(job) == [("FailureTarget", "True", "DeadlineExceeded"), ("Failed", "True", "DeadlineExceeded")]
    assert job["status"]["failed"] == 1 and job["status"]["terminating"] == 0
    wait_until(lambda: not job_pods(live_cluster, "slow"), message="the pod gone")


def test_indexed_job_pods_carry_their_index(live_cluster: ClusterInfo) -> None:
    batch(live_cluster).create_namespaced_job("default", job_manifest(
        "idx", completions=3, parallelism=3, completionMode="Indexed"))
    job = wait_condition(live_cluster, "idx", "Complete")
    assert job["status"]["completedIndexes"] == "0-2" and job["status"]["succeeded"] == 3

    by_index = {p.metadata.annotations["batch.kubernetes.io/job-completion-index"]: p
                for p in job_pods(live_cluster, "idx")}
    assert sorted(by_index) == ["0", "1", "2"]
    for index, pod in by_index.items():
        assert pod.metadata.name.startswith(f"idx-{index}-")
        assert pod.metadata.labels["batch.kubernetes.io/job-completion-index"] == index
        assert pod.spec.hostname == f"idx-{index}"
        (env,) = pod.spec.containers[0].env
        assert env.name == "JOB_COMPLETION_INDEX"
        assert env.value_from.field_ref.field_path == "metadata.annotations['batch.kubernetes.io/job-completion-index']"


def test_suspended_job_starts_on_resume(live_cluster: ClusterInfo) -> None:
    api = batch(live_cluster)
    api.create_namespaced_job("default", job_manifest("later", suspend=True))
    job = wait_condition(live_cluster, "later", "Suspended")
    assert conditions(job) == [("Suspended", "True", "JobSuspended")]
    assert not job_pods(live_cluster, "later") and "startTime" not in job["status"]

    api.patch_namespaced_job("later", "default", {"spec": {"suspend": False}})
    job = wait_condition(live_cluster, "later", "Complete")
    assert conditions(job)[0] == ("Suspended", "False", "JobResumed")
    assert job["status"]["succeeded"] == 1


def test_ttl_after_finished_deletes_the_job_and_its_pods(live_cluster: ClusterInfo) -> None:
    api = batch(live_cluster)
    api.create_namespaced_job("default", job_manifest("brief", ttlSecondsAfterFinished=0))
    wait_until(lambda: job_pods(live_cluster, "brief"), message="a pod")
    wait_until(lambda: gone(lambda: api.read_namespaced_job("brief", "default")), message="the job deleted")
    wait_until(lambda: not job_pods(live_cluster, "brief"), message="its pods deleted")


def test_deleting_a_running_job_leaves_no_pod_behind(live_cluster: ClusterInfo) -> None:
    """Its pods carry the tracking finalizer: it is removed once their Job is gone."""
    api = batch(live_cluster)
    api.create_namespaced_job("default", job_manifest("doomed", {RUN: "300"}))
    wait_until(lambda: [p for p in job_pods(live_cluster, "doomed") if p.status.phase == "Running"],
               message="a running pod")
    api.delete_namespaced_job("doomed", "default", propagation_policy="Background")
    wait_until(lambda: not job_pods(live_cluster, "doomed"), message="the pod gone")


# ---------------------------------------------------------------------------- the kubelet hook
def test_bare_pod_with_run_seconds_succeeds(live_cluster: ClusterInfo) -> None:
    core = client.CoreV1Api(live_cluster.api_client())
    for name, policy in (("once", "Never"), ("forever", "Always")):
        core.create_namespaced_pod("default", {
            "metadata": {"name": name, "annotations": {RUN: "0.2"}},
            "spec": {"restartPolicy": policy, "containers": [{"name": "c", "image": "busybox"}]}})
    done = wait_until(lambda: (lambda p: p if p.status.phase == "Succeeded" else None)(
        core.read_namespaced_pod("once", "default")), message="pod succeeded")
    assert done.status.container_statuses[0].state.terminated.exit_code == 0
    assert core.read_namespaced_pod("forever", "default").status.phase == "Running"  # would be restarted


# ---------------------------------------------------------------------------- restarts
def test_job_progress_survives_a_restart(tmp_path: Path) -> None:
    first = ServerThread(tmp_path)
    info = first.add_cluster("jobs", controllers=True, pod_ready_delay=0)
    batch(info).create_namespaced_job("default", job_manifest("steps", {RUN: "0.5"}, completions=3, parallelism=1))
    wait_until(lambda: read_job(info, "steps")["status"].get("succeeded") == 1, message="one completion")
    first.stop()

    second = ServerThread(tmp_path)
    try:
        info = second.info("jobs")
        job = wait_condition(info, "steps", "Complete")
        assert job["status"]["succeeded"] == 3
        assert [p.status.phase for p in job_pods(info, "steps")] == ["Succeeded"] * 3
    finally:
        second.stop()
