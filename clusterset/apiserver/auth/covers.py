"""Whether the rules a user holds cover the rules it grants, and which it does not hold, in upstream's words.

k8s.io/component-helpers' `Covers`: every rule granted is broken down into single (group, resource, verb,
name) and (URL, verb) rules, each of which must be covered by one rule held (`ruleCovers`); what is not
covered is compacted (kube-apiserver's `CompactRules`: one line per group and resource) and described as
`CompactString` does, for the escalation check's 403.

One departure, for a server that serves many clusters from one event loop: upstream expands every
combination of a granted rule's lists, so a few kilobytes of rule can take minutes and gigabytes. Here a rule
held that covers a granted rule whole settles it without expanding it, and expansion stops at
`MAX_COMBINATIONS` (real roles have at most a few thousand): beyond it the grant is refused as too broad to check.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from clusterset.apiserver.auth.authz import go_quote_list

ALL = "*"
MAX_COMBINATIONS = 10_000

Rule = dict[str, Any]


def _strings(rule: Rule, key: str) -> list[str]:
    """A rule's list; anything that is not a string matches nothing (stored rules were not always typed)."""
    values = rule.get(key)
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


@dataclass(frozen=True, slots=True)
class _Held:
    """A rule held, as sets (a rule is consulted once per granted combination)."""

    verbs: frozenset[str]
    groups: frozenset[str]
    resources: frozenset[str]
    names: frozenset[str]
    urls: tuple[str, ...]

    @classmethod
    def of(cls, rule: Rule) -> _Held:
        return cls(frozenset(_strings(rule, "verbs")), frozenset(_strings(rule, "apiGroups")),
                   frozenset(_strings(rule, "resources")), frozenset(_strings(rule, "resourceNames")),
                   tuple(_strings(rule, "nonResourceURLs")))

    def verb(self, verb: str) -> bool:
        return ALL in self.verbs or verb in self.verbs

    def group(self, group: str) -> bool:
        return ALL in self.groups or group in self.groups

    def resource(self, resource: str) -> bool:
        """resourceCoversAll: `*`, the resource itself, or `*/<subresource>` for a subresource."""
        if ALL in self.resources or resource in self.resources:
            return True
        _, slash, subresource = resource.partition("/")
        return bool(slash) and f"*/{subresource}" in self.resources

    def name(self, name: str | None) -> bool:
        """A rule without names covers every name; a rule with names covers only those (never "any name")."""
        return not self.names or (name is not None and name in self.names)

    def url(self, url: str) -> bool:
        return any(held == url or (held.endswith(ALL) and url.startswith(held.rstrip(ALL))) for held in self.urls)

    def covers_resource(self, group: str, resource: str, verb: str, name: str | None) -> bool:
        return self.verb(verb) and self.group(group) and self.resource(resource) and self.name(name)

    def covers_url(self, url: str, verb: str) -> bool:
        return self.verb(verb) and self.url(url) and not self.names

    def covers_whole(self, rule: Rule) -> bool:
        """Whether this rule alone covers every combination of `rule` (decided without expanding it)."""
        if not all(self.verb(v) for v in _strings(rule, "verbs")):
            return False
        if not all(self.url(u) for u in _strings(rule, "nonResourceURLs")) or \
                (self.names and _strings(rule, "nonResourceURLs")):
            return False
        groups, resources = _strings(rule, "apiGroups"), _strings(rule, "resources")
        if not groups or not resources:  # no resource combination to cover
            return True
        names: list[str | None] = [*_strings(rule, "resourceNames")] or [None]
        return all(self.group(g) for g in groups) and all(self.resource(r) for r in resources) \
            and all(self.name(n) for n in names)


class TooBroad(Exception):
    """The rules granted expand to more combinations than are checked."""


def combinations(rule: Rule) -> int:
    verbs = len(_strings(rule, "verbs"))
    names = max(1, len(_strings(rule, "resourceNames")))
    resource = len(_strings(rule, "apiGroups")) * len(_strings(rule, "resources")) * verbs * names
    return resource + len(_strings(rule, "nonResourceURLs")) * verbs


def _breakdown(rule: Rule) -> Iterator[Rule]:
    """BreakdownRule: one rule per group, resource, verb (and name), then one per URL and verb."""
    names: list[str | None] = list(_strings(rule, "resourceNames")) or [None]
    verbs = _strings(rule, "verbs")
    for group in _strings(rule, "apiGroups"):
        for resource in _strings(rule, "resources"):
            for verb in verbs:
                for name in names:
                    sub: Rule = {"apiGroups": [group], "resources": [resource], "verbs": [verb]}
                    if name is not None:
                        sub["resourceNames"] = [name]
                    yield sub
    for url in _strings(rule, "nonResourceURLs"):
        for verb in verbs:
            yield {"nonResourceURLs": [url], "verbs": [verb]}


def uncovered(held_rules: list[Rule], granted: list[Rule]) -> list[Rule]:
    """The single-combination rules of `granted` that no rule of `held_rules` covers (Covers); raises TooBroad."""
    held = [_Held.of(r) for r in held_rules]
    partial = [r for r in granted if not any(h.covers_whole(r) for h in held)]
    if sum(combinations(r) for r in partial) > MAX_COMBINATIONS:
        raise TooBroad
    missing = []
    for rule in partial:
        verbs = _strings(rule, "verbs")
        candidates = [h for h in held if any(h.verb(v) for v in verbs)]  # most rules held share no verb
        for sub in _breakdown(rule):
            verb = sub["verbs"][0]
            if "nonResourceURLs" in sub:
                covered = any(h.covers_url(sub["nonResourceURLs"][0], verb) for h in candidates)
            else:
                name = sub["resourceNames"][0] if "resourceNames" in sub else None
                covered = any(h.covers_resource(sub["apiGroups"][0], sub["resources"][0], verb, name)
                              for h in candidates)
            if not covered:
                missing.append(sub)
    return missing


def compact(rules: list[Rule]) -> list[Rule]:
    """CompactRules: rules of one group, one resource and at most one name (nothing else) merge their verbs."""
    merged: dict[tuple[str, str, str | None], Rule] = {}
    out: list[Rule] = []
    for rule in rules:
        names = rule.get("resourceNames", [])
        if set(rule) <= {"apiGroups", "resources", "resourceNames", "verbs"} and len(names) <= 1 and \
                len(rule.get("apiGroups", [])) == len(rule.get("resources", [])) == 1:
            key = (rule["apiGroups"][0], rule["resources"][0], names[0] if names else None)
            if key in merged:
                merged[key]["verbs"] = [*merged[key]["verbs"], *rule["verbs"]]
                continue
            merged[key] = dict(rule)
            out.append(merged[key])
        else:
            out.append(rule)
    return out


def describe(rule: Rule) -> str:
    """CompactString: `{APIGroups:["apps"], Resources:["deployments"], Verbs:["get" "list"]}`."""
    parts = [f"{label}:{go_quote_list(rule[key])}" for label, key in (
        ("APIGroups", "apiGroups"), ("Resources", "resources"), ("NonResourceURLs", "nonResourceURLs"),
        ("ResourceNames", "resourceNames"), ("Verbs", "verbs")) if rule.get(key)]
    return "{" + ", ".join(parts) + "}"
