"""The scheduler as a pure function: a Placement's spec, the clusters of the inventory and what is chosen now in,
the ordered choice (a reason per cluster) and how many clusters each rule filtered out.

Filters, in order: not in a bound ClusterSet, unhealthy (`ControlPlaneHealthy` not True), malformed taints, a
`NoSelect` taint not tolerated, no predicate holds, missing the topology value of a `DoNotSchedule` spread. Then
each candidate's score is the sum of weight * score, every prioritizer scoring in [-100, 100] (OCM's scale),
and a cluster with an untolerated `PreferNoSelect` taint ranks after every other (so it is chosen only when
needed, whatever the weights). Candidates are taken best first (ties: namespace/name);
spread constraints take the least loaded topology value first, and `DoNotSchedule` never lets a value exceed
`maxSkew` over the least loaded value present among the candidates. The same inputs always give the same output,
so an unchanged inventory rewrites nothing.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import compress, count, islice, repeat
from operator import add, itemgetter
from typing import Any

from clusterset.api.inventory import CONTROL_PLANE_HEALTHY
from clusterset.api.labels import Requirement, Selector, SelectorError, from_object
from clusterset.api.objects import annotations_of, condition_true, labels, meta, status
from clusterset.api.placement import NO_SELECT, PREFER_NO_SELECT, TAINTS_ANNOTATION
from clusterset.placement.taints import Taint, TaintError, parse_annotation

Ref = tuple[str, str]  # a ClusterProfile's (namespace, name)
STEADY, BALANCE, PROPERTY = "Steady", "Balance", "Property"
DEFAULT_PRIORITIZERS = ((STEADY, "", 1), (BALANCE, "", 1))  # OCM's Additive defaults
LABEL, DO_NOT_SCHEDULE = "Label", "DoNotSchedule"
_PROPERTY_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!", "Gt": "gt", "Lt": "lt"}


class Misconfigured(ValueError):
    """A Placement spec the scheduler cannot use; the message names the field and the fix."""


@dataclass(frozen=True)
class Cluster:
    """What the scheduler knows of one ClusterProfile."""

    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    properties: Mapping[str, str] = field(default_factory=dict)
    healthy: bool = True
    taints: tuple[Taint, ...] = ()
    taint_problem: str | None = None  # a malformed annotation: the cluster cannot be chosen
    ref: Ref = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ref", (self.namespace, self.name))


def cluster_of(profile: dict[str, Any]) -> Cluster:
    """A ClusterProfile as the scheduler sees it."""
    m, st = meta(profile), status(profile)
    healthy = condition_true(st.get("conditions"), CONTROL_PLANE_HEALTHY)
    properties = {str(p["name"]): str(p.get("value", "")) for p in st.get("properties") or []
                  if isinstance(p, dict) and isinstance(p.get("name"), str)}
    try:
        taints, problem = parse_annotation(annotations_of(profile).get(TAINTS_ANNOTATION)), None
    except TaintError as exc:
        taints, problem = (), str(exc)
    return Cluster(str(m.get("namespace") or ""), str(m.get("name") or ""), dict(labels(profile)), properties,
                   healthy, taints, problem)


@dataclass(frozen=True)
class Spread:
    key: str
    by_label: bool
    max_skew: int
    required: bool  # DoNotSchedule

    def value(self, cluster: Cluster) -> str | None:
        return (cluster.labels if self.by_label else cluster.properties).get(self.key)

    def __str__(self) -> str:
        return f"{'label' if self.by_label else 'property'} {self.key}"


@dataclass(frozen=True)
class Toleration:
    key: str
    operator: str
    value: str
    effect: str

    def tolerates(self, taint: Taint) -> bool:
        if self.effect and self.effect != taint.effect:
            return False
        if self.operator == "Exists":
            return not self.key or self.key == taint.key
        return self.key == taint.key and self.value == taint.value


@dataclass(frozen=True)
class Policy:
    """A Placement's spec, checked and compiled."""

    number: int | None = None
    predicates: tuple[tuple[Selector | None, Selector | None], ...] = ()  # (labels, properties); None: any
    prioritizers: tuple[tuple[str, str, int], ...] = DEFAULT_PRIORITIZERS  # (type, property, weight)
    spread: tuple[Spread, ...] = ()
    tolerations: tuple[Toleration, ...] = ()

    @property
    def filter_key(self) -> tuple[Any, ...]:
        """What `qualify` reads of the policy."""
        return (self.predicates, self.tolerations, tuple(s for s in self.spread if s.required))


