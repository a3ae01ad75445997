"""The `scale` subresource: an autoscaling/v1 Scale view of a workload (or of a CRD with scale paths)."""

from __future__ import annotations

from typing import Any

from clusterset.apiserver.meta import errors
from clusterset.apiserver.meta.errors import field_invalid
from clusterset.apiserver.registry.context import Ctx
from clusterset.apiserver.registry.rest import Rest
from clusterset.apiserver.storage.store import Obj


def scale_of(ctx: Ctx, obj: Obj) -> Obj:
    rt = ctx.rt
    paths = rt.scale_paths or {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector" if rt.is_crd else "",
    }
    spec_replicas = _get_path(obj, paths["specReplicasPath"]) or 0
    status_replicas = _get_path(obj, paths["statusReplicasPath"]) or 0
    if rt.is_crd:
        selector = _get_path(obj, paths.get("labelSelectorPath") or "") or ""
    else:
        selector = ctx.served.strategy.scale_selector(obj)
    meta = obj["metadata"]
    scale: Obj = {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta
        },
        "spec": {"replicas": spec_replicas},
        "status": {"replicas": status_replicas},
    }
    if selector:
        scale["status"]["selector"] = selector
    return scale


async def write_scale(rest: Rest, ctx: Ctx, name: str, scale: Any) -> Obj:
    if not isinstance(scale, dict):
        raise errors.bad_request("the object provided is unrecognized (must be of type Scale)")
    entry = rest.get(ctx, name)
    rv = (scale.get("metadata") or {}).get("resourceVersion")
    if rv and rv != entry.obj["metadata"]["resourceVersion"]:
        raise errors.conflict(ctx.rt.plural, ctx.rt.group, name)
    replicas = (scale.get("spec") or {}).get("replicas", 0)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise errors.invalid(
            "Scale",
            "autoscaling",
            name,
            [field_invalid("spec.replicas", replicas, "must be greater than or equal to 0")],
        )
    new = entry.copy()
    path = (ctx.rt.scale_paths or {}).get("specReplicasPath", ".spec.replicas")
    _set_path(new, path, replicas)
    result = await rest.write(ctx, entry, new, None)
    return scale_of(ctx, result)


def _get_path(obj: Obj, path: str) -> Any:
    cur: Any = obj
    for part in [p for p in path.split(".") if p]:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _set_path(obj: Obj, path: str, value: Any) -> None:
    parts = [p for p in path.split(".") if p]
    cur = obj
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value
