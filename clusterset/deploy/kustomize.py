"""The part of kustomize our bases use, so that `clusterset manifests` needs no kustomize: `resources` (files and
directories holding a kustomization) and `images`, output in kustomize's legacy order.

Anything else in a kustomization.yaml is refused rather than ignored: a base that starts using another
kustomize feature must get it here too, and the tests compare our output with `kubectl kustomize`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION = "kustomization.yaml"
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # our own package's files: trusted, no size bound needed
KNOWN_FIELDS = {"apiVersion", "kind", "resources", "images"}

# kustomize's legacy order (resid/gvk.go): kinds others depend on first, webhooks last, the rest in between
ORDER_FIRST = ["Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition", "ServiceAccount",
               "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "ConfigMap", "Secret",
               "Endpoints", "Service", "LimitRange", "PriorityClass", "PersistentVolume", "PersistentVolumeClaim",
               "Deployment", "StatefulSet", "CronJob", "PodDisruptionBudget"]
ORDER_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]


@dataclass(frozen=True)
class Image:
    """One entry of a kustomization's `images`: containers whose image is `name` get the new name, tag or digest."""

    name: str
    new_name: str | None = None
    new_tag: str | None = None
    digest: str | None = None

    @classmethod
    def of(cls, entry: dict[str, Any]) -> Image:
        return cls(str(entry["name"]), _str(entry.get("newName")), _str(entry.get("newTag")),
                   _str(entry.get("digest")))

    def applied_to(self, image: str) -> str | None:
        """The new image string, or None when `image` is not this entry's."""
        name, tag, digest = split_image(image)
        if name != self.name:
            return None
        name = self.new_name or name
        if self.digest:
            return f"{name}@{self.digest}"
        if self.new_tag:
            return f"{name}:{self.new_tag}"
        return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """`registry:5000/repo/name:tag@sha256:...` → (name, tag, digest); a port is not a tag."""
    image, _, digest = image.partition("@")
    name, tag = image, None
    colon = image.rfind(":")
    if colon > image.rfind("/"):
        name, tag = image[:colon], image[colon + 1:]
    return name, tag, digest or None


def parse_image(name: str, reference: str) -> Image:
    """`--image REF` as an `images` entry replacing `name`: REF's name, and its tag or digest if it has one."""
    new_name, tag, digest = split_image(reference)
    if not new_name:
        raise ValueError(f"--image {reference!r}: no image name")
    return Image(name, new_name, tag, digest)


def build(root: Path, extra_images: list[Image] | None = None) -> list[dict[str, Any]]:
    """The resources of the kustomization in `root` (clusterset's own bases, trusted YAML), with its images (then
    `extra_images`) applied, in kustomize's order."""
    resources = _load(root, set())
    ids = [_id(obj) for obj in resources]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ValueError(f"{root}: resources defined twice: {', '.join('/'.join(i) for i in twice)}")
    for image in extra_images or []:
        _set_images(resources, image)
    return sorted(resources, key=_legacy_key)


def _load(root: Path, seen: set[Path]) -> list[dict[str, Any]]:
    path = root / KUSTOMIZATION
    if root.resolve() in seen:
        raise ValueError(f"{path}: cycle in resources")
    seen = seen | {root.resolve()}
    kustomization = yaml.load(path.read_bytes(), LOADER) or {}
    unknown = set(kustomization) - KNOWN_FIELDS
    if unknown:
        raise ValueError(f"{path}: {', '.join(sorted(unknown))} not supported by clusterset's renderer "
                         f"(only {', '.join(sorted(KNOWN_FIELDS))})")
    out: list[dict[str, Any]] = []
    for entry in kustomization.get("resources") or []:
        target = root / str(entry)
        if target.is_dir():
            out += _load(target, seen)
        else:
            out += [doc for doc in yaml.load_all(target.read_bytes(), LOADER) if doc]
    for entry in kustomization.get("images") or []:
        _set_images(out, Image.of(entry))
    return out


def _set_images(resources: list[dict[str, Any]], image: Image) -> None:
    for obj in resources:
        spec = obj.get("spec") or {}
        for pod in (spec, (spec.get("template") or {}).get("spec") or {}):
            for container in [*(pod.get("containers") or []), *(pod.get("initContainers") or [])]:
                new = image.applied_to(str(container.get("image", "")))
                if new is not None:
                    container["image"] = new


def _id(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = obj.get("metadata") or {}
    return str(obj.get("apiVersion", "")), str(obj.get("kind", "")), str(meta.get("namespace", "")), \
        str(meta.get("name", ""))


def _legacy_key(obj: dict[str, Any]) -> tuple[int, str, str, str]:
    kind = str(obj.get("kind", ""))
    if kind in ORDER_FIRST:
        rank = ORDER_FIRST.index(kind)
    elif kind in ORDER_LAST:
        rank = len(ORDER_FIRST) + 1 + ORDER_LAST.index(kind)
    else:
        rank = len(ORDER_FIRST)
    meta = obj.get("metadata") or {}
    return rank, f"{obj.get('apiVersion', '')}/{kind}", str(meta.get("namespace", "")), str(meta.get("name", ""))


class _KustomizeDumper(yaml.SafeDumper):
    """go-yaml's choices where PyYAML's differ: double quotes where quotes are needed, no anchors for shared parts."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def choose_scalar_style(self) -> str:
        style = super().choose_scalar_style()
        if style not in ("'", '"') or self.event is None:
            return style
        event: Any = self.event
        if "\n" in event.value and self.analysis is not None and self.analysis.allow_block:
            return "|"  # multi-line text as a literal block
        return '"' if not event.implicit[0] else style  # a string that reads as another type: "0", "True"


def dump(resources: list[dict[str, Any]]) -> str:
    """YAML documents as kustomize writes them: keys sorted, `---` between documents."""
    return yaml.dump_all(resources, Dumper=_KustomizeDumper, sort_keys=True, default_flow_style=False,
                         allow_unicode=True)
