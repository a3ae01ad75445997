"""The Job controller: runs a Job's pods to `completions`, retries failures up to `backoffLimit`, and
reports the outcome, as kube-controller-manager's (pkg/controller/job) does in 1.31+.

Pods are `<job>-<5 random chars>` (Indexed: `<job>-<index>-<5>`, with the
`batch.kubernetes.io/job-completion-index` annotation and label, hostname `<job>-<index>` and the
`JOB_COMPLETION_INDEX` variable), carry the template's labels (the generated `batch.kubernetes.io/job-name`,
`job-name`, `batch.kubernetes.io/controller-uid`, `controller-uid`), a controller ownerReference and the
`batch.kubernetes.io/job-tracking` finalizer. Finished pods are counted as upstream tracks them, so a restart or a
deleted pod never loses or doubles a count: their uids go into `status.uncountedTerminatedPods`, then their
finalizer is removed, then they move into `succeeded`/`failed` (`completedIndexes` for Indexed Jobs). A pod
deleted before it succeeded counts as failed.

A Job that meets its completions gets `SuccessCriteriaMet` (reason `CompletionsReached`), then `Complete`
once no pod is left uncounted or terminating; one whose failures exceed `backoffLimit` or that ran past
`activeDeadlineSeconds` gets `FailureTarget` (`BackoffLimitExceeded`, `DeadlineExceeded`), its active pods
are deleted, then `Failed` (1.30 set the final condition at once; `kubectl wait --for=condition=complete`
needs only `Complete`). Retries wait upstream's backoff, 10 s doubling per failure up to 6 minutes, scaled
down for the simulation: `settings["jobPodFailureBackoff"]` (default 0.1 s) doubling up to 360 times that. As
upstream, the backoff is remembered in memory only. `suspend` deletes the active pods (condition `Suspended`);
resuming restarts `startTime`. Not simulated: podFailurePolicy, successPolicy, backoffLimitPerIndex,
restart counts of OnFailure pods, and mutable scheduling directives of suspended Jobs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from clusterset.api.objects import annotations_of, meta, spec, status
from clusterset.api.times import now_rfc3339
from clusterset.apiserver.controllers.manager import ClusterAPI, Key
from clusterset.apiserver.controllers.workloads.replicasets import BURST, deletion_rank
from clusterset.apiserver.controllers.workloads.util import (
    CONFLICT_RETRY,
    JOBS,
    PODS,
    Orphans,
    claim,
    controller_ref,
    deep_copy,
    guarded,
    int_or,
    is_active,
    is_ready,
    is_terminal,
    owner_key,
    owner_keys,
    parse_ts,
    pod_from_template,
    safe_keys,
    seconds_setting,
    selector_of,
    wall,
)
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.storage.store import Event, Obj

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
MAX_BACKOFF_FACTOR = 36  # upstream: 10 s doubling to at most 6 minutes


# ---------------------------------------------------------------------------- reading Jobs (shared with CronJobs, TTL)
def condition(obj: Obj, ctype: str) -> dict[str, Any] | None:
    """The condition of `ctype` if it is True."""
    for cond in status(obj).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == ctype and cond.get("status") == "True":
            return cond
    return None


def finished(job: Obj) -> dict[str, Any] | None:
    """The Job's Complete or Failed condition, once it has one (IsJobFinished)."""
    return condition(job, "Complete") or condition(job, "Failed")


def is_job_pod_failed(pod: Obj) -> bool:
    """Failed, or deleted before it succeeded (isPodFailed with podReplacementPolicy TerminatingOrFailed)."""
    phase = status(pod).get("phase")
    return phase == "Failed" or (bool(meta(pod).get("deletionTimestamp")) and phase != "Succeeded")


def has_tracking_finalizer(pod: Obj) -> bool:
    return TRACKING_FINALIZER in (meta(pod).get("finalizers") or [])


def completion_index(pod: Obj, completions: int) -> int | None:
    value = annotations_of(pod).get(COMPLETION_INDEX, "")
    return int(value) if value.isdigit() and int(value) < completions else None


def format_indexes(indexes: set[int]) -> str:
    """`0-2,4`: sorted intervals, as status.completedIndexes."""
    out: list[str] = []
    for i in sorted(indexes):
        if out and i - 1 in indexes:
            start = out[-1].split("-")[0]
            out[-1] = f"{start}-{i}"
        else:
            out.append(str(i))
    return ",".join(out)


def parse_indexes(text: Any, completions: int) -> set[int]:
    indexes: set[int] = set()
    for part in str(text or "").split(","):
        first, _, last = part.partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            indexes.update(range(int(first), min(int(last or first), completions - 1) + 1))
    return indexes


