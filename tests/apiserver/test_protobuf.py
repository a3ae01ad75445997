"""Kubernetes protobuf request bodies (kubectl >= 1.32 sends them for typed creates) → JSON dicts.

Bodies are built here with a tiny protobuf writer the way gogo-protobuf writes them (non-pointer
fields always present, zero or not), plus a few bodies captured from a real kubectl 1.33. The
end-to-end test drives kubectl 1.32/1.33 against the embedded server.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from clusterset.apiserver.http import protobuf
from clusterset.apiserver.http.protobuf import _go_duration, decode_protobuf, supported_kinds
from clusterset.apiserver.meta.errors import StatusError

if TYPE_CHECKING:
    from clusterset.testing import ClusterInfo


# ---------------------------------------------------------------------------- a tiny protobuf writer
def varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative numbers are ten-byte two's complement varints, as Go writes them
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def vint(number: int, value: int) -> bytes:
    return tag(number, 0) + varint(value)


def blob(number: int, payload: bytes) -> bytes:
    return tag(number, 2) + varint(len(payload)) + payload


def text(number: int, value: str) -> bytes:
    return blob(number, value.encode())


def msg(number: int, *fields: bytes) -> bytes:
    return blob(number, b"".join(fields))


def double(number: int, value: float) -> bytes:
    return tag(number, 1) + struct.pack("<d", value)


def entry(number: int, key: str, value: bytes) -> bytes:
    """One map entry {1 key, 2 value}; `value` is an already encoded field 2."""
    return msg(number, text(1, key), value)


def str_map(number: int, items: dict[str, str]) -> bytes:
    return b"".join(entry(number, k, text(2, v)) for k, v in items.items())


def quantity(number: int, value: str) -> bytes:
    return msg(number, text(1, value))


def int_or_string(number: int, value: int | str) -> bytes:
    if isinstance(value, int):
        return msg(number, vint(1, 0), vint(2, value), text(3, ""))
    return msg(number, vint(1, 1), vint(2, 0), text(3, value))


def unknown(api_version: str, kind: str, raw: bytes) -> bytes:
    """The body client-go sends: magic, then runtime.Unknown {1 typeMeta, 2 raw, 3, 4}."""
    return b"k8s\x00" + msg(1, text(1, api_version), text(2, kind)) + blob(2, raw) + text(3, "") + text(4, "")


def object_meta(name: str, namespace: str = "", *, created: int | None = None, extra: bytes = b"") -> bytes:
    """ObjectMeta as gogo writes it: every non-pointer string/int present, zero or not."""
    return msg(
        1,
        text(1, name), text(2, ""), text(3, namespace), text(4, ""), text(5, ""), text(6, ""), vint(7, 0),
        msg(8, vint(1, created)) if created is not None else msg(8),
        extra,
    )


# ---------------------------------------------------------------------------- typed objects
def test_configmap_data_binary_data_and_gogo_zero_values() -> None:
    raw = (
        object_meta("cfg", "ns", extra=str_map(11, {"app": "web"}) + str_map(12, {"note": ""}))
        + str_map(2, {"a": "b", "empty": ""})
        + entry(3, "bin", blob(2, b"\x00\xffhi"))
        + entry(3, "nothing", blob(2, b""))
        + vint(4, 0)  # immutable is a *bool: an explicit false stays
    )
    assert decode_protobuf(unknown("v1", "ConfigMap", raw)) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "cfg",
            "namespace": "ns",
            "creationTimestamp": None,
            "labels": {"app": "web"},
            "annotations": {"note": ""},
        },
        "immutable": False,
        "data": {"a": "b", "empty": ""},
        "binaryData": {"bin": "AP9oaQ==", "nothing": ""},
    }


def test_keys_come_out_in_go_struct_order_not_wire_order() -> None:
    raw = vint(4, 1) + str_map(2, {"a": "b"}) + object_meta("cfg")
    assert list(decode_protobuf(unknown("v1", "ConfigMap", raw))) == [
        "apiVersion", "kind", "metadata", "immutable", "data",
    ]


def test_secret_bytes_are_base64() -> None:
    raw = (
        object_meta("s", "ns")
        + entry(2, "password", blob(2, b"s3cr3t"))
        + entry(2, "blob", blob(2, bytes(range(4))))
        + str_map(4, {"plain": "text"})
        + text(3, "Opaque")
    )
    body = decode_protobuf(unknown("v1", "Secret", raw))
    assert body["data"] == {"password": "czNjcjN0", "blob": "AAECAw=="}
    assert body["stringData"] == {"plain": "text"}
    assert body["type"] == "Opaque"


def test_deployment_nested_template_quantities_intorstring_time_and_inline_structs() -> None:
    container = msg(
        2,
        text(1, "web"), text(2, "nginx:1.27"), text(3, "nginx"), text(3, "-g"), text(5, ""),
        msg(6, text(1, "http"), vint(2, 0), vint(3, 8080), text(4, "TCP"), text(5, "")),
        msg(7, text(1, "MODE"), text(2, "prod")),
        msg(7, text(1, "POD"), msg(3, msg(1, text(1, "v1"), text(2, "metadata.name")))),
        msg(19, text(1, ""), msg(2, msg(1, text(1, "settings")), vint(2, 1))),
        msg(8, entry(1, "cpu", quantity(2, "500m")), entry(1, "memory", quantity(2, "128Mi")),
            entry(2, "cpu", quantity(2, "250m"))),
        msg(10, msg(1, msg(2, text(1, "/healthz"), int_or_string(2, "http"), text(3, ""), text(4, "HTTP"))),
            vint(2, 5), vint(3, 0), vint(4, 10), vint(5, 0), vint(6, 0)),
        msg(9, text(1, "config"), vint(2, 1), text(3, "/etc/web"), text(4, ""), text(6, "")),
        text(13, ""), text(14, "IfNotPresent"), vint(16, 0), vint(17, 0), vint(18, 0), text(20, ""),
    )
    volume = msg(1, text(1, "config"), msg(2, msg(19, msg(1, text(1, "settings")), vint(3, 420))))
    pod_spec = msg(2, volume, container, text(3, "Always"), text(6, "ClusterFirst"), vint(11, 0), vint(21, 0))
    template = msg(3, object_meta("", extra=str_map(11, {"app": "web"})), pod_spec)
    spec = msg(
        2,
        vint(1, 0),  # replicas is a *int32: zero is kept
        msg(2, str_map(1, {"app": "web"})),
        template,
        msg(4, text(1, "RollingUpdate"), msg(2, int_or_string(1, 1), int_or_string(2, "25%"))),
        vint(5, 0),  # minReadySeconds is a plain int32: zero is dropped
        vint(6, 3),
        vint(7, 0),
    )
    raw = object_meta("web", "prod", created=1714557600) + spec + msg(3)
    body = decode_protobuf(unknown("apps/v1", "Deployment", raw))
    assert body["metadata"] == {"name": "web", "namespace": "prod", "creationTimestamp": "2024-05-01T10:00:00Z"}
    assert body["status"] == {}
    spec_out = body["spec"]
    assert spec_out["replicas"] == 0
    assert "minReadySeconds" not in spec_out and "paused" not in spec_out
    assert spec_out["revisionHistoryLimit"] == 3
    assert spec_out["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"}}
    pod = spec_out["template"]["spec"]
    assert pod["volumes"] == [{"name": "config", "configMap": {"name": "settings", "defaultMode": 420}}]
    assert pod["automountServiceAccountToken"] is False and "hostNetwork" not in pod
    assert pod["containers"] == [
        {
            "name": "web",
            "image": "nginx:1.27",
            "command": ["nginx", "-g"],
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
            "envFrom": [{"configMapRef": {"name": "settings", "optional": True}}],
            "env": [
                {"name": "MODE", "value": "prod"},
                {"name": "POD", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
            ],
            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}},
            "volumeMounts": [{"name": "config", "readOnly": True, "mountPath": "/etc/web"}],
            "livenessProbe": {
                "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                "initialDelaySeconds": 5,
                "periodSeconds": 10,
            },
            "imagePullPolicy": "IfNotPresent",
        }
    ]


def test_service_ports_with_int_and_named_target_ports() -> None:
    ports = msg(1, text(1, "http"), text(2, "TCP"), vint(3, 80), int_or_string(4, 8080), vint(5, 0)) + msg(
        1, text(1, "metrics"), text(2, "TCP"), vint(3, 9090), int_or_string(4, "metrics"), vint(5, 0)
    )
    spec = msg(2, ports, str_map(2, {"app": "web"}), text(3, ""), text(4, "ClusterIP"))
    body = decode_protobuf(unknown("v1", "Service", object_meta("web", "ns") + spec + msg(3, msg(1))))
    assert body["spec"] == {
        "ports": [
            {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
            {"name": "metrics", "protocol": "TCP", "port": 9090, "targetPort": "metrics"},
        ],
        "selector": {"app": "web"},
        "type": "ClusterIP",
    }
    assert body["status"] == {"loadBalancer": {}}


def test_token_request() -> None:
    bound = msg(3, text(1, "Pod"), text(2, "v1"), text(3, "p1"), text(4, "u-1"))
    raw = object_meta("") + msg(2, text(1, "aud1"), text(1, "aud2"), bound, vint(4, 3600)) + msg(3, text(1, ""), msg(2))
    assert decode_protobuf(unknown("authentication.k8s.io/v1", "TokenRequest", raw)) == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "metadata": {"creationTimestamp": None},
        "spec": {
            "audiences": ["aud1", "aud2"],
            "expirationSeconds": 3600,
            # proto names these aPIVersion and uID; JSON does not
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p1", "uid": "u-1"},
        },
        "status": {"expirationTimestamp": None},
    }


def test_microtime_keeps_microseconds_and_time_drops_nanos() -> None:
    spec = msg(2, text(1, "me"), vint(2, 15), msg(3, vint(1, 1714557600), vint(2, 123456789)), msg(4, vint(1, 0)))
    body = decode_protobuf(unknown("coordination.k8s.io/v1", "Lease", object_meta("l", "ns", created=0) + spec))
    assert body["metadata"]["creationTimestamp"] == "1970-01-01T00:00:00Z"
    assert body["spec"] == {
        "holderIdentity": "me",
        "leaseDurationSeconds": 15,
        "acquireTime": "2024-05-01T10:00:00.123456Z",
        "renewTime": "1970-01-01T00:00:00.000000Z",
    }
    go_zero_time = msg(8, vint(1, -62135596800), vint(2, 5))  # time.Time{}: JSON null
    body = decode_protobuf(unknown("v1", "ConfigMap", msg(1, text(1, "c"), go_zero_time)))
    assert body["metadata"] == {"name": "c", "creationTimestamp": None}


def test_packed_and_unpacked_repeated_scalars_and_negative_ints() -> None:
    packed = blob(3, varint(1) + varint(42) + varint(-3))
    rule = msg(1, text(1, "FailJob"), msg(2, text(2, "In"), packed, vint(3, 7)))
    spec = msg(2, vint(1, 2), vint(7, -1), msg(11, rule), msg(6, object_meta(""), msg(2)))
    body = decode_protobuf(unknown("batch/v1", "Job", object_meta("j", "ns") + spec))
    assert body["spec"]["parallelism"] == 2
    assert body["spec"]["backoffLimit"] == -1
    assert body["spec"]["podFailurePolicy"] == {
        "rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [1, 42, -3, 7]}}]
    }


def test_unknown_fields_of_every_wire_type_are_skipped() -> None:
    noise = (
        vint(99, 12345)
        + blob(100, b"\x01\x02\x03")
        + tag(101, 5) + b"\x00\x00\x80\x3f"
        + tag(102, 1) + b"\x00" * 8
        + tag(103, 3) + vint(1, 1) + blob(2, b"x") + tag(103, 4)  # a group
    )
    meta = msg(1, text(1, "cfg"), noise, text(3, "ns"))
    raw = noise + meta + str_map(2, {"a": "b"}) + noise
    body = decode_protobuf(b"k8s\x00" + noise + msg(1, text(1, "v1"), text(2, "ConfigMap"), noise) + blob(2, raw))
    assert body == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "ns"},
                    "data": {"a": "b"}}


def test_repeated_message_field_merges_like_protobuf() -> None:
    raw = msg(1, text(1, "first"), str_map(11, {"a": "1"})) + msg(1, text(3, "ns"), str_map(11, {"b": "2"}))
    assert decode_protobuf(unknown("v1", "ConfigMap", raw))["metadata"] == {
        "name": "first", "namespace": "ns", "labels": {"a": "1", "b": "2"},
    }


def test_crd_schema_json_raw_extensions_and_either_or_types() -> None:
    leaf = msg(2, text(5, "integer"), double(9, 10.0), double(11, 1.5), vint(13, 0), msg(8, text(1, "3")))
    props = (
        entry(29, "replicas", leaf)
        + entry(29, "tags", msg(2, text(5, "array"), msg(24, msg(1, text(5, "string")))))
        + entry(29, "free", msg(2, text(5, "object"), vint(38, 1), msg(30, vint(1, 0))))
        + entry(29, "labels", msg(2, text(5, "object"), msg(30, vint(1, 1), msg(2, text(5, "string")))))
    )
    root = msg(1, text(5, "object"), text(3, "#/defs/x"), props, text(42, "map") + text(23, "replicas"))
    version = msg(
        7, text(1, "v1"), vint(2, 1), vint(3, 0), msg(4, root),
        msg(5, msg(1), msg(2, text(1, ".spec.replicas"), text(2, ".status.replicas"))),
    )
    names = msg(3, text(1, "widgets"), text(2, "widget"), text(4, "Widget"), text(5, "WidgetList"))
    spec = msg(2, text(1, "example.com"), names, text(4, "Namespaced"), version, vint(10, 0))
    body = decode_protobuf(unknown("apiextensions.k8s.io/v1", "CustomResourceDefinition", object_meta("w") + spec))
    out_version = body["spec"]["versions"][0]
    assert out_version["served"] is True and out_version["storage"] is False  # required bools keep false
    assert out_version["subresources"] == {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                                                   "statusReplicasPath": ".status.replicas"}}
    schema = out_version["schema"]["openAPIV3Schema"]
    assert schema["$ref"] == "#/defs/x"
    assert schema["x-kubernetes-list-type"] == "map"
    assert schema["required"] == ["replicas"]
    assert schema["properties"] == {
        "replicas": {"type": "integer", "default": 3, "maximum": 10, "minimum": 1.5, "maxLength": 0},
        "tags": {"type": "array", "items": {"type": "string"}},
        "free": {"type": "object", "additionalProperties": False, "x-kubernetes-preserve-unknown-fields": True},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    }


def test_managed_fields_fields_v1_is_raw_json() -> None:
    managed = msg(17, text(1, "kubectl"), text(2, "Update"), text(3, "v1"), text(6, "FieldsV1"),
                  msg(7, blob(1, b'{"f:data":{"f:a":{}}}')))
    body = decode_protobuf(unknown("v1", "ConfigMap", msg(1, text(1, "c"), managed)))
    assert body["metadata"]["managedFields"] == [
        {"manager": "kubectl", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:data": {"f:a": {}}}}
    ]


def test_delete_options_are_accepted_under_any_group_version() -> None:
    raw = vint(1, 0) + msg(2, text(1, "u-1")) + text(4, "Foreground") + text(5, "All")
    assert decode_protobuf(unknown("apps/v1", "DeleteOptions", raw)) == {
        "apiVersion": "apps/v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
        "preconditions": {"uid": "u-1"}, "propagationPolicy": "Foreground", "dryRun": ["All"],
    }


def test_embedded_json_content_type_is_accepted() -> None:
    body = b"k8s\x00" + msg(1, text(1, "v1"), text(2, "ConfigMap")) + blob(2, b'{"data":{"a":"b"}}')
    body += text(4, "application/json")
    assert decode_protobuf(body) == {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}}


@pytest.mark.parametrize(
    ("ns", "expected"),
    [(0, "0s"), (1, "1ns"), (1500, "1.5µs"), (2_000_000, "2ms"), (1_500_000_000, "1.5s"), (60 * 10**9, "1m0s"),
     (3600 * 10**9, "1h0m0s"), (5_025_000_000_000 + 10**6, "1h23m45.001s"), (-90 * 10**9, "-1m30s")],
)
def test_durations_print_like_go(ns: int, expected: str) -> None:
    assert _go_duration(ns) == expected


def test_schema_table_is_self_consistent() -> None:
    schema = protobuf._schema()
    for name, fields in schema.fields.items():
        numbers = [f.number for f in fields]
        assert len(numbers) == len(set(numbers)), name
        for f in fields:
            if "." in f.type:
                assert f.type in schema.fields, f"{name}.{f.name} -> {f.type}"
    for wanted in ("v1/ConfigMap", "apps/v1/Deployment", "batch/v1/CronJob", "policy/v1/PodDisruptionBudget",
                   "networking.k8s.io/v1/Ingress", "authentication.k8s.io/v1/TokenRequest",
                   "apiextensions.k8s.io/v1/CustomResourceDefinition"):
        assert wanted in supported_kinds()


# ---------------------------------------------------------------------------- what kubectl 1.33 sends
KUBECTL_133 = {
    # kubectl create configmap cm --from-literal=a=b --from-literal=c=d -n ns133
    "configmap": (
        "6b3873000a0f0a0276311209436f6e6669674d617012290a170a02636d12001a056e7331333322002a00320038004200"
        "12060a016112016212060a01631201641a002200"
    ),
    # kubectl create deployment web --image=nginx --replicas=2 --port=80 -n ns133
    "deployment": (
        "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412bd010a240a0377656212001a056e733133332200"
        "2a003200380042005a0a0a0361707012037765621286010802120c0a0a0a0361707012037765621a6c0a1c0a0012001a"
        "0022002a003200380042005a0a0a036170701203776562124c122e0a056e67696e7812056e67696e782a00320a0a0010"
        "00185022002a0042006a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a"
        "0100c2010022020a00280038001a0c0800100018002000280038001a002200"
    ),
    # kubectl create ingress ing --rule=foo.com/bar=svc:80 --rule=bar.com/*=svc:http,tls=my-cert
    #   --default-backend=svc:80
    "ingress": (
        "6b3873000a1f0a146e6574776f726b696e672e6b38732e696f2f76311207496e677265737312a1010a1a0a03696e6712"
        "001a0764656661756c7422002a00320038004200127f0a0d220b0a0373766312040a00105012120a076261722e636f6d"
        "12076d792d636572741a2b0a07666f6f2e636f6d12200a1e0a1c0a042f626172120d220b0a0373766312040a0010501a"
        "0545786163741a2d0a076261722e636f6d12220a200a1e0a012f1211220f0a0373766312080a046874747010001a0650"
        "72656669781a020a001a002200"
    ),
    # kubectl create token sa --duration=1h --audience=aud1 --bound-object-kind=Pod --bound-object-name=p1
    #   --bound-object-uid=u-1
    "token": (
        "6b3873000a280a1861757468656e7469636174696f6e2e6b38732e696f2f7631120c546f6b656e526571756573741237"
        "0a100a0012001a0022002a00320038004200121d0a04617564311a120a03506f64120276311a0270312203752d312090"
        "1c1a040a0012001a002200"
    ),
}


def test_kubectl_133_configmap() -> None:
    assert decode_protobuf(bytes.fromhex(KUBECTL_133["configmap"])) == {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "ns133", "creationTimestamp": None},
        "data": {"a": "b", "c": "d"},
    }


def test_kubectl_133_deployment_matches_what_kubectl_127_sends_as_json() -> None:
    assert decode_protobuf(bytes.fromhex(KUBECTL_133["deployment"])) == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ns133", "creationTimestamp": None, "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}],
                                         "resources": {}}]},
            },
            "strategy": {},
        },
        "status": {},
    }


def test_kubectl_133_ingress_flattens_the_inline_rule_value() -> None:
    spec = decode_protobuf(bytes.fromhex(KUBECTL_133["ingress"]))["spec"]
    assert spec == {
        "defaultBackend": {"service": {"name": "svc", "port": {"number": 80}}},
        "tls": [{"hosts": ["bar.com"], "secretName": "my-cert"}],
        "rules": [
            {"host": "foo.com", "http": {"paths": [
                {"path": "/bar", "pathType": "Exact", "backend": {"service": {"name": "svc", "port": {"number": 80}}}},
            ]}},
            {"host": "bar.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "svc", "port": {"name": "http"}}}},
            ]}},
        ],
    }


def test_kubectl_133_token_request() -> None:
    assert decode_protobuf(bytes.fromhex(KUBECTL_133["token"]))["spec"] == {
        "audiences": ["aud1"],
        "expirationSeconds": 3600,
        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p1", "uid": "u-1"},
    }


# ---------------------------------------------------------------------------- malformed bodies are 400s
def bad(body: bytes) -> str:
    with pytest.raises(StatusError) as caught:
        decode_protobuf(body)
    assert caught.value.code == 400
    return str(caught.value.message)


def test_missing_magic() -> None:
    assert "magic" in bad(b'{"kind":"ConfigMap"}')
    assert "magic" in bad(b"")


def test_unregistered_kind_and_missing_kind() -> None:
    message = bad(unknown("example.com/v1", "Widget", b""))
    assert 'no kind "Widget" is registered for version "example.com/v1"' in message
    assert "Kind" in bad(b"k8s\x00" + msg(1, text(1, "v1")) + blob(2, b""))


@pytest.mark.parametrize(
    "raw",
    [
        tag(1, 0) + b"\xff" * 11,  # varint longer than 10 bytes
        tag(1, 2) + varint(50) + b"short",  # length past the end
        tag(0, 0) + varint(1),  # field number 0
        tag(5, 7) + b"x",  # wire type 7
        tag(103, 3) + vint(1, 1),  # unterminated group
        tag(2, 0) + varint(5),  # map field sent as a varint
        msg(1, tag(1, 0) + varint(7)),  # ObjectMeta.name (a string) sent as a varint
    ],
)
def test_wire_format_errors(raw: bytes) -> None:
    assert "unable to decode protobuf body" in bad(unknown("v1", "ConfigMap", raw))


def test_bad_special_values() -> None:
    port = msg(1, vint(3, 80), msg(4, vint(1, 2), vint(2, 1)))  # IntOrString type 2 does not exist
    assert "IntOrString" in bad(unknown("v1", "Service", msg(2, port)))
    default_nan = msg(2, msg(7, msg(4, msg(1, double(9, float("nan"))))))
    assert "JSON" in bad(unknown("apiextensions.k8s.io/v1", "CustomResourceDefinition", default_nan))
    bad_json = msg(1, msg(17, msg(7, blob(1, b"{not json"))))
    assert "JSON" in bad(unknown("v1", "ConfigMap", bad_json))
    far_future = msg(1, msg(8, vint(1, 10**15)))
    assert "out of range" in bad(unknown("v1", "ConfigMap", far_future))


def test_absurd_nesting_is_a_400_not_a_crash() -> None:
    schema = text(5, "object")
    for _ in range(300):  # JSONSchemaProps.not.not.not...
        schema = msg(28, schema)
    crd = msg(2, msg(7, msg(4, msg(1, schema))))
    assert "deep" in bad(unknown("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd))


def test_truncations_and_garbage_never_crash() -> None:
    """Every prefix and thousands of random mutations of a real body either decode or are a 400."""
    body = bytes.fromhex(KUBECTL_133["deployment"])
    rng = random.Random(1234)
    candidates = [body[:n] for n in range(len(body))]
    for _ in range(3000):
        mutated = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(4, len(mutated))] = rng.randrange(256)
        candidates.append(bytes(mutated))
    candidates += [b"k8s\x00" + rng.randbytes(rng.randint(0, 200)) for _ in range(2000)]
    for candidate in candidates:
        try:
            result = decode_protobuf(candidate)
        except StatusError as exc:
            assert exc.code == 400
        else:
            assert isinstance(result, dict)


# ---------------------------------------------------------------------------- end to end with kubectl
@pytest.mark.parametrize("version", ["1.32", "1.33"])
def test_kubectl_sends_protobuf_and_the_server_stores_it(version: str, cluster: ClusterInfo, tmp_path: Path) -> None:
    from tests.conftest import Kubectl

    found = shutil.which("kubectl")
    binary = Path(os.path.realpath(found)).parent / f"kubectl.{version}" if found else None
    if binary is None or not binary.exists():
        pytest.skip(f"kubectl {version} is not installed on this machine")
    kubectl = Kubectl(str(binary), cluster, tmp_path / "cache")
    kubectl("create", "configmap", "x", "--from-literal=a=b")
    kubectl("create", "deployment", "web", "--image=nginx", "--replicas=0")
    kubectl("create", "secret", "generic", "s", "--from-literal=k=v")
    assert kubectl("get", "configmap", "x", "-o", "jsonpath={.data.a}") == "b"
    assert kubectl("get", "deployment", "web", "-o", "jsonpath={.spec.replicas}") == "0"
    assert kubectl("get", "secret", "s", "-o", "jsonpath={.data.k}") == "dg=="
