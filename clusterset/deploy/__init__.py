"""The manifests that install clusterset into real clusters: kustomize bases for the hub and for each member.

The bases are YAML files in this package (`hub/`, `member/`), so an installed clusterset can print them
(`clusterset manifests`) and the repository's `deploy/hub` and `deploy/member` use them as bases for
`kubectl apply -k`. `kustomize.py` renders a base as `kubectl kustomize` does; `generated.py` writes the parts
that come from code (the CRDs, and the namespace and roles the hub controllers would otherwise make).
"""

from __future__ import annotations

from pathlib import Path

from clusterset.deploy.kustomize import Image, build, dump, parse_image

BASES = Path(__file__).parent
SIDES = ("hub", "member")
IMAGE_NAME = "clusterset"  # the image name the bases use; `--image` (or kustomize's `images:`) replaces it


def manifests(side: str, image: str | None = None) -> str:
    """The YAML of `side` (hub or member), with clusterset's image replaced by `image` when given."""
    if side not in SIDES:
        raise ValueError(f"no manifests for {side!r}; choose one of {', '.join(SIDES)}")
    images = [parse_image(IMAGE_NAME, image)] if image else []
    return dump(build(BASES / side, images))


__all__ = ["BASES", "IMAGE_NAME", "SIDES", "Image", "build", "dump", "manifests", "parse_image"]
