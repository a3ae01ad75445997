"""A Work's status as a pure function of what one pass found: each manifest's conditions from its live object
(or the error applying it), and the whole Work's conditions aggregated from them.

Reasons (per manifest): Applied `AppliedManifestComplete`/`AppliedManifestFailed` (the API's message);
Available `ResourceAvailable`/`ResourceNotAvailable`/`ResourceMissing`; Progressing `Applying` (a rollout or a Job
running)/`Completed`/`Failed` (not applied); Degraded `AsExpected`/`ApplyFailed`/`ReplicaFailure`/
`ProgressDeadlineExceeded`/`JobFailed`; with feedback rules, StatusFeedbackSynced `StatusFeedbackSynced`/
`StatusFeedbackSyncFailed`. The Work: `AppliedWorkComplete`/`AppliedWorkFailed`, `ResourcesAvailable`/
`ResourcesNotAvailable`, `Applying`/`Failed` (nothing running, something not applied)/`Completed`,
`ResourcesDegraded`/`AsExpected`, each naming the manifests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clusterset.api import objects
from clusterset.api.placement import APPLIED, AVAILABLE, DEGRADED, PROGRESSING

Obj = dict[str, Any]
FEEDBACK_SYNCED = "StatusFeedbackSynced"
MESSAGE_LIMIT = 4096  # a Work naming many failing manifests stays readable (the CRD allows 32768)
WORKLOADS = {("apps", "Deployment"), ("apps", "StatefulSet")}


@dataclass
class Outcome:
    """What one pass found for one manifest."""

    identifier: Obj
    live: Obj | None = None
    error: str | None = None
    feedback: list[Obj] = field(default_factory=list)
    feedback_problems: list[str] = field(default_factory=list)
    has_feedback_rules: bool = False

    @property
    def label(self) -> str:
        i = self.identifier
        where = "/".join(p for p in (i.get("namespace"), i.get("name")) if p)
        return f"manifest {i['ordinal']} ({i.get('kind') or '?'} {where})" if where else f"manifest {i['ordinal']}"


def _condition(type_: str, ok: bool, reason: str, message: str, generation: Any) -> Obj:
    out: Obj = {"type": type_, "status": "True" if ok else "False", "reason": reason, "message": message}
    if isinstance(generation, int):
        out["observedGeneration"] = generation
    return out


def _cond_status(live: Obj, type_: str) -> Obj | None:
    found = objects.condition(objects.status(live).get("conditions"), type_)
    return found if found is not None and found.get("status") == "True" else None


def _available(group: str, kind: str, live: Obj) -> tuple[bool, str]:
    status, spec = objects.status(live), objects.spec(live)
    if (group, kind) in WORKLOADS:
        wanted = spec.get("replicas", 1)
        have = status.get("availableReplicas" if kind == "Deployment" else "readyReplicas") or 0
        word = "available" if kind == "Deployment" else "ready"
        return have >= wanted, f"{have}/{wanted} replicas {word}"
    if (group, kind) == ("batch", "Job"):
        done = _cond_status(live, "Complete") is not None
        return done, "the Job completed" if done else "the Job has not completed"
    return True, "the resource exists"


def _progressing(group: str, kind: str, live: Obj) -> tuple[bool, str]:
    status, spec = objects.status(live), objects.spec(live)
    if (group, kind) in WORKLOADS:
        generation = objects.meta(live).get("generation") or 0
        if (status.get("observedGeneration") or 0) < generation:
            return True, "the controller has not seen the latest spec yet"
        wanted, updated = spec.get("replicas", 1), status.get("updatedReplicas") or 0
        if updated < wanted:
            return True, f"rollout in progress: {updated}/{wanted} replicas updated"
        return False, "rollout complete"
    if (group, kind) == ("batch", "Job"):
        finished = _cond_status(live, "Complete") or _cond_status(live, "Failed")
        running = not finished and (status.get("active") or 0) > 0
        return running, "the Job is running" if running else "the Job is not running"
    return False, "applied"


def _degraded(group: str, kind: str, live: Obj) -> tuple[str, str] | None:
    if (group, kind) == ("apps", "Deployment"):
        failure = _cond_status(live, "ReplicaFailure")
        if failure is not None:
            return "ReplicaFailure", str(failure.get("message") or "")
        progressing = objects.condition(objects.status(live).get("conditions"), "Progressing")
        if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
            return "ProgressDeadlineExceeded", str(progressing.get("message") or "")
    if (group, kind) == ("batch", "Job"):
        failed = _cond_status(live, "Failed")
        if failed is not None:
            return "JobFailed", str(failed.get("message") or failed.get("reason") or "the Job failed")
    return None


def manifest_conditions(outcome: Outcome) -> list[Obj]:
    """The conditions of one manifest (without transition times)."""
    ident, live, error = outcome.identifier, outcome.live, outcome.error
    group, kind = str(ident.get("group") or ""), str(ident.get("kind") or "")
    generation = objects.meta(live).get("generation") if live is not None else None
    out = []
    if error is not None:
        out.append(_condition(APPLIED, False, "AppliedManifestFailed", error, generation))
    else:
        out.append(_condition(APPLIED, True, "AppliedManifestComplete", "applied", generation))
    if live is None:
        out.append(_condition(AVAILABLE, False, "ResourceMissing", "the resource does not exist", generation))
    else:
        ok, message = _available(group, kind, live)
        out.append(_condition(AVAILABLE, ok, "ResourceAvailable" if ok else "ResourceNotAvailable", message,
                              generation))
    if error is not None:
        out.append(_condition(PROGRESSING, False, "Failed", "not applied: " + error, generation))
        out.append(_condition(DEGRADED, True, "ApplyFailed", error, generation))
    else:
        assert live is not None
        running, message = _progressing(group, kind, live)
        out.append(_condition(PROGRESSING, running, "Applying" if running else "Completed", message, generation))
        degraded = _degraded(group, kind, live)
        out.append(_condition(DEGRADED, degraded is not None, degraded[0] if degraded else "AsExpected",
                              degraded[1] if degraded else "as expected", generation))
    if outcome.has_feedback_rules:
        problems = outcome.feedback_problems
        out.append(_condition(FEEDBACK_SYNCED, not problems,
                              "StatusFeedbackSyncFailed" if problems else "StatusFeedbackSynced",
                              "; ".join(problems) if problems else "status feedback read", generation))
    return out


def _naming(outcomes: list[Outcome], messages: bool = False) -> str:
    parts = [f"{o.label}: {o.error}" if messages and o.error else o.label for o in outcomes]
    text = "; ".join(parts)
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT - 3] + "..."


def work_conditions(outcomes: list[Outcome], per_manifest: list[list[Obj]], generation: Any) -> list[Obj]:
    """The whole Work's conditions from its manifests' (`per_manifest[i]` are `outcomes[i]`'s)."""
    def having(type_: str, status: str) -> list[Outcome]:
        return [o for o, conds in zip(outcomes, per_manifest, strict=True)
                if (objects.condition(conds, type_) or {}).get("status") == status]

    total = len(outcomes)
    failed, missing = having(APPLIED, "False"), having(AVAILABLE, "False")
    running, degraded = having(PROGRESSING, "True"), having(DEGRADED, "True")
    return [
        _condition(APPLIED, False, "AppliedWorkFailed", f"{len(failed)} of {total} manifests failed: "
                   + _naming(failed, messages=True), generation) if failed else
        _condition(APPLIED, True, "AppliedWorkComplete", f"all {total} manifests applied", generation),
        _condition(AVAILABLE, False, "ResourcesNotAvailable", f"{len(missing)} of {total} not available: "
                   + _naming(missing), generation) if missing else
        _condition(AVAILABLE, True, "ResourcesAvailable", f"all {total} resources are available", generation),
        _condition(PROGRESSING, True, "Applying", "in progress: " + _naming(running), generation) if running else
        _condition(PROGRESSING, False, "Failed", "not progressing: " + _naming(failed), generation) if failed else
        _condition(PROGRESSING, False, "Completed", "nothing in progress", generation),
        _condition(DEGRADED, True, "ResourcesDegraded", _naming(degraded, messages=True), generation) if degraded else
        _condition(DEGRADED, False, "AsExpected", "as expected", generation),
    ]
