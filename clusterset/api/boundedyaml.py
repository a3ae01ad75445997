"""YAML whose expansion is bounded: go-yaml's alias budget (CVE-2019-11253) and a cap on the decoded size.

PyYAML's composer shares one node per anchor, so a few hundred bytes (`a1: &a1 [*a0, *a0, …]`, nested)
can name a tree of billions of nodes; the blow-up happens when that graph is expanded (constructed,
copied, encoded as JSON). `load` measures the expansion on the node graph first, visiting each node once,
and refuses before constructing anything:

- go-yaml's rule (`allowedAliasRatio` in decode.go, what kube-apiserver decodes with): past 1,000 decoded
  nodes and 100 of them reached through aliases, at most 99% of the decoded nodes may come from aliases,
  falling linearly to 10% between 400,000 and 4,000,000 decoded nodes ("document contains excessive
  aliasing");
- the decoded document's size (as JSON) may not exceed `max_size`, so the expansion counts against the
  caller's limit (a request body's) and not only its input bytes;
- an anchor that contains itself is refused, as go-yaml does.

What is built is a tree as sigs.k8s.io/yaml builds it (through JSON): an aliased node becomes a copy, so no
two places of the result share an object. No I/O here; the callers read their files or bodies.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

__all__ = ["SAFE_LOADER", "ExcessiveAliasing", "TooLarge", "YAMLError", "load"]

# libyaml's parser when PyYAML was built with it (several times faster); PyYAML's safe constructors either way
SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_RATIO_LOW = 400_000
_RATIO_HIGH = 4_000_000
_NON_STRING_SIZES = {"tag:yaml.org,2002:null": 4, "tag:yaml.org,2002:bool": 5}


class YAMLError(ValueError):
    """A document that does not parse, or whose expansion is refused; the message says which."""


class ExcessiveAliasing(YAMLError):
    """More of the document comes from aliases than go-yaml allows."""

    def __init__(self) -> None:
        super().__init__("yaml: document contains excessive aliasing")


class TooLarge(YAMLError):
    """The decoded document would be larger than the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"yaml: the decoded document is larger than {limit} bytes")
        self.limit = limit


def load(text: str | bytes, *, max_size: int, loader: Any = SAFE_LOADER) -> Any:
    """The one document of `text` (None when empty), as a tree of plain values, built by `loader` (a PyYAML
    loader class). Raises YAMLError (a ValueError) when it does not parse or expands beyond the bounds."""
    try:
        parser = _expanding(loader)(text)
        try:
            node = parser.get_single_node()
            if node is None:
                return None
            if _may_alias(text):
                _check_expansion(node, max_size)
            return parser.construct_document(node)
        finally:
            parser.dispose()
    except yaml.YAMLError as exc:
        raise YAMLError(str(exc)) from None
    except RecursionError:
        raise YAMLError("yaml: the document is nested too deeply") from None


def allowed_alias_ratio(decodes: int) -> float:
    """go-yaml's share of decoded nodes that may come from aliases, for a document of `decodes` nodes."""
    if decodes <= _RATIO_LOW:
        return 0.99
    if decodes >= _RATIO_HIGH:
        return 0.10
    return 0.99 - 0.89 * (decodes - _RATIO_LOW) / (_RATIO_HIGH - _RATIO_LOW)


def _may_alias(text: str | bytes) -> bool:
    """Aliases start with `*`: without one, nothing expands and the graph is a tree of the input's size."""
    return ("*" in text) if isinstance(text, str) else (b"*" in text)


@cache
def _expanding(loader: Any) -> Any:
    """`loader`, constructing an aliased node anew at each place (a tree) instead of sharing one object."""

    class Expanding(loader):  # type: ignore[misc]
        def construct_object(self, node: Node, deep: bool = False) -> Any:
            self.constructed_objects.pop(node, None)
            return super().construct_object(node, deep)

    return Expanding


class _Budget:
    """go-yaml's counters: every node decoded, and those decoded through an alias."""

    def __init__(self) -> None:
        self.decodes = 1  # the document node
        self.aliased = 0

    def spend(self, decodes: int, aliased: int) -> None:
        # Within one alias both counters grow together, so the ratio only rises while the allowed ratio
        # only falls: checking after the whole alias decides exactly as go-yaml's check after each node.
        self.decodes += decodes
        self.aliased += aliased
        if (self.aliased > 100 and self.decodes > 1000
                and self.aliased / self.decodes > allowed_alias_ratio(self.decodes)):
            raise ExcessiveAliasing


class _Frame:
    """A node being measured: what decoding it once costs, and its size as JSON, so far."""

    __slots__ = ("children", "decodes", "node", "size")

    def __init__(self, node: Node) -> None:
        self.node = node
        self.children = _children(node)
        self.decodes = 1
        self.size = _scalar_size(node) if isinstance(node, ScalarNode) else 2


def _check_expansion(root: Node, max_size: int) -> None:
    """Walks the graph in document order, each node once: the first visit of a node is its definition,
    later visits are aliases, which cost what decoding the node cost (measured once, kept by identity)."""
    budget = _Budget()
    measured: dict[int, tuple[int, int]] = {}  # id(node) → (decodes, size) of one expansion
    open_nodes: set[int] = set()
    budget.spend(1, 0)
    stack = [_Frame(root)]
    open_nodes.add(id(root))
    while stack:
        frame = stack[-1]
        child = next(frame.children, None)
        if child is None:
            stack.pop()
            open_nodes.discard(id(frame.node))
            measured[id(frame.node)] = (frame.decodes, frame.size)
            if stack:
                _add(stack[-1], frame.decodes, frame.size, max_size)
            continue
        key = id(child)
        if key in open_nodes:
            line = child.start_mark.line + 1 if child.start_mark else 0
            raise YAMLError(f"yaml: anchor value contains itself (line {line})")
        if key in measured:  # an alias: one alias node, then its anchor's nodes again
            decodes, size = measured[key]
            budget.spend(1 + decodes, decodes)
            _add(frame, 1 + decodes, size, max_size)
            continue
        budget.spend(1, 0)
        open_nodes.add(key)
        stack.append(_Frame(child))


def _add(frame: _Frame, decodes: int, size: int, max_size: int) -> None:
    frame.decodes += decodes
    frame.size += size + 1  # and a `,` or `:`
    if frame.size > max_size:
        raise TooLarge(max_size)


def _children(node: Node) -> Iterator[Node]:
    if isinstance(node, MappingNode):
        for key, value in node.value:
            yield key
            yield value
    elif not isinstance(node, ScalarNode):
        yield from node.value


def _scalar_size(node: ScalarNode) -> int:
    """About the scalar's length as JSON: strings quoted, null and booleans as words, numbers as written."""
    if node.tag == "tag:yaml.org,2002:str":
        return len(node.value) + 2
    return _NON_STRING_SIZES.get(node.tag, len(node.value))
