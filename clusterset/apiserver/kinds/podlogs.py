"""`pods/log` of simulated containers: PodLogOptions as kube-apiserver validates them, the container chosen as it
chooses it, and the log a simulated container has, written from the pod's state (no log is stored).

A simulated container runs no process, so its log is what its kubelet saw happen to it: scheduled, started,
ready, stopping, terminated, each line at the time the pod's status records. The kubelet's refusals keep
upstream's words (a container waiting to start, no previous instance), so clients show what they show for a
real kubelet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from clusterset.api.objects import condition, meta, spec, status
from clusterset.api.times import parse_time
from clusterset.apiserver.meta import errors
from clusterset.apiserver.meta.errors import FieldError, field_forbidden, field_invalid
from clusterset.apiserver.storage.store import Obj

PREFIX = "[clusterset kubelet]"


@dataclass(frozen=True)
class LogOptions:
    """PodLogOptions."""

    container: str = ""
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    since_seconds: int | None = None
    since_time: datetime | None = None
    tail_lines: int | None = None
    limit_bytes: int | None = None

    def since(self, now: datetime) -> datetime | None:
        if self.since_seconds is not None:
            return now - timedelta(seconds=self.since_seconds)
        return self.since_time


def parse_log_options(query: Mapping[str, str], pod: str) -> LogOptions:
    """The query's PodLogOptions: 400 for a value that does not parse, 422 (upstream's messages) for one that is
    out of range."""
    def flag(key: str) -> bool:
        value = query.get(key, "false")
        if value.lower() not in ("true", "false", "1", "0", ""):
            raise errors.bad_request(f'{key}: invalid value "{value}": must be true or false')
        return value.lower() in ("true", "1")

    def number(key: str) -> int | None:
        value = query.get(key)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError as exc:
            raise errors.bad_request(f'{key}: strconv.ParseInt: parsing "{value}": invalid syntax') from exc

    since_time = None
    if query.get("sinceTime"):
        since_time = parse_time(query["sinceTime"])
        if since_time is None:
            raise errors.bad_request(f'sinceTime: parsing time "{query["sinceTime"]}" as RFC 3339 failed')
    opts = LogOptions(container=query.get("container", ""), follow=flag("follow"), previous=flag("previous"),
                      timestamps=flag("timestamps"), since_seconds=number("sinceSeconds"), since_time=since_time,
                      tail_lines=number("tailLines"), limit_bytes=number("limitBytes"))
    problems: list[FieldError] = []
    if opts.tail_lines is not None and opts.tail_lines < 0:
        problems.append(field_invalid("tailLines", opts.tail_lines, "must be greater than or equal to 0"))
    if opts.limit_bytes is not None and opts.limit_bytes < 1:
        problems.append(field_invalid("limitBytes", opts.limit_bytes, "must be greater than 0"))
    if opts.since_seconds is not None and opts.since_time is not None:
        problems.append(field_forbidden("", "at most one of `sinceTime` or `sinceSeconds` may be specified"))
    elif opts.since_seconds is not None and opts.since_seconds < 1:
        problems.append(field_invalid("sinceSeconds", opts.since_seconds, "must be greater than 0"))
    if problems:
        raise errors.invalid("PodLogOptions", "", pod, problems)
    return opts


def log_container(pod: Obj, requested: str) -> str:
    """The container whose log is asked for, as kube-apiserver's LogLocation picks it."""
    name = str(meta(pod).get("name", ""))
    containers = [str(c.get("name", "")) for c in spec(pod).get("containers") or []]
    inits = [str(c.get("name", "")) for c in spec(pod).get("initContainers") or []]
    if requested:
        if requested not in containers and requested not in inits:
            raise errors.bad_request(f"container {requested} is not valid for pod {name}")
        return requested
    if len(containers) == 1:
        return containers[0]
    if not containers:
        raise errors.bad_request(f"a container name must be specified for pod {name}")
    message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
    if inits:
        message += f" or one of the init containers: [{' '.join(inits)}]"
    raise errors.bad_request(message)