def new_condition(ctype: str, reason: str, message: str) -> dict[str, Any]:
    now = now_rfc3339()
    return {"type": ctype, "status": "True", "lastProbeTime": now, "lastTransitionTime": now, "reason": reason,
            "message": message}


def ensure_condition(conditions: list[dict[str, Any]], ctype: str, value: str, reason: str,
                     message: str) -> bool:
    """ensureJobConditionStatus: updates or appends (never appends a False one); whether it changed."""
    for i, cond in enumerate(conditions):
        if cond.get("type") == ctype:
            if (cond.get("status"), cond.get("reason"), cond.get("message")) == (value, reason, message):
                return False
            conditions[i] = {**new_condition(ctype, reason, message), "status": value}
            return True
    if value == "False":
        return False
    conditions.append(new_condition(ctype, reason, message))
    return True


# ---------------------------------------------------------------------------- the controller
class JobController:
    name = "job"
    watches: tuple[str, ...] = (JOBS, PODS)

    def __init__(self) -> None:
        self._orphans = Orphans()
        # (cluster, job uid) → (failures since the last success, when the last one was seen): the backoff
        self._backoff: dict[tuple[str, str], tuple[int, float]] = {}

    @safe_keys
    def keys_for(self, cluster: Cluster, event: Event) -> Iterable[Key]:
        obj = event.entry.obj
        if event.resource == JOBS:
            if event.type == "DELETED":
                self._backoff.pop((cluster.name, str(meta(obj).get("uid", ""))), None)
            yield (str(meta(obj).get("namespace", "")), str(meta(obj)["name"]))
            return
        yield from owner_keys(cluster, event, self._orphans, "Job", JOBS, "batch/v1")

    @guarded("kube-controller-manager")
    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        namespace, name = key
        job = api.get(JOBS, namespace, name)
        if job is None or finished(job) or selector_of(job) is None:
            return None
        pods = await claim(api, PODS, job, selector_of(job), self._orphans)
        sync = _Sync(job, pods, self._backoff, api.cluster)
        again = await sync.run(api)
        if sync.new_status != status(job):
            updated = deep_copy(job)
            updated["status"] = sync.new_status
            if await api.update(JOBS, updated, subresource="status") is None:
                return CONFLICT_RETRY
        # only once the uids are in status may the finalizers go (then the pods count in the next sync)
        await asyncio.gather(*(release(api, pod) for pod in sync.release))
        return again


async def release(api: ClusterAPI, pod: Obj) -> None:
    """Removes the tracking finalizer (the pod has been counted, or its Job is gone or finished)."""
    updated = deep_copy(pod)
    updated["metadata"]["finalizers"] = [f for f in meta(pod).get("finalizers") or [] if f != TRACKING_FINALIZER]
    if not updated["metadata"]["finalizers"]:
        del updated["metadata"]["finalizers"]
    await api.update(PODS, updated)


