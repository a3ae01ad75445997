"""The CronJob controller: creates a CronJob's Jobs on schedule, as kube-controller-manager's (cronjob
controller v2) does.

Each run is one Job named `<cronjob>-<scheduled time in minutes since the epoch>` (the name is the lock: a
run is never created twice), with the template's labels and annotations, the
`batch.kubernetes.io/cronjob-scheduled-timestamp` annotation (RFC 3339 in the CronJob's time zone) and a
controller ownerReference. Only the most recent missed run is started (after a restart, after `suspend`
is lifted), and only within `startingDeadlineSeconds`; more than 100 missed runs are upstream's "too many
missed start times" case and still start only the latest. `concurrencyPolicy`: Allow, Forbid (skip while
one is active), Replace (delete the active ones first). `status.active`, `lastScheduleTime` and
`lastSuccessfulTime` live in the API, so a restart resumes from them. Finished Jobs beyond
`successfulJobsHistoryLimit` / `failedJobsHistoryLimit` are deleted, oldest first (background propagation).
The wait for the next run is a requeue; an unparseable schedule or an unknown time zone in stored state
starts nothing (upstream records an event).

The controller's clock is the real time plus `settings["cronJobClockOffset"]` seconds (default 0): a test
advances it instead of waiting for real minutes (the offset is read on each reconcile; the next write to the
CronJob or one of its Jobs reconciles it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from clusterset.api.objects import meta, spec, status
from clusterset.api.times import rfc3339
from clusterset.apiserver.controllers.manager import ClusterAPI, Key
from clusterset.apiserver.controllers.workloads.jobs import condition, finished
from clusterset.apiserver.controllers.workloads.util import (
    CONFLICT_RETRY,
    CRONJOBS,
    JOBS,
    controller_ref,
    deep_copy,
    guarded,
    owned,
    owner_key,
    owner_ref,
    parse_ts,
    safe_keys,
    wall,
)
from clusterset.apiserver.kinds.schedules import Schedule, ScheduleError, parse_schedule
from clusterset.apiserver.registry.cluster import Cluster
from clusterset.apiserver.storage.store import Event, Obj

log = logging.getLogger(__name__)

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
NEXT_SCHEDULE_DELTA = 0.1  # upstream pads the requeue for clock skew
TOO_MANY_MISSED = 100


def clock(cluster: Cluster) -> float:
    """The CronJob controller's "now": real time plus the cluster's `cronJobClockOffset` setting (a test seam)."""
    try:
        return wall() + float(cluster.settings.get("cronJobClockOffset", 0) or 0)
    except (TypeError, ValueError):
        return wall()


def most_recent_schedule_time(cronjob: Obj, now: float, schedule: Schedule,
                              with_deadline: bool) -> tuple[float, float | None, int]:
    """(earliest time considered, the latest run due at or before now or None, runs missed) — upstream's
    mostRecentScheduleTime, counting missed runs from the interval between two runs rather than walking
    them all. Raises ValueError for a schedule that never fires."""
    earliest = parse_ts(status(cronjob).get("lastScheduleTime")) or parse_ts(meta(cronjob).get("creationTimestamp"))
    earliest = earliest if earliest is not None else now
    deadline = spec(cronjob).get("startingDeadlineSeconds")
    if with_deadline and isinstance(deadline, int) and not isinstance(deadline, bool):
        earliest = max(earliest, now - deadline)
    t1 = schedule.next(earliest)
    t2 = schedule.next(t1)
    if now < t1:
        return earliest, None, 0
    if now < t2:
        return earliest, t1, 1
    interval = round(t2 - t1)
    if interval < 1:
        raise ValueError("time difference between two schedules is less than 1 second")
    missed = int(now - t1) // interval + 1
    latest = None
    t = schedule.next(t1 + (missed - 2) * interval)
    while t <= now:
        latest, t = t, schedule.next(t)
    return earliest, latest, missed


def next_run_delay(cronjob: Obj, now: float, schedule: Schedule) -> float:
    """Seconds until the next run is due (nextScheduleTimeDuration)."""
    try:
        earliest, latest, missed = most_recent_schedule_time(cronjob, now, schedule, False)
        base = latest if latest is not None else (earliest if not missed else now)
        return max(0.0, schedule.next(base) + NEXT_SCHEDULE_DELTA - now)
    except ValueError:
        return 3600.0


def job_name(cronjob: Obj, scheduled: float) -> str:
    return f"{meta(cronjob)['name']}-{int(scheduled) // 60}"


def job_for(cronjob: Obj, scheduled: float, schedule: Schedule) -> Obj:
    """The Job of one scheduled run (getJobFromTemplate2)."""
    template = spec(cronjob).get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    when = datetime.fromtimestamp(scheduled, schedule.zone).isoformat()
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(cronjob, scheduled),
            "namespace": meta(cronjob)["namespace"],
            "labels": dict(tmeta.get("labels") or {}),
            "annotations": {**(tmeta.get("annotations") or {}), SCHEDULED_TIMESTAMP: when.replace("+00:00", "Z")},
            "ownerReferences": [owner_ref(cronjob)],
        },
        "spec": deep_copy(template.get("spec") or {}),
    }


def job_ref(job: Obj) -> dict[str, Any]:
    m = meta(job)
    return {"kind": "Job", "namespace": m["namespace"], "name": m["name"], "uid": m["uid"], "apiVersion": "batch/v1",
            "resourceVersion": m["resourceVersion"]}


class CronJobController:
    name = "cronjob"
    watches: tuple[str, ...] = (CRONJOBS, JOBS)

    @safe_keys
    def keys_for(self, cluster: Cluster, event: Event) -> Iterable[Key]:
        obj = event.entry.obj
        if event.resource == CRONJOBS:
            yield (str(meta(obj).get("namespace", "")), str(meta(obj)["name"]))
            return
        key = owner_key(obj, "CronJob", "batch/v1")
        if key is not None:
            yield key

    @guarded("kube-controller-manager")
    async def reconcile(self, api: ClusterAPI, key: Key) -> float | None:
        cronjob = api.get(CRONJOBS, *key)
        if cronjob is None:
            return None
        jobs = owned(api, JOBS, cronjob)
        new_status = deep_copy(status(cronjob))
        self._follow_jobs(new_status, jobs)
        again = await self._maybe_start(api, cronjob, new_status)
        for limit_key, ctype in (("successfulJobsHistoryLimit", "Complete"), ("failedJobsHistoryLimit", "Failed")):
            limit = spec(cronjob).get(limit_key)
            if isinstance(limit, int):
                await self._remove_oldest(api, [j for j in jobs if condition(j, ctype)], limit, new_status)
        if not new_status.get("active"):
            new_status.pop("active", None)
        if new_status != status(cronjob):
            updated = deep_copy(cronjob)
            updated["status"] = new_status
            if await api.update(CRONJOBS, updated, subresource="status") is None:
                return CONFLICT_RETRY
        return again

    @staticmethod
    def _follow_jobs(new_status: dict[str, Any], jobs: list[Obj]) -> None:
        """Drops finished and vanished Jobs from `active`, and notes the latest successful completion."""
        present = {meta(j)["uid"]: j for j in jobs}
        active = [ref for ref in new_status.get("active") or [] if ref.get("uid") in present
                  and not finished(present[ref["uid"]])]
        new_status["active"] = active
        for job in jobs:
            completed = parse_ts(status(job).get("completionTime")) if condition(job, "Complete") else None
            if completed is not None and completed > (parse_ts(new_status.get("lastSuccessfulTime")) or 0.0):
                new_status["lastSuccessfulTime"] = status(job)["completionTime"]

    async def _maybe_start(self, api: ClusterAPI, cronjob: Obj, new_status: dict[str, Any]) -> float | None:
        """Starts the run that is due, if any (syncCronJob); returns when to look again."""
        cj_spec = spec(cronjob)
        if meta(cronjob).get("deletionTimestamp") or cj_spec.get("suspend"):
            return None
        try:
            schedule = parse_schedule(str(cj_spec.get("schedule", "")), cj_spec.get("timeZone"))
        except ScheduleError as err:
            log.warning("cronjob %s/%s: not starting jobs: %s", api.cluster.name, meta(cronjob)["name"], err)
            return None
        now = clock(api.cluster)
        current = {**cronjob, "status": new_status}
        try:
            _, scheduled, missed = most_recent_schedule_time(current, now, schedule, True)
        except ValueError as err:
            log.warning("cronjob %s/%s: invalid schedule: %s", api.cluster.name, meta(cronjob)["name"], err)
            return next_run_delay(current, now, schedule)
        if scheduled is None:
            return next_run_delay(current, now, schedule)
        if missed > TOO_MANY_MISSED:
            log.warning("cronjob %s/%s: too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
                        "or check clock skew", api.cluster.name, meta(cronjob)["name"])
        deadline = cj_spec.get("startingDeadlineSeconds")
        active: list[dict[str, Any]] = new_status["active"]
        name = job_name(cronjob, scheduled)
        if (isinstance(deadline, int) and scheduled + deadline < now) or \
                any(ref.get("name") == name for ref in active) or \
                parse_ts(new_status.get("lastScheduleTime")) == scheduled or \
                (cj_spec.get("concurrencyPolicy") == "Forbid" and active):
            return next_run_delay(current, now, schedule)
        if cj_spec.get("concurrencyPolicy") == "Replace":
            for ref in list(active):
                await api.delete(JOBS, str(ref.get("namespace", "")), str(ref.get("name", "")),
                                 propagationPolicy="Background")
                active.remove(ref)
        job = await api.create(JOBS, job_for(cronjob, scheduled, schedule))
        if job is None:  # it exists: ours (made before a restart lost the status write) or someone else's
            job = api.get(JOBS, str(meta(cronjob)["namespace"]), name)
            if job is None or (controller_ref(job) or {}).get("uid") != meta(cronjob)["uid"]:
                return None
        if not any(ref.get("uid") == meta(job)["uid"] for ref in active):
            active.append(job_ref(job))
        new_status["lastScheduleTime"] = rfc3339(datetime.fromtimestamp(scheduled, UTC))
        return next_run_delay(current, now, schedule)

    @staticmethod
    async def _remove_oldest(api: ClusterAPI, jobs: list[Obj], limit: int, new_status: dict[str, Any]) -> None:
        """Deletes the finished Jobs beyond the history limit, oldest start first."""
        if len(jobs) <= limit:
            return
        jobs = sorted(jobs, key=lambda j: (status(j).get("startTime") is None, status(j).get("startTime") or "",
                                           meta(j)["name"]))
        for job in jobs[: len(jobs) - limit]:
            await api.delete(JOBS, str(meta(job)["namespace"]), str(meta(job)["name"]),
                             propagationPolicy="Background")
            new_status["active"] = [r for r in new_status.get("active") or [] if r.get("uid") != meta(job)["uid"]]
