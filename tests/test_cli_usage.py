"""What a user reads: help, refusals of bad flags, errors, the hints `up` prints, the README's snippet."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clusterset.api.times import rfc3339, rfc3339_micro
from clusterset.cli.fleet import status_table
from tests.test_cli import _clusterset, _free_port, _wait_for

REPO = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_clusterset(*args), capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("command", "says"), [
    (["up"], "Runs a whole fleet in this process"),
    (["cluster", "add"], "Adds a logical cluster to the running server"),
    (["credential-plugin"], "KEP-5339"),
    (["dns"], "Answers clusterset.local over UDP and TCP"),
])
def test_help_describes_the_command(command: list[str], says: str) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert says in result.stdout and "KEP-541" not in result.stdout


@pytest.mark.parametrize(("flags", "error"), [
    (["--port", "99999"], "argument --port: '99999' is not a port number (0 to 65535)"),
    (["--clusters", "-1"], "argument --clusters: '-1' is not a number of 0 or more"),
    (["--heartbeat", "0"], "argument --heartbeat: '0' is not a number of seconds above 0"),
    (["--heartbeat", "20"], "--heartbeat 20 is more than a third of --endpoint-lease 40: give --heartbeat at most "
                            "13.3, or --endpoint-lease at least 60"),
    (["--heartbeat", "30", "--endpoint-lease", "90", "--grace", "30"],
     "--heartbeat 30 is not shorter than --grace 30: every member would turn Unknown between two heartbeats; give "
     "--grace more than 30 (e.g. 120)"),
])
def test_bad_flags_are_refused_in_one_line(flags: list[str], error: str, tmp_path: Path) -> None:
    result = run("up", "--state-dir", str(tmp_path / "state"), *flags)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == f"clusterset up: error: {error}"
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "state").exists()


def test_an_agent_whose_heartbeat_would_let_its_lease_lapse_is_refused() -> None:
    result = run("agent", "--context", "nowhere", "--heartbeat", "5", "--endpoint-lease", "12")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == ("clusterset agent: error: --heartbeat 5 is more than a third of "
                                              "--endpoint-lease 12: give --heartbeat at most 4, or --endpoint-lease "
                                              "at least 15")


def test_a_port_in_use_is_named_and_leaves_no_state_behind(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("up", "--state-dir", str(tmp_path / "state"), "--port", str(port))
    assert result.returncode == 1
    assert result.stderr == (f"clusterset up: cannot listen on 127.0.0.1:{port}: Address already in use; "
                             "choose another port with --port\n")
    assert not (tmp_path / "state").exists()


def test_hints_name_the_program_as_it_was_run(tmp_path: Path) -> None:
    """Run as the quick start does (the venv's script, not on PATH), with no members: the hints can be pasted."""
    script = Path(sys.executable).parent / "clusterset"
    state = tmp_path / "state"
    log = tmp_path / "up.log"
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != script.parent)
    with log.open("w") as out:
        proc = subprocess.Popen([str(script), "up", "--clusters", "0", "--state-dir", str(state),
                                 "--port", str(_free_port())], stdout=out, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PATH": path})
    try:
        _wait_for(log, proc, "Press Ctrl-C")
        text = log.read_text()
    finally:
        proc.terminate()
        proc.wait(20)
    assert f"{script} status --state-dir {state}\n" in text, text
    assert f"{script} cluster add member-1 --state-dir {state}" in text
    assert "--context member-1" not in text


def test_status_sorts_members_as_people_count() -> None:
    profiles = [{"metadata": {"name": f"member-{i}"}} for i in (10, 2, 1, 11)]
    lines = status_table(profiles, {}, datetime.now(UTC)).splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["member-1", "member-2", "member-10", "member-11"]


def test_status_shows_the_agents_last_heartbeat() -> None:
    """An idle agent renews its Lease every heartbeat and writes its report only when it changes: the newer counts."""
    now = datetime.now(UTC)
    profiles = [{"metadata": {"name": "member-1"}}]
    reports = {"member-1": {"status": {"observedTime": rfc3339(now - timedelta(minutes=4))}}}
    leases = {"member-1": {"spec": {"renewTime": rfc3339_micro(now - timedelta(seconds=3))}}}
    header, row = status_table(profiles, reports, now, leases).splitlines()
    assert header.split()[4] == "HEARTBEAT" and row.split()[4] == "3s"
    assert status_table(profiles, reports, now).splitlines()[1].split()[4] == "4m"
    assert status_table(profiles, {}, now).splitlines()[1].split()[4] == "never"


def test_the_state_directory_is_not_committed(tmp_path: Path) -> None:
    # the project's .gitignore in a repository of its own: checked in a source tarball too, not only in a clone
    shutil.copy(REPO / ".gitignore", tmp_path / ".gitignore")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, timeout=30)
    secrets = [".clusterset/pki/ca.key", "sub/.clusterset/admin.token"]
    ignored = subprocess.run(["git", "check-ignore", *secrets], cwd=tmp_path, capture_output=True, text=True,
                             timeout=30)
    assert ignored.stdout.splitlines() == secrets


def test_the_readme_snippet_runs_with_what_the_quick_start_installs() -> None:
    readme = (REPO / "README.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", readme, re.DOTALL)
    assert snippet is not None
    # the quick start installs clusterset alone: the test tools (the official `kubernetes` client) are not there
    blocked = "import sys\nsys.modules['kubernetes'] = None  # type: ignore\n"
    result = subprocess.run([sys.executable, "-c", blocked + snippet.group(1)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "'default'" in result.stdout and "'kube-system'" in result.stdout
