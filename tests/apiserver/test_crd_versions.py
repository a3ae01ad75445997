"""A CRD with two served versions shares one storage: each version serves every object in its own apiVersion."""

from __future__ import annotations

import threading

from kubernetes import watch

from clusterset.testing import ClusterInfo
from tests.helpers import custom, wait_until
from tests.inventory.test_about_admission import prop


def test_objects_are_served_in_the_requested_version(member: ClusterInfo) -> None:
    api = custom(member)
    api.create_cluster_custom_object("about.k8s.io", "v1beta1", "clusterproperties", prop("zone.example.com", "a"))
    alpha = api.get_cluster_custom_object("about.k8s.io", "v1alpha1", "clusterproperties", "zone.example.com")
    assert alpha["apiVersion"] == "about.k8s.io/v1alpha1"
    listed = api.list_cluster_custom_object("about.k8s.io", "v1alpha1", "clusterproperties")
    assert [i["apiVersion"] for i in listed["items"]] == ["about.k8s.io/v1alpha1"]

    seen: list[str] = []
    rv = listed["metadata"]["resourceVersion"]

    def follow() -> None:
        for ev in watch.Watch().stream(api.list_cluster_custom_object, "about.k8s.io", "v1beta1",
                                       "clusterproperties", resource_version=rv, timeout_seconds=10):
            seen.append(ev["object"]["apiVersion"])
            return

    t = threading.Thread(target=follow)
    t.start()
    # written through the alpha version, watched through the beta one
    patched = api.patch_cluster_custom_object("about.k8s.io", "v1alpha1", "clusterproperties", "zone.example.com",
                                              {"spec": {"value": "b"}})
    assert patched["apiVersion"] == "about.k8s.io/v1alpha1" and patched["spec"]["value"] == "b"
    t.join(15)
    wait_until(lambda: seen)
    assert seen == ["about.k8s.io/v1beta1"]
