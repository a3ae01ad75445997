"""A running fleet's state directory and lifecycle, as a user drives them: a second `up`, leave and join,
`cluster remove`, a join that is refused, a restart. One fleet for the module; each test uses its own member."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.helpers import wait_until
from tests.inventory.test_cli_fleet import run, wait_status
from tests.test_cli import _clusterset, _free_port, _member, _wait_for

OWNED_FILES = ("kubeconfig", "fleet.json", "server.json")


class Fleet:
    """`clusterset up` on one state directory, started again as a test needs; `log` is the current run's."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.state = folder, folder / "state"
        self.runs = 0

    def start(self, *flags: str) -> None:
        self.runs += 1
        self.log = self.folder / f"up.{self.runs}.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(_clusterset("up", "--state-dir", str(self.state), "--heartbeat", "1", *flags),
                                         stdout=out, stderr=subprocess.STDOUT, text=True)
        _wait_for(self.log, self.proc, "Press Ctrl-C")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(30)

    def contexts(self) -> list[str]:
        return [c["name"] for c in yaml.safe_load((self.state / "kubeconfig").read_text())["contexts"]]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    folder = tmp_path_factory.mktemp("lifecycle")
    running = Fleet(folder)
    running.start("--port", str(_free_port()), "--clusters", "5")
    try:
        yield running
    finally:
        running.stop()


def healthy(member: str) -> object:
    return lambda rows: rows.get(member, [""])[1:3] == ["True", "True"]


def test_the_banner_says_what_to_paste(fleet: Fleet) -> None:
    text = fleet.log.read_text()
    run_again = f"-m clusterset.cli.main status --state-dir {fleet.state}\n"  # as this test ran it
    assert run_again in text and "clusterset status\n" not in text, text
    assert "  kubectl --context hub get clusterprofiles\n" in text
    assert "  kubectl --context member-1 create deployment hello --image=nginx --replicas=3\n" in text


