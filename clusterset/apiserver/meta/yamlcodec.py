"""YAML decoding as Kubernetes does it: timestamps stay strings (sigs.k8s.io/yaml converts via JSON), and the
expansion of aliases is bounded (`clusterset.api.boundedyaml`: go-yaml's alias budget, the decoded size
counted against the request limit)."""

from __future__ import annotations

from typing import Any

import orjson
import yaml

from clusterset.api import boundedyaml
from clusterset.api.boundedyaml import SAFE_LOADER


class _KubeLoader(SAFE_LOADER):  # type: ignore[misc]
    pass


_KubeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(text: str, max_size: int) -> Any:
    """A YAML document, at most `max_size` bytes once decoded; raises boundedyaml.YAMLError (a ValueError).

    JSON is YAML, and clients (server-side apply, controllers) mostly send JSON: that is parsed as JSON
    first, which is two orders of magnitude faster than a YAML parser (and JSON has no aliases)."""
    if text.lstrip()[:1] == "{":
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return boundedyaml.load(text, max_size=max_size, loader=_KubeLoader)
