"""The pure scheduler and the taint grammar: filters in order with their counts, prioritizers, spread, taints."""

from __future__ import annotations

import random
from typing import Any

import pytest

from clusterset.placement.scheduler import (
    ChoiceLoad,
    Cluster,
    Misconfigured,
    Outcome,
    cluster_of,
    compile_policy,
    schedule,
)
from clusterset.placement.taints import (
    Taint,
    TaintError,
    apply_changes,
    format_annotation,
    parse_annotation,
    parse_change,
)

SET = "clusterset"
BOUND = frozenset({SET})


def fleet() -> list[Cluster]:
    """Five clusters: zones a/a/b/b/c, gpus 0/8/4/not-a-number/2, env prod/prod/dev/prod/dev."""
    rows = [("m1", "a", "0", "prod"), ("m2", "a", "8", "prod"), ("m3", "b", "4", "dev"), ("m4", "b", "many", "prod"),
            ("m5", "c", "2", "dev")]
    return [Cluster(SET, name, {"zone": zone, "env": env}, {"gpus": gpus, "region": f"r-{zone}"})
            for name, zone, gpus, env in rows]


def run(spec: dict[str, Any], clusters: list[Cluster] | None = None, **kw: Any) -> Outcome:
    return schedule(compile_policy(spec), clusters if clusters is not None else fleet(), BOUND, **kw)


def names(outcome: Outcome) -> list[str]:
    return [name for _, name in outcome.refs]


def test_every_healthy_bound_cluster_by_default_sorted_by_name() -> None:
    outcome = run({})
    assert names(outcome) == ["m1", "m2", "m3", "m4", "m5"]
    assert outcome.satisfied and outcome.filtered == {}
    assert {d.reason for d in outcome.chosen} == {"no predicates"}


def test_label_and_property_predicates_are_ored_and_each_ands_its_selectors() -> None:
    spec = {"predicates": [
        {"labelSelector": {"matchLabels": {"env": "prod"}},
         "propertySelector": {"matchExpressions": [{"name": "gpus", "operator": "Gt", "values": ["4"]}]}},
        {"propertySelector": {"matchExpressions": [{"name": "gpus", "operator": "Lt", "values": ["3"]},
                                                   {"name": "region", "operator": "In", "values": ["r-c"]}]}}]}
    outcome = run(spec)
    assert names(outcome) == ["m2", "m5"]  # m4's gpus is not an integer: Gt does not hold
    assert [d.reason for d in outcome.chosen] == ["predicate 0", "predicate 1"]
    assert outcome.filtered == {"not matching any predicate": 3}
    missing = run({"predicates": [{"propertySelector": {"matchExpressions": [
        {"name": "absent", "operator": "DoesNotExist"}]}}]})
    assert len(missing.chosen) == 5


def test_filters_count_each_rule_in_order() -> None:
    clusters = fleet()
    clusters[0] = Cluster(SET, "m1", clusters[0].labels, clusters[0].properties, healthy=False)
    clusters[1] = Cluster(SET, "m2", clusters[1].labels, clusters[1].properties,
                          taints=(Taint("maintenance", "NoSelect"),))
    clusters.append(Cluster("other-set", "x1", {"env": "prod"}))
    outcome = run({"numberOfClusters": 5, "predicates": [{"labelSelector": {"matchLabels": {"env": "dev"}}}]},
                  clusters)
    assert names(outcome) == ["m3", "m5"]
    assert not outcome.satisfied
    assert outcome.summary() == ("2 of 5 requested: 1 not in a bound ClusterSet, 1 unhealthy, "
                                 "1 tainted maintenance:NoSelect, 1 not matching any predicate")


