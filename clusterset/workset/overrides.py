"""Per-cluster copies of a WorkSet's manifests: placeholders filled in, then the overrides that select the
cluster applied in order. Pure functions of the WorkSet and the cluster's facts.

An override (`spec.overrides[i]`):

    clusterSelector:                     # all given parts must match; none given: every cluster
      names: [member-1]                  # ClusterProfile names
      labelSelector: {matchLabels, matchExpressions}        # over the ClusterProfile's labels
      propertySelector:                  # over the ClusterProfile's status.properties
        matchExpressions: [{name: region, operator: In|NotIn|Exists|DoesNotExist|Gt|Lt, values: [..]}]
    manifestSelector: {apiVersion, kind, name, namespace}   # optional: which manifests (default: all)
    patches: [{op: replace, path: /spec/replicas, value: "${cluster.properties['replicas'] | int}"}]   # RFC 6902

Placeholders, in every string of the manifests and of the patches' values: `${cluster.name}` (the profile's
name), `${cluster.id}` (its `cluster.clusterset.k8s.io` property, else its name), `${cluster.properties['p']}`
(a property's value; double quotes work too). A string that is one placeholder and nothing else may end in
`| int` (the value as an integer) or `| json` (the value parsed as JSON) to give a typed value; `$${` writes a
literal `${`. A placeholder that cannot be filled is an error, never an empty string.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clusterset.api import labels, objects
from clusterset.api.inventory import CLUSTER_ID_PROPERTY
from clusterset.workset.jsonpatch import PatchError, apply_patch

Obj = dict[str, Any]


@dataclass(frozen=True)
class ClusterFacts:
    """What overrides may select on and fill in: a ClusterProfile's name, id, labels and properties."""

    name: str
    id: str
    labels: Mapping[str, str] = field(default_factory=dict)
    properties: Mapping[str, str] = field(default_factory=dict)


def facts_of(profile: Obj) -> ClusterFacts:
    name = str(objects.meta(profile).get("name") or "")
    properties = {str(p["name"]): str(p.get("value", "")) for p in objects.status(profile).get("properties") or []
                  if isinstance(p, dict) and p.get("name")}
    return ClusterFacts(name, properties.get(CLUSTER_ID_PROPERTY) or name, dict(objects.labels(profile)), properties)


class OverrideError(ValueError):
    """Why a cluster's copy cannot be made: `where` names the override (or the manifests), `fix` what to do."""

    def __init__(self, where: str, problem: str, fix: str) -> None:
        super().__init__(f"{where}: {problem}; {fix}")
        self.where = where


# ---------------------------------------------------------------------- placeholders
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_WHOLE = re.compile(r"^\$\{([^}|]*?)\s*(?:\|\s*(int|json)\s*)?\}$")
_PROPERTY = re.compile(r"""^cluster\.properties\[\s*(?:'([^']*)'|"([^"]*)")\s*\]$""")
_ESCAPE = "\x00literal-placeholder\x00"


def _lookup(expression: str, cluster: ClusterFacts) -> str:
    expression = expression.strip()
    if "|" in expression:
        raise ValueError(f"${{{expression}}}: '| int' and '| json' need the placeholder to be the whole string")
    if expression == "cluster.name":
        return cluster.name
    if expression == "cluster.id":
        return cluster.id
    match = _PROPERTY.match(expression)
    if match is None:
        raise ValueError(f"unknown placeholder ${{{expression}}} (known: ${{cluster.name}}, ${{cluster.id}}, "
                         "${cluster.properties['<name>']})")
    name = match.group(1) if match.group(1) is not None else match.group(2)
    if name not in cluster.properties:
        raise ValueError(f"cluster {cluster.name} has no property {name!r}")
    return cluster.properties[name]


def _fill_string(text: str, cluster: ClusterFacts) -> Any:
    whole = _WHOLE.match(text)
    if whole is not None and whole.group(2):
        value = _lookup(whole.group(1), cluster)
        try:
            return int(value) if whole.group(2) == "int" else json.loads(value)
        except ValueError:
            raise ValueError(f"{text}: {value!r} is not {'an integer' if whole.group(2) == 'int' else 'JSON'}") \
                from None
    escaped = text.replace("$${", _ESCAPE)
    return _PLACEHOLDER.sub(lambda m: _lookup(m.group(1), cluster), escaped).replace(_ESCAPE, "${")


def fill(value: Any, cluster: ClusterFacts) -> Any:
    """`value` with every placeholder in its strings filled in for `cluster`; raises ValueError."""
    if isinstance(value, str):
        return _fill_string(value, cluster) if "${" in value else value
    if isinstance(value, dict):
        return {k: fill(v, cluster) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, cluster) for v in value]
    return value


# ---------------------------------------------------------------------- selection
PROPERTY_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")