class _Sync:
    """One syncJob: reads the Job and its pods, decides, and says what status to write and which finalizers
    to remove after it (`run` creates and deletes pods)."""

    def __init__(self, job: Obj, pods: list[Obj], backoff: dict[tuple[str, str], tuple[int, float]],
                 cluster: Cluster) -> None:
        self.job = job
        self.pods = pods
        self.backoff = backoff
        self.cluster = cluster
        self.backoff_key = (cluster.name, str(meta(job)["uid"]))
        self.indexed = spec(job).get("completionMode") == "Indexed"
        self.completions: int | None = spec(job).get("completions")
        self.new_status: dict[str, Any] = deep_copy(status(job))
        self.release: list[Obj] = []

    async def run(self, api: ClusterAPI) -> float | None:
        job, st, now = self.job, self.new_status, wall()
        suspended = bool(spec(job).get("suspend"))
        uncounted = st.get("uncountedTerminatedPods") or {}
        unc_succeeded = list(uncounted.get("succeeded") or [])
        unc_failed = list(uncounted.get("failed") or [])
        tracked = {str(meta(p)["uid"]) for p in self.pods if has_tracking_finalizer(p)}
        # pods whose finalizer is gone move from the uncounted lists into the counters
        st["succeeded"] = int_or(st.get("succeeded"), 0) + sum(u not in tracked for u in unc_succeeded)
        st["failed"] = int_or(st.get("failed"), 0) + sum(u not in tracked for u in unc_failed)
        unc_succeeded = [u for u in unc_succeeded if u in tracked]
        unc_failed = [u for u in unc_failed if u in tracked]

        completed = parse_indexes(st.get("completedIndexes"), self.completions or 0) if self.indexed else set()
        new_failures = 0
        for pod in self.pods:
            uid = str(meta(pod)["uid"])
            if not has_tracking_finalizer(pod):
                continue
            if uid in unc_succeeded or uid in unc_failed:
                self.release.append(pod)  # counted, but removing its finalizer failed last time
                continue
            index = completion_index(pod, self.completions or 0) if self.indexed else None
            if status(pod).get("phase") == "Succeeded":
                if self.indexed:
                    if index is not None:
                        completed.add(index)
                else:
                    unc_succeeded.append(uid)
                self.release.append(pod)
                self.backoff.pop(self.backoff_key, None)
            elif is_job_pod_failed(pod) and (not self.indexed or index is not None):
                unc_failed.append(uid)
                new_failures += 1
                self.release.append(pod)
        if new_failures:
            count, _ = self.backoff.get(self.backoff_key, (0, now))
            self.backoff[self.backoff_key] = (count + new_failures, now)
        if self.indexed:
            st["completedIndexes"] = format_indexes(completed)
            succeeded = st["succeeded"] = len(completed)
        else:
            succeeded = st["succeeded"] + len(unc_succeeded)
        failed = st["failed"] + len(unc_failed)

        active = [p for p in self.pods if is_active(p)]
        if not st.get("startTime") and not suspended:
            st["startTime"] = now_rfc3339()
        conditions: list[dict[str, Any]] = list(st.get("conditions") or [])
        target = condition(self.job, "SuccessCriteriaMet") or condition(self.job, "FailureTarget")
        again: float | None = None
        if target is None:
            deadline = int_or(spec(job).get("activeDeadlineSeconds"), -1)
            started = parse_ts(st.get("startTime"))
            if failed > int_or(spec(job).get("backoffLimit"), 6):
                target = new_condition("FailureTarget", "BackoffLimitExceeded",
                                       "Job has reached the specified backoff limit")
            elif deadline >= 0 and started is not None and not suspended:
                if now >= started + deadline:
                    target = new_condition("FailureTarget", "DeadlineExceeded",
                                           "Job was active longer than specified deadline")
                else:
                    again = started + deadline - now
            if target is not None:
                conditions.append(target)
        if target is not None:
            if target["type"] == "FailureTarget":  # every pod not finished yet now counts as failed
                await delete_pods(api, active)
                self.release += [p for p in active if has_tracking_finalizer(p)]
                unc_failed += [str(meta(p)["uid"]) for p in active if has_tracking_finalizer(p)]
                active = []
        elif not meta(job).get("deletionTimestamp"):
            active, again = await self._manage(api, active, succeeded, suspended, again)
            want = self.completions if self.completions is not None else 1
            if succeeded >= want and not active:
                target = new_condition("SuccessCriteriaMet", "CompletionsReached",
                                       "Reached expected number of succeeded pods")
                conditions.append(target)
            elif suspended:
                ensure_condition(conditions, "Suspended", "True", "JobSuspended", "Job suspended")
            elif ensure_condition(conditions, "Suspended", "False", "JobResumed", "Job resumed"):
                st["startTime"] = now_rfc3339()  # activeDeadlineSeconds counts from the resume

        terminating = sum(1 for p in self.pods if meta(p).get("deletionTimestamp") and not is_terminal(p))
        st["active"] = len(active)
        st["ready"] = sum(1 for p in active if is_ready(p))
        st["terminating"] = terminating
        st["uncountedTerminatedPods"] = {k: v for k, v in (("succeeded", unc_succeeded), ("failed", unc_failed)) if v}
        if target is not None and not unc_succeeded and not unc_failed and not terminating:
            final = "Complete" if target["type"] == "SuccessCriteriaMet" else "Failed"
            conditions.append(new_condition(final, target["reason"], target["message"]))
            if final == "Complete":
                st["completionTime"] = conditions[-1]["lastTransitionTime"]
        st["conditions"] = conditions
        for key in ("active", "succeeded", "failed", "completedIndexes", "conditions"):
            if not st.get(key):
                st.pop(key, None)  # omitempty, as upstream
        return again

    async def _manage(self, api: ClusterAPI, active: list[Obj], succeeded: int, suspended: bool,
                      again: float | None) -> tuple[list[Obj], float | None]:
        """Creates or deletes pods toward the wanted number of active pods (manageJob); returns the active pods."""
        job = self.job
        parallelism = int_or(spec(job).get("parallelism"), 1)
        if suspended:
            want = 0
        elif self.completions is None:
            want = len(active) if succeeded > 0 else parallelism
        else:
            want = max(0, min(self.completions - succeeded, parallelism))
        surplus = self._duplicates(active) if self.indexed else []
        rest = [p for p in active if p not in surplus]
        if len(rest) > want:
            per_node: dict[str, int] = {}
            surplus += sorted(rest, key=lambda p: deletion_rank(p, per_node))[: len(rest) - want]
        if surplus:
            surplus = surplus[:BURST]
            # not failures: their finalizer goes first, so they are never counted (deleteJobPods)
            await asyncio.gather(*(release(api, pod) for pod in surplus if has_tracking_finalizer(pod)))
            await delete_pods(api, surplus)
            return [p for p in active if p not in surplus], again
        missing = want - len(active)
        if spec(job).get("podReplacementPolicy") == "Failed":
            missing -= sum(1 for p in self.pods if meta(p).get("deletionTimestamp") and not is_terminal(p))
        if missing <= 0:
            return active, again
        wait = self._backoff_left()
        if wait > 0:
            return active, wait if again is None else min(again, wait)
        pods = [self._new_pod(index) for index in self._indexes_to_add(active, min(missing, BURST))]
        created = await asyncio.gather(*(api.create(PODS, pod) for pod in pods))
        return active + [p for p in created if p is not None], again

    def _backoff_left(self) -> float:
        failures, last = self.backoff.get(self.backoff_key, (0, 0.0))
        if not failures:
            return 0.0
        base = seconds_setting(self.cluster, "jobPodFailureBackoff", 0.1)
        delay = min(base * 2.0 ** min(failures - 1, 30), base * MAX_BACKOFF_FACTOR)
        return max(0.0, last + delay - wall())

    def _indexes_to_add(self, active: list[Obj], count: int) -> list[int | None]:
        if not self.indexed:
            return [None] * count
        completions = self.completions or 0
        taken = parse_indexes(self.new_status.get("completedIndexes"), completions)
        taken |= {i for i in (completion_index(p, completions) for p in active) if i is not None}
        free: list[int | None] = [i for i in range(completions) if i not in taken]
        return free[:count]

    def _duplicates(self, active: list[Obj]) -> list[Obj]:
        """Active pods of an Indexed Job with no valid index, or a second pod for an index."""
        seen: set[int] = set()
        extra = []
        for pod in sorted(active, key=lambda p: (not is_ready(p), str(meta(p).get("creationTimestamp", ""))),
                          reverse=True):
            index = completion_index(pod, self.completions or 0)
            if index is None or index in seen:
                extra.append(pod)
            else:
                seen.add(index)
        return extra

    def _new_pod(self, index: int | None) -> Obj:
        job = self.job
        job_name = str(meta(job)["name"])
        pod = pod_from_template(spec(job).get("template") or {}, str(meta(job)["namespace"]), job)
        pod_meta = pod["metadata"]
        pod_meta["finalizers"] = [*(pod_meta.get("finalizers") or []), TRACKING_FINALIZER]
        pod_meta["generateName"] = f"{job_name}-"
        if index is not None:
            pod_meta["generateName"] = f"{job_name}-{index}-"
            pod_meta.setdefault("annotations", {})[COMPLETION_INDEX] = str(index)
            pod_meta["labels"][COMPLETION_INDEX] = str(index)
            pod["spec"]["hostname"] = f"{job_name}-{index}"
            env = {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                "fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}}}
            for container in [*(pod["spec"].get("initContainers") or []), *(pod["spec"].get("containers") or [])]:
                if not any(e.get("name") == env["name"] for e in container.get("env") or []):
                    container["env"] = [*(container.get("env") or []), env]
        return pod


async def delete_pods(api: ClusterAPI, pods: list[Obj]) -> None:
    await asyncio.gather(*(api.delete(PODS, str(meta(p)["namespace"]), str(meta(p)["name"]),
                                      preconditions={"uid": meta(p)["uid"]})
                           for p in pods if not meta(p).get("deletionTimestamp")))


class JobPodFinalizerController:
    """Removes the tracking finalizer from pods no running Job counts: their Job is gone, finished, or no longer
    their controller (upstream's orphan pod queue), so such pods are never stuck Terminating."""

    name = "job-pod-finalizers"
    watches: tuple[str, ...] = (PODS,)

    @safe_keys
    def keys_for(self, cluster: Cluster, event: Event) -> Iterable[Key]:
        pod = event.entry.obj
        if event.type != "DELETED" and has_tracking_finalizer(pod) and self._orphaned(cluster, pod):
            yield (str(meta(pod).get("namespace", "")), str(meta(pod)["name"]))

    @staticmethod
    def _orphaned(cluster: Cluster, pod: Obj) -> bool:
        key = owner_key(pod, "Job", "batch/v1")
        entry = cluster.store.get(JOBS, *key) if key is not None else None
        if entry is None or meta(entry.obj).get("uid") != (controller_ref(pod) or {}).get("uid"):
            return True
        return finished(entry.obj) is not None

    @guarded("kube-controller-manager")
    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        pod = api.get(PODS, *key)
        if pod is not None and has_tracking_finalizer(pod) and self._orphaned(api.cluster, pod):
            await release(api, pod)
        return None

