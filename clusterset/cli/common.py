"""What every command module shares: defaults, flags, the run loop of async commands, waiting for a signal."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from clusterset.client import ApiError, ConnectionFailed, CredentialError
from clusterset.inventory.registration import JoinRefused

DEFAULT_STATE_DIR = Path(".clusterset")
DEFAULT_PORT = 16443
DEFAULT_CLUSTERSET = "clusterset"

Command = Callable[[argparse.Namespace], int]


def server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                   help=f"where state, certificates and the kubeconfig live (default {DEFAULT_STATE_DIR})")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=None,
                   help=f"listen port (default: the port used last time in this state dir, else {DEFAULT_PORT})")
    p.add_argument("--durable", action="store_true", help="fsync every commit (survives power loss, slower)")
    p.add_argument("-v", "--verbose", action="store_true")


def kube_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", help="kubeconfig file (default: <state-dir>/kubeconfig if it exists, "
                   "else $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context")
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    p.add_argument("-v", "--verbose", action="store_true")


def kubeconfig_path(args: argparse.Namespace) -> str | None:
    """The file of `kube_flags`: --kubeconfig, else <state-dir>/kubeconfig if it exists, else None (the default)."""
    if args.kubeconfig:
        return str(args.kubeconfig)
    default = args.state_dir / "kubeconfig"
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


def async_command(command: Callable[[argparse.Namespace], Coroutine[Any, Any, int]]) -> Command:
    """A command that runs `command` in its own event loop; an error a user can act on is one line on stderr
    and exit code 1."""

    def run(args: argparse.Namespace) -> int:
        try:
            return asyncio.run(command(args))
        except KeyboardInterrupt:
            return 0
        except (JoinRefused, CredentialError) as exc:
            print(f"clusterset {args.command}: {exc}", file=sys.stderr)
            return 1
        except ApiError as exc:
            print(f"clusterset {args.command}: {exc.status} {exc.reason}: {exc.message}", file=sys.stderr)
            return 1
        except (ConnectionFailed, OSError) as exc:
            print(f"clusterset {args.command}: {exc}", file=sys.stderr)
            return 1

    return run


async def wait_for_signal() -> None:
    """Returns on SIGINT or SIGTERM: how every long-running command waits to stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)
