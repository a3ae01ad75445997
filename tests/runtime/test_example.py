"""examples/label_sync.py runs against the embedded server and does what it says."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from clusterset.api.resources import CONFIG_MAPS, NAMESPACES
from clusterset.client import ClusterClient, NotFound
from clusterset.testing import ServerThread
from tests.runtime.util import client_of, eventually

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "label_sync.py"


async def data_of(hub: ClusterClient, member: str) -> dict[str, Any] | None:
    try:
        cm = await hub.get(CONFIG_MAPS, f"label-sync-{member}", namespace="default")
    except NotFound:
        return None
    return dict(cm.get("data") or {})


async def test_label_sync_example_copies_member_namespace_labels_to_the_hub(server: ServerThread,
                                                                          tmp_path: Path) -> None:
    hub_info = server.add_cluster(controllers=False)
    m1_info, m2_info = server.add_cluster(controllers=False), server.add_cluster(controllers=False)
    hub, m1, m2 = client_of(hub_info), client_of(m1_info), client_of(m2_info)
    await m1.create(NAMESPACES, {"metadata": {"name": "payments", "labels": {"team": "money"}}})
    await m1.create(NAMESPACES, {"metadata": {"name": "unlabelled"}})
    await m2.create(NAMESPACES, {"metadata": {"name": "search", "labels": {"team": "find"}}})
    kubeconfig = tmp_path / "kubeconfig"
    server.server.write_kubeconfig(kubeconfig, names=[hub_info.name, m1_info.name])
    proc = subprocess.Popen([sys.executable, str(EXAMPLE), "--kubeconfig", str(kubeconfig), "--hub", hub_info.name],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        async def synced(member: str, want: dict[str, str]) -> bool:
            return await data_of(hub, member) == want

        await eventually(lambda: synced(m1_info.name, {"payments": "money"}), timeout=30, message="m1 synced")
        # a member added to the kubeconfig is picked up
        server.server.write_kubeconfig(kubeconfig, names=[hub_info.name, m1_info.name, m2_info.name])
        await eventually(lambda: synced(m2_info.name, {"search": "find"}), timeout=30, message="m2 synced")
        # a label change in a member reaches the hub
        await m1.patch(NAMESPACES, "unlabelled", {"metadata": {"labels": {"team": "ops"}}})
        await eventually(lambda: synced(m1_info.name, {"payments": "money", "unlabelled": "ops"}),
                         message="the new label")
        # a hub ConfigMap deleted by someone else is restored
        await hub.delete(CONFIG_MAPS, f"label-sync-{m2_info.name}", namespace="default")
        await eventually(lambda: synced(m2_info.name, {"search": "find"}), message="the ConfigMap restored")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            output, _ = await asyncio.to_thread(proc.communicate, timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        for c in (hub, m1, m2):
            await c.close()
    assert proc.returncode == 0, output
    assert "engaged cluster" in output and "synced member=" in output and "manager=label-sync" in output, output
    assert "stopped" in output.splitlines()[-1], output