def _property_selector(selector: Any, where: str) -> Selector:
    if not isinstance(selector, dict):
        raise Misconfigured(f"{where} must be an object with matchExpressions")
    reqs = []
    for j, expr in enumerate(selector.get("matchExpressions") or []):
        at = f"{where}.matchExpressions[{j}]"
        name, op, values = expr.get("name"), expr.get("operator"), expr.get("values") or []
        if not isinstance(name, str) or not name:
            raise Misconfigured(f"{at}.name: a property name is required")
        if op not in _PROPERTY_OPS:
            raise Misconfigured(f"{at}.operator: {op!r} is not one of {', '.join(_PROPERTY_OPS)}")
        if op in ("In", "NotIn") and not values:
            raise Misconfigured(f"{at}.values: {op} needs at least one value")
        if op in ("Exists", "DoesNotExist") and values:
            raise Misconfigured(f"{at}.values: {op} takes no values")
        if op in ("Gt", "Lt") and (len(values) != 1 or not _is_int(values[0])):
            raise Misconfigured(f"{at}.values: {op} needs exactly one integer value, got {values!r}")
        reqs.append(Requirement(name, _PROPERTY_OPS[op], tuple(str(v) for v in values)))
    return Selector(tuple(reqs))


def _is_int(value: Any) -> bool:
    try:
        int(str(value))
    except ValueError:
        return False
    return True


def compile_policy(spec: Mapping[str, Any]) -> Policy:
    """Checks a Placement's spec; raises Misconfigured naming the field. (The CRD's schema refuses most bad input
    already: this catches what a schema cannot say.)"""
    number = spec.get("numberOfClusters")
    predicates = []
    for i, predicate in enumerate(spec.get("predicates") or []):
        where = f"spec.predicates[{i}]"
        try:
            label = from_object(predicate.get("labelSelector") or {})
        except SelectorError as exc:
            raise Misconfigured(f"{where}.labelSelector: {exc}") from None
        props = _property_selector(predicate.get("propertySelector") or {}, f"{where}.propertySelector")
        predicates.append((None if label.empty else label.prepared(), None if props.empty else props.prepared()))
    prioritizers: tuple[tuple[str, str, int], ...] = DEFAULT_PRIORITIZERS
    if spec.get("prioritizers") is not None:
        chosen = []
        for i, p in enumerate(spec["prioritizers"]):
            kind, prop, weight = p.get("type"), p.get("property") or "", p.get("weight", 1)
            if kind not in (STEADY, BALANCE, PROPERTY):
                raise Misconfigured(f"spec.prioritizers[{i}].type: {kind!r} is not Property, Balance or Steady")
            if kind == PROPERTY and not prop:
                raise Misconfigured(f"spec.prioritizers[{i}].property: type Property needs the property to score by")
            chosen.append((str(kind), str(prop), int(weight)))
        prioritizers = tuple(chosen)
    spread = tuple(Spread(str(s.get("topologyKey")), s.get("topologyKeyType", LABEL) == LABEL,
                          int(s.get("maxSkew", 1)), s.get("whenUnsatisfiable") == DO_NOT_SCHEDULE)
                   for s in spec.get("spreadConstraints") or [])
    tolerations = tuple(Toleration(str(t.get("key") or ""), str(t.get("operator") or "Equal"),
                                   str(t.get("value") or ""), str(t.get("effect") or ""))
                        for t in spec.get("tolerations") or [])
    for i, t in enumerate(tolerations):
        if t.operator == "Exists" and t.value:
            raise Misconfigured(f"spec.tolerations[{i}].value: must be empty when operator is Exists")
        if t.operator == "Equal" and not t.key:
            raise Misconfigured(f"spec.tolerations[{i}].key: operator Equal needs a key (or use Exists)")
    return Policy(number if isinstance(number, int) else None, tuple(predicates), prioritizers, spread, tolerations)


