"""What every command module shares: defaults, flags, the run loop of async commands, waiting for a signal."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import re
import shlex
import shutil
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any

from clusterset.apiserver import CannotListen, StateDirInUse
from clusterset.client import ApiError, ConnectionFailed, CredentialError
from clusterset.fleet.hub import HubNotInstalled
from clusterset.inventory.registration import JoinRefused

DEFAULT_STATE_DIR = Path(".clusterset")
DEFAULT_PORT = 16443
DEFAULT_CLUSTERSET = "clusterset"

Command = Callable[[argparse.Namespace], int]


def port_number(text: str) -> int:
    """An argparse type: a TCP port (0: any free one)."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return port


def count(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    try:
        number = int(text)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of 0 or more")
    return number


def seconds(text: str) -> float:
    """An argparse type: a duration in seconds, more than 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


def whole_seconds(text: str) -> int:
    """An argparse type: a duration in whole seconds (rounded up), at least 1 (a Lease's duration)."""
    return max(1, math.ceil(seconds(text)))


def server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                   help=f"where state, certificates and the kubeconfig live; one running server per directory "
                        f"(default {DEFAULT_STATE_DIR})")
    p.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=port_number, default=None,
                   help=f"listen port (default: the port used last time in this state dir, else {DEFAULT_PORT})")
    p.add_argument("--durable", action="store_true",
                   help="acknowledge a write only once it is fsynced (survives power loss, not only a process crash)")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens, not only warnings")


def kube_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", help="kubeconfig file (default: as --state-dir says)")
    p.add_argument("--context", help="kubeconfig context")
    p.add_argument("--state-dir", type=Path, default=None,
                   help=f"use the kubeconfig of the fleet in this directory (unless --kubeconfig); without either, "
                        f"$KUBECONFIG, else {DEFAULT_STATE_DIR}/kubeconfig if it exists, else ~/.kube/config")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens, not only warnings")


def kubeconfig_path(args: argparse.Namespace) -> str | None:
    """The file of `kube_flags`, in kubectl's order with the fleet's kubeconfig as the fallback: --kubeconfig,
    else the kubeconfig of a --state-dir given, else None when $KUBECONFIG is set (the client reads it), else
    ./.clusterset/kubeconfig if it exists, else None (~/.kube/config)."""
    if args.kubeconfig:
        return str(args.kubeconfig)
    if args.state_dir is not None:
        return str(args.state_dir / "kubeconfig")
    if os.environ.get("KUBECONFIG"):
        return None
    default = DEFAULT_STATE_DIR / "kubeconfig"
    return str(default) if default.exists() else None


def server_port(args: argparse.Namespace) -> int:
    """The port of `server_flags`: --port, else the port used last time in the state dir, else DEFAULT_PORT."""
    if args.port is not None:
        return int(args.port)
    try:
        url = json.loads((args.state_dir / "server.json").read_text())["url"]
        return int(url.rsplit(":", 1)[1]) or DEFAULT_PORT
    except (OSError, ValueError, KeyError, IndexError):
        return DEFAULT_PORT


@contextlib.contextmanager
def removed_if_cannot_listen(state_dir: Path) -> Iterator[None]:
    """A state directory made by a server that then cannot listen is removed again: a first start on a port
    in use leaves nothing half-made behind (a directory that existed is left as it was)."""
    made = not state_dir.exists()
    try:
        yield
    except CannotListen:
        if made:
            shutil.rmtree(state_dir, ignore_errors=True)
        raise


def raise_open_files_limit() -> None:
    """Lifts this process's soft limit of open files to its hard limit, as Go programs do at start: a server
    holding every member's connections (both ends of each, in an embedded fleet: about 19 per member) runs out at
    the common default soft limit of 1,024 with a few dozen members."""
    try:
        import resource
    except ImportError:  # not POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def fast_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed, for the servers whose every request is CPU on the loop: the standalone
    DNS server answers about 4x more queries on it (limits.md §A), the API server takes more writes per second
    (BENCHMARKS.md)."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


# Allocations of young objects between two collections of the youngest generation (CPython's default: 700): a
# fleet's requests make and free thousands of short-lived containers each. Measured together with the freeze
# (BENCHMARKS.md: MCS at 100 members, and the standalone server's writes in alternation).
YOUNG_COLLECTION_THRESHOLD = 10_000
# Young collections between two of the middle generation (default 10), and middle ones between two full ones
# (default 10). A middle collection pauses the loop for everything that survived its young ones: up to 80-120 ms
# in a 100-member fleet exporting services, about 45 ms with 2. Full collections keep their cadence (2 x 50 young
# collections, as 10 x 10); 2 with the default 10 made them five times as frequent, each about 0.5 s.
MIDDLE_COLLECTION_THRESHOLD = 2
OLDEST_COLLECTION_THRESHOLD = 50


def settle_heap() -> None:
    """Moves what start-up built (every cluster's objects, caches, watches) out of the cyclic collector's reach
    and collects the young generation less often: in a 100-member embedded fleet the collector was a quarter of
    the process's time, each full collection walking the whole heap for ~0.5 s on the event loop (BENCHMARKS.md,
    MCS). Later garbage is still collected: what reference counting frees (almost everything) as before, and
    cycles made after this call by the collector; only cycles among objects alive now would never be."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, MIDDLE_COLLECTION_THRESHOLD, OLDEST_COLLECTION_THRESHOLD)


def async_command(command: Callable[[argparse.Namespace], Coroutine[Any, Any, int]],
                  loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None) -> Command:
    """A command that runs `command` in its own event loop (asyncio's, or `loop_factory`'s); an error a user can
    act on is one line on stderr and exit code 1."""

    def run(args: argparse.Namespace) -> int:
        name = f"clusterset {args.command}"
        try:
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                return runner.run(command(args))
        except KeyboardInterrupt:
            return 0
        except StateDirInUse as exc:
            print(f"{name}: {exc}; stop it first or use --state-dir", file=sys.stderr)
        except CannotListen as exc:
            print(f"{name}: {exc}; choose another port with --port", file=sys.stderr)
        except (JoinRefused, HubNotInstalled, CredentialError, ConnectionFailed) as exc:
            print(f"{name}: {exc}", file=sys.stderr)
        except ApiError as exc:
            print(f"{name}: {exc.status} {exc.reason}: {exc.message}", file=sys.stderr)
        except BrokenPipeError:
            raise  # the reader went away: main() ends quietly
        except OSError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
        return 1

    return run


async def wait_for_signal(stop: asyncio.Event | None = None) -> None:
    """Returns on SIGINT or SIGTERM (or once `stop` is set): how every long-running command waits to stop."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def program() -> str:
    """How to run clusterset again, for hints a user pastes: `clusterset` when that is what PATH finds, else
    the path they ran (`.venv/bin/clusterset`), else the interpreter and module they ran."""
    script = sys.argv[0] if sys.argv else ""
    if Path(script).name == "clusterset":
        found = shutil.which("clusterset")
        return "clusterset" if found and Path(found).resolve() == Path(script).resolve() else script
    return shlex.join([*sys.orig_argv[:1], "-m", "clusterset.cli.main"])


def natural_key(name: str) -> list[Any]:
    """Sorts names as people count: member-2 before member-10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)