def test_status_into_a_closed_pipe_ends_quietly(fleet: Fleet) -> None:
    """`clusterset status | head -0`: the reader is gone before status writes."""
    proc = subprocess.Popen(_clusterset("status", "--state-dir", str(fleet.state)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    assert proc.stderr.read() == ""
    assert proc.wait(60) != 0


def test_a_second_up_on_a_running_state_dir_is_refused_and_changes_nothing(fleet: Fleet) -> None:
    before = {name: (fleet.state / name).read_bytes() for name in OWNED_FILES}
    for command in (["up", "--port", str(_free_port())], ["apiserver", "--port", str(_free_port())]):
        second = run(*command, "--state-dir", str(fleet.state))
        assert second.returncode == 1, second.stderr
        assert second.stderr == (f"clusterset {command[0]}: {fleet.state} is in use by clusterset up "
                                 f"(pid {fleet.proc.pid}); stop it first or use --state-dir\n")
    assert {name: (fleet.state / name).read_bytes() for name in OWNED_FILES} == before
    assert fleet.proc.poll() is None


def test_leave_then_join_reconnects_the_running_agent(fleet: Fleet) -> None:
    wait_status(fleet.state, healthy("member-1"))
    left = run("leave", "member-1", "--state-dir", str(fleet.state))
    assert left.returncode == 0, left.stderr
    wait_status(fleet.state, lambda rows: "member-1" not in rows)
    joined = run("join", "member-1", "--state-dir", str(fleet.state))
    assert joined.returncode == 0, joined.stderr
    # the agent still holds the token `leave` revoked; the hub refuses it until it takes the new one from the
    # member's Secret (it used to ask again only every 60 s, with the same token)
    wait_status(fleet.state, healthy("member-1"), timeout=20)


def test_an_agent_whose_cluster_is_removed_says_so_once_and_stops(fleet: Fleet) -> None:
    removed = run("cluster", "remove", "member-2", "--state-dir", str(fleet.state))
    assert removed.returncode == 0, removed.stderr
    rows = wait_status(fleet.state, lambda rows: rows["member-2"][1] == "False")
    assert rows["member-2"][5] == "ReadyzFailed"
    # quiet from then on: let member-4's agent beat twice more (heartbeat 1 s), then read the log
    leases = client.CoordinationV1Api(_member(fleet.state, "hub").api_client())
    seen: set[str] = set()

    def beat_twice() -> bool:
        seen.add(leases.read_namespaced_lease("clusterset-endpoints", "clusterset-member-4").spec.renew_time)
        return len(seen) >= 3

    wait_until(beat_twice, timeout=20, interval=0.5)
    lines = [line for line in fleet.log.read_text().splitlines() if "member-2" in line]
    assert len([line for line in lines if "agent stopped" in line]) == 1, lines
    # a 401 anywhere but in a line's timestamp (its milliseconds) or a port
    assert not [line for line in lines if re.search(r"(?<![,:])\b401\b", line) or "Unauthorized" in line], lines
    assert "its caches are gone" not in fleet.log.read_text()  # its DNS server stopped before its reads' view


def test_a_refused_join_stops_nothing_and_a_removed_cluster_stays_removed(fleet: Fleet) -> None:
    assert run("cluster", "remove", "member-5", "--state-dir", str(fleet.state)).returncode == 0
    # member-3 removed, then added again without `leave`: the hub still knows member-3 by another uid
    assert run("cluster", "remove", "member-3", "--state-dir", str(fleet.state)).returncode == 0
    assert run("cluster", "add", "member-3", "--state-dir", str(fleet.state)).returncode == 0
    wait_until(lambda: "joining cluster=member-3 failed" in fleet.log.read_text(), timeout=30)
    assert fleet.proc.poll() is None
    assert fleet.stop() == 0
    described = json.loads((fleet.state / "fleet.json").read_text())
    assert "member-5" in described["removed"] and "member-3" not in described["removed"]
    # started again: member-5 is not made again; member-3's join is refused again, and the fleet runs anyway
    fleet.start("--clusters", "5")
    text = fleet.log.read_text()
    assert "member-3 did not join: the cluster id 'member-3' is already used" in text, text
    assert "member-5" not in fleet.contexts() and {"member-1", "member-3", "member-4"} <= set(fleet.contexts())
    rows = wait_status(fleet.state, lambda rows: all(healthy(m)(rows) for m in ("member-1", "member-4")))
    assert "member-5" in rows  # its profile stays until `leave --id member-5`
    assert fleet.proc.poll() is None


def test_kubeconfig_flag_then_env_then_state_dir(fleet: Fleet, tmp_path: Path) -> None:
    elsewhere = tmp_path / ".clusterset"
    elsewhere.mkdir()
    config = yaml.safe_load((fleet.state / "kubeconfig").read_text())
    for c in config["clusters"]:
        c["cluster"]["server"] = f"https://127.0.0.1:{_free_port()}"
    (elsewhere / "kubeconfig").write_text(yaml.safe_dump(config))
    env = {**os.environ, "KUBECONFIG": str(fleet.state / "kubeconfig")}
    # ./.clusterset/kubeconfig points nowhere; $KUBECONFIG is the fleet's and wins
    status = subprocess.run(_clusterset("status"), capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert status.returncode == 0, status.stderr
    assert "member-1" in status.stdout
    # --kubeconfig wins over $KUBECONFIG
    flagged = subprocess.run(_clusterset("status", "--kubeconfig", str(elsewhere / "kubeconfig")),
                             capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert flagged.returncode == 1
    assert "cannot connect to 127.0.0.1:" in flagged.stderr and "Connection refused" in flagged.stderr, flagged.stderr
    assert " object at 0x" not in flagged.stderr
    # a server whose certificate cannot be verified: said in words too
    untrusted = yaml.safe_load((fleet.state / "kubeconfig").read_text())
    for c in untrusted["clusters"]:
        del c["cluster"]["certificate-authority-data"]
    (tmp_path / "untrusted").write_text(yaml.safe_dump(untrusted))
    refused = run("status", "--kubeconfig", str(tmp_path / "untrusted"))
    assert refused.returncode == 1 and "TLS: " in refused.stderr and "CERTIFICATE_VERIFY_FAILED" in refused.stderr
    assert " object at 0x" not in refused.stderr, refused.stderr
