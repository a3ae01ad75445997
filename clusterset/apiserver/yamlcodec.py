"""YAML decoding as Kubernetes does it: timestamps stay strings (sigs.k8s.io/yaml converts via JSON)."""

from __future__ import annotations

from typing import Any

import yaml


class _KubeLoader(yaml.SafeLoader):
    pass


_KubeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_KubeLoader)