LogLine = tuple[datetime, str]


def container_log(pod: Obj, container: str, previous: bool) -> list[LogLine]:
    """The log of the container's current (or previous) instance, oldest first; the kubelet's 400 when it has
    none (upstream's validateContainerLogStatus)."""
    name = str(meta(pod).get("name", ""))
    pod_status = status(pod)
    found = next((s for key in ("containerStatuses", "initContainerStatuses")
                  for s in pod_status.get(key) or [] if isinstance(s, dict) and s.get("name") == container), None)
    state = (found or {}).get("state") or {}
    last = ((found or {}).get("lastState") or {}).get("terminated")
    if previous:
        if not isinstance(last, dict) or not last.get("containerID"):
            raise errors.bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
        return _instance_log(pod, container, None, last)
    if found is None or not (state.get("running") or state.get("terminated")):
        reason = ((state.get("waiting") or {}).get("reason")) or "ContainerCreating"
        raise errors.bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
    return _instance_log(pod, container, found, state.get("terminated"))


def _instance_log(pod: Obj, container: str, current: dict[str, Any] | None,
                  terminated: dict[str, Any] | None) -> list[LogLine]:
    lines: list[LogLine] = []

    def add(when: Any, text: str) -> None:
        at = parse_time(when)
        if at is not None:
            lines.append((at, f"{PREFIX} {text}"))

    scheduled = condition(status(pod).get("conditions"), "PodScheduled")
    node = spec(pod).get("nodeName", "")
    add((scheduled or {}).get("lastTransitionTime"), f"pod {meta(pod).get('namespace')}/{meta(pod).get('name')} "
                                                     f"scheduled to node {node}")
    image = next((c.get("image") for key in ("containers", "initContainers") for c in spec(pod).get(key) or []
                  if c.get("name") == container), "")
    running = ((current or {}).get("state") or {}).get("running") or {}
    started = running.get("startedAt") or (terminated or {}).get("startedAt")
    add(started, f'container "{container}" started from image {image}: simulated, it runs no process')
    ready = condition(status(pod).get("conditions"), "ContainersReady")
    if current is not None and current.get("ready") and running and ready and ready.get("status") == "True":
        add(ready.get("lastTransitionTime"), f'container "{container}" is ready')
    deleted, grace = meta(pod).get("deletionTimestamp"), meta(pod).get("deletionGracePeriodSeconds") or 0
    if running and (at := parse_time(deleted)) is not None:
        lines.append((at - timedelta(seconds=int(grace)),
                      f'{PREFIX} container "{container}" stopping: pod deleted, grace period {grace}s'))
    if terminated:
        add(terminated.get("finishedAt"), f'container "{container}" terminated: {terminated.get("reason", "")} '
                                          f'(exit code {terminated.get("exitCode", 0)})')
    return sorted(lines, key=lambda line: line[0])


def log_ended(pod: Obj | None, container: str) -> bool:
    """Whether a followed log has no more to say: the pod is gone or the container terminated."""
    if pod is None:
        return True
    return any(isinstance(s, dict) and s.get("name") == container and (s.get("state") or {}).get("terminated")
               for key in ("containerStatuses", "initContainerStatuses") for s in status(pod).get(key) or [])


def render(lines: list[LogLine], opts: LogOptions, now: datetime | None = None) -> list[bytes]:
    """The lines the options select (tail first, then since, as the kubelet reads a log), each as sent."""
    if opts.tail_lines is not None:
        lines = lines[len(lines) - opts.tail_lines:] if opts.tail_lines else []
    since = opts.since(now or datetime.now(UTC))
    return [(f"{_kubelet_time(at)} " if opts.timestamps else "").encode() + text.encode() + b"\n"
            for at, text in lines if since is None or at >= since]


def _kubelet_time(at: datetime) -> str:
    """RFC 3339 with nine fractional digits, as the kubelet prefixes lines with `timestamps=true`."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond * 1000:09d}Z"
