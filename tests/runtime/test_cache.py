"""Caches: lookups by key, namespace, label selector and custom indexes; selector grammar."""

from __future__ import annotations

from typing import Any

import pytest

from clusterset.api import labels
from clusterset.api.resources import CONFIG_MAPS
from clusterset.runtime.cache import Cache, ObjectKey, as_key


def cm(ns: str, name: str, rv: int, **lbls: str) -> dict[str, Any]:
    return {"metadata": {"namespace": ns, "name": name, "resourceVersion": str(rv), "labels": lbls},
            "data": {"owner": lbls.get("app", "")}}


def test_get_list_and_indexes_follow_updates_and_removals() -> None:
    cache = Cache(CONFIG_MAPS)
    cache.put(cm("a", "x", 1, app="web", tier="front"))
    cache.put(cm("a", "y", 2, app="db"))
    cache.put(cm("b", "x", 3, app="web"))
    cache.add_index("owner", lambda o: [o["data"]["owner"]] if o["data"]["owner"] else [])
    assert cache.get(("a", "x"))["metadata"]["resourceVersion"] == "1"  # type: ignore[index]
    assert cache.get("b/x") is cache.get(ObjectKey("b", "x"))
    assert cache.get("a/zzz") is None
    assert [o["metadata"]["name"] for o in cache.list(namespace="a")] == ["x", "y"]
    assert [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in cache.list(label_selector="app=web")] == [
        ("a", "x"), ("b", "x")]
    assert len(cache.list(label_selector={"app": "web", "tier": "front"})) == 1
    assert len(cache.list(label_selector="app in (web,db),tier!=front")) == 2
    assert len(cache.index("owner", "web")) == 2
    # a relabel moves the object between index entries
    cache.put(cm("a", "x", 4, app="db"))
    assert len(cache.index("owner", "web")) == 1
    assert len(cache.list(label_selector="app=db")) == 2
    assert cache.list(label_selector="tier") == []
    cache.remove(("a", "y"))
    assert [o["metadata"]["name"] for o in cache.list(namespace="a")] == ["x"]
    assert cache.index("owner", "db") == [cache.get("a/x")]
    with pytest.raises(KeyError):
        cache.index("missing", "v")


def test_keys() -> None:
    assert as_key("ns/name") == ObjectKey("ns", "name")
    assert as_key("cluster-scoped") == ObjectKey("", "cluster-scoped")
    assert str(ObjectKey("", "n")) == "n" and str(ObjectKey("a", "b")) == "a/b"
    assert ObjectKey("a", "b") == ("a", "b") and hash(ObjectKey("a", "b")) == hash(("a", "b"))


@pytest.mark.parametrize(("selector", "matching"), [
    ("", ["none", "web", "db", "web-canary"]),
    ("app=web", ["web", "web-canary"]),
    ("app==web", ["web", "web-canary"]),
    ("app!=web", ["none", "db"]),
    ("app in (web, db)", ["web", "db", "web-canary"]),
    ("app notin (web)", ["none", "db"]),
    ("canary", ["web-canary"]),
    ("!canary", ["none", "web", "db"]),
    ("app=web,!canary", ["web"]),
    ("app=", ["none"]) ,
])
def test_selector_grammar(selector: str, matching: list[str]) -> None:
    objects = {"none": {"app": ""}, "web": {"app": "web"}, "db": {"app": "db"},
               "web-canary": {"app": "web", "canary": "true"}}
    parsed = labels.selector_of(selector)
    assert [name for name, lbls in objects.items() if parsed.matches(lbls)] == matching


@pytest.mark.parametrize("bad", ["app in web", "a=b c", "x in (a"])
def test_malformed_selectors_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="unable to parse requirement"):
        labels.selector_of(bad)