def test_tolerations_and_prefer_no_select() -> None:
    clusters = fleet()
    clusters[0] = Cluster(SET, "m1", clusters[0].labels, clusters[0].properties,
                          taints=(Taint("maintenance", "NoSelect", "planned"),))
    clusters[1] = Cluster(SET, "m2", clusters[1].labels, clusters[1].properties,
                          taints=(Taint("spot", "PreferNoSelect"),))
    assert "m1" in names(run({"tolerations": [{"key": "maintenance", "operator": "Exists"}]}, clusters))
    assert "m1" in names(run({"tolerations": [{"key": "maintenance", "value": "planned"}]}, clusters))
    assert "m1" not in names(run({"tolerations": [{"key": "maintenance", "value": "other"}]}, clusters))
    assert "m1" not in names(run({"tolerations": [{"key": "maintenance", "operator": "Exists",
                                                   "effect": "PreferNoSelect"}]}, clusters))
    assert "m1" in names(run({"tolerations": [{"operator": "Exists"}]}, clusters))  # tolerates everything
    # PreferNoSelect: chosen only when needed
    assert "m2" not in names(run({"numberOfClusters": 3}, clusters))
    assert "m2" in names(run({"numberOfClusters": 4}, clusters))
    most_gpus = [{"type": "Property", "property": "gpus", "weight": 10}]  # m2 has the most: weights do not matter
    assert names(run({"numberOfClusters": 3, "prioritizers": most_gpus}, clusters)) == ["m3", "m4", "m5"]
    assert "m2" in names(run({"numberOfClusters": 1, "tolerations": [{"key": "spot", "operator": "Exists"}]},
                             clusters))
    malformed = Cluster(SET, "m3", taint_problem="annotation clusterset.io/taints is not JSON")
    outcome = run({}, [malformed])
    assert outcome.chosen == [] and not outcome.satisfied
    assert "clusterset/m3" in outcome.summary()


def test_property_prioritizer_normalizes_integers_and_scores_others_zero() -> None:
    spec = {"numberOfClusters": 2, "prioritizers": [{"type": "Property", "property": "gpus", "weight": 2}]}
    outcome = run(spec)
    assert names(outcome) == ["m2", "m3"]  # 8 and 4 gpus
    assert {d.ref[1]: d.score for d in outcome.chosen} == {"m2": 200, "m3": 0}
    fewest = run({**spec, "prioritizers": [{"type": "Property", "property": "gpus", "weight": -1}]})
    assert names(fewest) == ["m1", "m5"]  # 0 and 2 (m4's "many" scores 0, as m3's 4 does: -1 * 0)


def test_steady_keeps_current_choices_and_balance_prefers_less_used() -> None:
    current = frozenset({(SET, "m4"), (SET, "m5")})
    assert names(run({"numberOfClusters": 2}, current=current)) == ["m4", "m5"]
    load = {(SET, "m1"): 3, (SET, "m2"): 1}
    assert names(run({"numberOfClusters": 2, "prioritizers": [{"type": "Balance"}]},
                     load=load)) == ["m3", "m4"]
    # Steady outweighs Balance only when weighted so
    both = {"numberOfClusters": 1, "prioritizers": [{"type": "Balance", "weight": 1}, {"type": "Steady", "weight": 3}]}
    assert names(run(both, current=frozenset({(SET, "m1")}), load={(SET, "m1"): 4})) == ["m1"]
    # ties break by namespace/name
    assert names(run({"numberOfClusters": 1})) == ["m1"]


def test_spread_schedule_anyway_and_do_not_schedule() -> None:
    anyway = run({"numberOfClusters": 3, "spreadConstraints": [{"topologyKey": "zone"}]})
    assert names(anyway) == ["m1", "m3", "m5"]  # one per zone
    # DoNotSchedule: zone c has one cluster, so a and b may have at most 2 each (maxSkew 1 over c's 1)
    strict = {"spreadConstraints": [{"topologyKey": "zone", "maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"}]}
    assert names(run(strict)) == ["m1", "m2", "m3", "m4", "m5"]
    clusters = [*fleet(), Cluster(SET, "m6", {"zone": "a"}), Cluster(SET, "m7", {"env": "prod"})]
    outcome = run(strict, clusters)
    assert "m6" not in names(outcome) and "m7" not in names(outcome)
    assert outcome.filtered == {"without the spread's label zone": 1, "held back by DoNotSchedule spread": 1}
    assert not outcome.satisfied
    by_property = run({"numberOfClusters": 3, "spreadConstraints": [
        {"topologyKey": "region", "topologyKeyType": "Property", "whenUnsatisfiable": "DoNotSchedule"}]})
    assert names(by_property) == ["m1", "m3", "m5"]