@dataclass(frozen=True)
class Decision:
    ref: Ref
    reason: str
    score: int


@dataclass
class Outcome:
    chosen: list[Decision]  # ordered by namespace/name
    requested: int | None  # numberOfClusters (None: every cluster that qualifies)
    candidates: int  # clusters that passed every filter
    filtered: dict[str, int]  # rule → clusters it filtered out, in the order the rules apply

    @property
    def refs(self) -> list[Ref]:
        return [d.ref for d in self.chosen]

    @property
    def satisfied(self) -> bool:
        held_back = any(rule.startswith("held back") for rule in self.filtered)
        enough = len(self.chosen) >= self.requested if self.requested is not None else not held_back
        return enough and bool(self.chosen or self.requested == 0)

    def summary(self) -> str:
        """`3 of 5 requested: 1 unhealthy, 1 tainted maintenance:NoSelect, 2 not matching any predicate`."""
        asked = f"{self.requested} requested" if self.requested is not None else f"{self.candidates} qualifying"
        head = f"{len(self.chosen)} of {asked}"
        why = ", ".join(f"{n} {rule}" for rule, n in self.filtered.items())
        return f"{head}: {why}" if why else head


class ChoiceLoad:
    """How many Placements choose each cluster, Balance's input: a slot per cluster in one list, so that the counts
    of a Placement's candidates are read in one C call (a dict lookup per candidate, 500 of them per scheduling,
    was most of a scheduling's CPU in the hub)."""

    def __init__(self) -> None:
        self._slots: dict[Ref, int] = {}
        self._values: list[int] = []
        self._readers: dict[int, tuple[tuple[Ref, ...], Callable[[list[int]], Any]]] = {}  # by id() of the refs

    def add(self, ref: Ref, delta: int) -> None:
        self._values[self._slot(ref)] += delta

    def get(self, ref: Ref, default: int = 0) -> int:
        slot = self._slots.get(ref)
        return default if slot is None else self._values[slot]

    def counts(self, refs: tuple[Ref, ...]) -> list[int]:
        """The counts of `refs`, in their order. The slots are looked up once per tuple of refs (a `Qualified`'s,
        kept while the inventory does not change)."""
        found = self._readers.get(id(refs))
        if found is None or found[0] is not refs:
            if len(self._readers) >= READERS_KEPT:
                self._readers.clear()
            slots = [self._slot(ref) for ref in refs]
            reader = itemgetter(*slots) if len(slots) > 1 else (lambda values: [values[i] for i in slots])
            found = self._readers[id(refs)] = (refs, reader)
        return list(found[1](self._values))

    def _slot(self, ref: Ref) -> int:
        slot = self._slots.get(ref)
        if slot is None:
            slot = self._slots[ref] = len(self._values)
            self._values.append(0)
        return slot


READERS_KEPT = 64


def _untolerated(taints: Iterable[Taint], effect: str, tolerations: tuple[Toleration, ...]) -> Taint | None:
    for taint in taints:
        if taint.effect == effect and not any(t.tolerates(taint) for t in tolerations):
            return taint
    return None


