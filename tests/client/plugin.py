"""A real exec credential plugin for the tests, written into tmp_path and run as a process."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

SCRIPT = r'''
import datetime, json, os, sys

info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
state = os.environ["PLUGIN_STATE"]
with open(os.path.join(state, "runs"), "a") as f:
    f.write("x")
runs = len(open(os.path.join(state, "runs")).read())
with open(os.path.join(state, "info.json"), "w") as f:
    json.dump(info, f)

def fail(msg):
    print("[testplugin] " + msg, file=sys.stderr)
    sys.exit(1)

if info.get("kind") != "ExecCredential" or info["spec"].get("interactive") is not False:
    fail("bad KUBERNETES_EXEC_INFO: %r" % info)
want_server = os.environ.get("EXPECT_SERVER")
if want_server and info["spec"].get("cluster", {}).get("server") != want_server:
    fail("spec.cluster.server is %r, want %r" % (info["spec"].get("cluster"), want_server))
want_config = os.environ.get("EXPECT_CONFIG")
if want_config and info["spec"]["cluster"].get("config") != json.loads(want_config):
    fail("spec.cluster.config is %r" % info["spec"]["cluster"].get("config"))

mode = os.environ.get("PLUGIN_MODE", "ok")
if mode == "garbage":
    print("this is not json")
    sys.exit(0)
if mode == "exit":
    fail("cannot reach the token service")
token = os.environ["PLUGIN_TOKEN"]
if mode == "bad-first" and runs == 1:
    token = "refused-token"
status = {"token": token}
if os.environ.get("EXPIRES_IN"):
    at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=float(os.environ["EXPIRES_IN"]))
    status["expirationTimestamp"] = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
api = "client.authentication.k8s.io/v1beta1" if mode == "wrong-api" else info["apiVersion"]
print(json.dumps({"apiVersion": api, "kind": "ExecCredential", "status": status}))
'''


def write_plugin(folder: Path, name: str = "plugin") -> Path:
    """An executable Python script; its state (run count, last KUBERNETES_EXEC_INFO) goes to `folder`."""
    path = folder / name
    path.write_text(f"#!{sys.executable}\n{SCRIPT}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def runs(folder: Path) -> int:
    try:
        return len((folder / "runs").read_text())
    except FileNotFoundError:
        return 0


def plugin_env(folder: Path, token: str, **extra: str) -> list[dict[str, str]]:
    env = {"PLUGIN_STATE": str(folder), "PLUGIN_TOKEN": token, **extra}
    return [{"name": k, "value": v} for k, v in env.items()]


__all__ = ["plugin_env", "runs", "write_plugin"]