def test_unchanged_inputs_give_the_same_outcome() -> None:
    spec = {"numberOfClusters": 3, "prioritizers": [{"type": "Balance"}, {"type": "Steady"}],
            "spreadConstraints": [{"topologyKey": "zone"}]}
    first = run(spec)
    assert run(spec, list(reversed(fleet()))) == first


@pytest.mark.parametrize(("spec", "message"), [
    ({"predicates": [{"propertySelector": {"matchExpressions": [{"name": "gpus", "operator": "Gt",
                                                                 "values": ["many"]}]}}]},
     "spec.predicates[0].propertySelector.matchExpressions[0].values: Gt needs exactly one integer value, "
     "got ['many']"),
    ({"predicates": [{"propertySelector": {"matchExpressions": [{"name": "gpus", "operator": "Gte"}]}}]},
     "spec.predicates[0].propertySelector.matchExpressions[0].operator: 'Gte' is not one of In, NotIn, Exists, "
     "DoesNotExist, Gt, Lt"),
    ({"predicates": [{"propertySelector": {"matchExpressions": [{"name": "gpus", "operator": "In"}]}}]},
     "spec.predicates[0].propertySelector.matchExpressions[0].values: In needs at least one value"),
    ({"predicates": [{"labelSelector": {"matchLabels": {"bad key!": "x"}}}]}, "spec.predicates[0].labelSelector: "),
    ({"prioritizers": [{"type": "Property"}]}, "spec.prioritizers[0].property: type Property needs the property"),
    ({"tolerations": [{"operator": "Equal", "value": "x"}]}, "spec.tolerations[0].key: operator Equal needs a key"),
])
def test_bad_specs_are_refused_naming_the_field(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(Misconfigured) as caught:
        compile_policy(spec)
    assert str(caught.value).startswith(message)


def test_a_profile_becomes_a_cluster() -> None:
    profile = {"metadata": {"name": "m1", "namespace": SET, "labels": {"env": "prod"},
                            "annotations": {"clusterset.io/taints": '[{"key":"k","effect":"NoSelect"}]'}},
               "status": {"conditions": [{"type": "ControlPlaneHealthy", "status": "True"}],
                          "properties": [{"name": "gpus", "value": "4"}]}}
    c = cluster_of(profile)
    assert (c.ref, c.labels, c.properties, c.healthy, c.taints) == (
        (SET, "m1"), {"env": "prod"}, {"gpus": "4"}, True, (Taint("k", "NoSelect"),))
    profile["metadata"]["annotations"]["clusterset.io/taints"] = '{"key": "k"}'
    assert cluster_of(profile).taint_problem == "annotation clusterset.io/taints must be a JSON list of " \
                                                "{key, value, effect}"
    profile["status"]["conditions"][0]["status"] = "Unknown"
    assert not cluster_of(profile).healthy


def test_taint_arguments_as_kubectl_taint() -> None:
    now = "2026-01-01T00:00:00Z"
    changes = [parse_change("maintenance=planned:NoSelect"), parse_change("spot:PreferNoSelect")]
    taints = apply_changes((), changes, now)
    assert format_annotation(taints) == ('[{"key":"maintenance","value":"planned","effect":"NoSelect",'
                                         '"timeAdded":"2026-01-01T00:00:00Z"},'
                                         '{"key":"spot","effect":"PreferNoSelect","timeAdded":"2026-01-01T00:00:00Z"}]')
    assert parse_annotation(format_annotation(taints)) == taints
    replaced = apply_changes(taints, [parse_change("maintenance=now:NoSelect")], now)
    assert [str(t) for t in replaced] == ["maintenance=now:NoSelect", "spot:PreferNoSelect"]
    assert apply_changes(replaced, [parse_change("maintenance:NoSelect-")], now) == (taints[1],)
    assert apply_changes(replaced, [parse_change("spot-")], now) == (replaced[0],)
    with pytest.raises(TaintError, match='taint "spot:NoSelect" not found'):
        apply_changes(replaced, [parse_change("spot:NoSelect-")], now)
    for bad, why in [("maintenance:NoSchedule", "unsupported taint effect 'NoSchedule'"),
                     ("maintenance", "it must be KEY[=VALUE]:EFFECT"), ("bad key:NoSelect", "name part must"),
                     ("k=bad value:NoSelect", "a valid label"), (":NoSelect", "a taint needs a key")]:
        with pytest.raises(TaintError) as caught:
            parse_change(bad)
        assert str(caught.value).startswith(f"invalid taint spec: {bad}, ") and why in str(caught.value)


def test_the_best_clusters_are_the_highest_scores_then_names_whatever_the_ties() -> None:
    """Without taints or spread the scheduler compares only the candidates near the cut: it must still choose what
    ranking every candidate by (score, namespace/name) chooses, with many ties and with none."""
    rng = random.Random(7)
    for trial in range(300):
        clusters = [Cluster(SET, f"c{rng.randrange(10_000):05d}-{i}", {}, {"gpus": str(rng.randrange(4))})
                    for i in range(rng.randrange(0, 40))]
        load = {c.ref: rng.randrange(3 if trial % 2 else 30) for c in clusters if rng.random() < 0.8}
        kept = ChoiceLoad()  # the controller's form of the same counts, every other trial
        for ref, n in load.items():
            kept.add(ref, n)
        current = frozenset(c.ref for c in rng.sample(clusters, min(len(clusters), rng.randrange(4))))
        number = rng.randrange(0, 8)
        spec: dict[str, Any] = {"numberOfClusters": number}
        if trial % 3 == 0:
            spec["prioritizers"] = [{"type": "Balance", "weight": 2}, {"type": "Property", "property": "gpus"},
                                    {"type": "Steady", "weight": 3}]
        given = kept if trial % 4 < 2 else load
        outcome = run(spec, clusters, current=current, load=given)
        everyone = run({**spec, "numberOfClusters": None}, clusters, current=current, load=given)
        assert {d.ref: d.score for d in everyone.chosen} == _reference_scores(spec, clusters, current, load)
        ranked = sorted(everyone.chosen, key=lambda d: (-d.score, d.ref))
        assert outcome.chosen == sorted(ranked[:number], key=lambda d: d.ref), (trial, spec)


def _reference_scores(spec: dict[str, Any], clusters: list[Cluster], current: frozenset[tuple[str, str]],
                      load: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    """OCM's additive scores, cluster by cluster: Steady 100 for a current choice, Balance 100 - 200 x (its
    count, itself excluded) / the highest count, Property normalized to -100..100 over the integer values."""
    totals = {c.ref: 0 for c in clusters}
    for p in spec.get("prioritizers") or [{"type": "Steady"}, {"type": "Balance"}]:
        weight = p.get("weight", 1)
        if p["type"] == "Steady":
            scores = {c.ref: 100 if c.ref in current else 0 for c in clusters}
        elif p["type"] == "Balance":
            counts = {c.ref: load.get(c.ref, 0) - (c.ref in current) for c in clusters}
            most = max(counts.values(), default=0)
            scores = {ref: 100 - (200 * n) // most if most else 100 for ref, n in counts.items()}
        else:
            values = {c.ref: int(c.properties[p["property"]]) for c in clusters}
            low, high = min(values.values(), default=0), max(values.values(), default=0)
            scores = {ref: 0 if high == low else (200 * (v - low)) // (high - low) - 100 for ref, v in values.items()}
        totals = {ref: totals[ref] + weight * scores[ref] for ref in totals}
    return totals


def test_choice_load_reads_counts_by_refs_in_their_order() -> None:
    load = ChoiceLoad()
    a, b, c = (SET, "a"), (SET, "b"), (SET, "c")
    load.add(b, 2)
    load.add(a, 1)
    load.add(b, -1)
    refs = (a, b, c)
    assert load.counts(refs) == [1, 1, 0] and load.counts((c,)) == [0] and load.counts(()) == []
    load.add(c, 5)  # a tuple's slots are kept; its counts are read afresh
    assert load.counts(refs) == [1, 1, 5] and load.get(c) == 5 and load.get((SET, "d")) == 0
