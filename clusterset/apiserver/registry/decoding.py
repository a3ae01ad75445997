"""A typed body decoded as kube-apiserver's decoder would: wrong JSON types are a 400, nulls in lists are zero.

Built-in kinds decode into Go structs, so `"verbs": "get"` never reaches validation upstream: it is
`Role in version "v1" cannot be handled as a Role: json: cannot unmarshal string into Go struct field
PolicyRule.rules.verbs of type []string`. A kind describes the fields it reads with `GoType`s and decodes a
body with `decode_as_go`. A `null` field is accepted as it is (Go leaves the zero value); a `null` element of a
list or map becomes its type's zero value (`""`, `{}`), so validation never meets a `None` where Go has a value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clusterset.apiserver.meta import errors
from clusterset.apiserver.patch.merge import go_json_type


@dataclass(frozen=True)
class GoType:
    """A Go type as its decode errors name it (`string`, `[]string`, `v1.PolicyRule`).

    `struct` (the Go struct's name) and `fields` describe a struct, `items` a slice's or map's element type;
    a type with neither is a string.
    """

    name: str
    struct: str = ""
    fields: dict[str, GoType] = field(default_factory=dict)
    items: GoType | None = None

    def slice(self, name: str = "") -> GoType:
        return GoType(name or f"[]{self.name}", items=self)

    def map(self, name: str = "") -> GoType:
        return GoType(name or f"map[string]{self.name}", items=self)

    def zero(self) -> Any:
        """The zero value of the type as JSON: `{}` for a struct, `""` for a string, null for a slice or map."""
        return {} if self.struct else None if self.items is not None else ""


STRING = GoType("string")
STRINGS = STRING.slice()


def struct(name: str, /, **fields: GoType) -> GoType:
    """A struct of an API's v1 package (`v1.PolicyRule`) with the fields a kind reads."""
    return GoType(f"v1.{name}", struct=name, fields=fields)


def decode_as_go(body: dict[str, Any], kind: GoType, version: str = "v1") -> None:
    """400, worded as kube-apiserver's decoder, if a field of `kind` has a value of the wrong type; nulls in
    lists and maps become zero values (in place)."""
    error = _decode(body, kind, "", "")
    if error:
        raise errors.bad_request(f'{kind.struct} in version "{version}" cannot be handled as a {kind.struct}: {error}')


def _decode(value: Any, go_type: GoType, struct_name: str, path: str) -> str:
    """encoding/json's error for the first value of the wrong type in document order ("" if none), the field
    named by its path."""
    if value is None:
        return ""
    if go_type.struct:
        if isinstance(value, dict):
            for key, item in value.items():
                if key in go_type.fields:
                    error = _decode(item, go_type.fields[key], go_type.struct, f"{path}.{key}" if path else key)
                    if error:
                        return error
            return ""
    elif go_type.items is not None:
        is_map = go_type.name.startswith("map[")
        if isinstance(value, dict) if is_map else isinstance(value, list):
            for key in list(value) if is_map else range(len(value)):
                if value[key] is None:
                    value[key] = go_type.items.zero()
                error = _decode(value[key], go_type.items, struct_name, path)
                if error:
                    return error
            return ""
    elif isinstance(value, str):
        return ""
    return f"json: cannot unmarshal {go_json_type(value)} into Go struct field {struct_name}.{path} of type " \
           f"{go_type.name}"
