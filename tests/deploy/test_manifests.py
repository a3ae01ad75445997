"""The manifests themselves: `clusterset manifests` prints what `kubectl kustomize` prints (the oldest and the
newest kubectl), the parts made from code are current, and the pods run as the Dockerfile's image expects."""

from __future__ import annotations

import os
import subprocess
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml

from clusterset.deploy import BASES, manifests
from clusterset.deploy.generated import generated_files
from clusterset.deploy.kustomize import build, split_image
from tests.conftest import KUBECTLS
from tests.test_cli import _clusterset

REPO = Path(__file__).resolve().parents[2]
needs_kubectl = pytest.mark.skipif(not KUBECTLS, reason="kubectl is not installed on this machine")


def kustomize(binary: str, directory: Path) -> str:
    out = subprocess.run([binary, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def deployments(side: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in build(BASES / side) if d["kind"] == "Deployment"}


@needs_kubectl
@pytest.mark.parametrize("side", ["hub", "member"])
def test_clusterset_manifests_prints_what_kubectl_kustomize_prints(side: str) -> None:
    printed = subprocess.run(_clusterset("manifests", side), capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    for kubectl_version, binary in KUBECTLS.items():
        assert printed.stdout == kustomize(binary, REPO / "deploy" / side), kubectl_version


@needs_kubectl
@pytest.mark.parametrize("image", ["registry.example.com:5000/team/clusterset:1.2.3",
                                   "registry.example.com/clusterset@sha256:" + "ab" * 32,
                                   "mirror.local/clusterset"])
def test_image_replaces_as_kustomizes_images_field_does(image: str, tmp_path: Path) -> None:
    name, tag, digest = split_image(image)
    entry = {"name": "clusterset", "newName": name, **({"newTag": tag} if tag else {}),
             **({"digest": digest} if digest else {})}
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [os.path.relpath(BASES / "member", tmp_path)],
        "images": [entry]}))
    expected = kustomize(KUBECTLS[sorted(KUBECTLS)[-1]], tmp_path)
    assert manifests("member", image) == expected
    images = {c["image"] for d in yaml.safe_load_all(expected) if d["kind"] == "Deployment"
              for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {image if tag or digest else f"{image}:{version('clusterset')}"}


def test_the_parts_made_from_code_are_current() -> None:
    stale = [name for name, text in generated_files().items() if (BASES / name).read_text() != text]
    assert stale == [], f"run .venv/bin/python tools/gen_deploy.py and commit: {stale} differ from the code"


def test_every_component_runs_this_version_unprivileged_on_a_read_only_root() -> None:
    found = {**deployments("hub"), **deployments("member")}
    assert sorted(found) == ["clusterset-agent", "clusterset-dns", "clusterset-hub"]
    for name, deployment in found.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == f"clusterset:{version('clusterset')}", name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], name  # tempfile needs one
        assert pod["serviceAccountName"] == name, name
        assert container["livenessProbe"] and container["readinessProbe"], name
    hub = found["clusterset-hub"]
    assert hub["spec"]["replicas"] == 2
    container = hub["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert found["clusterset-agent"]["spec"]["strategy"] == {"type": "Recreate"}  # never two agents at once


def test_the_renderer_refuses_what_it_does_not_do(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: [a.yaml]\nnamePrefix: x-\n")
    with pytest.raises(ValueError, match="namePrefix not supported by clusterset's renderer"):
        build(tmp_path)
    (tmp_path / "kustomization.yaml").write_text("resources: [a.yaml, a.yaml]\n")
    (tmp_path / "a.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\n")
    with pytest.raises(ValueError, match="resources defined twice: v1/ConfigMap/x/a"):
        build(tmp_path)


def test_an_unknown_side_is_refused() -> None:
    result = subprocess.run(_clusterset("manifests", "edge"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "invalid choice: 'edge'" in result.stderr