def _scores(policy: Policy, qualified: Qualified, current: frozenset[Ref],
            load: Mapping[Ref, int] | ChoiceLoad) -> list[int]:
    """Every candidate's score, in the candidates' order. This runs for every scheduling over every candidate, so
    each prioritizer is a few passes in C over the candidates: Balance reads the load by the candidates' refs and
    scores each count once, Steady adds to the current choice by position."""
    candidates, refs = qualified.candidates, qualified.refs
    chosen_now = [i for ref in current if (i := qualified.position.get(ref)) is not None]
    totals: list[int] | None = None
    steady = 0
    for kind, prop, weight in policy.prioritizers:
        if kind == STEADY:
            steady += 100 * weight
            continue
        if kind == BALANCE:  # the other Placements choosing each cluster: fewer scores higher
            counts = load.counts(refs) if isinstance(load, ChoiceLoad) else list(map(load.get, refs, repeat(0)))
            for i in chosen_now:
                counts[i] -= 1
            most = max(counts, default=0)
            score_of = {n: weight * (100 - (200 * n) // most if most else 100) for n in set(counts)}
            scores = list(map(score_of.__getitem__, counts))
        else:  # Property: integer values normalized over the candidates to -100..100; other values score 0
            values = [_int_or_none(c.properties.get(prop)) for c in candidates]
            ints = [v for v in values if v is not None]
            low, high = (min(ints), max(ints)) if ints else (0, 0)
            scores = [0 if v is None or high == low else weight * ((200 * (v - low)) // (high - low) - 100)
                      for v in values]
        totals = scores if totals is None else list(map(add, totals, scores))
    if totals is None:
        totals = [0] * len(candidates)
    for i in chosen_now:
        totals[i] += steady
    return totals


def _best(scores: list[int], limit: int) -> list[int]:
    """The positions of the `limit` best candidates (highest score, then namespace/name), when no taint or spread
    constraint orders them. Candidates are in namespace/name order, so of the candidates at the cut's score the
    first positions win; each pass over the candidates is in C."""
    if limit >= len(scores):
        return list(range(len(scores)))
    if limit <= 0:
        return []
    tally = Counter(scores)
    above = 0
    for cutoff in sorted(tally, reverse=True):
        if above + tally[cutoff] >= limit:
            break
        above += tally[cutoff]
    higher = compress(count(), map(cutoff.__lt__, scores))
    at_the_cut = islice(compress(count(), map(cutoff.__eq__, scores)), limit - above)
    return [*higher, *at_the_cut]


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class Qualified:
    """The clusters that passed every filter (in namespace/name order), why each qualified, and how many clusters
    each rule filtered out. A function of the inventory, the bound sets and `Policy.filter_key` only, so a caller
    may keep it for Placements that filter alike."""

    candidates: tuple[Cluster, ...]
    reasons: Mapping[Ref, str]
    filtered: Mapping[str, int]
    refs: tuple[Ref, ...] = field(init=False, compare=False)
    position: Mapping[Ref, int] = field(init=False, compare=False)  # a candidate's index by its ref
    tainted: bool = field(init=False, compare=False)  # a candidate has taints (PreferNoSelect may rank it last)

    def __post_init__(self) -> None:
        refs = tuple(c.ref for c in self.candidates)
        object.__setattr__(self, "refs", refs)
        object.__setattr__(self, "position", {ref: i for i, ref in enumerate(refs)})
        object.__setattr__(self, "tainted", any(c.taints for c in self.candidates))


def qualify(policy: Policy, clusters: Iterable[Cluster], bound: frozenset[str]) -> Qualified:
    """Applies the filters. `bound`: the namespaces of the ClusterSets this Placement may choose from."""
    filtered: dict[str, int] = {}

    def out(rule: str) -> None:
        filtered[rule] = filtered.get(rule, 0) + 1

    candidates: list[Cluster] = []
    reasons: dict[Ref, str] = {}
    required = [s for s in policy.spread if s.required]
    predicates = policy.predicates
    for c in clusters:
        if c.namespace not in bound:
            out("not in a bound ClusterSet")
            continue
        if not c.healthy:
            out("unhealthy")
            continue
        if c.taint_problem is not None:
            out(f"with malformed taints ({c.namespace}/{c.name}: {c.taint_problem})")
            continue
        if c.taints and (taint := _untolerated(c.taints, NO_SELECT, policy.tolerations)) is not None:
            out(f"tainted {taint}")
            continue
        if predicates:
            for i, (lab, props) in enumerate(predicates):
                if (lab is None or lab.matches(c.labels)) and (props is None or props.matches(c.properties)):
                    reasons[c.ref] = _PREDICATE_REASONS[i] if i < len(_PREDICATE_REASONS) else f"predicate {i}"
                    break
            else:
                out("not matching any predicate")
                continue
        else:
            reasons[c.ref] = "no predicates"
        if required and (missing := next((s for s in required if s.value(c) is None), None)) is not None:
            out(f"without the spread's {missing}")
            continue
        candidates.append(c)
    candidates.sort(key=_ref_of)  # a cache lists in this order already: a pass that finds it sorted
    return Qualified(tuple(candidates), reasons, dict(sorted(filtered.items(), key=lambda item: _rank(item[0]))))


def _ref_of(cluster: Cluster) -> Ref:
    return cluster.ref


_PREDICATE_REASONS = tuple(f"predicate {i}" for i in range(16))


def choose(policy: Policy, qualified: Qualified, current: frozenset[Ref] = frozenset(),
           load: Mapping[Ref, int] | ChoiceLoad | None = None) -> Outcome:
    """Scores the qualified clusters and takes the best. `current`: what the Placement has chosen now (Steady);
    `load`: how many Placements choose each cluster now, this one included (Balance counts the others)."""
    candidates = qualified.candidates
    scores = _scores(policy, qualified, current, load or {})
    limit = len(candidates) if policy.number is None else min(policy.number, len(candidates))
    filtered = dict(qualified.filtered)
    if not policy.spread and not qualified.tainted:
        best = _best(scores, limit)
    else:
        tolerations = policy.tolerations
        # best first: clusters with an untolerated PreferNoSelect taint last, then by score, then by namespace/name
        ranked = [(bool(c.taints) and _untolerated(c.taints, PREFER_NO_SELECT, tolerations) is not None, -s, c.ref,
                   i) for i, (c, s) in enumerate(zip(candidates, scores, strict=True))]
        if policy.spread:
            ranked.sort()
            picked = set(_spread(policy.spread, [candidates[r[3]] for r in ranked], limit))
            if len(picked) < limit:
                filtered["held back by DoNotSchedule spread"] = limit - len(picked)
            best = [r[3] for r in ranked if r[2] in picked]
        else:
            best = [r[3] for r in (heapq.nsmallest(limit, ranked) if limit < len(ranked) else ranked)]
    chosen = sorted((Decision(candidates[i].ref, qualified.reasons[candidates[i].ref], scores[i]) for i in best),
                    key=lambda d: d.ref)
    return Outcome(chosen, policy.number, len(candidates), filtered)


def schedule(policy: Policy, clusters: Iterable[Cluster], bound: frozenset[str], current: frozenset[Ref] = frozenset(),
             load: Mapping[Ref, int] | ChoiceLoad | None = None) -> Outcome:
    """Chooses clusters: `qualify`, then `choose`."""
    return choose(policy, qualify(policy, clusters, bound), current, load)


_RULES = ("not in a bound", "unhealthy", "with malformed", "tainted", "not matching", "without the spread", "held back")


def _rank(rule: str) -> int:
    """Where a rule's count goes in the summary: in the order the filters apply."""
    return next(i for i, prefix in enumerate(_RULES) if rule.startswith(prefix))


def _spread(constraints: tuple[Spread, ...], ranked: list[Cluster], limit: int) -> list[Ref]:
    """Takes clusters best first, the least loaded topology values first; `DoNotSchedule` constraints are never
    exceeded beyond maxSkew over the least loaded value present among the candidates."""
    values = [[s.value(c) or "" for s in constraints] for c in ranked]
    counts: list[dict[str, int]] = [{} for _ in constraints]
    for row in values:
        for j, v in enumerate(row):
            counts[j].setdefault(v, 0)
    left = list(range(len(ranked)))
    picked: list[Ref] = []
    while left and len(picked) < limit:
        floors = [min(cs.values()) for cs in counts]
        best: tuple[int, int] | None = None  # (load, position in `left`)
        for pos, i in enumerate(left):
            row = values[i]
            if any(s.required and counts[j][row[j]] + 1 - floors[j] > s.max_skew for j, s in enumerate(constraints)):
                continue
            load = sum(counts[j][row[j]] for j in range(len(constraints)))
            if best is None or load < best[0]:
                best = (load, pos)
                if load == 0:
                    break
        if best is None:
            break
        i = left.pop(best[1])
        for j in range(len(constraints)):
            counts[j][values[i][j]] += 1
        picked.append(ranked[i].ref)
    return picked
