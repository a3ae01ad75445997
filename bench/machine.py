"""The machine a benchmark ran on: CPU, cores, memory, kernel, Python, SQLite, aiohttp, etcd.

`python -m bench.machine` prints it; benchmarks print `describe()` above their tables.
"""

from __future__ import annotations

import gc
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_family() -> str:
    fam = model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu family") and not fam:
                    fam = line.split(":", 1)[1].strip()
                elif line.startswith("model\t") and not model:
                    model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"family {fam} model {model}" if fam else ""


def _mem_total_gib() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _hypervisor() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    for line in out.splitlines():
        if line.startswith("Hypervisor vendor:"):
            return line.split(":", 1)[1].strip() + " guest"
    return ""


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def _pkg(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


def etcd_version() -> str:
    exe = shutil.which("etcd")
    if exe is None:
        return "not installed"
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    for line in out.splitlines():
        if line.startswith("etcd Version:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def machine_info() -> dict[str, str]:
    cpus = os.cpu_count() or 0
    cpu = f"{_cpu_model()} ({_cpu_family()})" if _cpu_family() else _cpu_model()
    hyp = _hypervisor()
    return {
        "cpu": cpu,
        "cores": f"{cpus} vCPU" + (f", {hyp}" if hyp else ""),
        "memory": f"{_mem_total_gib():.1f} GiB",
        "os": f"{_os_name()}, kernel {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "sqlite": sqlite3.sqlite_version,
        "aiohttp": _pkg("aiohttp"),
        "orjson": _pkg("orjson"),
        "etcd": etcd_version(),
    }


# servers this process started and has not reaped yet: pid -> CPU seconds at the last reading
# (set by bench.procs before it stops one, so that the CPU of a reaped child is not counted twice)
LIVE_CHILDREN: dict[int, float] = {}
REAPED_CHILDREN: dict[int, float] = {}


def _proc_cpu(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BackgroundLoad:
    """CPU time used on the machine by processes other than this one and the servers it started.

    Benchmarks on a shared machine are only as good as it is quiet: this tells how quiet it was.
    Our own CPU = this process + its live servers (read from /proc) + other children it reaped.
    """

    def __init__(self) -> None:
        self._busy0 = self._busy()
        t = os.times()
        self._self0 = t.user + t.system
        self._children0 = t.children_user + t.children_system
        self._live0 = {pid: _proc_cpu(pid) or 0.0 for pid in LIVE_CHILDREN}
        self._reaped0 = set(REAPED_CHILDREN)
        self._t0 = t.elapsed

    @staticmethod
    def _busy() -> float:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal ...
        busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6]
        return busy / os.sysconf("SC_CLK_TCK")

    def _own(self) -> float:
        t = os.times()
        own = (t.user + t.system) - self._self0
        reaped_now = set(REAPED_CHILDREN) - self._reaped0
        # reaped children count their whole life in children_*: take the servers out, add their share back
        own += (t.children_user + t.children_system) - self._children0
        own -= sum(REAPED_CHILDREN[pid] for pid in reaped_now)
        for pid in set(LIVE_CHILDREN) | reaped_now:
            start = self._live0.get(pid, 0.0)
            end = REAPED_CHILDREN[pid] if pid in reaped_now else (_proc_cpu(pid) or LIVE_CHILDREN.get(pid, 0.0))
            own += end - start
        return own

    def other_cpu_seconds(self) -> tuple[float, float]:
        """(CPU seconds used by other processes, wall seconds) since this object was made."""
        other = (self._busy() - self._busy0) - self._own()
        return max(0.0, other), os.times().elapsed - self._t0


class CollectorClock:
    """Seconds this process has spent in the cyclic garbage collector since it was made (gc.callbacks): a
    full collection walks every object of every cluster on the event loop, so its share is worth knowing."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._started = 0.0
        gc.callbacks.append(self._on)

    def _on(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections[info["generation"]] += 1

    def close(self) -> None:
        gc.callbacks.remove(self._on)


class PhaseLog:
    """Records, per named phase, how many cores other processes used meanwhile."""

    def __init__(self) -> None:
        self.other_cores: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        probe = BackgroundLoad()
        try:
            yield
        finally:
            other, wall = probe.other_cpu_seconds()
            self.other_cores[name] = other / wall if wall else 0.0

    def summary(self) -> str:
        return ", ".join(f"{k} {v:.2f}" for k, v in self.other_cores.items())


def wait_quiet(max_wait: float, threshold: float = 0.1, sample: float = 3.0) -> float:
    """Waits (up to `max_wait` s) until other processes use under `threshold` cores; returns their last share."""
    import time

    deadline = time.monotonic() + max_wait
    quiet = 0
    while True:
        probe = BackgroundLoad()
        time.sleep(sample)
        other, wall = probe.other_cpu_seconds()
        share = other / wall if wall else 0.0
        quiet = quiet + 1 if share < threshold else 0
        if quiet >= 3 or time.monotonic() >= deadline:  # quiet for 3 samples in a row
            return share
        if not quiet:
            print(f"  waiting for a quiet machine: other processes use {share:.2f} cores", flush=True)


def describe() -> str:
    info = machine_info()
    return "\n".join(f"  {k:<8} {v}" for k, v in info.items())


def markdown_table() -> str:
    info = machine_info()
    rows = ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in info.items())]
    return "\n".join(rows)


def main() -> int:
    print("machine:")
    print(describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