def _property_matches(expression: Any, properties: Mapping[str, str]) -> bool:
    if not isinstance(expression, dict) or not isinstance(expression.get("name"), str):
        raise ValueError("propertySelector.matchExpressions[] needs a name")
    name, operator = expression["name"], expression.get("operator")
    values = expression.get("values") or []
    if operator not in PROPERTY_OPERATORS:
        raise ValueError(f"propertySelector operator {operator!r} is not one of {', '.join(PROPERTY_OPERATORS)}")
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"propertySelector values of {name!r} must be a list of strings")
    if operator in ("In", "NotIn") and not values:
        raise ValueError(f"propertySelector {operator} on {name!r} needs values")
    if operator in ("Gt", "Lt") and (len(values) != 1 or not re.fullmatch(r"-?\d+", values[0])):
        raise ValueError(f"propertySelector {operator} on {name!r} needs exactly one integer value")
    has, value = name in properties, properties.get(name)
    if operator == "Exists":
        return has
    if operator == "DoesNotExist":
        return not has
    if operator == "In":
        return has and value in values
    if operator == "NotIn":
        return not has or value not in values
    if value is None or not re.fullmatch(r"-?\d+", value.strip()):
        return False
    return int(value) > int(values[0]) if operator == "Gt" else int(value) < int(values[0])


def selects(selector: Any, cluster: ClusterFacts) -> bool:
    """Whether a clusterSelector picks `cluster`; raises ValueError on a malformed selector (every part is checked,
    whichever cluster is asked about, so a mistake shows on every cluster alike)."""
    if selector is None:
        return True
    if not isinstance(selector, dict):
        raise ValueError("clusterSelector must be an object")
    matched = []
    names = selector.get("names")
    if names is not None:
        if not isinstance(names, list):
            raise ValueError("clusterSelector.names must be a list of ClusterProfile names")
        matched.append(cluster.name in names)
    label_selector = selector.get("labelSelector")
    if label_selector is not None:
        if not isinstance(label_selector, dict):
            raise ValueError("clusterSelector.labelSelector must be an object")
        try:
            matched.append(labels.from_object(label_selector).matches(cluster.labels))
        except labels.SelectorError as err:
            raise ValueError(f"clusterSelector.labelSelector: {err}") from None
    property_selector = selector.get("propertySelector")
    if property_selector is not None:
        expressions = property_selector.get("matchExpressions") if isinstance(property_selector, dict) else None
        if not isinstance(expressions, list):
            raise ValueError("clusterSelector.propertySelector needs matchExpressions (a list)")
        matched += [_property_matches(e, cluster.properties) for e in expressions]
    return all(matched)


_MANIFEST_FIELDS = {"apiVersion": ("apiVersion",), "kind": ("kind",), "name": ("metadata", "name"),
                    "namespace": ("metadata", "namespace")}


def _manifest_selected(selector: Any, manifest: Obj) -> bool:
    if selector is None:
        return True
    if not isinstance(selector, dict) or set(selector) - _MANIFEST_FIELDS.keys():
        raise ValueError(f"manifestSelector takes only {', '.join(_MANIFEST_FIELDS)}")
    for key, path in _MANIFEST_FIELDS.items():
        if key in selector:
            value: Any = manifest
            for part in path:
                value = value.get(part) if isinstance(value, dict) else None
            if value != selector[key]:
                return False
    return True


# ---------------------------------------------------------------------- a cluster's copy
def cluster_manifests(manifests: list[Obj], overrides: list[Any], cluster: ClusterFacts) -> list[Obj]:
    """The manifests for `cluster`: placeholders filled, then each override that selects it applied in order.
    Raises OverrideError naming the override (or the manifests) and the fix."""
    try:
        out = [fill(copy.deepcopy(m), cluster) for m in manifests]
    except ValueError as err:
        raise OverrideError("manifests", str(err), "add the property to the cluster or fix the placeholder") \
            from None
    for index, override in enumerate(overrides):
        where = f"overrides[{index}]"
        if not isinstance(override, dict):
            raise OverrideError(where, "must be an object", "give clusterSelector, manifestSelector and patches")
        try:
            if not selects(override.get("clusterSelector"), cluster):
                continue
            patches = fill(override.get("patches") or [], cluster)
            chosen = [i for i, m in enumerate(out) if _manifest_selected(override.get("manifestSelector"), m)]
        except ValueError as err:
            raise OverrideError(where, str(err), "fix the override's selector or placeholder") from None
        if not chosen:
            raise OverrideError(where, "its manifestSelector matches no manifest",
                                "fix manifestSelector (apiVersion, kind, name, namespace)")
        for i in chosen:
            try:
                out[i] = apply_patch(out[i], patches)
            except PatchError as err:
                kind, name = out[i].get("kind"), objects.meta(out[i]).get("name")
                raise OverrideError(where, f"on {kind} {name}: {err}",
                                    "fix the patch path, or narrow manifestSelector to the manifests it fits") \
                    from None
            if not isinstance(out[i], dict):
                raise OverrideError(where, "a patch replaced a whole manifest with something not an object",
                                    "patch fields inside the manifest")
    return out
